"""Seeds from scribbles and points: SLIC superpixel expansion (thesis section 3.6.1,
M_S and M_P) and the merge with CAM seeds that trains the affinity network."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from graphseg.graph import pixels_to_superpixels, superpixel_graph, superpixels_to_pixels
from graphseg.utils.checks import check_image, check_positive_int, check_seed_map
from graphseg.utils.constants import IGNORE
from graphseg.utils.types import Seeds


def expand_seeds(image: np.ndarray, seeds: np.ndarray, num_classes: Optional[int] = None,
                 superpixel_area: int = 100, compactness: float = 10.0) -> Seeds:
    """Spread scribbles or points over the SLIC superpixels they touch (M_S, M_P).

    A superpixel takes the label of the seed pixels inside it when they all
    agree; a superpixel touched by seeds of two classes keeps only its seed
    pixels, since it straddles a boundary.  Seed pixels always keep their label.
    Seeds with no known pixel give an all-unknown map (and no superpixels are
    computed).

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        seeds (numpy.ndarray): ``(H, W)`` uint8 class index, 255 = unlabelled.
        num_classes (int, optional): when given, every known label must be below
            it. (default: ``None``)
        superpixel_area (int, optional): wanted mean superpixel size in pixels
            (SLIC gets ``H * W / superpixel_area`` segments); smaller is more
            precise, larger covers more. (default: ``100``)
        compactness (float, optional): SLIC's colour / position trade-off (> 0).
            (default: ``10.0``)

    Returns:
        Seeds: the expanded map (no scores).

    >>> import numpy as np
    >>> from graphseg.seeds import expand_seeds
    >>> image = np.zeros((20, 20, 3), dtype=np.uint8); image[:, 10:] = 255
    >>> scribble = np.full((20, 20), 255, dtype=np.uint8)
    >>> scribble[10, 2:5], scribble[10, 15:18] = 0, 1
    >>> expanded = expand_seeds(image, scribble, superpixel_area=50).labels
    >>> sorted(np.unique(expanded[:, :10]).tolist()), int((expanded != 255).sum()) > 6
    ([0, 255], True)
    """
    image = check_image(image)
    seeds = check_seed_map(seeds, "seeds", image.shape[:2], num_classes)
    check_positive_int(superpixel_area, "superpixel_area")
    known = seeds != IGNORE
    if not known.any():
        return Seeds(seeds.copy())
    n_segments = max(1, image.shape[0] * image.shape[1] // superpixel_area)
    segments = superpixel_graph(image, n_segments, compactness).segments
    vote = pixels_to_superpixels(seeds, segments)
    # superpixels whose seed pixels name more than one class: no vote
    flat = segments.numpy()[known].astype(np.int64)
    pairs = np.unique(flat * 256 + seeds[known])
    split = np.bincount(pairs // 256, minlength=vote.numel()) > 1
    vote[torch.from_numpy(split)] = IGNORE
    expanded = superpixels_to_pixels(vote, segments).numpy().astype(np.uint8)
    expanded[known] = seeds[known]
    return Seeds(expanded)


def merge_seeds(primary: np.ndarray, fallback: np.ndarray) -> Seeds:
    """``primary`` where it is known, else ``fallback`` (section 3.6.1: M_S over M'_I).

    >>> import numpy as np
    >>> from graphseg.seeds import merge_seeds
    >>> merge_seeds(np.array([[1, 255, 255]], np.uint8), np.array([[2, 2, 255]], np.uint8)).labels
    array([[  1,   2, 255]], dtype=uint8)
    """
    primary = check_seed_map(primary, "primary")
    fallback = check_seed_map(fallback, "fallback", primary.shape)
    return Seeds(np.where(primary != IGNORE, primary, fallback).astype(np.uint8))
