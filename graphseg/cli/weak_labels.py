"""``graphseg weak-labels``: synthesise weak labels from the ground truth of a folder.

Writes one file per image, named after its stem: ``STEM.json`` boxes (or
``STEM.xml`` with ``--format xml``), ``STEM.png`` points or scribbles (class
index, 255 = unlabelled, VOC palette), or ``STEM.json`` tags.  Objects and
background follow the dataset: class 0 where it has one, the stuff classes for
MSRC-v2.  For points and scribbles it prints their coverage and precision
against the ground truth (precision is 1.0 by construction).
"""
from __future__ import annotations

import argparse
import zlib

from graphseg.cli.failures import Failures, UsageError, check_out_folder, reading
from graphseg.data import (
    boxes_from_labels,
    open_dataset,
    points_from_labels,
    scribbles_from_labels,
    tags_from_labels,
    write_boxes_json,
    write_label_png,
    write_tags_json,
    write_voc_xml,
)
from graphseg.data.layouts import LAYOUTS
from graphseg.metrics import SeedQuality
from graphseg.utils.constants import SUPERVISIONS
from graphseg.utils.io import write_text


def synthesise(sample, kind: str, args: argparse.Namespace, background_classes, seed: int):
    """The weak label of ``kind`` for one sample (array, boxes or tags)."""
    if sample.label is None:
        raise ValueError("no ground truth to derive weak labels from")
    if kind == "boxes":
        return boxes_from_labels(sample.label, sample.instances, background_classes, args.min_area)
    if kind == "points":
        return points_from_labels(sample.label, sample.instances, args.point_mode,
                                  args.radius, args.min_area, seed=seed)
    if kind == "scribbles":
        return scribbles_from_labels(sample.label, sample.instances, args.length_ratio,
                                     args.width, args.min_area, seed=seed)
    return tags_from_labels(sample.label, background_classes)


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: expected >= 0")
    out, failures = check_out_folder("--out", args.out), Failures()
    with reading("--from"):
        dataset = open_dataset(args.source, args.split, args.layout)
    class_names = dataset.class_names or None
    quality = SeedQuality(len(class_names) if class_names else None)

    def one(name: str) -> None:
        sample = dataset.load(name)
        # one stream per image, keyed by its name: an image gets the same labels
        # whatever split or order it is processed in
        seed = args.seed * 2**32 + zlib.crc32(name.encode())
        value = synthesise(sample, args.kind, args, dataset.background_classes, seed)
        if args.kind in ("points", "scribbles"):
            write_label_png(out / f"{name}.png", value)
            quality.update(value, sample.label, name)
        elif args.kind == "tags":
            write_tags_json(out / f"{name}.json", value, class_names)
        elif args.format == "xml":
            write_voc_xml(out / f"{name}.xml", value, dataset.class_names, sample.shape,
                          f"{name}.jpg")
        else:
            write_boxes_json(out / f"{name}.json", value, class_names)

    for name in dataset.names:
        failures.attempt(name, lambda: one(name))
    if class_names:
        write_text(out / "classes.txt", "\n".join(class_names) + "\n")
    done = len(dataset) - len(failures.items)
    print(f"{args.kind}: wrote {done} files to {out} from {dataset!r} (seed {args.seed})")
    if args.kind in ("points", "scribbles") and done:
        print(quality.line(decimals=3))
    return failures.report(len(dataset))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="DIR",
                        help="dataset folder (VOC, GrabCut, MSRC-v2 or images/ + masks/)")
    parser.add_argument("--kind", required=True, choices=SUPERVISIONS)
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--split", help="split of a VOC or MSRC-v2 folder, e.g. val")
    parser.add_argument("--layout", choices=LAYOUTS, help="skip layout detection")
    parser.add_argument("--format", choices=("json", "xml"), default="json",
                        help="boxes file format (default json)")
    parser.add_argument("--min-area", type=int, default=64, metavar="PIXELS",
                        help="smallest region that gets a weak label (default 64)")
    parser.add_argument("--length-ratio", type=float, default=1.0, metavar="R",
                        help="scribbles: fraction of the skeleton kept, (0, 1] (default 1)")
    parser.add_argument("--width", type=int, default=3, metavar="PIXELS",
                        help="scribbles: stroke width, odd (default 3)")
    parser.add_argument("--point-mode", choices=("interior", "random"), default="interior")
    parser.add_argument("--radius", type=int, default=0, metavar="PIXELS",
                        help="points: click radius (default 0, one pixel)")
