"""Recognise a dataset folder's layout and open it with the matching reader."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from graphseg.data.dataset import ImageDataset
from graphseg.data.folder import MaskFolderDataset
from graphseg.data.grabcut import GrabCutDataset
from graphseg.data.msrc import MSRCDataset
from graphseg.data.voc import VOCDataset

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
