"""Boxes -> dense masks on GrabCut-13: one box per photo, graphseg's box pipeline.

    python examples/boxes.py [--limit 3] [--epochs 150 150] [--hidden 64]
"""
import argparse
import sys

import numpy as np
import torch

from graphseg.data import GrabCutDataset, kit_root
from graphseg.metrics import object_iou
from graphseg.propagation import A2GNNConfig, propagate

parser = argparse.ArgumentParser(description="GrabCut-13 from its boxes")
parser.add_argument("--limit", type=int, default=3, help="first N photos (3; all: 13)")
parser.add_argument("--epochs", type=int, nargs=2, default=(150, 150), metavar=("S1", "S2"))
parser.add_argument("--hidden", type=int, default=64, help="A2GNN hidden size (64)")
parser.add_argument("--features", choices=("espnetv2", "colour"), default="espnetv2")
args = parser.parse_args()
torch.set_num_threads(1)

root = kit_root() / "grabcut"
if not root.is_dir():
    sys.exit(f"GrabCut data kit not found at {root} (set GRAPHSEG_DATA)")
dataset = GrabCutDataset(root)
# the authors' release schedule for boxes, with a smaller model by default
config = A2GNNConfig.release("boxes", hidden_channels=args.hidden,
                             stage1_epochs=args.epochs[0], stage2_epochs=args.epochs[1])

scores = []
for name in dataset.names[: args.limit]:
    sample = dataset.load(name)  # image (H, W, 3), label 0/1, boxes [[1, x1, y1, x2, y2]]
    out = propagate(sample.image, sample.boxes, "boxes", num_classes=2, config=config,
                    features=args.features)
    scores.append(object_iou(out.labels, sample.label))
    print(f"{name:<10} object IoU {scores[-1]:.3f}  ({out.seconds['total']:.1f} s)")
print(f"mIoU (mean object IoU over {len(scores)} photos): {np.mean(scores):.3f}")
