"""Affinity edge weights (thesis Eq. 3.8 and 3.14) and node feature normalisation (Eq. 3.15)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.graph.grid import window_offsets
from graphseg.utils.checks import check_finite, check_tensor


def check_feature_map(features: Tensor, name: str) -> Tensor:
    """Validate a ``(C, H, W)`` floating feature map."""
    check_tensor(features, name)
    if features.dim() != 3:
        raise ValueError(f"{name} must have shape (C, H, W), got {tuple(features.shape)}")
    if not features.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {features.dtype}")
    if features.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(features.shape)}")
    check_finite(features, name)
    return features


def grid_affinity(features: Tensor, radius: int, window: str = "square",
                  self_loops: bool = True) -> Tensor:
    r"""Affinities of every node to every window offset, one ``H x W`` plane per offset.

    .. math::
        D(i, j) = \exp\left(-\frac{\lVert f_i - f_j \rVert_1}{C}\right)

    (Eq. 3.8, ``C`` the channel count, so ``D`` is in ``(0, 1]`` and 1 on the
    self loop).  Computed by shifts: memory is ``O(K * H * W)`` plus one shifted
    copy of ``features``, never ``O(E * C)``.  Only half of the offsets are
    computed; the other half follows from ``D(i, j) = D(j, i)``.

    Args:
        features (Tensor): ``(C, H, W)`` affinity feature map, e.g. the
            affinity head's output.
        radius (int): the window's radius, as in :func:`~graphseg.graph.grid_graph`.
        window (str, optional): the window's shape, as in
            :func:`~graphseg.graph.grid_graph`. (default: ``"square"``)
        self_loops (bool, optional): the window's self loop, as in
            :func:`~graphseg.graph.grid_graph`. (default: ``True``)

    Returns:
        Tensor: ``(K, H, W)`` weights; ``out[k, y, x]`` joins node ``(y, x)``
        to ``(y + dy, x + dx)`` for ``(dy, dx) = window_offsets(...)[k]``,
        and is 0 where that neighbour falls outside the map.
    """
    check_feature_map(features, "features")
    offsets = window_offsets(radius, window, self_loops).tolist()
    c, h, w = features.shape
    out = features.new_zeros(len(offsets), h, w)
    for k, (dy, dx) in enumerate(offsets):
        if (dy, dx) < (0, 0):
            continue  # filled from its mirror below
        if dy >= h or abs(dx) >= w:
            continue
        # target rows/cols y, x and their neighbours y + dy, x + dx, all inside the map
        ty = slice(0, h - dy)
        sy = slice(dy, h)
        tx = slice(max(0, -dx), w - max(0, dx))
        sx = slice(max(0, dx), w - max(0, -dx))
        d = torch.exp(-(features[:, ty, tx] - features[:, sy, sx]).abs().mean(dim=0))
        out[k, ty, tx] = d
        out[len(offsets) - 1 - k, sy, sx] = d  # the mirrored offset, seen from the neighbour
    return out


def l1_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    r"""Divide every row by its L1 norm (Eq. 3.15): :math:`x_{i,j} / \sum_j |x_{i,j}|`.

    For non-negative features (CNN activations after ReLU) this is exactly
    Eq. 3.15; the absolute value keeps it well defined for signed features.
    Rows of zeros stay zero.
    """
    return F.normalize(x, p=1.0, dim=-1, eps=eps)
