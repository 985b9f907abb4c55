"""The two primitives of the grid kernels, written with tensor shifts (any device).

For a grid window graph with offsets ``o_k`` and ``(H, W, F)`` node tensors:

* ``offset_dot(a, b)[k, i] = <a_i, b_{i + o_k}>`` (0 where ``i + o_k`` is outside);
* ``offset_aggregate(p, y)[i] = sum_k p[k, i] y_{i + o_k}``, and with
  ``transpose=True`` ``[j] = sum_k p[k, j - o_k] y_{j - o_k}``: the transpose,
  which is the same shift seen from the other end of the edge.

:mod:`graphseg.ops.triton_grid` implements the same two functions as Triton
kernels; :mod:`graphseg.ops.grid_attention` builds Eq. 3.18 and its backward
from either.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from torch import Tensor


def shifts(offsets: Sequence[Sequence[int]], h: int, w: int) -> List[Tuple[int, tuple, tuple]]:
    """``(k, target slices, source slices)`` for every offset that fits in the grid."""
    out = []
    for k, (dy, dx) in enumerate(offsets):
        if abs(dy) >= h or abs(dx) >= w:
            continue
        target = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
        source = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
        out.append((k, target, source))
    return out


def offset_dot(a: Tensor, b: Tensor, offsets: Tensor) -> Tensor:
    """``(K, H, W)`` dot products of ``a`` at each node with ``b`` at each offset."""
    h, w, _ = a.shape
    out = a.new_zeros(offsets.size(0), h, w)
    for k, t, s in shifts(offsets.tolist(), h, w):
        out[k][t] = (a[t] * b[s]).sum(dim=-1)
    return out


def offset_aggregate(p: Tensor, y: Tensor, offsets: Tensor, transpose: bool = False) -> Tensor:
    """``(H, W, F)`` sums of ``y`` over the window weighted by the ``(K, H, W)`` planes ``p``."""
    h, w, _ = y.shape
    out = y.new_zeros(y.shape)
    for k, t, s in shifts(offsets.tolist(), h, w):
        if transpose:
            out[s].addcmul_(p[k][t].unsqueeze(-1), y[t])
        else:
            out[t].addcmul_(p[k][t].unsqueeze(-1), y[s])
    return out
