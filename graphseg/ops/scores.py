"""The attention logits of Eq. 3.18, shared by every kernel.

Each kernel lays edges out differently (per-offset planes, CSR values, dense
matrices) but computes the same elementwise logits from the cosines and edge
weights; they live here once, with their backward.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

NEGATIVE_MODES = ("gate", "mask")


def attention_logits(cos: Tensor, weight: Optional[Tensor], w: Tensor, beta: float,
                     negative: str, valid: Tensor, is_self: Tensor
                     ) -> Tuple[Tensor, Tensor, Tensor]:
    """Logits ``s``, the edges that take part in the softmax, and the edge-term gate.

    ``"gate"``: ``s = w cos + beta [cos > 0] E``, every edge takes part.
    ``"mask"``: ``s = w cos + beta E``, edges with ``cos < 0`` are dropped
    except self loops.  ``weight=None`` means no edge term (AGNN).
    """
    if negative == "gate":
        gate = (cos > 0).to(cos.dtype)
    else:
        gate = torch.ones_like(cos)
        valid = valid & ((cos >= 0) | is_self)
    logits = w * cos
    if weight is not None:
        logits = logits + beta * gate * weight
    return logits, valid, gate


def attention_logits_backward(grad_logits: Tensor, cos: Tensor, gate: Tensor, w: Tensor,
                              beta: float, need_weight_grad: bool
                              ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Gradients of the logits with respect to ``cos``, ``w`` and the edge weights.

    ``w`` is one scalar ``(1,)`` or one per edge (several graphs' layers run as one
    block-diagonal graph, each with its own ``w``); its gradient has its shape.
    """
    grad_cos = grad_logits * w
    grad_w = grad_logits * cos
    grad_w = grad_w.sum().reshape(1) if w.numel() == 1 else grad_w.reshape(w.shape)
    grad_weight = grad_logits * gate * beta if need_weight_grad else None
    return grad_cos, grad_w, grad_weight


def normalize_backward(grad_xn: Tensor, xn: Tensor, norm: Tensor, eps: float) -> Tensor:
    """Gradient through ``xn = x / max(||x||, eps)`` along the last dimension.

    Works in place on ``grad_xn`` (no ``N x F`` temporaries: the kernels' peak
    memory is set in their backward pass) and returns it.
    """
    dot = torch.einsum("...f,...f->...", xn, grad_xn).unsqueeze(-1)
    # below eps the norm is a constant and there is nothing to project out
    dot = torch.where(norm > eps, dot, torch.zeros_like(dot))
    return grad_xn.addcmul_(xn, dot, value=-1).div_(norm.clamp_min(eps))
