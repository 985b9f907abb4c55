"""``graphseg evaluate``: score a folder of predicted label maps against ground truth.

Predictions are ``STEM.png`` class-index maps (255 = no prediction).  ``--gt`` is a
folder of ``STEM.png`` label maps or a dataset root (``labels/`` of MSRC-v2,
``SegmentationClass/`` of VOC, ``masks/`` of GrabCut, read as 0/1); its
``classes.txt`` names the classes unless ``--classes`` does.  A folder whose every
file holds only the values 0 and 255 is read as object masks (255 object, 0
background) and the command says so; one file with another value makes it
class-index maps, where 255 means ignore.  Every prediction is
scored (or the stems of ``--split``); a file that cannot be scored is reported by
name and the command exits 1 after the table.  ``--merge-background`` merges the
``--background`` classes into the first of them in both maps before scoring, as
``graphseg train --background`` does when it trains: a model trained on MSRC-v2 with
its stuff classes as one background is then scored on the same classes.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from graphseg.cli.failures import Failures, UsageError, check_folder, reading
from graphseg.cli.help import binary_note
from graphseg.cli.visualize import check_out_file
from graphseg.data.classes import MSRC_STUFF, background_lookup, read_classes
from graphseg.data.dataset import find_file, read_split, stems
from graphseg.data.layouts import resolve_gt
from graphseg.metrics import ConfusionMatrix
from graphseg.utils.io import read_label_map, write_json


def parse_background(text: str, class_names: Optional[Sequence[str]]) -> Optional[Tuple[int, ...]]:
    """``--background``: ``none``, ``auto``, or comma-separated class ids."""
    if text == "none":
        return None
    if text == "auto":
        if class_names and set(MSRC_STUFF) <= set(class_names):
            return tuple(class_names.index(name) for name in MSRC_STUFF)
        return (0,)
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as error:
        raise UsageError(f"--background {text!r}: expected 'none', 'auto' or ids like "
                         "0,1") from error


def format_table(summary: dict, title: str = "IoU") -> str:
    """Per-class IoU and the means as an aligned text table (values in percent)."""
    def pct(value):
        return "     -" if value is None or math.isnan(value) else f"{100 * value:6.2f}"

    width = max([len(n) for n in summary["per_class_iou"]] + [14])
    lines = [f"{'class':<{width}}  {title:>6}"]
    lines += [f"{name:<{width}}  {pct(v)}" for name, v in summary["per_class_iou"].items()]
    lines.append("-" * (width + 8))
    lines.append(f"{'mIoU':<{width}}  {pct(summary['miou'])}")
    lines.append(f"{'pixel accuracy':<{width}}  {pct(summary['pixel_accuracy'])}")
    if "fb_iou" in summary:
        lines.append(f"{'FB-IoU':<{width}}  {pct(summary['fb_iou'])}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    pred_dir, gt_root = check_folder("--pred", args.pred), check_folder("--gt", args.gt)
    if args.json:
        check_out_file("--json", args.json)
    gt_dir, binary, classes_file = resolve_gt(gt_root)
    # the classes file of --gt is read as if it had been given as --classes
    with reading("--classes"):
        class_names = read_classes(args.classes or classes_file) \
            if (args.classes or classes_file) else None
    background_classes = parse_background(args.background, class_names)
    if args.merge_background and background_classes is None:
        raise UsageError("--merge-background needs background classes, not --background none")
    lookup = background_lookup(background_classes[1:], to=background_classes[0]) \
        if args.merge_background else np.arange(256, dtype=np.uint8)
    num_classes = args.num_classes or (len(class_names) if class_names else None)
    if binary:
        print(binary_note("--gt", gt_dir))
        if num_classes is None:
            num_classes = 2
    with reading("--split"):
        names = read_split(Path(args.split)) if args.split else stems(pred_dir, (".png",))
    confusion, failures = ConfusionMatrix(num_classes), Failures()

    def score(name: str) -> None:
        gt = read_label_map(find_file(gt_dir, name, (".png",)))
        if binary:
            gt = (gt > 127).astype(np.uint8)
        pred = read_label_map(find_file(pred_dir, name, (".png",)))
        confusion.update(lookup[pred], lookup[gt])

    for name in names:
        failures.attempt(name, lambda: score(name))
    evaluated = len(names) - len(failures.items)
    summary = confusion.summary(class_names, background_classes)
    summary.update(images=evaluated, failed=[{"name": n, "error": e} for n, e in failures.items],
                   pred=str(pred_dir), gt=str(gt_dir))
    print(format_table(summary))
    print(f"{evaluated} images scored ({summary['pixels']} pixels, 255 ignored)")
    if args.json:
        write_json(args.json, summary)
    status = failures.report(len(names))
    if evaluated == 0:
        print("error: no image could be scored", file=sys.stderr)
        return 1
    return status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, metavar="DIR",
                        help="predicted STEM.png class-index maps (255 = no prediction)")
    parser.add_argument("--gt", required=True, metavar="DIR",
                        help="ground-truth STEM.png maps, or a VOC / MSRC-v2 / GrabCut root")
    parser.add_argument("--num-classes", type=int, metavar="K",
                        help="number of classes (default: from the classes file, else the "
                             "largest id seen + 1)")
    parser.add_argument("--classes", metavar="FILE", help="class names, one per line")
    parser.add_argument("--split", metavar="FILE",
                        help="score only these stems (one per line); a missing prediction "
                             "is then an error")
    parser.add_argument("--background", default="auto",
                        help="classes merged as background for FB-IoU: ids like 0 or "
                             "0,1,2, 'none', or 'auto' (MSRC stuff classes, else 0)")
    parser.add_argument("--merge-background", action="store_true",
                        help="merge the --background classes into the first of them in "
                             "predictions and ground truth before scoring (as graphseg "
                             "train --background does)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
