"""What the segmenter benchmarks on MSRC-v2 share (``rrm_msrc.py``, ``dfr_msrc.py``).

MSRC-v2's fixed split, the seven stuff classes merged into background 0 and the 16
object classes renumbered 1..16 (:func:`object_classes`); :class:`Split` holds the
photos of one split with their renumbered ground truth, tags and synthesised
scribbles; :func:`train_row` fits a segmenter, chooses its epoch on val and scores
test once; :func:`score` is the mIoU of one confusion matrix pooled over the photos.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from graphseg.data import MSRCDataset
from graphseg.data.classes import MSRC_STUFF
from graphseg.data.torch_dataset import SegmentationSet
from graphseg.data.weak_labels import scribbles_from_labels
from graphseg.metrics import ConfusionMatrix
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import write_png


class Split:
    """Photos, renumbered label maps and tags of one MSRC-v2 split (``limit`` evenly
    spaced photos when given)."""

    def __init__(self, root: Path, split: str, limit, lookup: np.ndarray):
        dataset = MSRCDataset(root, split)
        names = dataset.names
        if limit is not None and limit < len(names):
            names = [names[i] for i in np.linspace(0, len(names) - 1, limit).round().astype(int)]
        self.names = names
        self.lookup = lookup
        self.paths = [root / "images" / f"{n}.jpg" for n in names]
        self.images, self.labels, self.tags = [], [], []
        self._raw = []
        for name in names:
            sample = dataset.load(name)
            label = lookup[sample.label]
            self.images.append(sample.image)
            self.labels.append(label)
            self._raw.append((sample.label, sample.instances))
            self.tags.append(tuple(int(c) for c in np.unique(label) if c not in (0, IGNORE)))

    def scribbles(self, length_ratio: float = 1.0, seed: int = 0) -> List[np.ndarray]:
        """Scribbles as ``graphseg weak-labels --kind scribbles --length-ratio R`` draws
        them (:func:`~graphseg.data.scribbles_from_labels` on the 23-class ground truth,
        one stroke per region, stuff regions included; seed ``seed + index``), then
        renumbered: the stuff strokes become background strokes."""
        return [self.lookup[scribbles_from_labels(label, instances, length_ratio,
                                                  seed=seed + i)]
                for i, (label, instances) in enumerate(self._raw)]

    def label_set(self, folder: Path, maps: Sequence[np.ndarray]) -> SegmentationSet:
        """A training set of these photos with ``maps`` (written to ``folder``)."""
        for name, label in zip(self.names, maps):
            write_png(folder / f"{name}.png", label)
        return SegmentationSet(self.paths, labels=[folder / f"{n}.png" for n in self.names])


def object_classes(root: Path) -> Tuple[Tuple[str, ...], np.ndarray]:
    """Class names (background first, then the 16 objects) and the 256-entry table from
    MSRC-v2 ids to them."""
    names = MSRCDataset(root, "val").class_names
    lookup = np.full(256, IGNORE, dtype=np.uint8)
    objects = [c for c, n in enumerate(names) if n not in MSRC_STUFF]
    lookup[[c for c, n in enumerate(names) if n in MSRC_STUFF]] = 0
    lookup[objects] = np.arange(1, len(objects) + 1)
    return ("background", *(names[c] for c in objects)), lookup


def score(predictions: Sequence[np.ndarray], split: Split, num_classes: int) -> float:
    confusion = ConfusionMatrix(num_classes)
    for pred, label in zip(predictions, split.labels):
        confusion.update(pred, label)
    return float(confusion.miou())
def train_row(segmenter, data: SegmentationSet, val: Split, test: Split,
              num_classes: int) -> Dict[str, float]:
    """Fit, choose the epoch on val, score test once with it."""
    best = {"val": -1.0}
    epoch_seconds: List[float] = []
    started = [time.perf_counter()]

    def on_epoch_end(epoch: int, loss: float) -> None:
        epoch_seconds.append(time.perf_counter() - started[0])
        miou = score([segmenter.predict(im)[0] for im in val.images], val, num_classes)
        if miou > best["val"]:
            best.update(val=miou, epoch=epoch + 1,
                        state={k: v.clone() for k, v in segmenter.net.state_dict().items()})
        segmenter.net.train()
        started[0] = time.perf_counter()

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="tag .* has no CAM response")
        segmenter.fit(data, progress=False, on_epoch_end=on_epoch_end)
    segmenter.net.load_state_dict(best.pop("state"))
    start = time.perf_counter()
    predictions = [segmenter.predict(im)[0] for im in test.images]
    per_image = (time.perf_counter() - start) / len(test.images)
    return {**best, "test": score(predictions, test, num_classes),
            "s_per_epoch": float(np.mean(epoch_seconds)), "s_per_image": per_image}


