"""Recognise a dataset folder's layout and open it with the matching reader."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from graphseg.data.dataset import ImageDataset
from graphseg.data.folder import MaskFolderDataset
from graphseg.data.grabcut import GrabCutDataset
from graphseg.data.msrc import MSRCDataset
from graphseg.data.voc import VOCDataset
from graphseg.utils.io import read_label_map

LAYOUTS = ("voc", "grabcut", "msrc", "folder")


def kit_root() -> Path:
    """The data kit: ``$GRAPHSEG_DATA`` when set, else ``../shared/data`` beside a source
    checkout (where tests and benchmarks expect it)."""
    default = Path(__file__).resolve().parents[3] / "shared" / "data"
    return Path(os.environ.get("GRAPHSEG_DATA", default))


def sample_root() -> Path:
    """The bundled sample (``grabcut/`` and ``msrc_v2/`` subsets of the data kit;
    see its ``PROVENANCE.md``)."""
    return Path(__file__).resolve().parent / "sample_data"


def detect_layout(root) -> str:
    """The layout of ``root``: ``"voc"``, ``"grabcut"``, ``"msrc"`` or ``"folder"``.

    VOC has ``JPEGImages/`` and ``SegmentationClass/``; GrabCut has ``images/``,
    ``masks/`` and ``boxes/``; MSRC-v2 has ``images/``, ``labels/`` and
    ``classes.txt``; a plain folder has ``images/`` and ``masks/``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    has = {p.name for p in root.iterdir()}
    if {"JPEGImages", "SegmentationClass"} <= has:
        return "voc"
    if {"images", "masks", "boxes"} <= has:
        return "grabcut"
    if {"images", "labels", "classes.txt"} <= has:
        return "msrc"
    if {"images", "masks"} <= has:
        return "folder"
    raise ValueError(f"{root}: not a known dataset layout; expected JPEGImages/ + "
                     "SegmentationClass/ (VOC), images/ + masks/ + boxes/ (GrabCut), "
                     "images/ + labels/ + classes.txt (MSRC-v2) or images/ + masks/")


def open_dataset(root, split: Optional[str] = None, layout: Optional[str] = None) -> ImageDataset:
    """Open a dataset folder with the reader for its layout.

    Args:
        root (str or os.PathLike): dataset folder.
        split (str, optional): split name for VOC and MSRC-v2 (``None`` = every
            labelled image); must be ``None`` for the other layouts.
            (default: ``None``)
        layout (str, optional): one of :data:`LAYOUTS`; detected when ``None``.
            (default: ``None``)

    Returns:
        ImageDataset: a lazy sequence of :class:`graphseg.data.Sample`.
    """
    layout = layout or detect_layout(root)
    if layout == "voc":
        return VOCDataset(root, split)
    if layout == "msrc":
        return MSRCDataset(root, split)
    if split is not None:
        raise ValueError(f"split={split!r} given, but the {layout} layout has no splits")
    if layout == "grabcut":
        return GrabCutDataset(root)
    if layout == "folder":
        return MaskFolderDataset(root)
    raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def is_binary_mask(label: np.ndarray) -> bool:
    """Whether a ground-truth map holds only 0 and 255, with some 255: an object mask
    (255 object, 0 background) rather than a class-index map (where 255 = ignore)."""
    values = np.unique(label)
    return bool(values[-1] == 255 and set(values.tolist()) <= {0, 255})


def binary_folder(folder: Path) -> bool:
    """Whether ``folder`` holds 0/255 object masks: every ``STEM.png`` in it has only
    the values 0 and 255, and some 255.  Decided per folder, not per pixel or file,
    because 255 is also the ignore value of class-index maps: one file with any other
    value makes the folder class-index maps.  Unreadable files are left to the
    scoring, which reports them."""
    seen = False
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png"):
        try:
            values = set(np.unique(read_label_map(path)).tolist())
        except (OSError, ValueError):
            continue
        if not values <= {0, 255}:
            return False
        seen = seen or 255 in values
    return seen


def resolve_gt(root: Path) -> Tuple[Path, bool, Optional[Path]]:
    """``(label folder, binary masks?, classes file or None)`` for a ``--gt`` argument.

    Binary (read as 0/1, object vs background): GrabCut's ``masks/``, or any folder
    whose every mask holds only 0 and 255 (:func:`binary_folder`)."""
    class_names = root / "classes.txt"
    class_names = class_names if class_names.is_file() else None
    for sub, binary in (("labels", False), ("SegmentationClass", False), ("masks", True)):
        if (root / sub).is_dir():
            return root / sub, binary or binary_folder(root / sub), class_names
    return root, binary_folder(root), class_names
