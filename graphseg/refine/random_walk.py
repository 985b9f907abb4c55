"""AffinityNet-style random walk over grid graphs (thesis Table 3.4's baseline
propagator, and the "1:3 fusion" of section 3.6.1).

The walk of Ahn & Kwak (2018), as in the authors' release: affinities raised to
``beta`` (8), normalised so every node's incoming weights sum to 1 (the release
divides the affinity matrix by its column sums), and ``t`` steps (64, which the
release reaches by 6 squarings of the dense matrix).  Here the transition
matrix is never built: it lives as one ``H x W`` plane per window offset (the
layout of :func:`graphseg.graph.grid_affinity`) and the ``t`` steps are ``t``
sparse products, memory ``O(K * H * W)``.  Because the matrix is symmetric
before normalisation, one step computes, at every node, the
affinity-weighted mean of its window's values.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.graph import grid_affinity, window_offsets
from graphseg.refine.crf import crf_labels
from graphseg.utils.checks import (
    check_finite,
    check_image,
    check_positive_int,
    check_probabilities,
    check_tensor,
)
from graphseg.utils.types import Seeds


def random_walk(values: Tensor, affinity: Tensor, radius: int, window: str = "square",
                beta: float = 8.0, steps: int = 64) -> Tensor:
    """Propagate per-node values ``steps`` times along ``affinity ** beta``.

    One step: ``out[j] = sum_i A[i, j] ** beta * x[i] / sum_i A[i, j] ** beta``
    over the window of node ``j`` (self loop included), i.e. ``x @ T`` for the
    column-normalised transition matrix ``T`` of AffinityNet.

    Args:
        values (Tensor): ``(C, H, W)`` floating scores (CAMs, seed
            probabilities, ...).
        affinity (Tensor): ``(K, H, W)`` non-negative affinities per window offset, as
            returned by :func:`graphseg.graph.grid_affinity` with the same
            ``radius`` and ``window`` and ``self_loops=True``; 0 where the
            neighbour is outside the map.  Must be symmetric
            (``A[k, y, x] = A[K-1-k, y+dy, x+dx]``), as ``grid_affinity`` makes it.
        radius (int): the window's radius, as for :func:`graphseg.graph.grid_graph`.
        window (str, optional): the window's shape, as for
            :func:`graphseg.graph.grid_graph`. (default: ``"square"``)
        beta (float, optional): exponent, > 0. (default: ``8.0``)
        steps (int, optional): ``t``, >= 0 (0 returns ``values``). (default: ``64``)

    Returns:
        Tensor: ``(C, H, W)``, the walked values, same dtype as ``values``.

    >>> import torch
    >>> from graphseg.graph import grid_affinity
    >>> from graphseg.refine import random_walk
    >>> aff = grid_affinity(torch.rand(3, 6, 5), radius=1)
    >>> out = random_walk(torch.rand(2, 6, 5), aff, radius=1, steps=4)
    >>> out.shape
    torch.Size([2, 6, 5])
    """
    check_tensor(values, "values")
    check_tensor(affinity, "affinity")
    if values.dim() != 3 or not values.is_floating_point():
        raise ValueError(f"values must be a floating (C, H, W) tensor, got {values.dtype} "
                         f"{tuple(values.shape)}")
    check_finite(values, "values")
    offsets = window_offsets(radius, window, self_loops=True).tolist()
    if affinity.shape != (len(offsets), *values.shape[1:]):
        raise ValueError(f"affinity must have shape ({len(offsets)}, H, W) = "
                         f"({len(offsets)}, {values.shape[1]}, {values.shape[2]}) for radius "
                         f"{radius} {window} window, got {tuple(affinity.shape)}")
    check_finite(affinity, "affinity")
    if bool((affinity < 0).any()):
        raise ValueError("affinity must be non-negative")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    check_positive_int(steps, "steps", minimum=0)
    weights = affinity.to(values.dtype) ** beta
    centre = offsets.index([0, 0])
    # a node whose window weighs nothing (all affinities 0) keeps its own value
    weights[centre] += (weights.sum(dim=0) == 0).to(weights.dtype)
    weights = weights / weights.sum(dim=0, keepdim=True)
    height, width = values.shape[1:]
    x = values
    for _ in range(steps):
        padded = F.pad(x, (radius, radius, radius, radius))
        out = torch.zeros_like(x)
        for k, (dy, dx) in enumerate(offsets):
            out += weights[k] * padded[:, radius + dy:radius + dy + height,
                                       radius + dx:radius + dx + width]
        x = out
    return x


def colour_affinity(image: np.ndarray, radius: int = 5, scale: float = 3.0,
                    window: str = "square") -> Tensor:
    """Colour affinities of an image, Eq. 3.8 on RGB: ``exp(-scale * mean|rgb_i - rgb_j| / 255)``.

    A stand-in for the affinity network's features when none is trained.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        radius (int, optional): the window's radius. (default: ``5``)
        scale (float, optional): contrast of the affinities, > 0 (larger = sharper
            edges). (default: ``3.0``)
        window (str, optional): the window's shape. (default: ``"square"``)

    Returns:
        Tensor: ``(K, H, W)`` float32 in ``(0, 1]``.
    """
    image = check_image(image)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    features = torch.from_numpy(image).permute(2, 0, 1).float() * (scale / 255.0)
    return grid_affinity(features, radius, window)


def walk_probabilities(image: np.ndarray, probs: np.ndarray,
                       classes: Optional[Sequence[int]] = None,
                       affinity: Optional[Tensor] = None, stride: int = 4, radius: int = 5,
                       beta: float = 8.0, steps: int = 64, scale: float = 3.0) -> Seeds:
    """Random walk of seed probabilities or CAM scores at ``1 / stride`` resolution.

    The image and the scores are downsampled by area averaging (the release
    walks on the stride-8 feature grid), walked with :func:`random_walk` on
    :func:`colour_affinity` (or the given ``affinity``), upsampled bilinearly,
    and renormalised to sum to 1.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        probs (numpy.ndarray): ``(C, H, W)`` non-negative scores (need not sum to
            1; CAM scores with the ``(1 - max) ** gamma`` background of Eq. 2.4
            are typical).
        classes (sequence of int, optional): label id of every row.
            (default: ``None``, ``0..C-1``)
        affinity (Tensor, optional): ``(K, h, w)`` affinities on the downsampled
            grid, ``h = ceil(H / stride)``. (default: ``None``,
            :func:`colour_affinity`)
        stride (int, optional): downsampling factor, >= 1. (default: ``4``)
        radius (int, optional): as for :func:`random_walk` (square window).
            (default: ``5``)
        beta (float, optional): as for :func:`random_walk`. (default: ``8.0``)
        steps (int, optional): as for :func:`random_walk`. (default: ``64``)
        scale (float, optional): contrast of :func:`colour_affinity`.
            (default: ``3.0``)

    Returns:
        Seeds: argmax labels (every pixel), ``scores`` the walked probabilities.
    """
    image = check_image(image)
    if not isinstance(probs, np.ndarray) or probs.ndim != 3 or probs.shape[1:] != image.shape[:2]:
        raise ValueError(f"probs must be a (C, H, W) array of the image's size "
                         f"{image.shape[:2]}, got {getattr(probs, 'shape', type(probs))}")
    if not np.isfinite(probs).all() or probs.min() < 0:
        raise ValueError("probs must be finite and non-negative")
    check_positive_int(stride, "stride")
    height, width = image.shape[:2]
    grid = (-(-height // stride), -(-width // stride))
    small = F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(probs, np.float32)), grid)
    if affinity is None:
        pixels = F.adaptive_avg_pool2d(torch.from_numpy(image).permute(2, 0, 1).float(), grid)
        affinity = colour_affinity(pixels.round().clamp(0, 255).byte().permute(1, 2, 0).numpy(),
                                   radius, scale)
    walked = random_walk(small, affinity, radius, "square", beta, steps)
    walked = F.interpolate(walked[None], size=(height, width), mode="bilinear",
                           align_corners=False)[0].clamp_min(0)
    total = walked.sum(dim=0, keepdim=True)
    walked = torch.where(total > 0, walked / total.clamp_min(1e-12), 1.0 / len(walked))
    scores = walked.numpy().astype(np.float32)
    ids = np.arange(len(scores)) if classes is None else np.asarray(classes)
    return Seeds(ids.astype(np.uint8)[scores.argmax(axis=0)], scores,
                 tuple(int(c) for c in ids))


def fuse_probabilities(image: np.ndarray, ours: np.ndarray, walked: np.ndarray,
                       classes: Optional[Sequence[int]] = None, ratio: float = 3.0,
                       preset: Union[str, None] = "final") -> Seeds:
    """The 1:3 fusion of section 3.6.1: ``(ours + ratio * walked) / (1 + ratio)``,
    then a dense CRF (``preset``; ``None`` skips it).

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        ours (numpy.ndarray): ``(C, H, W)`` probabilities (e.g. the GNN's
            softmax), summing to 1.
        walked (numpy.ndarray): ``(C, H, W)`` random-walk probabilities, summing
            to 1.
        classes (sequence of int, optional): label id of every row.
            (default: ``None``, ``0..C-1``)
        ratio (float, optional): weight of ``walked`` relative to ``ours``, >= 0.
            (default: ``3.0``)
        preset (str, optional): CRF preset, or ``None``. (default: ``"final"``)

    Returns:
        Seeds: labels (every pixel) and the fused (or CRF) probabilities.
    """
    image = check_image(image)
    ours = check_probabilities(ours, "ours", image.shape[:2])
    walked = check_probabilities(walked, "walked", image.shape[:2])
    if ours.shape != walked.shape:
        raise ValueError(f"ours {ours.shape} and walked {walked.shape} must have the same shape")
    if not ratio >= 0:
        raise ValueError(f"ratio must be >= 0, got {ratio}")
    fused = (ours + ratio * walked) / (1.0 + ratio)
    if preset is not None:
        return crf_labels(image, fused, classes, preset)
    ids = np.arange(len(fused)) if classes is None else np.asarray(classes)
    return Seeds(ids.astype(np.uint8)[fused.argmax(axis=0)], fused, tuple(int(c) for c in ids))
