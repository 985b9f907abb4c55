"""``graphseg demo``: boxes and scribbles to masks on the bundled sample, scored.

Runs the box and the scribble pipeline (:func:`graphseg.propagation.propagate`) on
the three GrabCut photos shipped with graphseg, prints every photo's object IoU
against its ground truth next to OpenCV GrabCut's from the same box, and writes
side-by-side pictures (photo, weak labels, prediction with its IoU, ground truth)
to ``--out``.  While a photo runs, a bar on stderr shows its stage (seeds, features,
graph, training epochs, CRF).
A photo that fails is reported by name and skipped; the command then exits 1.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from graphseg.cli.failures import Failures
from graphseg.cli.options import (
    add_propagation_arguments,
    add_training_arguments,
    propagation,
    training_config,
)
from graphseg.data import GrabCutDataset, sample_root
from graphseg.metrics import object_iou
from graphseg.propagation import FEATURES, StageBar, propagate
from graphseg.seeds import opencv_grabcut
from graphseg.viz import save_panels


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    dataset = GrabCutDataset(sample_root() / "grabcut")
    out = Path(args.out)
    names = dataset.names[: args.limit]
    propagator, layer = propagation(args)
    print(f"graphseg demo: {len(names)} GrabCut photos bundled with graphseg, "
          f"{args.features} node features, propagator {propagator}, layer {layer}, "
          f"hidden {args.hidden}, seed {args.seed}")
    print(f"{'image':<10} {'boxes':>6} {'GrabCut':>8} {'scribbles':>10} {'seconds':>8}")
    rows, failures = [], Failures()
    bar = StageBar()  # the stages of the photo that runs, on stderr

    def one(name: str) -> dict:
        sample = dataset.load(name)
        start = time.perf_counter()
        row = {"image": name}
        for kind, annotation in (("boxes", sample.boxes),
                                 ("scribbles", dataset.scribbles(name, 1))):
            bar.describe(f"{name} {kind}")
            result = propagate(sample.image, annotation, kind, 2, propagator=propagator,
                               layer=layer,
                               config=training_config(kind, hidden=args.hidden,
                                                      epochs=args.epochs),
                               features=args.features, seed=args.seed, progress=bar)
            row[kind] = object_iou(result.labels, sample.label)
            weak = {"boxes": sample.boxes} if kind == "boxes" else {"seeds": annotation}
            save_panels(out / f"{name}_{kind}.png", sample.image, prediction=result.labels,
                        ground_truth=sample.label, class_names=dataset.class_names,
                        iou=row[kind], **weak)
        bar.describe(name)
        bar("GrabCut", 0, 1)
        row["grabcut"] = object_iou(opencv_grabcut(sample.image, sample.boxes, seed=args.seed),
                                    sample.label)
        bar("GrabCut", 1, 1)
        row["seconds"] = time.perf_counter() - start
        return row

    for name in names:
        row = failures.attempt(name, lambda: one(name))
        bar.close()  # off the screen before the row is printed
        if row is None:
            continue
        rows.append(row)
        print(f"{name:<10} {row['boxes']:>6.3f} {row['grabcut']:>8.3f} {row['scribbles']:>10.3f} "
              f"{row['seconds']:>8.1f}", flush=True)
    if rows:
        means = {k: float(np.mean([r[k] for r in rows]))
                 for k in ("boxes", "grabcut", "scribbles")}
        print(f"{'mean':<10} {means['boxes']:>6.3f} {means['grabcut']:>8.3f} "
              f"{means['scribbles']:>10.3f}")
        print(f"object IoU against the ground truth; pictures in {out.resolve()}/ "
              f"(NAME_boxes.png, NAME_scribbles.png)")
    return failures.report(len(names))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="graphseg-demo", metavar="DIR",
                        help="where the pictures go (default ./graphseg-demo)")
    parser.add_argument("--features", choices=FEATURES, default="espnetv2",
                        help="node features (default espnetv2, the bundled pretrained encoder)")
    add_propagation_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("--limit", type=int, help="only the first N photos")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
