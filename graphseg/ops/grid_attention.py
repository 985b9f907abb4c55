"""Affinity attention on grid window graphs, without index tensors.

The window is the same at every pixel, so Eq. 3.18 is built from two
primitives over the ``K`` window offsets (:mod:`graphseg.ops.grid_shifts`):
the cosines are an ``offset_dot``, the softmax runs over the ``K`` axis, and
the aggregation is an ``offset_aggregate``.  The backward pass uses the same
primitives, the transpose being the mirrored read (the window is symmetric),
so it needs neither gathers nor atomics.  Features stay in their ``(N, F)`` =
``(H, W, F)`` layout, nothing of size ``E x F`` is formed, and memory is about
``N * F`` plus a few ``K * N`` planes.

Two backends implement the primitives: tensor shifts (``"torch"``, any device)
and Triton kernels (``"triton"``, the default for CUDA tensors when Triton is
installed).
"""
from __future__ import annotations

import importlib.util
from typing import Optional, Tuple

import torch
from torch import Tensor

from graphseg.graph.adjacency import GridAdjacency
from graphseg.ops import grid_shifts
from graphseg.ops.scores import (
    attention_logits,
    attention_logits_backward,
    normalize_backward,
)

EPS = 1e-12  # as F.normalize
BACKENDS = ("auto", "torch", "triton")


def _primitives(backend: str, device: torch.device):
    if backend == "auto":
        usable = device.type == "cuda" and importlib.util.find_spec("triton") is not None
        backend = "triton" if usable else "torch"
    if backend == "triton":
        from graphseg.ops import triton_grid
        return triton_grid
    return grid_shifts


class _GridAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Optional[Tensor], w: Tensor, mask: Tensor,
                offsets: Tensor, beta: float, negative: str, self_k: int, add_self_loops: bool,
                ops):
        num_k, h, wd = mask.shape
        xg = x.reshape(h, wd, -1)
        norm = xg.norm(dim=-1, keepdim=True)
        xn = xg / norm.clamp_min(EPS)
        cos = ops.offset_dot(xn, xn, offsets)

        is_self = torch.zeros(num_k, 1, 1, dtype=torch.bool, device=x.device)
        is_self[self_k] = True
        valid = mask
        if add_self_loops:
            valid = mask | is_self
            if weight is not None:
                weight = torch.where(is_self, torch.ones_like(weight), weight)
        logits, valid, gate = attention_logits(cos, weight, w, beta, negative, valid, is_self)

        # softmax over the offsets; a node with no valid edge gets zeros
        logits = logits.masked_fill(~valid, float("-inf"))
        top = logits.amax(dim=0)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        alpha = torch.exp(logits - top)
        total = alpha.sum(dim=0)
        alpha = alpha / torch.where(total > 0, total, torch.ones_like(total))
        out = ops.offset_aggregate(alpha, xg, offsets)

        ctx.save_for_backward(x, norm, cos, gate, alpha, out, w, offsets)
        ctx.beta, ctx.self_k, ctx.ops = beta, self_k, ops
        ctx.add_self_loops, ctx.has_weight = add_self_loops, weight is not None
        ctx.mark_non_differentiable(alpha)
        return out.reshape(x.shape), alpha

    @staticmethod
    def backward(ctx, grad_out: Tensor, _grad_alpha):
        x, norm, cos, gate, alpha, out, w, offsets = ctx.saved_tensors
        ops = ctx.ops
        num_k, h, wd = alpha.shape
        xg = x.reshape(h, wd, -1)
        xn = xg / norm.clamp_min(EPS)
        dout = grad_out.reshape(h, wd, -1)

        # softmax backward: ds = alpha * (dalpha - sum_k alpha dalpha), the sum being <dout, out>
        grad_alpha = ops.offset_dot(dout, xg, offsets)
        grad_logits = alpha * (grad_alpha - (dout * out).sum(dim=-1))
        need_weight = ctx.has_weight and ctx.needs_input_grad[1]
        grad_cos, grad_w, grad_weight = attention_logits_backward(
            grad_logits, cos, gate, w, ctx.beta, need_weight)
        if grad_weight is not None and ctx.add_self_loops:
            grad_weight[ctx.self_k] = 0  # the input's self-loop weights were replaced by 1

        grad_x = ops.offset_aggregate(alpha, dout, offsets, transpose=True)
        # cos depends on both ends of the edge
        grad_xn = ops.offset_aggregate(grad_cos, xn, offsets)
        grad_xn += ops.offset_aggregate(grad_cos, xn, offsets, transpose=True)
        grad_x += normalize_backward(grad_xn, xn, norm, EPS)
        grad_w = grad_w if ctx.needs_input_grad[2] else None
        return (grad_x.reshape(x.shape), grad_weight, grad_w) + (None,) * 7


def grid_attention(x: Tensor, adj: GridAdjacency, w: Tensor, beta: float, negative: str,
                   add_self_loops: bool, backend: str = "auto") -> Tuple[Tensor, Tensor]:
    """Eq. 3.18 on a grid graph.

    Args:
        x (Tensor): ``(H * W, F)`` node features, row-major.
        adj (GridAdjacency): the graph.
        w (Tensor): ``(1,)`` learnable cosine coefficient.
        beta (float): edge coefficient.
        negative (str): ``"gate"`` or ``"mask"``.
        add_self_loops (bool): every node attends to itself with edge weight 1.
        backend (str, optional): ``"torch"`` (shifts), ``"triton"`` (kernels;
            CUDA, or CPU under ``TRITON_INTERPRET=1``) or ``"auto"`` (Triton
            for CUDA tensors when it is installed). (default: ``"auto"``)

    Returns:
        tuple: ``(out, alpha)``: ``(H * W, F)`` features and the ``(K, H, W)``
        attention.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    ops = _primitives(backend, x.device)
    weight = None if adj.weight is None else adj.weight.to(x.dtype)
    offsets = adj.offsets.to(x.device)
    return _GridAttention.apply(x, weight, w.to(x.dtype), adj.mask, offsets, beta, negative,
                                adj.self_offset, add_self_loops, ops)
