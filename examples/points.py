"""Points -> dense labels on MSRC-v2 val: one click per region, synthesised from the
ground truth (graphseg.data.points_from_labels); the seven stuff classes are background.

    python examples/points.py [--limit 6] [--epochs 50 50]
"""
import argparse
import sys

import numpy as np
import torch

from graphseg.data import MSRCDataset, background_lookup, kit_root, points_from_labels
from graphseg.metrics import ConfusionMatrix
from graphseg.propagation import A2GNNConfig, propagate

parser = argparse.ArgumentParser(description="MSRC-v2 val from synthesised points")
parser.add_argument("--limit", type=int, default=6, help="N evenly spaced val images (6)")
parser.add_argument("--epochs", type=int, nargs=2, default=(50, 50), metavar=("S1", "S2"))
parser.add_argument("--hidden", type=int, default=64, help="A2GNN hidden size (64)")
parser.add_argument("--features", choices=("espnetv2", "colour"), default="espnetv2")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.set_num_threads(1)

root = kit_root() / "msrc_v2"
if not root.is_dir():
    sys.exit(f"MSRC-v2 data kit not found at {root} (set GRAPHSEG_DATA)")
val = MSRCDataset(root, "val")
stuff = background_lookup(val.background_classes)  # building, grass, tree, sky, ... -> 0
config = A2GNNConfig.release("points", hidden_channels=args.hidden,
                             stage1_epochs=args.epochs[0], stage2_epochs=args.epochs[1])

total = ConfusionMatrix(len(val.class_names))
picks = np.linspace(0, len(val) - 1, min(args.limit, len(val))).round().astype(int)
for i in picks:  # val is sorted by class: spread the picks
    sample = val.load(val.names[i])
    gt = stuff[sample.label]  # 255 = void, ignored
    points = stuff[points_from_labels(sample.label, seed=args.seed + int(i))]
    out = propagate(sample.image, points, "points", num_classes=len(val.class_names),
                    config=config, features=args.features, seed=args.seed)
    total.update(out.labels, gt)
    single = ConfusionMatrix(len(val.class_names)).update(out.labels, gt).miou()
    print(f"{sample.name:<9} IoU {single:.3f}  ({int((points != 255).sum())} clicked pixels, "
          f"{out.seconds['total']:.1f} s)")
print(f"mIoU (pooled over {len(picks)} images, stuff = background): {total.miou():.3f}")
