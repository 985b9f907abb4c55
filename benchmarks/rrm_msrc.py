"""Segmenters from image-level tags on MSRC-v2 (issue 14): RRM one step next to CAM + CRF,
per-image A2GNN pseudo labels, the two-step path and the fully supervised upper bound.

Protocol.  MSRC-v2's fixed split (train 354 / val 59 / test 178 photos), the seven
stuff classes (building, grass, tree, sky, mountain, water, road) merged into one
background 0 and the 16 object classes renumbered 1..16; void (255) is ignored.  The
tags of a photo are the object classes of its ground truth.  Every trained row trains
on train (``--train-limit`` evenly spaced photos), is scored on val after every epoch,
and the epoch with the best val mIoU is the one reported on test: settings are chosen
on val only and test is scored once.  The score is the mIoU of one confusion matrix
pooled over the photos (:class:`graphseg.metrics.ConfusionMatrix`), over the classes
present in ground truth or prediction.

Rows, per backbone (``--backbones``; the same schedule for every trained row):

* ``CAM + CRF``: the CAM classifier that ``graphseg propagate --tags`` trains (the
  frozen ESPNetv2 encoder's features, a 1x1 layer on train tags, whatever the
  backbone of the row), its multi-scale CAMs on a
  *test* photo with that photo's tags, then the dense CRF's labels (Eq. 2.5);
* ``A2GNN per image``: ``propagate(image, tags, "tags")`` on each test photo with its
  tags and that classifier: the per-image pseudo labels, no model;
* ``two-step``: the A2GNN pseudo labels of the train photos (as above) train the
  segmentation network (:class:`~graphseg.segmenters.TwoStepSegmenter`);
* ``RRM (plain attention)``, ``RRM (R-FAM)`` and R-FAM with each loss removed
  (``- CE``, ``- energy``, ``- BCD``): :class:`~graphseg.segmenters.RRMSegmenter`,
  train tags only;
* ``full supervision``: the segmentation network on the ground-truth masks.

RRM, two-step and full supervision predict a test photo from the photo alone (no
tags); CAM + CRF and per-image A2GNN are given its tags.  Seconds per training epoch
and per predicted photo are measured in the same run.  The ``espnetv2`` backbone was
pretrained on PASCAL VOC segmentation (MSRC's objects overlap VOC's): its rows are
not the ImageNet-only setting of the literature; ``efficientnet-lite0`` (the
``[imagenet]`` extra) is ImageNet-classification pretrained.

    python benchmarks/rrm_msrc.py --json /tmp/bench_rrm/out.json
    python benchmarks/rrm_msrc.py --rows rrm-rfam full --backbones espnetv2 --epochs 8
    python benchmarks/rrm_msrc.py --quick
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np

from graphseg.data import kit_root
from graphseg.data.torch_dataset import SegmentationSet
from graphseg.nn.backbones import EfficientNetLite0Encoder
from graphseg.nn.models import espnetv2_cam_classifier
from graphseg.propagation import A2GNNConfig, propagate
from graphseg.seeds import cam_seeds
from graphseg.segmenters import RRMSegmenter, TwoStepSegmenter
from graphseg.training import train_cam_classifier

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

ROWS = {
    "cam-crf": "CAM + CRF (test tags)",
    "a2gnn": "A2GNN per image (test tags)",
    "two-step": "two-step (A2GNN pseudo labels)",
    "rrm-plain": "RRM (plain attention)",
    "rrm-rfam": "RRM (R-FAM)",
    "rrm-no-ce": "RRM (R-FAM) - CE",
    "rrm-no-energy": "RRM (R-FAM) - energy",
    "rrm-no-bcd": "RRM (R-FAM) - BCD",
    "full": "full supervision (upper bound)",
}
RRM_ROWS = {"rrm-plain": {"attention": "plain"}, "rrm-rfam": {},
            "rrm-no-ce": {"ce_weight": 0.0}, "rrm-no-energy": {"energy_weight": 0.0},
            "rrm-no-bcd": {"bcd_weight": 0.0}}
QUICK = {"train_limit": 10, "val_limit": 4, "test_limit": 4, "epochs": 2, "crop": 96,
         "gnn_epochs": 5, "cam_epochs": 1, "rows": ["cam-crf", "rrm-rfam", "full"],
         "backbones": ["espnetv2"]}
FULL = {"train_limit": None, "val_limit": None, "test_limit": None, "epochs": 16,
        "crop": 224, "gnn_epochs": 50, "cam_epochs": 20, "rows": list(ROWS),
        "backbones": ["espnetv2", "efficientnet-lite0"]}


def cam_classifier(train: Split, num_classes: int, args):
    model = espnetv2_cam_classifier(list(range(1, num_classes)), seed=args.seed)
    train_cam_classifier(model, train.images, train.tags, epochs=args.cam_epochs,
                         size=args.crop, seed=args.seed, progress=False)
    return model


def pseudo_labels(split: Split, cam, num_classes: int, args) -> List[np.ndarray]:
    config = A2GNNConfig.release("tags", stage1_epochs=args.gnn_epochs,
                                 stage2_epochs=args.gnn_epochs, hidden_channels=64)
    out = []
    for image, tags in zip(split.images, split.tags):
        out.append(propagate(image, tags, "tags", num_classes, cam=cam, config=config,
                             seed=args.seed).labels)
    return out


def benchmark_backbone(backbone: str, splits, class_names, args) -> Dict[str, dict]:
    train, val, test = splits
    num_classes = len(class_names)
    results: Dict[str, dict] = {}
    common = {"backbone": backbone, "epochs": args.epochs, "crop": args.crop,
              "batch_size": args.batch_size, "head_lr": args.head_lr, "seed": args.seed}
    cam = None
    if {"cam-crf", "a2gnn", "two-step"} & set(args.rows):
        start = time.perf_counter()
        cam = cam_classifier(train, num_classes, args)
        print(f"  [{backbone}] CAM classifier: {time.perf_counter() - start:.0f} s")
    if "cam-crf" in args.rows:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="tag .* has no CAM response")
            predictions = [cam_seeds(cam, im, tags, method="crf").labels
                           for im, tags in zip(test.images, test.tags)]
        results["cam-crf"] = {"test": score(predictions, test, num_classes),
                              "s_per_image": (time.perf_counter() - start) / len(test.images)}
    if "a2gnn" in args.rows:
        start = time.perf_counter()
        predictions = pseudo_labels(test, cam, num_classes, args)
        results["a2gnn"] = {"test": score(predictions, test, num_classes),
                            "s_per_image": (time.perf_counter() - start) / len(test.images)}
    if "two-step" in args.rows:
        maps = pseudo_labels(train, cam, num_classes, args)
        data = train.label_set(Path(args.workdir) / f"pseudo_{backbone}_n{len(train.names)}",
                               maps)
        results["two-step"] = train_row(TwoStepSegmenter(class_names, **common), data, val,
                                        test, num_classes)
        results["two-step"]["pseudo_label_train_miou"] = score(maps, train, num_classes)
    for row, settings in RRM_ROWS.items():
        if row in args.rows:
            data = SegmentationSet(train.paths, tags=train.tags)
            segmenter = RRMSegmenter(class_names, **common, **settings,
                                     warmup_epochs=args.warmup_epochs)
            results[row] = train_row(segmenter, data, val, test, num_classes)
    if "full" in args.rows:
        data = train.label_set(Path(args.workdir) / f"gt_n{len(train.names)}", train.labels)
        results["full"] = train_row(TwoStepSegmenter(class_names, **common), data, val, test,
                                    num_classes)
    for row, result in results.items():
        print(f"  [{backbone}] {ROWS[row]}: test mIoU {100 * result['test']:.1f}")
    return results


def print_table(results: Dict[str, Dict[str, dict]]) -> None:
    print("\n| row | backbone | val mIoU (epoch) | test mIoU | % of full | s / epoch | "
          "s / image |")
    print("|---|---|---|---|---|---|---|")
    for backbone, rows in results.items():
        full = rows.get("full", {}).get("test")
        for row, r in rows.items():
            val = f"{100 * r['val']:.1f} ({r['epoch']})" if "val" in r else "-"
            share = f"{100 * r['test'] / full:.0f}" if full else "-"
            epoch = f"{r['s_per_epoch']:.1f}" if "s_per_epoch" in r else "-"
            print(f"| {ROWS[row]} | {backbone} | {val} | {100 * r['test']:.1f} | {share} | "
                  f"{epoch} | {r['s_per_image']:.2f} |")


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, quick="10 train / 4 val / 4 test photos, 2 epochs at "
                                             "96 px, CAM + CRF, RRM (R-FAM) and full "
                                             "supervision with espnetv2 (under 2 minutes)",
                              threads=2)
    parser.add_argument("--data", default=str(kit_root() / "msrc_v2"), help="MSRC-v2 folder")
    parser.add_argument("--workdir", default="/tmp/bench_rrm",
                        help="pseudo-label and mask PNGs for the trained rows")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), help="rows to run")
    parser.add_argument("--backbones", nargs="+",
                        choices=["espnetv2", "efficientnet-lite0", "small-cnn"])
    for flag in ("train-limit", "val-limit", "test-limit", "epochs", "crop", "gnn-epochs",
                 "cam-epochs"):
        parser.add_argument(f"--{flag}", type=int)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup-epochs", type=int, default=6,
                        help="RRM: epochs of the classification branch alone (default 6)")
    parser.add_argument("--head-lr", type=float, default=100.0,
                        help="the heads' learning-rate factor over the backbone's 1e-4 "
                             "(default 100: RRM's classifier must leave the 'nothing "
                             "present' plateau within a CPU budget)")
    args = parser.parse_args(argv)
    apply_defaults(args, QUICK, FULL)
    if args.quick:
        args.warmup_epochs = 1
    root = Path(args.data)
    if missing(root):
        return 1
    info = machine(args.threads)
    print(machine_line(info))
    print(settings_line({k: v for k, v in vars(args).items() if k not in ("json",)}))
    class_names, lookup = object_classes(root)
    with torch_threads(args.threads):
        splits = [Split(root, split, limit, lookup) for split, limit in
                  (("train", args.train_limit), ("val", args.val_limit),
                   ("test", args.test_limit))]
        print(f"MSRC-v2: {' / '.join(str(len(s.names)) for s in splits)} train / val / test "
              f"photos, {len(class_names)} classes (stuff = background)")
        results = {}
        for backbone in args.backbones:
            if backbone == "efficientnet-lite0":
                try:  # its packages are the [imagenet] extra, imported on construction
                    EfficientNetLite0Encoder(pretrained=False)
                except ImportError as error:
                    print(f"  skipping {backbone}: {error}")
                    continue
            results[backbone] = benchmark_backbone(backbone, splits, class_names, args)
    print_table(results)
    if args.json:
        write_json(args.json, {"machine": info, "settings": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
