"""Coverage and precision of graphseg's seeds next to the raw weak labels they come from.

* GrabCut-13: the box (box fill) vs box seeds (GrabCut, band 0 = Eq. 3.2, band 0.05
  alone, band 0.15, and the default rule: band 0.05, 0.25 for low-context boxes that
  cover most of the image); both human scribble sets vs their superpixel expansion.
* MSRC-v2 val, weak labels synthesised from the ground truth with graphseg.data
  (seeded): boxes, points (interior clicks), scribbles (full skeletons, 3 px),
  and tags with CAM classifiers trained here on MSRC-v2 train: the 1x1 classifier
  of the frozen pretrained ESPNetv2 encoder (levels 3+4, stride 8, 320 px) and the
  small CNN from scratch (CPU, 112 px), ``--backbone`` to pick one, unless ``--cam``
  gives a classifier.  The same box rules run on MSRC-v2 val boxes (tight, from
  the ground truth), to check a rule chosen on GrabCut-13.  The seven stuff classes are
  background: they are mapped to label 0 (building, itself stuff) in the ground
  truth and the seeds, so "background" is one class.
* Tags rows: raw CAM argmax (every pixel), the same argmax cut per image to its
  most confident pixels so that it has exactly the coverage of the reliable
  regions ("matched"), M'_I (top 40% per class), the reliable regions (Eq. 2.7),
  the release's form of them (two CRFs, background exponents 4 and 32, CRF
  probability >= 0.8) with the argmax matched to its coverage,
  the CRF labels M_I, and the AffinityNet random walk of the CAM on colour
  affinities; plus boxes fused with CAM (M_g, Eq. 3.4-3.5).

Coverage: fraction of non-void ground-truth pixels that get a seed; precision:
fraction of seeded (non-void) pixels whose seed is right; both pooled over pixels.

    python benchmarks/seeds.py
    python benchmarks/seeds.py --quick --json out.json
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
)
from graphseg.metrics import SeedQuality
from graphseg.nn.models import (
    espnetv2_cam_classifier,
    load_classifier,
    save_classifier,
    small_cam_classifier,
)
from graphseg.refine import crf_labels, walk_probabilities
from graphseg.seeds import (
    box_seeds,
    cam_probabilities,
    confident_box_seeds,
    confident_labels,
    expand_seeds,
    fuse_box_cam,
    multiscale_cam,
    release_regions,
    reliable_regions,
)
from graphseg.seeds.cam import _normalise
from graphseg.training import train_cam_classifier
from graphseg.utils.constants import IGNORE

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    benchmark_parser,
    machine,
    machine_line,
    missing,
    settings_line,
    torch_threads,
    write_json,
)

DATA_DIR = kit_root()


class Table:
    """Rows of (dataset, supervision, seeds, coverage, precision, labelled, seconds)."""

    def __init__(self):
        self.rows, self.quality, self.time = [], {}, {}

    def add(self, dataset, supervision, kind, seeds, gt, seconds=0.0):
        key = (dataset, supervision, kind)
        self.quality.setdefault(key, SeedQuality(256)).update(seeds, gt)
        self.time[key] = self.time.get(key, 0.0) + seconds

    def finish(self):
        for (dataset, supervision, kind), q in self.quality.items():
            self.rows.append({"dataset": dataset, "supervision": supervision, "seeds": kind,
                              "coverage": q.total_coverage(), "precision": q.total_precision(),
                              "labelled": q.labelled_fraction(),
                              "seconds": self.time[(dataset, supervision, kind)]})
        return self.rows


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    return function(*args, **kwargs), time.perf_counter() - start


def grabcut(table: Table, args) -> None:
    dataset = GrabCutDataset(DATA_DIR / "grabcut")
    names = dataset.names[:4] if args.quick else dataset.names
    for name in names:
        sample = dataset.load(name)
        gt = sample.label
        table.add("GrabCut-13", "box", "raw: box fill",
                  boxes_to_seeds(sample.boxes, sample.shape), gt)
        for kind, options in BOX_RULES:
            seeds, seconds = timed(box_seeds, sample.image, sample.boxes, seed=args.seed,
                                   **options)
            table.add("GrabCut-13", "box", kind, seeds.labels, gt, seconds)
        for annotator in (1, 2):
            scribbles = dataset.scribbles(name, annotator)
            table.add("GrabCut-13", f"scribbles{annotator}", "raw: scribbles", scribbles, gt)
            seeds, seconds = timed(expand_seeds, sample.image, scribbles, 2)
            table.add("GrabCut-13", f"scribbles{annotator}", "SLIC expansion", seeds.labels, gt,
                      seconds)


# (row name, box_seeds options): Eq. 3.2, the narrow band alone, a uniform wide band, the default
BOX_RULES = (("GrabCut, Eq. 3.2 (band 0)", {"band": 0.0, "wide_band": 0.0}),
             ("GrabCut, band 0.05 only", {"band": 0.05, "wide_band": 0.0}),
             ("GrabCut, band 0.15", {"band": 0.15, "wide_band": 0.0}),
             ("GrabCut, default (0.05; 0.25 low ctx)", {}))
BACKBONES = {"espnetv2": "ESPNetv2", "small": "small CNN"}


def cam_models(args, train, background):
    """``[(name, classifier)]``: ``--cam``, or one per ``--backbone`` trained on train."""
    if args.cam:
        model = load_classifier(args.cam)
        name = (getattr(model, "architecture", None) or {}).get("name", "custom")
        return [(BACKBONES.get(name, name), model)]
    objects = [c for c in range(len(train.class_names)) if c not in background]
    samples = list(train)[:60] if args.quick else list(train)
    models = []
    for backbone in (("espnetv2", "small") if args.backbone == "both" else (args.backbone,)):
        if backbone == "espnetv2":
            model = espnetv2_cam_classifier(objects, seed=args.seed)
            options = {"size": 320, "lr": 1e-3}
        else:
            model = small_cam_classifier(objects, seed=args.seed)
            options = {}
        start = time.perf_counter()
        history = train_cam_classifier(model, [s.image for s in samples],
                                       [s.tags for s in samples],
                                       epochs=5 if args.quick else args.epochs, seed=args.seed,
                                       progress=False, **options)
        print(f"CAM classifier ({backbone}): {len(samples)} MSRC-v2 train images, final loss "
              f"{history[-1]:.4f}, {time.perf_counter() - start:.0f} s")
        if args.save_cam:
            save_classifier(model, f"{args.save_cam}.{backbone}.pt")
        models.append((BACKBONES[backbone], model))
    return models


def matched(labels: np.ndarray, confidence: np.ndarray, count: int) -> np.ndarray:
    """``labels`` cut to its ``count`` most confident pixels."""
    out = np.full(labels.shape, IGNORE, dtype=np.uint8)
    order = np.argsort(-confidence, axis=None, kind="stable")[:count]
    out.flat[order] = labels.flat[order]
    return out


def tag_rows(table: Table, name: str, model, image, tags, gt, gamma) -> np.ndarray:
    """Tags rows of one classifier; returns its CAM."""
    supervision = f"tags, {name}"
    start = time.perf_counter()
    cam = multiscale_cam(model, image)
    probs, ids = cam_probabilities(cam, tags, model.classes, 0, gamma)
    lookup = np.asarray(ids, dtype=np.uint8)
    raw, confidence = lookup[probs.argmax(axis=0)], _normalise(probs).max(axis=0)
    cam_seconds = time.perf_counter() - start
    reliable, seconds = timed(reliable_regions, image, probs, ids)
    crf = crf_labels(image, _normalise(probs), ids)
    table.add("MSRC-v2 val", supervision, "raw: CAM argmax", raw, gt, cam_seconds)
    table.add("MSRC-v2 val", supervision, "raw: CAM argmax, matched coverage",
              matched(raw, confidence, int((reliable.labels != IGNORE).sum())), gt)
    confident = confident_labels(raw, probs.max(axis=0))
    table.add("MSRC-v2 val", supervision, "M'_I top 40% (Eq. 2.6)", confident, gt)
    table.add("MSRC-v2 val", supervision, "reliable regions (Eq. 2.7)", reliable.labels, gt,
              cam_seconds + seconds)
    release, seconds = timed(release_regions, image, probs, ids)
    table.add("MSRC-v2 val", supervision, "raw: CAM argmax, matched to release",
              matched(raw, confidence, int((release.labels != IGNORE).sum())), gt)
    table.add("MSRC-v2 val", supervision, "release form (CRFs bg^4 / bg^32)", release.labels, gt,
              cam_seconds + seconds)
    table.add("MSRC-v2 val", supervision, "CRF labels M_I (Eq. 2.5)", crf.labels, gt)
    walked, seconds = timed(walk_probabilities, image, probs, ids)
    table.add("MSRC-v2 val", supervision, "random walk (beta 8, t 64)", walked.labels, gt,
              seconds)
    return cam


def msrc(table: Table, args) -> None:
    val = MSRCDataset(DATA_DIR / "msrc_v2", "val")
    background = val.background_classes
    stuff = np.zeros(256, dtype=np.uint8)
    stuff[:] = np.arange(256)
    stuff[list(background)] = 0  # every stuff class becomes background 0 (= building, stuff)
    models = cam_models(args, MSRCDataset(DATA_DIR / "msrc_v2", "train"), background)
    names = val.names[:15] if args.quick else val.names
    for i, name in enumerate(names):
        sample = val.load(name)
        gt, image, seed = stuff[sample.label], sample.image, args.seed * 100_003 + i
        boxes = boxes_from_labels(sample.label, background_classes=background)
        table.add("MSRC-v2 val", "boxes", "raw: box fill", boxes_to_seeds(boxes, sample.shape), gt)
        for kind, options in BOX_RULES[1:]:
            boxed, seconds = timed(box_seeds, image, boxes, seed=args.seed, **options)
            table.add("MSRC-v2 val", "boxes", kind, boxed.labels, gt, seconds)
        for kind, raw in (("points", points_from_labels(sample.label, seed=seed)),
                          ("scribbles", scribbles_from_labels(sample.label, seed=seed))):
            raw = stuff[raw]
            table.add("MSRC-v2 val", kind, f"raw: {kind}", raw, gt)
            seeds, seconds = timed(expand_seeds, image, raw)
            table.add("MSRC-v2 val", kind, "SLIC expansion", seeds.labels, gt, seconds)
        cams = [tag_rows(table, label, model, image, sample.tags, gt, args.gamma)
                for label, model in models]
        # boxes fused with the first classifier's CAM (Eq. 3.4-3.5)
        cam, model = cams[0], models[0][1]
        tags_of_boxes = sorted(set(boxes[:, 0].tolist()))
        probs_b, ids_b = cam_probabilities(cam, tags_of_boxes, model.classes, 0, args.gamma)
        m_i = crf_labels(image, _normalise(probs_b), ids_b).labels
        m_i_conf = confident_labels(np.asarray(ids_b, np.uint8)[probs_b.argmax(axis=0)],
                                    probs_b.max(axis=0))
        box_plain = box_seeds(image, boxes, band=0.0, wide_band=0.0, seed=args.seed).labels
        fused = fuse_box_cam(box_plain, boxes, m_i).labels
        table.add("MSRC-v2 val", "boxes", f"box + CAM M_F (Eq. 3.4), {models[0][0]}", fused, gt)
        table.add("MSRC-v2 val", "boxes", f"box + CAM M_g (Eq. 3.5), {models[0][0]}",
                  confident_box_seeds(fused, boxes, m_i_conf).labels, gt)


def main(argv=None) -> int:
    parser = benchmark_parser(
        __doc__, quick="4 GrabCut and 15 MSRC-v2 images, 5-epoch CAMs on 60 images",
        seed=0, threads=1, threads_help="torch threads (1: on a shared machine OpenMP's "
                                        "spinning makes more threads much slower)")
    parser.add_argument("--cam", metavar="CHECKPOINT", help="use this CAM classifier")
    parser.add_argument("--backbone", choices=("both", "espnetv2", "small"), default="both",
                        help="CAM classifiers to train (both: ESPNetv2 first, then the small CNN)")
    parser.add_argument("--save-cam", metavar="PREFIX",
                        help="save the trained CAM classifiers as PREFIX.BACKBONE.pt")
    parser.add_argument("--epochs", type=int, default=20, help="CAM training epochs (20)")
    parser.add_argument("--gamma", type=float, default=6.0, help="CAM background decay (6)")
    args = parser.parse_args(argv)
    if missing(DATA_DIR):
        return 2
    with torch_threads(args.threads):
        return benchmark(args)


def benchmark(args) -> int:
    info, asked = machine(), {"seed": args.seed, "quick": args.quick}
    print(machine_line(info))
    print(settings_line(asked))
    table, start = Table(), time.perf_counter()
    grabcut(table, args)
    msrc(table, args)
    rows = table.finish()
    print(f"\n{'dataset':<12} {'supervision':<15} {'seeds':<40} {'coverage':>8} "
          f"{'precision':>9} {'labelled':>8} {'s':>6}")
    for row in rows:
        print(f"{row['dataset']:<12} {row['supervision']:<15} {row['seeds']:<40} "
              f"{100 * row['coverage']:7.2f}% {100 * row['precision']:8.2f}% "
              f"{100 * row['labelled']:7.2f}% {row['seconds']:6.1f}")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        write_json(args.json, {"environment": {**info, **asked}, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
