"""Seeds from bounding boxes: GrabCut inside every box, background outside
(thesis Eq. 3.2-3.3), fusion with CAM seeds (Eq. 3.4) and confident selection (Eq. 3.5).

Boxes are ``(class, x1, y1, x2, y2)`` rows, half-open pixels
(:func:`graphseg.data.check_boxes`): a box reaching outside the image is clipped
with a warning, an empty or wholly outside box is an error.

Rules (documented choices where the thesis is silent):

* **Overlap.** Boxes are processed from the largest to the smallest, so a pixel
  that several boxes' GrabCut call foreground takes the class of the *smallest*
  such box (a small object in front of a big one is usually what lies on top).
  A pixel inside boxes but foreground for none is unknown (255).
* **Box-only precision** (the defaults; no CAM needed).  GrabCut's foreground
  is eroded by a band of ``band * min(box width, box height)`` pixels (at least
  1; ``band`` 0.05 by default); the band itself is unknown, because GrabCut's
  errors sit on its boundary.  A *low-context* box, one whose context (below)
  has fewer than :data:`LOW_CONTEXT` times the box's own pixels, i.e. a box
  covering most of the image, is eroded by ``wide_band`` (0.25) instead:
  GrabCut then fits its background model to a thin strip of pixels and its
  typical failure is to take a large part of the background inside the box
  (on GrabCut-13 the two such failures, banana1 and cross, are both
  low-context boxes; their foreground precision is under 0.5).  With the
  defaults GrabCut-13 box seeds reach 0.987 precision at 0.60 coverage
  (band 0.05 alone: 0.932 at 0.67; band 0.15 everywhere: 0.960 at 0.56); on
  MSRC-v2 val boxes (tight, from the ground truth) 0.987 at 0.79 (band 0.05
  alone: 0.987 at 0.82), see
  ``benchmarks/seeds.py``.  ``band=0, wide_band=0`` gives Eq. 3.2 exactly.
* **Context.** GrabCut runs on the box plus a margin of half its size on each
  side (cut to the image), whose pixels seed the background model.  A box
  covering (almost) the whole image leaves too little context; then the outer
  ring of the box, 5% of its size wide, seeds the background as *probable*
  background, which GrabCut may still relabel.
* **Tiny boxes.** Below :data:`MIN_BOX_AREA` pixels GrabCut's colour models
  (five Gaussians each) cannot be fitted: the box is left unknown.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import cv2
import numpy as np

from graphseg.data.sample import check_boxes, largest_first
from graphseg.utils.checks import check_image, check_positive_int, check_seed_map, trusted_inputs
from graphseg.utils.constants import IGNORE
from graphseg.utils.types import Seeds

MIN_BOX_AREA = 64       # pixels; smaller boxes stay unknown
LOW_CONTEXT = 0.25      # context pixels / box pixels under which a box is "low-context"
_MIN_CONTEXT = 64       # background pixels GrabCut needs to fit its background model


def grabcut_box(image: np.ndarray, box: Sequence[int], iterations: int = 5,
                seed: int = 0) -> np.ndarray:
    """GrabCut foreground of one box (OpenCV, initialised from the box).

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        box (sequence of int): ``(x1, y1, x2, y2)`` half-open pixel box inside the
            image, at least :data:`MIN_BOX_AREA` pixels.
        iterations (int, optional): GrabCut iterations, >= 1. (default: ``5``)
        seed (int, optional): OpenCV's random seed (GrabCut's k-means
            initialisation). (default: ``0``)

    Returns:
        np.ndarray: ``(y2 - y1, x2 - x1)`` bool, True where GrabCut says
        (definite or probable) foreground.
    """
    image = check_image(image)
    check_positive_int(iterations, "iterations")
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box)
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ValueError(f"box {[x1, y1, x2, y2]} is empty or not inside the "
                         f"{width}x{height} image")
    if (x2 - x1) * (y2 - y1) < MIN_BOX_AREA:
        raise ValueError(f"box {[x1, y1, x2, y2]} has fewer than {MIN_BOX_AREA} pixels; "
                         "too small for GrabCut")
    bw, bh = x2 - x1, y2 - y1
    cx1, cy1, cx2, cy2 = _context((x1, y1, x2, y2), (height, width))
    mask = np.full((cy2 - cy1, cx2 - cx1), cv2.GC_BGD, dtype=np.uint8)
    inner = (slice(y1 - cy1, y2 - cy1), slice(x1 - cx1, x2 - cx1))
    mask[inner] = cv2.GC_PR_FGD
    if (mask == cv2.GC_BGD).sum() < _MIN_CONTEXT:
        ring = max(1, math.ceil(0.05 * min(bw, bh)))
        box_mask = mask[inner]
        box_mask[:ring], box_mask[-ring:] = cv2.GC_PR_BGD, cv2.GC_PR_BGD
        box_mask[:, :ring], box_mask[:, -ring:] = cv2.GC_PR_BGD, cv2.GC_PR_BGD
    crop = cv2.cvtColor(image[cy1:cy2, cx1:cx2], cv2.COLOR_RGB2BGR)
    models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
    cv2.setRNGSeed(int(seed))
    cv2.grabCut(crop, mask, None, *models, iterations, cv2.GC_INIT_WITH_MASK)
    inside = mask[inner]
    return (inside == cv2.GC_FGD) | (inside == cv2.GC_PR_FGD)


def _context(box: Sequence[int], shape: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """The crop GrabCut sees: the box plus half its size on each side, cut to the image."""
    height, width = shape
    x1, y1, x2, y2 = (int(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    return (max(0, x1 - bw // 2), max(0, y1 - bh // 2), min(width, x2 + bw // 2),
            min(height, y2 + bh // 2))


def context_ratio(box: Sequence[int], shape: Tuple[int, int]) -> float:
    """Pixels of GrabCut's context outside the box, over the box's pixels.

    Args:
        box (sequence of int): ``(x1, y1, x2, y2)`` half-open, inside the image.
        shape (tuple of int): ``(H, W)`` of the image.

    Returns:
        float: 0 for a box covering the whole image, 3 for a box with its full
        margin of half its size on every side.

    >>> from graphseg.seeds.boxes import context_ratio
    >>> context_ratio((10, 10, 20, 20), (100, 100)), context_ratio((0, 0, 100, 100), (100, 100))
    (3.0, 0.0)
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    cx1, cy1, cx2, cy2 = _context(box, shape)
    area = (x2 - x1) * (y2 - y1)
    return ((cx2 - cx1) * (cy2 - cy1) - area) / area


def _check_boxes(boxes, shape: Tuple[int, int], background: int) -> np.ndarray:
    boxes = check_boxes(boxes, shape, "boxes")
    if (boxes[:, 0] == background).any():
        raise ValueError(f"boxes: a box has the background class {background}; boxes must "
                         "name object classes")
    return boxes


def box_seeds(image: np.ndarray, boxes, background: int = 0, band: float = 0.05,
              iterations: int = 5, seed: int = 0, wide_band: float = 0.25) -> Seeds:
    """Box seeds M_B (Eq. 3.2-3.3): GrabCut foreground inside every box, background
    outside every box, unknown (255) elsewhere.  See the module notes for
    overlaps, tiny boxes and the box-only rule: GrabCut's foreground eroded by
    ``band`` of the box's shorter side, or by ``wide_band`` for a box covering
    most of the image (context under :data:`LOW_CONTEXT` of the box, see
    :func:`context_ratio`), where GrabCut's background model is weakest.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        boxes (array-like): ``(N, 5)`` ``(class, x1, y1, x2, y2)`` half-open; may be
            empty (then every pixel is background).
        background (int, optional): label of pixels outside every box.
            (default: ``0``)
        band (float, optional): width of the unknown band inside GrabCut's
            foreground border, as a fraction of the box's shorter side, in
            ``[0, 0.5)``; 0 = Eq. 3.2. (default: ``0.05``)
        wide_band (float, optional): the band of low-context boxes, in
            ``[0, 0.5)``; the larger of ``band`` and ``wide_band`` is used for
            them.  ``band=0, wide_band=0`` = Eq. 3.2. (default: ``0.25``)
        iterations (int, optional): GrabCut iterations. (default: ``5``)
        seed (int, optional): GrabCut's random seed. (default: ``0``)

    Returns:
        Seeds: the seed map, and as ``scores`` GrabCut's own answer (before the
        erosion) for every box class (``classes``, ascending): 1 where a box of
        that class says foreground, 0 where it says background, 0.5 where no box
        of the class has an answer (outside them, or a tiny box).  Where boxes of
        one class overlap, foreground wins.

    >>> import numpy as np
    >>> from graphseg.seeds import box_seeds
    >>> image = np.zeros((40, 40, 3), dtype=np.uint8); image[12:28, 12:28] = 200
    >>> labels = box_seeds(image, [[3, 8, 8, 32, 32]]).labels
    >>> int(labels[0, 0]), int(labels[20, 20]), int(labels[9, 9])
    (0, 3, 255)
    """
    image = check_image(image)
    for value, name in ((band, "band"), (wide_band, "wide_band")):
        if not 0.0 <= float(value) < 0.5:
            raise ValueError(f"{name} must be in [0, 0.5), got {value}")
    boxes = _check_boxes(boxes, image.shape[:2], background)
    labels = np.full(image.shape[:2], background, dtype=np.uint8)
    classes = tuple(sorted({int(c) for c in boxes[:, 0]}))
    scores = np.full((len(classes), *image.shape[:2]), 0.5, dtype=np.float32)
    for cls, x1, y1, x2, y2 in boxes[largest_first(boxes)]:
        region = labels[y1:y2, x1:x2]
        if (x2 - x1) * (y2 - y1) < MIN_BOX_AREA:
            region[region == background] = IGNORE
            continue
        with trusted_inputs():  # the image is checked above
            foreground = grabcut_box(image, (x1, y1, x2, y2), iterations, seed)
        answer = scores[classes.index(int(cls)), y1:y2, x1:x2]
        answer[:] = np.maximum(np.where(answer == 0.5, 0.0, answer), foreground)
        erosion = band
        if context_ratio((x1, y1, x2, y2), image.shape[:2]) < LOW_CONTEXT:
            erosion = max(band, wide_band)
        if erosion > 0:
            radius = max(1, round(erosion * min(x2 - x1, y2 - y1)))
            # pad with foreground so the box edge itself does not erode a tight object
            padded = np.pad(foreground, radius, mode="edge").astype(np.uint8)
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
            foreground = cv2.erode(padded, kernel)[radius:-radius, radius:-radius] > 0
        # a larger box's foreground stays unless this (smaller) box claims the pixel
        region[region == background] = IGNORE
        region[foreground] = cls
    return Seeds(labels, scores, classes)


def opencv_grabcut(image: np.ndarray, boxes, background: int = 0, iterations: int = 5,
                   seed: int = 0) -> np.ndarray:
    """The classic GrabCut baseline: ``cv2.grabCut`` initialised with each box's
    rectangle on the whole photo (Rother et al., 2004), every pixel labelled.

    Unlike :func:`grabcut_box` (used for seeds) it adds no context crop or ring:
    this is the number GrabCut papers report.  Smaller boxes are painted last.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        boxes (array-like): ``(N, 5)`` ``(class, x1, y1, x2, y2)`` half-open.
        background (int, optional): label of every pixel GrabCut leaves out.
            (default: ``0``)
        iterations (int, optional): GrabCut iterations, >= 1. (default: ``5``)
        seed (int, optional): OpenCV's random seed. (default: ``0``)

    Returns:
        np.ndarray: ``(H, W)`` uint8 labels.
    """
    image = check_image(image)
    check_positive_int(iterations, "iterations")
    boxes = _check_boxes(boxes, image.shape[:2], background)
    labels = np.full(image.shape[:2], background, dtype=np.uint8)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for cls, x1, y1, x2, y2 in boxes[largest_first(boxes)]:
        mask = np.zeros(image.shape[:2], np.uint8)
        models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
        cv2.setRNGSeed(int(seed))
        cv2.grabCut(bgr, mask, (int(x1), int(y1), int(x2 - x1), int(y2 - y1)), *models,
                    iterations, cv2.GC_INIT_WITH_RECT)
        labels[(mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)] = cls
    return labels


def _inside(boxes: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    inside = np.zeros(shape, dtype=bool)
    for _, x1, y1, x2, y2 in boxes:
        inside[y1:y2, x1:x2] = True
    return inside


def fuse_box_cam(box_labels: np.ndarray, boxes, cam_labels: np.ndarray,
                 background: int = 0) -> Seeds:
    """Fuse box seeds with CAM seeds: M_F of Eq. 3.4.

    Outside every box: ``M_B``.  Inside: the CAM label where it equals ``M_B``;
    where a box's class appears nowhere in the CAM labels inside that box, that
    box's ``M_B`` (smaller boxes decide overlaps); else unknown.

    Args:
        box_labels (numpy.ndarray): ``(H, W)`` uint8 M_B from :func:`box_seeds`.
        boxes (array-like): the boxes ``box_labels`` was made from.
        cam_labels (numpy.ndarray): ``(H, W)`` uint8 M_I, e.g.
            :func:`graphseg.seeds.cam_seeds` with ``method="crf"``.
        background (int, optional): the background label. (default: ``0``)

    Returns:
        Seeds: M_F (no scores).
    """
    box_labels = check_seed_map(box_labels, "box_labels")
    cam_labels = check_seed_map(cam_labels, "cam_labels", box_labels.shape)
    boxes = _check_boxes(boxes, box_labels.shape, background)
    fused = np.full(box_labels.shape, IGNORE, dtype=np.uint8)
    for cls, x1, y1, x2, y2 in boxes[largest_first(boxes)]:
        if cls not in cam_labels[y1:y2, x1:x2]:
            mine = box_labels[y1:y2, x1:x2] == cls
            fused[y1:y2, x1:x2][mine] = cls
    agree = (box_labels == cam_labels) & (box_labels != IGNORE)
    fused[agree] = box_labels[agree]
    outside = ~_inside(boxes, box_labels.shape)
    fused[outside] = box_labels[outside]
    return Seeds(fused)


def confident_box_seeds(fused: np.ndarray, boxes, confident_cam: np.ndarray,
                        background: int = 0) -> Seeds:
    """Confident seed selection M_g (Eq. 3.5), as graphseg reads it.

    Read literally, Eq. 3.5 keeps M_F wherever M_F = M_B, which holds for every
    known pixel of M_F, so it would change nothing.  graphseg keeps what the
    equation is meant to keep: ``M_F`` outside the boxes (the background of
    M_B), and inside a box the pixels where ``M_F`` agrees with the confident
    CAM labels M'_I, except in boxes where M'_I has no pixel of the box's class:
    there nothing could agree, so their M_F pixels are kept as they are.

    Args:
        fused (numpy.ndarray): ``(H, W)`` uint8 M_F from :func:`fuse_box_cam`.
        boxes (array-like): the boxes.
        confident_cam (numpy.ndarray): ``(H, W)`` uint8 M'_I
            (``cam_seeds(..., method="confident")``).
        background (int, optional): the background label. (default: ``0``)

    Returns:
        Seeds: M_g (no scores).
    """
    fused = check_seed_map(fused, "fused")
    confident_cam = check_seed_map(confident_cam, "confident_cam", fused.shape)
    boxes = _check_boxes(boxes, fused.shape, background)
    keep = ~_inside(boxes, fused.shape) | (fused == confident_cam)
    for cls, x1, y1, x2, y2 in boxes:
        if cls not in confident_cam[y1:y2, x1:x2]:
            keep[y1:y2, x1:x2] |= fused[y1:y2, x1:x2] == cls
    return Seeds(np.where(keep, fused, IGNORE).astype(np.uint8))
