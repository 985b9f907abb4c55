"""``graphseg visualize``: a side-by-side PNG of an image, its weak labels, a
prediction and the ground truth, with the class colours and a legend.

Every input is an argument, so a file that cannot be read is a usage error naming
its argument (exit status 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from graphseg.cli.failures import UsageError, check_out_folder, reading
from graphseg.data.classes import read_classes
from graphseg.data.formats import read_boxes_json, read_voc_xml
from graphseg.data.layouts import is_binary_mask
from graphseg.utils.io import read_image, read_label_map
from graphseg.viz import save_panels


def check_out_file(flag: str, path) -> Path:
    """``path`` as a :class:`~pathlib.Path`, checked before any work starts: not a
    folder, and its folder one that exists or can be created; a :class:`UsageError`
    naming ``flag`` otherwise."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, expected a file name")
    check_out_folder(flag, path.parent)
    return path


def run(args: argparse.Namespace) -> int:
    check_out_file("--out", args.out)
    with reading("--image"):
        image = read_image(args.image)
    with reading("--classes"):
        class_names = read_classes(args.classes) if args.classes else None
    boxes = None
    if args.boxes:
        xml = Path(args.boxes).suffix.lower() == ".xml"
        if xml and class_names is None:
            raise UsageError(f"--boxes {args.boxes}: a VOC XML file needs --classes to map "
                             "names")
        with reading("--boxes"):
            boxes = read_voc_xml(args.boxes, class_names, image.shape[:2]) if xml \
                else read_boxes_json(args.boxes, class_names, image.shape[:2])
    maps = {}
    for key in ("seeds", "pred", "gt"):
        path = getattr(args, key)
        if path:
            with reading(f"--{key}"):
                maps[key] = read_label_map(path)
    if "gt" in maps and (args.binary_gt or is_binary_mask(maps["gt"])):
        if not args.binary_gt:
            print(f"--gt {args.gt}: a 0/255 object mask (only 0 and 255), shown as object "
                  "(255) vs background (0)")
        maps["gt"] = (maps["gt"] > 127).astype(np.uint8)
    save_panels(args.out, image, seeds=maps.get("seeds"), boxes=boxes,
                prediction=maps.get("pred"), ground_truth=maps.get("gt"), class_names=class_names,
                alpha=args.alpha)
    print(f"wrote {args.out}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="the photo")
    parser.add_argument("--boxes", help="boxes file, STEM.json or VOC STEM.xml")
    parser.add_argument("--seeds", help="scribbles / points PNG (255 = unlabelled)")
    parser.add_argument("--pred", help="predicted label map PNG")
    parser.add_argument("--gt", help="ground-truth label map PNG (255 = ignore)")
    parser.add_argument("--binary-gt", action="store_true",
                        help="read --gt as a mask, above 127 = object (default: only "
                             "when it holds just 0 and 255)")
    parser.add_argument("--classes", help="class names, one per line, for the legend")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="overlay colour weight in [0, 1] (default 0.5)")
    parser.add_argument("--out", required=True, help="output PNG")
