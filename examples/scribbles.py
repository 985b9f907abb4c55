"""Scribbles -> dense masks on GrabCut-13, from the first human scribble set.

    python examples/scribbles.py [--limit 4] [--annotator 1] [--epochs 50 50]
"""
import argparse
import sys

import numpy as np
import torch

from graphseg.data import GrabCutDataset, kit_root
from graphseg.metrics import object_iou
from graphseg.propagation import A2GNNConfig, propagate

parser = argparse.ArgumentParser(description="GrabCut-13 from human scribbles")
parser.add_argument("--limit", type=int, default=4, help="first N photos (4; all: 13)")
parser.add_argument("--annotator", type=int, choices=(1, 2), default=1)
parser.add_argument("--epochs", type=int, nargs=2, default=(50, 50), metavar=("S1", "S2"))
parser.add_argument("--hidden", type=int, default=64, help="A2GNN hidden size (64)")
parser.add_argument("--features", choices=("espnetv2", "colour"), default="espnetv2")
args = parser.parse_args()
torch.set_num_threads(1)

root = kit_root() / "grabcut"
if not root.is_dir():
    sys.exit(f"GrabCut data kit not found at {root} (set GRAPHSEG_DATA)")
dataset = GrabCutDataset(root)
config = A2GNNConfig.release("scribbles", hidden_channels=args.hidden,
                             stage1_epochs=args.epochs[0], stage2_epochs=args.epochs[1])

scores = []
for name in dataset.names[: args.limit]:
    sample = dataset.load(name)
    # (H, W) uint8: 0 background, 1 object, 255 unlabelled
    scribbles = dataset.scribbles(name, args.annotator)
    out = propagate(sample.image, scribbles, "scribbles", num_classes=2, config=config,
                    features=args.features)
    scores.append(object_iou(out.labels, sample.label))
    print(f"{name:<10} object IoU {scores[-1]:.3f}  "
          f"({100 * (scribbles != 255).mean():.1f}% scribbled, {out.seconds['total']:.1f} s)")
print(f"mIoU (mean object IoU over {len(scores)} photos): {np.mean(scores):.3f}")
