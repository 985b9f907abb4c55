"""Class lists and colour tables: PASCAL VOC names, the MSRC-v2 stuff/object split,
class files, and the VOC colour map used for every palette PNG graphseg writes."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence, Tuple, Union

import numpy as np

from graphseg.utils.constants import IGNORE

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)

GRABCUT_CLASSES = ("background", "object")

# MSRC-v2 has no background class.  Where a task needs one (boxes, points, tags in
# the PASCAL style) these seven "stuff" classes play background and the other 16
# are objects; label maps keep MSRC's own indices (0 = building ... 22 = boat).
MSRC_STUFF = ("building", "grass", "tree", "sky", "mountain", "water", "road")


def read_classes(path: Union[str, Path]) -> Tuple[str, ...]:
    """Class names in index order from a text file, one name per line.

    Args:
        path (str or os.PathLike): text file; blank lines are skipped, surrounding spaces stripped.

    Returns:
        tuple of str: name of class ``i`` at position ``i``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such classes file")
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                  if line.strip())
    if not names:
        raise ValueError(f"{path}: classes file lists no class")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: classes file lists a name twice")
    return names


def class_index(class_names: Sequence[str]) -> Dict[str, int]:
    """Map each class name to its index."""
    return {name: i for i, name in enumerate(class_names)}


def background_lookup(background_classes: Sequence[int], to: int = 0) -> np.ndarray:
    """A 256-entry uint8 table that maps every class of ``background_classes`` to ``to`` and
    every other label (255 included) to itself: ``lookup[label_map]`` merges, e.g.,
    MSRC-v2's stuff classes (:attr:`MSRCDataset.background_classes`) into one background.

    >>> from graphseg.data import background_lookup
    >>> background_lookup((0, 2))[[0, 1, 2, 3, 255]].tolist()
    [0, 1, 0, 3, 255]
    """
    classes = [int(c) for c in background_classes]
    if not all(0 <= c < IGNORE for c in classes) or not 0 <= to < IGNORE:
        raise ValueError(f"background_classes and to must be class ids in 0..254, got "
                         f"{classes} and {to}")
    lookup = np.arange(256, dtype=np.uint8)
    lookup[classes] = to
    return lookup


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: ``(n, 3)`` uint8, colour of class ``i`` in row ``i``.

    The bits of the index are spread over the colour channels, high bits first,
    so neighbouring indices get distinct colours; index 255 (ignore) is cream.

    Args:
        n (int, optional): number of colours, 1..256. (default: ``256``)

    Returns:
        np.ndarray: ``(n, 3)`` uint8.

    >>> from graphseg.data import voc_colormap
    >>> voc_colormap()[[0, 1, 15, 255]].tolist()
    [[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]]
    """
    if not 1 <= n <= 256:
        raise ValueError(f"n must be in 1..256, got {n}")
    colours = np.zeros((n, 3), dtype=np.uint8)
    for index in range(n):
        value, rgb = index, [0, 0, 0]
        for shift in range(7, -1, -1):  # bit k of each channel from bits 3k.. of the index
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        colours[index] = rgb
    return colours


def voc_palette() -> list:
    """The VOC colour map as a flat ``[r0, g0, b0, r1, ...]`` PNG palette (768 values)."""
    return voc_colormap().reshape(-1).tolist()
