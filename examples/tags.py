"""Image-level tags -> dense labels on MSRC-v2 val: a CAM classifier on the bundled
pretrained ESPNetv2 encoder, its 1x1 layer trained on the MSRC-v2 train tags (cached in
--workdir), gives the seeds; the seven stuff classes are
background.

    python examples/tags.py [--limit 6] [--cam-epochs 10] [--epochs 50 50]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from graphseg.data import MSRCDataset, background_lookup, kit_root
from graphseg.metrics import ConfusionMatrix
from graphseg.nn.models import espnetv2_cam_classifier, load_classifier, save_classifier
from graphseg.propagation import A2GNNConfig, propagate
from graphseg.training import train_cam_classifier

parser = argparse.ArgumentParser(description="MSRC-v2 val from image-level tags")
parser.add_argument("--limit", type=int, default=6, help="N evenly spaced val images (6)")
parser.add_argument("--epochs", type=int, nargs=2, default=(50, 50), metavar=("S1", "S2"))
parser.add_argument("--hidden", type=int, default=64, help="A2GNN hidden size (64)")
parser.add_argument("--cam-epochs", type=int, default=10, help="CAM training epochs (10)")
parser.add_argument("--cam-images", type=int, default=354, help="train images for the CAM")
parser.add_argument("--workdir", default="/tmp/graphseg_examples", help="CAM cache folder")
args = parser.parse_args()
torch.set_num_threads(1)

root = kit_root() / "msrc_v2"
if not root.is_dir():
    sys.exit(f"MSRC-v2 data kit not found at {root} (set GRAPHSEG_DATA)")
val, train = MSRCDataset(root, "val"), MSRCDataset(root, "train")
objects = [c for c in range(len(val.class_names)) if c not in val.background_classes]
path = Path(args.workdir) / f"espnetv2_cam_msrc_{args.cam_images}_{args.cam_epochs}.pt"
if path.is_file():
    cam = load_classifier(path)
else:  # tags of the train images: the object classes present (Sample.tags)
    samples = [train.load(n) for n in train.names[: args.cam_images]]
    cam = espnetv2_cam_classifier(objects)  # frozen pretrained encoder, 1x1 classifier trains
    train_cam_classifier(cam, [s.image for s in samples], [s.tags for s in samples],
                         epochs=args.cam_epochs, size=320, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_classifier(cam, path)
stuff = background_lookup(val.background_classes)  # building, grass, tree, sky, ... -> 0
config = A2GNNConfig.release("tags", hidden_channels=args.hidden,
                             stage1_epochs=args.epochs[0], stage2_epochs=args.epochs[1])

total = ConfusionMatrix(len(val.class_names))
picks = np.linspace(0, len(val) - 1, min(args.limit, len(val))).round().astype(int)
for i in picks:
    sample = val.load(val.names[i])
    gt = stuff[sample.label]
    out = propagate(sample.image, sample.tags, "tags", num_classes=len(val.class_names), cam=cam,
                    config=config)
    total.update(out.labels, gt)
    single = ConfusionMatrix(len(val.class_names)).update(out.labels, gt).miou()
    tags = ", ".join(val.class_names[t] for t in sample.tags)
    print(f"{sample.name:<9} IoU {single:.3f}  tags: {tags}  ({out.seconds['total']:.1f} s)")
print(f"mIoU (pooled over {len(picks)} images, stuff = background): {total.miou():.3f}")
