r"""L1 feature distances between every pixel and its window neighbours, memory-lean.

.. math::
    \mathrm{out}[b, k, y, x] = \sum_c \lvert F[b, c, y, x] - F[b, c, y + dy_k, x + dx_k] \rvert

for window offsets :math:`(dy_k, dx_k)` (0 where the neighbour is outside the grid,
and on the self offset).  DFR's feature distance and feature regularised losses
(thesis Eq. 4.10-4.12, :mod:`graphseg.losses.dfr`) are built on it.

**Memory.** Written with autograd, every offset would keep its ``(B, D, H, W)``
difference for backward: ``K x B x D x H x W`` (``K = 121`` offsets for DFR's
radius 5).  :func:`window_l1_distance` is an :class:`torch.autograd.Function`
that saves only the input features and recomputes each offset's difference in
backward, one at a time: ``K x B x H x W`` for the output plus one
``(B, D, H, W)`` working difference.  When the offsets come in mirror pairs
(offset ``K - 1 - k`` is ``-offset k``, as :func:`~graphseg.graph.window_offsets`
gives them) only half of them are computed: the mirror plane is the same pair
seen from the other end.  Pure tensor shifts (:func:`~graphseg.ops.grid_shifts.shifts`):
any device, no compiled extension.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphseg.ops.grid_shifts import shifts
from graphseg.utils.checks import check_tensor

__all__ = ["window_l1_distance"]

Offsets = Tuple[Tuple[int, int], ...]


def _plan(offsets: Offsets, h: int, w: int) -> list:
    """``(k, mirror k or None, target slices, source slices)`` for the offsets to compute."""
    num_k = len(offsets)
    mirrored = all(offsets[num_k - 1 - k] == (-dy, -dx) for k, (dy, dx) in enumerate(offsets))
    plan = []
    for k, t, s in shifts(offsets, h, w):
        if offsets[k] == (0, 0):  # the self pair: distance 0
            continue
        if mirrored:
            if k >= num_k // 2:  # the mirror half
                break
            plan.append((k, num_k - 1 - k, t, s))
        else:
            plan.append((k, None, t, s))
    return plan


class _WindowL1Distance(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features: Tensor, offsets: Offsets) -> Tensor:
        b, _, h, w = features.shape
        out = features.new_zeros(b, len(offsets), h, w)
        for k, mirror, t, s in _plan(offsets, h, w):
            dist = (features[:, :, t[0], t[1]] - features[:, :, s[0], s[1]]).abs().sum(dim=1)
            out[:, k, t[0], t[1]] = dist
            if mirror is not None:
                out[:, mirror, s[0], s[1]] = dist
        ctx.save_for_backward(features)
        ctx.offsets = offsets
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        (features,) = ctx.saved_tensors
        _, _, h, w = features.shape
        grad = torch.zeros_like(features)
        for k, mirror, t, s in _plan(ctx.offsets, h, w):
            g = grad_out[:, k, t[0], t[1]]
            if mirror is not None:
                g = g + grad_out[:, mirror, s[0], s[1]]
            # d|a - b| / da = sign(a - b) (0 where a == b), d / db = -sign(a - b)
            step = (features[:, :, t[0], t[1]] - features[:, :, s[0], s[1]]).sign_()
            step.mul_(g.unsqueeze(1))
            grad[:, :, t[0], t[1]] += step
            grad[:, :, s[0], s[1]] -= step
        return grad, None


def _check_offsets(offsets: Tensor) -> Offsets:
    check_tensor(offsets, "offsets")
    if offsets.dim() != 2 or offsets.size(1) != 2:
        raise ValueError(f"offsets must have shape (K, 2) (dy, dx), got {tuple(offsets.shape)}")
    if offsets.is_floating_point() or offsets.is_complex() or offsets.dtype == torch.bool:
        raise TypeError(f"offsets must be an integer tensor, got {offsets.dtype}")
    return tuple((int(dy), int(dx)) for dy, dx in offsets.tolist())


def window_l1_distance(features: Tensor, offsets: Tensor) -> Tensor:
    r"""The L1 distance between every pixel's features and its neighbours' at ``offsets``.

    Differentiable in ``features`` (the subgradient ``sign(0) = 0`` where two
    features are equal) without keeping any per-offset difference for backward:
    see the module notes for the memory.

    Args:
        features (Tensor): ``(B, D, H, W)`` floating feature maps.
        offsets (Tensor): ``(K, 2)`` integer offsets ``(dy, dx)``, e.g.
            :func:`~graphseg.graph.window_offsets`; offsets that do not fit in the
            grid give zero planes.

    Returns:
        Tensor: ``(B, K, H, W)``, ``out[b, k, y, x]`` the L1 distance between
        ``(y, x)`` and ``(y + dy_k, x + dx_k)``; 0 outside the grid and on ``(0, 0)``.

    Example:
        >>> import torch
        >>> from graphseg.graph import window_offsets
        >>> from graphseg.ops import window_l1_distance
        >>> features = torch.tensor([[[[0.0, 1.0, 3.0]]]])  # (1, 1, 1, 3)
        >>> window_l1_distance(features, window_offsets(1))[0, :, 0].tolist()[3:6]
        [[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 2.0, 0.0]]
    """
    check_tensor(features, "features")
    if features.dim() != 4:
        raise ValueError(f"features must have shape (B, D, H, W), got {tuple(features.shape)}")
    if not features.is_floating_point():
        raise TypeError(f"features must be a floating tensor, got {features.dtype}")
    return _WindowL1Distance.apply(features, _check_offsets(offsets))
