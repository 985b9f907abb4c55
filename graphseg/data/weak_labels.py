"""Weak labels synthesised from ground truth: boxes, points, scribbles, tags.

Every function takes an ``(H, W)`` uint8 label map (class index, 255 = ignore)
and works region by region.  A *region* is an instance of the instance map when
one is given (VOC's ``SegmentationObject``), otherwise a connected component
(8-connectivity) of one class.  Regions smaller than ``min_area`` pixels are
skipped: annotators do not draw on slivers.

``background_classes`` names the classes that play background: boxes and tags are made
for the other classes only, while points and scribbles cover background regions
too (an annotator clicks or scribbles on the background as well).  Class 0 is
background wherever a dataset has one; for MSRC-v2, whose classes are all named,
pass the stuff classes (:data:`graphseg.data.MSRC_STUFF`).

Points and scribbles are drawn inside their region, so against the ground truth
their precision is 1.0 by construction; their coverage is what varies.
"""
from __future__ import annotations

from collections import deque
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage
from skimage.morphology import disk, skeletonize

from graphseg.data.sample import largest_first
from graphseg.utils.checks import as_index_map, check_choice, check_positive_int
from graphseg.utils.constants import IGNORE

_EIGHT = np.ones((3, 3), dtype=bool)


def _check_label(label, name: str = "label") -> np.ndarray:
    label = as_index_map(label, name).numpy()
    if label.max() > IGNORE:
        raise ValueError(f"{name} must hold class indices 0..254 or 255, got {label.max()}")
    return label.astype(np.uint8)


def _regions(label: np.ndarray, instances: Optional[np.ndarray], classes: Sequence[int],
             min_area: int) -> Iterator[Tuple[int, np.ndarray]]:
    """``(class, mask)`` for every region of the given classes, in a fixed order."""
    wanted = set(int(c) for c in classes)
    if instances is not None:
        instances = _check_label(instances, "instances")
        if instances.shape != label.shape:
            raise ValueError(f"instances has shape {instances.shape}, label has {label.shape}")
        for instance in np.unique(instances):
            if instance in (0, IGNORE):
                continue
            mask = instances == instance
            votes = np.bincount(label[mask][label[mask] != IGNORE], minlength=1)
            cls = int(votes.argmax())
            if votes.sum() and cls in wanted and mask.sum() >= min_area:
                yield cls, mask
        return
    for cls in sorted(wanted):
        components, count = ndimage.label(label == cls, structure=_EIGHT)
        if count == 0:
            continue
        areas = np.bincount(components.ravel())
        for component in range(1, count + 1):
            if areas[component] >= min_area:
                yield cls, components == component


def _present(label: np.ndarray, background_classes: Sequence[int]) -> list:
    return [int(c) for c in np.unique(label) if c != IGNORE and c not in set(background_classes)]


def tags_from_labels(label, background_classes: Sequence[int] = (0,)) -> Tuple[int, ...]:
    """Image-level tags: the non-background classes present in a label map.

    Args:
        label (numpy.ndarray): ``(H, W)`` class indices, 255 = ignore.
        background_classes (sequence of int, optional): classes that are not tagged.
            (default: ``(0,)``)

    Returns:
        tuple of int: sorted class indices.

    >>> import numpy as np
    >>> from graphseg.data import tags_from_labels
    >>> tags_from_labels(np.array([[0, 3], [255, 7]], dtype=np.uint8))
    (3, 7)
    """
    return tuple(_present(_check_label(label), background_classes))


def boxes_from_labels(label, instances=None, background_classes: Sequence[int] = (0,),
                      min_area: int = 64) -> np.ndarray:
    """Tight boxes around every object region.

    Args:
        label (numpy.ndarray): ``(H, W)`` class indices, 255 = ignore.
        instances (numpy.ndarray, optional): ``(H, W)`` instance ids (0 = none,
            255 = ignore); when given, one box per instance (class by majority vote
            of ``label``). (default: ``None``)
        background_classes (sequence of int, optional): classes that get no box.
            (default: ``(0,)``)
        min_area (int, optional): smallest region, in pixels, that gets a box.
            (default: ``64``)

    Returns:
        np.ndarray: ``(N, 5)`` int64 ``(class, x1, y1, x2, y2)``, half-open.

    >>> import numpy as np
    >>> from graphseg.data import boxes_from_labels
    >>> label = np.zeros((4, 6), dtype=np.uint8); label[1:3, 2:5] = 1
    >>> boxes_from_labels(label, min_area=1).tolist()
    [[1, 2, 1, 5, 3]]
    """
    label = _check_label(label)
    check_positive_int(min_area, "min_area")
    rows = []
    for cls, mask in _regions(label, instances, _present(label, background_classes), min_area):
        ys, xs = np.nonzero(mask)
        rows.append([cls, xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.array(rows, dtype=np.int64).reshape(-1, 5)


def boxes_to_seeds(boxes, shape: Tuple[int, int], outside: int = 0) -> np.ndarray:
    """Fill boxes into a label map (the "box fill" seed), smaller boxes on top.

    Args:
        boxes (array-like): ``(N, 5)`` half-open boxes.
        shape (tuple of int): ``(H, W)``.
        outside (int, optional): label of pixels outside every box: the background
            class, or 255 (unknown) when the dataset has no single background
            class. (default: ``0``)

    Returns:
        np.ndarray: ``(H, W)`` uint8.
    """
    seeds = np.full(shape, outside, dtype=np.uint8)
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 5)
    for cls, x1, y1, x2, y2 in boxes[largest_first(boxes)]:
        seeds[y1:y2, x1:x2] = cls
    return seeds


def points_from_labels(label, instances=None, mode: str = "interior", radius: int = 0,
                       min_area: int = 64, seed: int = 0) -> np.ndarray:
    """One click per region (objects and background), as a seed map.

    Args:
        label (numpy.ndarray): ``(H, W)`` class indices, 255 = ignore.
        instances (numpy.ndarray, optional): instance map (one click per instance,
            plus one per connected component of each class no instance covers).
            (default: ``None``)
        mode (str, optional): ``"interior"``: the pixel farthest from the region's
            border (the image edge counts as border; ties go to the first in raster
            order); ``"random"``: a uniformly random pixel of the region.
            (default: ``"interior"``)
        radius (int, optional): the click is a disk of this radius in pixels, cut
            to the region. (default: ``0``)
        min_area (int, optional): smallest region, in pixels, that gets a click.
            (default: ``64``)
        seed (int, optional): random seed (``"random"`` mode). (default: ``0``)

    Returns:
        np.ndarray: ``(H, W)`` uint8, the region's class at each click, 255 elsewhere.
    """
    label = _check_label(label)
    check_choice(mode, "mode", ("interior", "random"))
    check_positive_int(radius, "radius", minimum=0)
    check_positive_int(min_area, "min_area")
    rng = np.random.default_rng(seed)
    seeds = np.full(label.shape, IGNORE, dtype=np.uint8)
    for cls, mask in _all_regions(label, instances, min_area):
        if mode == "interior":
            depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
            y, x = np.unravel_index(int(depth.argmax()), mask.shape)
        else:
            ys, xs = np.nonzero(mask)
            pick = rng.integers(len(ys))
            y, x = ys[pick], xs[pick]
        seeds[_disk_at(mask.shape, y, x, radius) & mask] = cls
    return seeds


def _all_regions(label, instances, min_area):
    """Regions of every class: instances first, then components of what they leave."""
    if instances is None:
        return list(_regions(label, None, _present(label, ()), min_area))
    regions = list(_regions(label, instances, _present(label, ()), min_area))
    rest = label.copy()
    rest[np.isin(_check_label(instances, "instances"), (0, IGNORE), invert=True)] = IGNORE
    return regions + list(_regions(rest, None, _present(rest, ()), min_area))


def _disk_at(shape, y: int, x: int, radius: int) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    out[y, x] = True
    return ndimage.binary_dilation(out, disk(radius).astype(bool)) if radius else out


def scribbles_from_labels(label, instances=None, length_ratio: float = 1.0, width: int = 3,
                          min_area: int = 64, seed: int = 0) -> np.ndarray:
    """Thin strokes along the skeleton of every region (objects and background).

    Each region's skeleton (medial axis, one pixel wide) is the full-length
    scribble.  With ``length_ratio < 1`` a connected piece of it is kept: the
    first ``ceil(length_ratio * n)`` of its ``n`` pixels reached by a breadth-
    first walk along the skeleton from a random skeleton pixel, which shortens
    the stroke the way the thesis's Fig. 4.3 shortens ScribbleSup's.  The stroke
    is then widened to ``width`` pixels and cut to its region.  A region whose
    skeleton is empty (too thin) gets its most interior pixel.

    Args:
        label (numpy.ndarray): ``(H, W)`` class indices, 255 = ignore.
        instances (numpy.ndarray, optional): instance map, as for
            :func:`points_from_labels`. (default: ``None``)
        length_ratio (float, optional): fraction of the skeleton kept, in
            ``(0, 1]``. (default: ``1.0``)
        width (int, optional): stroke width in pixels (odd; 1 = the bare
            skeleton). (default: ``3``)
        min_area (int, optional): smallest region, in pixels, that gets a
            scribble. (default: ``64``)
        seed (int, optional): random seed (starting pixel of shortened strokes).
            (default: ``0``)

    Returns:
        np.ndarray: ``(H, W)`` uint8, class on the strokes, 255 elsewhere.  Use
        :func:`labelled_fraction` for the share of pixels labelled.
    """
    label = _check_label(label)
    if not 0.0 < float(length_ratio) <= 1.0:
        raise ValueError(f"length_ratio must be in (0, 1], got {length_ratio}")
    check_positive_int(width, "width")
    if width % 2 == 0:
        raise ValueError(f"width must be odd so strokes are centred, got {width}")
    check_positive_int(min_area, "min_area")
    rng = np.random.default_rng(seed)
    seeds = np.full(label.shape, IGNORE, dtype=np.uint8)
    pen = disk(width // 2).astype(bool)
    for cls, mask in _all_regions(label, instances, min_area):
        stroke = skeletonize(mask)
        if not stroke.any():
            depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
            stroke = np.zeros_like(mask)
            stroke[np.unravel_index(int(depth.argmax()), mask.shape)] = True
        elif length_ratio < 1.0:
            stroke = _walk(stroke, length_ratio, rng)
        if width > 1:
            stroke = ndimage.binary_dilation(stroke, pen)
        seeds[stroke & mask] = cls
    return seeds


def _walk(skeleton: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """The first ``ceil(ratio * n)`` skeleton pixels met by a BFS from a random one."""
    ys, xs = np.nonzero(skeleton)
    keep = int(np.ceil(ratio * len(ys)))
    on = set(zip(ys.tolist(), xs.tolist()))
    start = int(rng.integers(len(ys)))
    queue = deque([(int(ys[start]), int(xs[start]))])
    seen = {queue[0]}
    while queue and len(seen) < keep:
        y, x = queue.popleft()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                step = (y + dy, x + dx)
                if step in on and step not in seen and len(seen) < keep:
                    seen.add(step)
                    queue.append(step)
    out = np.zeros_like(skeleton)
    rows, cols = zip(*seen)
    out[list(rows), list(cols)] = True
    return out


def labelled_fraction(seeds) -> float:
    """Fraction of pixels that carry a label (not 255), in ``[0, 1]``.

    >>> import numpy as np
    >>> from graphseg.data import labelled_fraction
    >>> labelled_fraction(np.array([[1, 255], [255, 255]], dtype=np.uint8))
    0.25
    """
    seeds = _check_label(seeds, "seeds")
    return float((seeds != IGNORE).mean())
