"""Photos with their weak labels as training tensors, with the thesis' augmentation.

:class:`SegmentationSet` is what the dataset-level segmenters
(:mod:`graphseg.segmenters`) train on: for every photo a label map (pseudo labels,
scribbles, points, seeds from boxes, or full masks; 255 = unlabelled) and/or its
image-level tags.  :meth:`SegmentationSet.sample` applies the augmentation of
thesis section 2.3.1 (as DeepLab does): a random rescale by a factor in
``scale`` (0.7-1.3), a horizontal flip, ImageNet normalisation, and a random
``crop`` x ``crop`` window, the photo padded first where it is smaller (padding
is ignored: label 255, ``valid`` false).

The draws of sample ``i`` in epoch ``e`` come from a generator seeded with
``(seed, e, i)``, so a batch is a function of the epoch and its items: what the
training engine (:func:`graphseg.training.fit`) needs for an exact resume.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.data.dataset import find_file, stems
from graphseg.data.transforms import normalize
from graphseg.utils.checks import check_positive_int
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import read_image, read_label_map

__all__ = ["SegmentationSet", "collate", "multi_hot"]


class SegmentationSet(torch.utils.data.Dataset):
    """Photos, label maps and tags, read on access (and kept when ``cache``).

    Args:
        images (sequence of path): the photos.
        labels (sequence of path, optional): one ``(H, W)`` label map per photo,
            255 = unlabelled.  (default: ``None``, tags only)
        tags (sequence of sequence of int, optional): the class ids present in
            every photo. (default: ``None``)
        names (sequence of str, optional): the photos' names, for messages.
            (default: the file stems)
        lookup (numpy.ndarray, optional): a 256-entry uint8 table applied to every
            label map (e.g. :func:`graphseg.data.background_lookup`, which merges
            classes into the background). (default: ``None``)
        binary (bool, optional): the label maps are 0/255 masks (the common export of
            annotation tools): above 127 is class 1, the rest class 0; ``lookup``
            is not applied. (default: ``False``)
        crop (int, optional): side of the training crops, pixels. (default: ``321``,
            the thesis')
        scale (tuple of float, optional): range of the random rescale factor.
            (default: ``(0.7, 1.3)``)
        flip (bool, optional): random horizontal flips. (default: ``True``)
        seed (int, optional): seeds the draws (see the module notes). (default: ``0``)
        cache (bool, optional): keep the decoded photos and maps in memory.
            (default: ``True``)

    Example:
        >>> import numpy as np
        >>> from graphseg.data.torch_dataset import SegmentationSet
        >>> from graphseg.data import sample_root
        >>> root = sample_root() / "grabcut"
        >>> data = SegmentationSet.from_folders(root / "images", tags={"memorial": (1,)},
        ...                                     crop=64)
        >>> item = data.sample(0, epoch=0)
        >>> item["image"].shape, item["rgb"].shape, item["label"].shape, item["tags"]
        (torch.Size([3, 64, 64]), torch.Size([64, 64, 3]), torch.Size([64, 64]), (1,))
    """

    def __init__(self, images: Sequence, *, labels: Optional[Sequence] = None,
                 tags: Optional[Sequence[Sequence[int]]] = None,
                 names: Optional[Sequence[str]] = None, lookup: Optional[np.ndarray] = None,
                 binary: bool = False, crop: int = 321,
                 scale: Tuple[float, float] = (0.7, 1.3), flip: bool = True, seed: int = 0,
                 cache: bool = True):
        self.images = [Path(p) for p in images]
        if not self.images:
            raise ValueError("images is empty: a training set needs at least one photo")
        for what, values in (("labels", labels), ("tags", tags), ("names", names)):
            if values is not None and len(values) != len(self.images):
                raise ValueError(f"{what} has {len(values)} entries for {len(self.images)} "
                                 "images")
        if labels is None and tags is None:
            raise ValueError("give labels, tags or both: a photo alone has no supervision")
        self.labels = None if labels is None else [Path(p) for p in labels]
        self.tags = None if tags is None else [tuple(int(c) for c in t) for t in tags]
        self.names = list(names) if names is not None else [p.stem for p in self.images]
        if lookup is not None and (lookup.shape != (256,) or lookup.dtype != np.uint8):
            raise ValueError(f"lookup must be a (256,) uint8 table, got {lookup.dtype} "
                             f"{lookup.shape}")
        self.lookup, self.binary = lookup, bool(binary)
        check_positive_int(crop, "crop")
        low, high = (float(s) for s in scale)
        if not 0 < low <= high:
            raise ValueError(f"scale must be a range 0 < low <= high, got {scale}")
        self.crop, self.scale, self.flip, self.seed = crop, (low, high), bool(flip), int(seed)
        self.cache: Optional[Dict[int, tuple]] = {} if cache else None

    @classmethod
    def from_folders(cls, images, *, labels=None, tags: Optional[Dict[str, Sequence[int]]] = None,
                     **options) -> "SegmentationSet":
        """The photos of folder ``images`` with ``labels/STEM.png`` and/or
        ``tags[STEM]``.  With tags only, photos without tags are left out; with a
        labels folder, every photo must have its map (a missing one is an error
        naming it)."""
        images = Path(images)
        names = stems(images)
        if tags is not None and labels is None:
            names = [n for n in names if n in tags]
        if not names:
            raise ValueError(f"{images}: no images" + (" with tags" if tags is not None else ""))
        label_paths = None
        if labels is not None:
            label_paths = [find_file(Path(labels), n, (".png",)) for n in names]
        return cls([find_file(images, n) for n in names], labels=label_paths,
                   tags=None if tags is None else [tuple(tags.get(n, ())) for n in names],
                   names=names, **options)

    @classmethod
    def from_dataset(cls, dataset, *, supervision: str = "masks",
                     lookup: Optional[np.ndarray] = None, seed: int = 0,
                     **options) -> "SegmentationSet":
        """Every sample of a graphseg image reader (:class:`~graphseg.data.MSRCDataset`,
        :class:`~graphseg.data.VOCDataset`, :class:`~graphseg.data.GrabCutDataset`,
        :class:`~graphseg.data.MaskFolderDataset`) with the weak labels of one kind
        attached, read once and held in memory.

        ``supervision``: ``"masks"`` (the ground truth: the fully supervised upper
        bound), ``"tags"`` (``Sample.tags``), ``"boxes"`` (``Sample.boxes`` filled into
        a seed map, outside every box background 0, smaller boxes on top), or
        ``"points"`` / ``"scribbles"`` synthesised from the ground truth
        (:func:`~graphseg.data.points_from_labels`,
        :func:`~graphseg.data.scribbles_from_labels`, seed ``seed + index``).
        ``lookup`` maps the classes of every label map (and the tags) first."""
        from graphseg.data.weak_labels import (
            boxes_to_seeds,
            points_from_labels,
            scribbles_from_labels,
        )

        kinds = ("masks", "tags", "boxes", "points", "scribbles")
        if supervision not in kinds:
            raise ValueError(f"supervision must be one of {', '.join(kinds)}, got "
                             f"{supervision!r}")
        images, labels, tags = [], [], []
        for index in range(len(dataset)):
            sample = dataset[index]
            label = sample.label
            if supervision != "tags" and supervision != "boxes" and label is None:
                raise ValueError(f"{sample.name}: no ground truth to give {supervision}")
            if supervision == "boxes":
                label = boxes_to_seeds(sample.boxes, sample.shape)
            elif supervision == "points":
                label = points_from_labels(label, sample.instances, seed=seed + index)
            elif supervision == "scribbles":
                label = scribbles_from_labels(label, sample.instances, seed=seed + index)
            if lookup is not None and label is not None:
                label = lookup[label]
            present = sample.tags if lookup is None else tuple(sorted(
                {int(lookup[t]) for t in sample.tags} - {0, IGNORE}))
            images.append(sample.image)
            labels.append(label)
            tags.append(present)
        names = list(dataset.names)
        # the samples are in memory: the paths only name them in messages
        paths = [Path(dataset.root) / name for name in names]
        out = cls(paths, labels=None if supervision == "tags" else paths,
                  tags=tags if supervision == "tags" else None, names=names, seed=seed,
                  **{**options, "cache": True})
        out.cache = {i: (image, None if supervision == "tags" else label)
                     for i, (image, label) in enumerate(zip(images, labels))}
        return out

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Photo ``index`` as ``(H, W, 3)`` uint8 and its label map (or ``None``)."""
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        image = read_image(self.images[index])
        label = None
        if self.labels is not None:
            label = read_label_map(self.labels[index])
            if label.shape != image.shape[:2]:
                raise ValueError(f"{self.labels[index]}: label map is {label.shape[1]}x"
                                 f"{label.shape[0]} but {self.images[index].name} is "
                                 f"{image.shape[1]}x{image.shape[0]}")
            if self.binary:
                label = (label > 127).astype(np.uint8)
            elif self.lookup is not None:
                label = self.lookup[label]
        if self.cache is not None:
            self.cache[index] = (image, label)
        return image, label

    def sample(self, index: int, epoch: int) -> dict:
        """Augmented sample ``index`` of epoch ``epoch``: ``image`` (3, crop, crop)
        normalised float32, ``rgb`` (crop, crop, 3) uint8 (the same pixels, for
        colour kernels and the CRF), ``label`` (crop, crop) int64 (255 where
        unlabelled or padded), ``valid`` (crop, crop) bool (not padding),
        ``tags`` (tuple of int), ``index``."""
        image, label = self.read(index)
        rng = np.random.default_rng([self.seed, epoch, index])
        factor = rng.uniform(*self.scale)
        flip = self.flip and rng.random() < 0.5
        rgb = torch.tensor(image).permute(2, 0, 1).float()
        height, width = image.shape[:2]
        size = (max(1, round(height * factor)), max(1, round(width * factor)))
        rgb = F.interpolate(rgb[None], size=size, mode="bilinear", align_corners=False)[0]
        target = torch.full(size, IGNORE, dtype=torch.int64)
        if label is not None:
            target = F.interpolate(torch.tensor(label)[None, None].float(), size=size,
                                   mode="nearest")[0, 0].long()
        if flip:
            rgb, target = rgb.flip(-1), target.flip(-1)
        # pad to the crop: the padding is ignored by every loss
        pad_h, pad_w = max(0, self.crop - size[0]), max(0, self.crop - size[1])
        valid = torch.ones(size, dtype=torch.bool)
        if pad_h or pad_w:
            rgb = F.pad(rgb, (0, pad_w, 0, pad_h))
            target = F.pad(target, (0, pad_w, 0, pad_h), value=IGNORE)
            valid = F.pad(valid, (0, pad_w, 0, pad_h), value=False)
        top = int(rng.integers(0, rgb.shape[1] - self.crop + 1))
        left = int(rng.integers(0, rgb.shape[2] - self.crop + 1))
        window = (slice(top, top + self.crop), slice(left, left + self.crop))
        rgb = rgb[:, window[0], window[1]].round().clamp(0, 255)
        valid = valid[window]
        normalised = normalize(rgb / 255.0) * valid  # padding at the mean colour
        return {"image": normalised, "rgb": rgb.to(torch.uint8).permute(1, 2, 0).contiguous(),
                "label": target[window].contiguous(), "valid": valid.contiguous(),
                "tags": self.tags[index] if self.tags is not None else (), "index": index}

    def __getitem__(self, item) -> dict:
        """``data[i]`` is sample ``i`` of epoch 0, ``data[i, e]`` of epoch ``e``."""
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        return self.sample(int(index), int(epoch))

    def batch(self, indices: Sequence[int], epoch: int) -> dict:
        """:func:`collate` of the samples ``indices`` of epoch ``epoch``."""
        return collate([self.sample(int(i), epoch) for i in indices])


def collate(samples: List[dict]) -> dict:
    """Stack samples of :meth:`SegmentationSet.sample` into a batch (``tags`` and
    ``index`` stay lists)."""
    out = {key: torch.stack([s[key] for s in samples])
           for key in ("image", "rgb", "label", "valid")}
    out["tags"] = [s["tags"] for s in samples]
    out["index"] = [s["index"] for s in samples]
    return out


def multi_hot(tags: Sequence[Sequence[int]], classes: Sequence[int]) -> Tensor:
    """``(B, K)`` float targets: 1 where class ``classes[k]`` is among the tags
    (a tag outside ``classes`` is a ``ValueError``)."""
    column = {int(c): k for k, c in enumerate(classes)}
    out = torch.zeros(len(tags), len(classes))
    for row, present in enumerate(tags):
        for c in present:
            if int(c) not in column:
                raise ValueError(f"tag {c} is not one of the classes {tuple(column)}")
            out[row, column[int(c)]] = 1.0
    return out
