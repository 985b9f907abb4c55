"""Coverage and precision of synthesised weak labels on MSRC-v2 and GrabCut, and of
GrabCut's human scribbles, against the ground truth.

Points and scribbles are drawn inside their region, so their precision is 1.0 by
construction and their coverage is the number to read.  Boxes are scored as the
"box fill" seed (each box filled with its class, smaller boxes on top, background
outside on GrabCut, unknown outside on MSRC-v2, which has no background class),
whose precision is below 1: the box also covers background.  Tags, the classes
present, are exact by construction and reported by count.  Coverage is over
non-void ground-truth pixels; "labelled" is over all pixels (the number
ScribbleSup quotes, ~3% on VOC).

    python benchmarks/weak_labels.py                    # MSRC-v2 val + GrabCut
    python benchmarks/weak_labels.py --split test --json out.json
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from graphseg.data import (
    GrabCutDataset,
    MSRCDataset,
    boxes_from_labels,
    boxes_to_seeds,
    kit_root,
    points_from_labels,
    scribbles_from_labels,
    tags_from_labels,
)
from graphseg.metrics import SeedQuality
from graphseg.utils.constants import IGNORE

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    benchmark_parser,
    machine,
    machine_line,
    missing,
    settings_line,
    write_json,
)

DATA_DIR = kit_root()
RATIOS = (0.3, 0.5, 1.0)


def kinds(args):
    """``(name, function(sample, background, seed) -> seed map)`` for every synthesised kind."""
    def box_fill(sample, background, seed):
        outside = 0 if background == (0,) else IGNORE
        boxes = boxes_from_labels(sample.label, background_classes=background,
                                  min_area=args.min_area)
        return boxes_to_seeds(boxes, sample.shape, outside)

    out = [("boxes (fill)", box_fill)]
    for mode in ("interior", "random"):
        out.append((f"points {mode}", lambda s, b, seed, mode=mode: points_from_labels(
            s.label, mode=mode, min_area=args.min_area, seed=seed)))
    for ratio in RATIOS:
        out.append((f"scribbles r={ratio}", lambda s, b, seed, ratio=ratio: scribbles_from_labels(
            s.label, length_ratio=ratio, width=args.width, min_area=args.min_area, seed=seed)))
    return out


def score(dataset, label: str, args, rows) -> None:
    """Add one row per kind (and per human annotator on GrabCut) to ``rows``."""
    samples = list(dataset)
    k = len(dataset.class_names)
    for name, make in kinds(args):
        quality, start = SeedQuality(k), time.perf_counter()
        for i, sample in enumerate(samples):
            quality.update(make(sample, dataset.background_classes, args.seed * 100_003 + i),
                           sample.label, sample.name)
        rows.append(row(label, name, quality, (time.perf_counter() - start) / len(samples)))
    tags = [tags_from_labels(s.label, dataset.background_classes) for s in samples]
    rows.append({"dataset": label, "kind": "tags", "coverage": None, "precision": 1.0,
                 "labelled": None, "ms_per_image": None,
                 "note": f"{np.mean([len(t) for t in tags]):.2f} tags per image, "
                         f"{sum(not t for t in tags)} images with none"})
    if isinstance(dataset, GrabCutDataset):
        for annotator in (1, 2):
            quality = SeedQuality(2)
            for sample in samples:
                quality.update(dataset.scribbles(sample.name, annotator), sample.label)
            rows.append(row(label, f"human scribbles {annotator}", quality, None))


def row(dataset: str, kind: str, quality: SeedQuality, seconds) -> dict:
    return {"dataset": dataset, "kind": kind, "coverage": quality.total_coverage(),
            "precision": quality.total_precision(), "labelled": quality.labelled_fraction(),
            "ms_per_image": None if seconds is None else 1000 * seconds, "note": ""}


def format_rows(rows) -> str:
    def pct(value):
        return "      -" if value is None else f"{100 * value:7.3f}"

    lines = [f"{'dataset':<16} {'kind':<20} {'coverage%':>9} {'precision%':>10} "
             f"{'labelled%':>9} {'ms/img':>7}  note"]
    for r in rows:
        ms = "      -" if r["ms_per_image"] is None else f"{r['ms_per_image']:7.1f}"
        lines.append(f"{r['dataset']:<16} {r['kind']:<20} {pct(r['coverage']):>9} "
                     f"{pct(r['precision']):>10} {pct(r['labelled']):>9} {ms}  {r['note']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, seed=0, threads=False)
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="the data kit folder")
    parser.add_argument("--split", default="val", help="MSRC-v2 split (default val)")
    parser.add_argument("--width", type=int, default=3, help="scribble width in pixels")
    parser.add_argument("--min-area", type=int, default=64, help="smallest region, pixels")
    args = parser.parse_args(argv)
    if missing(args.data):
        return 2
    info = machine()
    asked = {"seed": args.seed, "split": args.split, "width": args.width,
             "min_area": args.min_area}
    print(machine_line(info))
    print(settings_line(asked))
    rows = []
    msrc = MSRCDataset(args.data / "msrc_v2", args.split)
    score(msrc, f"MSRC-v2 {args.split} ({len(msrc)})", args, rows)
    grabcut = GrabCutDataset(args.data / "grabcut")
    score(grabcut, f"GrabCut ({len(grabcut)})", args, rows)
    print(format_rows(rows))
    if args.json:
        write_json(args.json, {"machine": info, **asked, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
