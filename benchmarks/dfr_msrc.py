"""DFR from scribbles (issue 15) on MSRC-v2 with synthesised scribbles, and on GrabCut-13
with human scribbles.

Protocol (MSRC-v2).  The fixed split (train 354 / val 59 / test 178 photos), the seven
stuff classes merged into background 0 and the 16 object classes renumbered 1..16
(``benchmarks/_segmenters.py``).  Scribbles are drawn as ``graphseg weak-labels --kind
scribbles`` draws them: one stroke along the skeleton of every ground-truth region,
stuff regions included, 3 px wide, ``--lengths`` the fraction of the skeleton kept
(1.0 = the whole skeleton, the thesis' Fig. 4.3 shortens ScribbleSup's strokes the same
way); the labelled share of pixels is printed.  Every trained row trains on the train
photos' scribbles, is scored on val (ground truth) after every epoch, and the epoch
with the best val mIoU is scored on test once: settings are chosen on val only.

Rows (one backbone and schedule for all; ``--rows``):

* ``partial CE``: Eq. 4.2 alone;
* ``+ static kernel``: + the regularised loss with the position + RGB kernel (the
  Gated-CRF-style baseline, no consistency head);
* ``+ DFR (dynamic kernel)``: the kernel also on the consistency head's features,
  the head without its own losses (thesis Table 4.5, first row);
* ``+ consistency head (full DFR)``: + the feature distance and feature regularised
  losses (Eq. 4.1 in full);
* ``A2GNN per image``: ``propagate(image, scribbles, "scribbles")`` on each *test*
  photo from its own scribbles (the release's scribble schedule, hidden 64): per-image
  pseudo labels, no model;
* ``full supervision``: the same network with the partial CE on the ground truth.

Partial CE and full DFR are also trained at the other ``--lengths`` (mIoU against
scribble length, Fig. 4.3); the other rows use the whole skeleton (length 1.0).

GrabCut-13 (``--sections grabcut``): the human scribble sets 1 and 2, binary object
IoU.  ``DFR fine-tuned`` starts from the MSRC-trained full DFR network (its backbone,
neck and consistency head; a new two-class classifier) and is fine-tuned on the one
photo's scribbles with the DFR loss (``--ft-epochs`` epochs of ``--ft-crops`` random
crops), then predicts that photo; next to A2GNN from the same scribbles and
scikit-image's random walker.

    python benchmarks/dfr_msrc.py --json /tmp/bench_dfr/out.json
    python benchmarks/dfr_msrc.py --rows pce static dfr full --epochs 8 --test-limit 60
    python benchmarks/dfr_msrc.py --quick
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from graphseg.data import GrabCutDataset, kit_root
from graphseg.data.torch_dataset import SegmentationSet
from graphseg.data.weak_labels import labelled_fraction
from graphseg.metrics import object_iou
from graphseg.nn.backbones import EfficientNetLite0Encoder
from graphseg.propagation import A2GNNConfig, propagate
from graphseg.segmenters import DFRSegmenter
from graphseg.utils.io import write_png

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    apply_defaults,
    benchmark_parser,
    machine,
    machine_line,
    missing,
    settings_line,
    torch_threads,
    write_json,
)
from _segmenters import Split, object_classes, score, train_row  # noqa: E402
from pseudo_labels import skimage_random_walker  # noqa: E402

ROWS = {
    "pce": "partial CE",
    "static": "+ static kernel",
    "dynamic": "+ DFR (dynamic kernel)",
    "dfr": "+ consistency head (full DFR)",
    "a2gnn": "A2GNN per image (test scribbles)",
    "full": "full supervision (upper bound)",
}
DFR_ROWS = {"pce": {"dfr_weight": 0.0, "consistency_head": False, "kernel": "static"},
            "static": {"consistency_head": False, "kernel": "static"},
            "dynamic": {"fd_weight": 0.0, "fr_weight": 0.0},
            "dfr": {}}
SECTIONS = ("msrc", "grabcut")
QUICK = {"train_limit": 8, "val_limit": 3, "test_limit": 3, "epochs": 2, "crop": 96,
         "gnn_epochs": 5, "rows": ["pce", "dfr", "a2gnn", "full"], "lengths": [1.0],
         "backbones": ["espnetv2"], "grabcut_limit": 1, "ft_epochs": 1, "ft_crops": 2}
FULL = {"train_limit": None, "val_limit": None, "test_limit": None, "epochs": 16,
        "crop": 224, "gnn_epochs": 50, "rows": list(ROWS), "lengths": [1.0, 0.5, 0.3],
        "backbones": ["espnetv2"], "grabcut_limit": None, "ft_epochs": 10, "ft_crops": 8}


def a2gnn(image, scribbles, num_classes: int, args) -> np.ndarray:
    config = A2GNNConfig.release("scribbles", stage1_epochs=args.gnn_epochs,
                                 stage2_epochs=args.gnn_epochs, hidden_channels=64)
    return propagate(image, scribbles, "scribbles", num_classes, config=config,
                     seed=args.seed).labels


def benchmark_msrc(backbone: str, splits, class_names, args):
    """The MSRC-v2 rows; also returns the full-DFR segmenter (for GrabCut)."""
    train, val, test = splits
    num_classes = len(class_names)
    common = {"backbone": backbone, "epochs": args.epochs, "crop": args.crop,
              "batch_size": args.batch_size, "seed": args.seed}
    results: Dict[str, dict] = {}
    model = None
    for length in args.lengths:
        maps = train.scribbles(length, seed=args.seed)
        share = float(np.mean([labelled_fraction(m) for m in maps]))
        print(f"  [{backbone}] scribbles at length {length}: {100 * share:.2f} % of the "
              "train pixels labelled")
        data = train.label_set(Path(args.workdir) / f"scribbles_{length}_n{len(train.names)}",
                               maps)
        # other lengths: the curve of Fig. 4.3, partial CE and full DFR
        rows = [r for r in DFR_ROWS if r in args.rows and (length == 1.0 or r in ("pce", "dfr"))]
        for row in rows:
            weight = {} if row == "pce" else {"dfr_weight": args.dfr_weight}
            segmenter = DFRSegmenter(class_names, **common, **{**weight, **DFR_ROWS[row]})
            key = row if length == 1.0 else f"{row}@{length}"
            results[key] = {**train_row(segmenter, data, val, test, num_classes),
                            "length": length, "labelled": share}
            print(f"  [{backbone}] {ROWS[row]} (length {length}): test mIoU "
                  f"{100 * results[key]['test']:.1f}", flush=True)
            if row == "dfr" and length == 1.0:
                model = segmenter
    if "a2gnn" in args.rows:
        maps = test.scribbles(1.0, seed=args.seed + 100_000)
        start = time.perf_counter()
        predictions = [a2gnn(im, m, num_classes, args) for im, m in zip(test.images, maps)]
        results["a2gnn"] = {"test": score(predictions, test, num_classes),
                            "s_per_image": (time.perf_counter() - start) / len(test.images),
                            "length": 1.0}
    if "full" in args.rows:
        data = train.label_set(Path(args.workdir) / f"gt_n{len(train.names)}", train.labels)
        segmenter = DFRSegmenter(class_names, **common, **DFR_ROWS["pce"])
        results["full"] = train_row(segmenter, data, val, test, num_classes)
    return results, model


def fine_tune(model: DFRSegmenter, image_path: Path, scribbles: np.ndarray, folder: Path,
              args) -> DFRSegmenter:
    """``model``'s network with a new two-class classifier, fine-tuned on one photo."""
    path = folder / f"{image_path.stem}.png"
    write_png(path, scribbles)
    settings = {**model.config.to_dict(), "epochs": args.ft_epochs,
                "batch_size": min(args.batch_size, args.ft_crops), "pretrained": False}
    segmenter = DFRSegmenter(("background", "object"), **settings)
    own = segmenter.net.state_dict()
    # everything but the classifier, whose shape depends on the classes
    shared = {k: v for k, v in model.net.state_dict().items() if own[k].shape == v.shape}
    segmenter.net.load_state_dict(shared, strict=False)
    data = SegmentationSet([image_path] * args.ft_crops, labels=[path] * args.ft_crops)
    segmenter.fit(data, progress=False)
    return segmenter


def benchmark_grabcut(model, args) -> Dict[str, dict]:
    dataset = GrabCutDataset(kit_root() / "grabcut")
    names = dataset.names[: args.grabcut_limit]
    methods = ["random walker", "A2GNN"] + (["DFR fine-tuned"] if model is not None else [])
    ious: Dict[str, List[float]] = {m: [] for m in methods}
    seconds: Dict[str, List[float]] = {m: [] for m in methods}
    for name in names:
        sample = dataset.load(name)
        for annotator in (1, 2):
            scribbles = dataset.scribbles(name, annotator)
            runs = {"random walker": lambda: skimage_random_walker(sample.image, scribbles),
                    "A2GNN": lambda: a2gnn(sample.image, scribbles, 2, args)}
            if model is not None:
                runs["DFR fine-tuned"] = lambda: fine_tune(
                    model, dataset.root / "images" / f"{name}.jpg", scribbles,
                    Path(args.workdir) / f"grabcut{annotator}", args).predict(sample.image)[0]
            line = []
            for method, function in runs.items():
                start = time.perf_counter()
                pred = function()
                seconds[method].append(time.perf_counter() - start)
                ious[method].append(object_iou(pred, sample.label))
                line.append(f"{method} {ious[method][-1]:.3f}")
            print(f"  grabcut {name:<9} scribbles{annotator}: {', '.join(line)}", flush=True)
    return {m: {"mean_object_iou": float(np.mean(ious[m])),
                "s_per_image": float(np.mean(seconds[m])), "runs": len(ious[m])}
            for m in methods}


def print_tables(results: dict) -> None:
    for backbone, rows in results.get("msrc", {}).items():
        full = rows.get("full", {}).get("test")
        print(f"\nMSRC-v2 test ({backbone})\n")
        print("| row | scribble length | val mIoU (epoch) | test mIoU | % of full | "
              "s / epoch | s / image |")
        print("|---|---|---|---|---|---|---|")
        for key, r in rows.items():
            row = key.split("@")[0]
            length = "-" if row == "full" else f"{r['length']}"
            val = f"{100 * r['val']:.1f} ({r['epoch']})" if "val" in r else "-"
            share = f"{100 * r['test'] / full:.0f}" if full and row != "full" else "-"
            epoch = f"{r['s_per_epoch']:.1f}" if "s_per_epoch" in r else "-"
            print(f"| {ROWS[row]} | {length} | {val} | {100 * r['test']:.1f} | {share} | "
                  f"{epoch} | {r['s_per_image']:.2f} |")
    if "grabcut" in results:
        print("\nGrabCut-13 human scribbles (sets 1 and 2)\n")
        print("| method | mean object IoU | s / photo | runs |")
        print("|---|---|---|---|")
        for method, r in results["grabcut"].items():
            print(f"| {method} | {r['mean_object_iou']:.3f} | {r['s_per_image']:.2f} | "
                  f"{r['runs']} |")


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, quick="8 train / 3 val / 3 test photos, 2 epochs at "
                                             "96 px: partial CE, full DFR, A2GNN and full "
                                             "supervision; one GrabCut photo (under 2 "
                                             "minutes)", threads=2)
    parser.add_argument("--data", default=str(kit_root() / "msrc_v2"), help="MSRC-v2 folder")
    parser.add_argument("--workdir", default="/tmp/bench_dfr",
                        help="scribble and mask PNGs for the trained rows")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), help="MSRC-v2 rows")
    parser.add_argument("--lengths", nargs="+", type=float,
                        help="scribble length ratios; partial CE and full DFR are "
                             "trained at each (default 1.0 0.5 0.3)")
    parser.add_argument("--backbones", nargs="+",
                        choices=["espnetv2", "efficientnet-lite0", "small-cnn"])
    for flag in ("train-limit", "val-limit", "test-limit", "epochs", "crop", "gnn-epochs",
                 "grabcut-limit", "ft-epochs", "ft-crops"):
        parser.add_argument(f"--{flag}", type=int)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dfr-weight", type=float, default=1e-2,
                        help="lambda1 of the regularised rows (default 1e-2, the thesis')")
    args = parser.parse_args(argv)
    apply_defaults(args, QUICK, FULL)
    root = Path(args.data)
    if missing(root):
        return 1
    info = machine(args.threads)
    print(machine_line(info))
    print(settings_line({k: v for k, v in vars(args).items() if k not in ("json",)}))
    class_names, lookup = object_classes(root)
    results: dict = {}
    with torch_threads(args.threads):
        model = None
        if "msrc" in args.sections:
            splits = [Split(root, split, limit, lookup) for split, limit in
                      (("train", args.train_limit), ("val", args.val_limit),
                       ("test", args.test_limit))]
            print(f"MSRC-v2: {' / '.join(str(len(s.names)) for s in splits)} train / val / "
                  f"test photos, {len(class_names)} classes (stuff = background)")
            results["msrc"] = {}
            for backbone in args.backbones:
                if backbone == "efficientnet-lite0":
                    try:  # its packages are the [imagenet] extra, imported on construction
                        EfficientNetLite0Encoder(pretrained=False)
                    except ImportError as error:
                        print(f"  skipping {backbone}: {error}")
                        continue
                results["msrc"][backbone], trained = benchmark_msrc(backbone, splits,
                                                                    class_names, args)
                model = model or trained
        if "grabcut" in args.sections:
            if model is None:
                print("  grabcut: no MSRC-trained full DFR in this run (rows or sections "
                      "without it): DFR fine-tuned is left out")
            results["grabcut"] = benchmark_grabcut(model, args)
    print_tables(results)
    if args.json:
        write_json(args.json, {"machine": info, "settings": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
