"""Affinity attention on grid window graphs by shifts (CPU and any torch device).

The window is the same at every pixel, so Eq. 3.18 needs no index tensors: for
each of the ``K`` offsets, the cosines are a shifted elementwise product reduced
over channels, the softmax runs over the ``K`` axis, and the aggregation is
``K`` shifted multiply-adds.  Features stay in their ``(N, F)`` = ``(H, W, F)``
layout (no copy), nothing of size ``E x F`` is formed, and the backward pass
uses the same shifts in the other direction (the window is symmetric), so it
needs neither gathers nor atomics.  Memory: about ``N * F`` plus ``K * N``.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from graphseg.graph.adjacency import GridAdjacency
from graphseg.ops.scores import (
    attention_logits,
    attention_logits_backward,
    normalize_backward,
)

EPS = 1e-12  # as F.normalize


def _shifts(offsets: List[Tuple[int, int]], h: int, w: int):
    """``(k, target slices, source slices)`` for every offset that fits in the grid."""
    out = []
    for k, (dy, dx) in enumerate(offsets):
        if abs(dy) >= h or abs(dx) >= w:
            continue
        target = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
        source = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
        out.append((k, target, source))
    return out


class _GridAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Optional[Tensor], w: Tensor, mask: Tensor,
                shifts, beta: float, negative: str, self_k: int, add_self_loops: bool):
        num_k, h, wd = mask.shape
        xg = x.reshape(h, wd, -1)
        norm = xg.norm(dim=-1, keepdim=True)
        xn = xg / norm.clamp_min(EPS)

        cos = x.new_zeros(num_k, h, wd)
        for k, t, s in shifts:
            cos[k][t] = (xn[t] * xn[s]).sum(dim=-1)

        valid = mask
        is_self = torch.zeros(num_k, 1, 1, dtype=torch.bool, device=x.device)
        is_self[self_k] = True
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

        out = torch.zeros_like(xg)
        for k, t, s in shifts:
            out[t].addcmul_(alpha[k][t].unsqueeze(-1), xg[s])

        ctx.save_for_backward(x, norm, cos, gate, alpha, out, w)
        ctx.shifts, ctx.beta, ctx.self_k = shifts, beta, self_k
        ctx.add_self_loops = add_self_loops
        ctx.has_weight = weight is not None
        ctx.mark_non_differentiable(alpha)
        return out.reshape(x.shape), alpha

    @staticmethod
    def backward(ctx, grad_out: Tensor, _grad_alpha):
        x, norm, cos, gate, alpha, out, w = ctx.saved_tensors
        num_k, h, wd = alpha.shape
        xg = x.reshape(h, wd, -1)
        xn = xg / norm.clamp_min(EPS)
        dout = grad_out.reshape(h, wd, -1)

        grad_alpha = torch.zeros_like(alpha)
        for k, t, s in ctx.shifts:
            grad_alpha[k][t] = (dout[t] * xg[s]).sum(dim=-1)
        # softmax backward: ds = alpha * (dalpha - sum_k alpha dalpha), the sum being <dout, out>
        grad_logits = alpha * (grad_alpha - (dout * out).sum(dim=-1))
        need_weight = ctx.has_weight and ctx.needs_input_grad[1]
        grad_cos, grad_w, grad_weight = attention_logits_backward(
            grad_logits, cos, gate, w, ctx.beta, need_weight)
        if grad_weight is not None and ctx.add_self_loops:
            grad_weight[ctx.self_k] = 0  # the input's self-loop weights were replaced by 1

        grad_x = torch.zeros_like(xg)
        grad_xn = torch.zeros_like(xg)
        for k, t, s in ctx.shifts:
            a_k = alpha[k][t].unsqueeze(-1)
            c_k = grad_cos[k][t].unsqueeze(-1)
            grad_x[s].addcmul_(a_k, dout[t])   # transpose of the aggregation
            grad_xn[t].addcmul_(c_k, xn[s])    # cos depends on both ends of the edge
            grad_xn[s].addcmul_(c_k, xn[t])
        grad_x += normalize_backward(grad_xn, xn, norm, EPS)
        grad_w = grad_w if ctx.needs_input_grad[2] else None
        return grad_x.reshape(x.shape), grad_weight, grad_w, None, None, None, None, None, None


def grid_attention(x: Tensor, adj: GridAdjacency, w: Tensor, beta: float, negative: str,
                   add_self_loops: bool) -> Tuple[Tensor, Tensor]:
    """Eq. 3.18 on a grid graph.

    Args:
        x (Tensor): ``(H * W, F)`` node features, row-major.
        adj (GridAdjacency): the graph.
        w (Tensor): ``(1,)`` learnable cosine coefficient.
        beta (float): edge coefficient.
        negative (str): ``"gate"`` or ``"mask"``.
        add_self_loops (bool): every node attends to itself with edge weight 1.

    Returns:
        ``(out, alpha)``: ``(H * W, F)`` features and the ``(K, H, W)`` attention.
    """
    shifts = _shifts(adj.offsets.tolist(), adj.height, adj.width)
    weight = None if adj.weight is None else adj.weight.to(x.dtype)
    return _GridAttention.apply(x, weight, w.to(x.dtype), adj.mask, shifts, beta, negative,
                                adj.self_offset, add_self_loops)
