"""Triton kernels for the two grid primitives of :mod:`graphseg.ops.grid_shifts`.

One program handles a block of nodes (and, for the aggregation, a block of
channels) and loops over the ``K`` window offsets, reading neighbours by
address arithmetic on the ``(H, W, F)`` layout: no index tensors, and the
transpose is the mirrored read, so there are no atomics.  Accumulation is in
float32.  Import this module only when Triton is installed; with
``TRITON_INTERPRET=1`` set before the import the kernels run on CPU tensors
(slowly), which is how they are tested without a GPU.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK_NODES = 32
BLOCK_CHANNELS = 64


@triton.jit
def _offset_dot_kernel(a_ptr, b_ptr, off_ptr, out_ptr, num_k, height, width, channels,
                       BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr):
    nodes = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    num_nodes = height * width
    in_grid = nodes < num_nodes
    y = nodes // width
    x = nodes % width
    chans = tl.arange(0, BLOCK_F)
    for k in range(num_k):
        dy = tl.load(off_ptr + 2 * k)
        dx = tl.load(off_ptr + 2 * k + 1)
        valid = in_grid & (y + dy >= 0) & (y + dy < height) & (x + dx >= 0) & (x + dx < width)
        source = nodes + dy * width + dx
        acc = tl.zeros([BLOCK_N], dtype=tl.float32)
        for f0 in range(0, channels, BLOCK_F):
            cmask = f0 + chans < channels
            m = valid[:, None] & cmask[None, :]
            a = tl.load(a_ptr + nodes[:, None] * channels + f0 + chans[None, :], mask=m,
                        other=0.0)
            b = tl.load(b_ptr + source[:, None] * channels + f0 + chans[None, :], mask=m,
                        other=0.0)
            acc += tl.sum(a.to(tl.float32) * b.to(tl.float32), axis=1)
        tl.store(out_ptr + k * num_nodes + nodes, acc, mask=in_grid)


@triton.jit
def _offset_aggregate_kernel(p_ptr, y_ptr, off_ptr, out_ptr, num_k, height, width, channels,
                             TRANSPOSE: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_F: tl.constexpr):
    nodes = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    chans = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    num_nodes = height * width
    in_grid = nodes < num_nodes
    cmask = chans < channels
    row = nodes // width
    col = nodes % width
    acc = tl.zeros([BLOCK_N, BLOCK_F], dtype=tl.float32)
    for k in range(num_k):
        dy = tl.load(off_ptr + 2 * k)
        dx = tl.load(off_ptr + 2 * k + 1)
        if TRANSPOSE:  # [j] += p[k, j - o_k] * y[j - o_k]
            dy = -dy
            dx = -dx
        valid = in_grid & (row + dy >= 0) & (row + dy < height) & (col + dx >= 0) \
            & (col + dx < width)
        source = nodes + dy * width + dx
        if TRANSPOSE:
            p = tl.load(p_ptr + k * num_nodes + source, mask=valid, other=0.0)
        else:
            p = tl.load(p_ptr + k * num_nodes + nodes, mask=valid, other=0.0)
        vals = tl.load(y_ptr + source[:, None] * channels + chans[None, :],
                       mask=valid[:, None] & cmask[None, :], other=0.0)
        acc += p.to(tl.float32)[:, None] * vals.to(tl.float32)
    tl.store(out_ptr + nodes[:, None] * channels + chans[None, :], acc,
             mask=in_grid[:, None] & cmask[None, :])


def _offsets_on(offsets: Tensor, device) -> Tensor:
    return offsets.to(device=device, dtype=torch.int32).contiguous()


def offset_dot(a: Tensor, b: Tensor, offsets: Tensor) -> Tensor:
    """Triton version of :func:`graphseg.ops.grid_shifts.offset_dot`."""
    h, w, f = a.shape
    a, b = a.contiguous(), b.contiguous()
    out = torch.empty(offsets.size(0), h, w, device=a.device, dtype=torch.float32)
    grid = (triton.cdiv(h * w, BLOCK_NODES),)
    _offset_dot_kernel[grid](a, b, _offsets_on(offsets, a.device), out, offsets.size(0), h, w,
                             f, BLOCK_N=BLOCK_NODES, BLOCK_F=BLOCK_CHANNELS)
    return out.to(a.dtype)


def offset_aggregate(p: Tensor, y: Tensor, offsets: Tensor, transpose: bool = False) -> Tensor:
    """Triton version of :func:`graphseg.ops.grid_shifts.offset_aggregate`."""
    h, w, f = y.shape
    p, y = p.contiguous(), y.contiguous()
    out = torch.empty(h, w, f, device=y.device, dtype=torch.float32)
    grid = (triton.cdiv(h * w, BLOCK_NODES), triton.cdiv(f, BLOCK_CHANNELS))
    _offset_aggregate_kernel[grid](p, y, _offsets_on(offsets, y.device), out, offsets.size(0),
                                   h, w, f, TRANSPOSE=transpose, BLOCK_N=BLOCK_NODES,
                                   BLOCK_F=BLOCK_CHANNELS)
    return out.to(y.dtype)
