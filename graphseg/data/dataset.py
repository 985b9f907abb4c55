"""The base of every image reader: a lazy, indexable list of :class:`Sample`.

Samples are read on access, so a dataset of any size costs only its file list.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from graphseg.data.sample import Sample
from graphseg.utils.io import read_image, read_label_map

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def lookup(folder: Path, stem: str, suffixes: Sequence[str]) -> Optional[Path]:
    """``folder/stem.<suffix>`` for the first of ``suffixes`` that exists, the suffix's
    case ignored (cameras write ``a.JPG``, some tools ``b.PNG``); ``None`` if none does.

    The stem is matched exactly.  The exact spelling is tried first; other cases come
    from a listing of the folder, kept while the folder is unchanged."""
    folder = Path(folder)
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    entries = _entries(folder)
    for suffix in suffixes:
        name = entries.get((stem, suffix.lower()))
        if name is not None:
            return folder / name
    return None


def find_file(folder: Path, stem: str, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> Path:
    """``folder/stem.<suffix>`` for the first suffix that exists (in any case, see
    :func:`lookup`), or raise naming it."""
    path = lookup(folder, stem, suffixes)
    if path is None:
        raise FileNotFoundError(f"{Path(folder) / stem}{{{','.join(suffixes)}}}: no such file")
    return path


# folder -> (its mtime, when it was listed, {(stem, lower-case suffix): file name})
_LISTINGS: Dict[str, Tuple[int, int, Dict[Tuple[str, str], str]]] = {}
# a listing taken within this many ns of the folder's last change may miss a file added
# in the same timestamp tick (the "racy" case), so it is not reused
_SETTLED_NS = 2_000_000_000


def _entries(folder: Path) -> Dict[Tuple[str, str], str]:
    """The files of ``folder`` by ``(stem, lower-case suffix)``; empty if it is no folder.
    One lookup per image of a large folder would otherwise list it once per image."""
    try:
        mtime = folder.stat().st_mtime_ns
    except OSError:
        return {}
    key = str(folder.absolute())
    cached = _LISTINGS.get(key)
    if cached is not None and cached[0] == mtime and cached[1] - mtime > _SETTLED_NS:
        return cached[2]
    listed = time.time_ns()
    entries: Dict[Tuple[str, str], str] = {}
    try:
        with os.scandir(folder) as scan:
            for entry in scan:
                if entry.is_file():
                    path = Path(entry.name)
                    entries.setdefault((path.stem, path.suffix.lower()), entry.name)
    except OSError:
        return {}
    if len(_LISTINGS) > 64:
        _LISTINGS.clear()
    _LISTINGS[key] = (mtime, listed, entries)
    return entries


def read_split(path: Path) -> List[str]:
    """Image stems listed one per line in a split file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such split file")
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def stems(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> List[str]:
    """Sorted stems of the files in ``folder`` with one of ``suffixes``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    suffixes = {s.lower() for s in suffixes}
    return sorted(p.stem for p in folder.iterdir() if p.suffix.lower() in suffixes)


def read_pair(image_path: Path,
              label_path: Optional[Path]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read an image and its label map and check that their sizes agree."""
    image = read_image(image_path)
    if label_path is None:
        return image, None
    label = read_label_map(label_path)
    if label.shape != image.shape[:2]:
        raise ValueError(f"{label_path}: label map is {label.shape[1]}x{label.shape[0]} but "
                         f"{image_path.name} is {image.shape[1]}x{image.shape[0]}")
    return image, label


class ImageDataset(Sequence[Sample]):
    """A list of image stems read into :class:`Sample` on access.

    Attributes:
        root (pathlib.Path): the dataset folder.
        names (list of str): image stems in order.
        class_names (tuple of str): class names in index order (``classes`` in 0.1,
            still readable for one release with a ``DeprecationWarning``).
        background_classes (tuple of int): class indices that play background (for
            boxes, points, tags; ``background`` in 0.1, still readable for one release
            with a ``DeprecationWarning``).
    """

    class_names: Tuple[str, ...] = ()
    background_classes: Tuple[int, ...] = (0,)

    @property
    def classes(self) -> Tuple[str, ...]:
        warnings.warn("ImageDataset.classes is now class_names (ids are classes, names are "
                      "class_names); the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return self.class_names

    @property
    def background(self) -> Tuple[int, ...]:
        warnings.warn("ImageDataset.background is now background_classes (background is "
                      "the one background id where a function takes one); the old name goes "
                      "in the next release", DeprecationWarning, stacklevel=2)
        return self.background_classes

    def __init__(self, root, names: Sequence[str]):
        self.root = Path(root)
        self.names = list(names)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index) -> Sample:
        if isinstance(index, slice):
            raise TypeError("index a dataset with an int; use .names for slicing")
        return self.load(self.names[index])

    def __iter__(self) -> Iterator[Sample]:
        return (self.load(name) for name in self.names)

    def load(self, name: str) -> Sample:
        """Read the sample with stem ``name``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, {len(self)} images)"
