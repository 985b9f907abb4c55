"""The sample type every image reader returns, box validation and box order.

Boxes are ``(class, x1, y1, x2, y2)`` rows in pixels, half-open: the box covers
columns ``x1 <= x < x2`` and rows ``y1 <= y < y2``.  Where boxes overlap, the
smallest owns the pixels they share (:func:`largest_first`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from graphseg.utils.constants import IGNORE


def check_boxes(boxes, shape: Optional[Tuple[int, int]] = None,
                source: str = "boxes") -> np.ndarray:
    """Validate boxes against an image size; clip the ones that stick out.

    Fractional coordinates (COCO-style float boxes, sub-pixel annotation tools) are
    rounded outward to the smallest pixel box that contains them: ``x1`` and ``y1``
    down, ``x2`` and ``y2`` up (a coordinate within 1e-6 of an integer is that
    integer).  The class must be an integer.  A box reaching outside the image is
    clipped to it with a warning (annotation tools often round a box edge one pixel
    past the border).  A box that is empty (``x2 <= x1`` or ``y2 <= y1``), before or
    after clipping, is an error.

    Args:
        boxes (array-like): ``(N, 5)`` ``(class, x1, y1, x2, y2)``: an integer class
            and integer or float coordinates, or an empty sequence.
        shape (tuple of int, optional): image ``(H, W)`` in pixels; ``None`` skips
            clipping. (default: ``None``)
        source (str, optional): the file or argument the boxes came from, named in
            messages. (default: ``"boxes"``)

    Returns:
        np.ndarray: ``(N, 5)`` int64, clipped to ``[0, W] x [0, H]``.
    """
    array = np.asarray(boxes if len(boxes) else np.zeros((0, 5)))
    if array.ndim != 2 or array.shape[1] != 5:
        raise ValueError(f"{source}: boxes must have shape (N, 5) = (class, x1, y1, x2, y2), "
                         f"got {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{source}: boxes must be numbers, got {array.dtype}")
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{source}: box coordinates must be finite")
    if array.size and not np.array_equal(array[:, 0], np.round(array[:, 0])):
        raise ValueError(f"{source}: box classes must be integers, got "
                         f"{array[:, 0].tolist()}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        # outward: the smallest half-open pixel box holding the fractional one
        corners = array[:, 1:].astype(np.float64)
        near = np.round(corners)
        snapped = np.abs(corners - near) <= 1e-6
        corners[:, :2] = np.where(snapped[:, :2], near[:, :2], np.floor(corners[:, :2]))
        corners[:, 2:] = np.where(snapped[:, 2:], near[:, 2:], np.ceil(corners[:, 2:]))
        array = np.concatenate([np.round(array[:, :1]), corners], axis=1)
    array = array.astype(np.int64)
    for row in array:
        if row[3] <= row[1] or row[4] <= row[2]:
            raise ValueError(f"{source}: empty box {row[1:].tolist()} (need x1 < x2 and y1 < y2)")
        if row[0] < 0 or row[0] == IGNORE:
            raise ValueError(f"{source}: box class must be in 0..254, got {row[0]}")
    if shape is None:
        return array
    height, width = shape
    clipped = array.copy()
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, width)
    clipped[:, [2, 4]] = clipped[:, [2, 4]].clip(0, height)
    moved = np.flatnonzero((clipped != array).any(axis=1))
    for i in moved:
        if clipped[i, 3] <= clipped[i, 1] or clipped[i, 4] <= clipped[i, 2]:
            raise ValueError(f"{source}: box {array[i, 1:].tolist()} lies outside the "
                             f"{width}x{height} image")
        warnings.warn(f"{source}: box {array[i, 1:].tolist()} reaches outside the {width}x"
                      f"{height} image; clipped to {clipped[i, 1:].tolist()}", stacklevel=2)
    return clipped



def largest_first(boxes) -> np.ndarray:
    """The order in which to paint boxes so that where they overlap the smallest wins.

    Whatever paints boxes into a map (box seeds, box fill, box instances) paints
    them in this order: a small object in front of a big one is usually what lies
    on top.

    Args:
        boxes (array-like): ``(N, 5)`` ``(class, x1, y1, x2, y2)`` boxes.

    Returns:
        np.ndarray: ``(N,)`` indices into ``boxes``, from the largest area to the
        smallest; boxes of equal area keep their order.

    >>> from graphseg.data import largest_first
    >>> largest_first([[1, 0, 0, 2, 2], [1, 0, 0, 4, 4], [2, 2, 2, 4, 4]]).tolist()
    [1, 0, 2]
    """
    boxes = np.asarray(boxes).reshape(-1, 5)
    areas = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 4] - boxes[:, 2])
    return np.argsort(-areas, kind="stable")

@dataclass
class Sample:
    """One annotated image.

    Attributes:
        name (str): the image's file stem.
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        label (numpy.ndarray, optional): ``(H, W)`` uint8 class index per pixel,
            255 = ignore; ``None`` when the image has no ground truth.
        instances (numpy.ndarray, optional): ``(H, W)`` uint8 instance id per pixel
            (0 = no instance, 1..254 instances, 255 = ignore), or ``None``.
        boxes (numpy.ndarray): ``(N, 5)`` int64 ``(class, x1, y1, x2, y2)``,
            half-open pixel boxes.
        tags (tuple of int): sorted class indices present in the image (image-level
            labels).
        class_names (tuple of str): class names in index order (empty when
            unknown).
    """

    name: str
    image: np.ndarray
    label: Optional[np.ndarray] = None
    instances: Optional[np.ndarray] = None
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), dtype=np.int64))
    tags: Tuple[int, ...] = ()
    class_names: Tuple[str, ...] = ()

    def __post_init__(self):
        if (not isinstance(self.image, np.ndarray) or self.image.dtype != np.uint8
                or self.image.ndim != 3 or self.image.shape[2] != 3):
            raise ValueError(f"{self.name}: image must be an (H, W, 3) uint8 array, got "
                             f"{getattr(self.image, 'dtype', type(self.image).__name__)} "
                             f"{getattr(self.image, 'shape', '')}")
        for attribute in ("label", "instances"):
            value = getattr(self, attribute)
            if value is None:
                continue
            if value.dtype != np.uint8 or value.shape != self.image.shape[:2]:
                raise ValueError(f"{self.name}: {attribute} must be a uint8 array of the "
                                 f"image's size {self.image.shape[:2]}, got {value.dtype} "
                                 f"{value.shape}")
        self.boxes = check_boxes(self.boxes, self.image.shape[:2], f"{self.name} boxes")
        self.tags = tuple(sorted(int(t) for t in self.tags))
        self.class_names = tuple(self.class_names)

    @property
    def shape(self) -> Tuple[int, int]:
        """``(H, W)``."""
        return self.image.shape[:2]
