"""Affinity attention with dense ``N x N`` matrices, for small graphs.

A masked GEMM, softmax and GEMM: simple and fast for a few thousand nodes on
a GPU, and the layout of the authors' release.  Memory is ``O(N^2)``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.ops.scores import attention_logits

MAX_NODES = 16384  # N^2 floats = 1 GiB


def dense_attention(x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor], w: Tensor,
                    beta: float, negative: str) -> Tuple[Tensor, Tensor]:
    """Eq. 3.18 with dense matrices; self loops must already be in ``edge_index``.

    Returns ``(out, alpha)`` with ``alpha`` in the order of ``edge_index``.
    Duplicate edges are merged (the last weight wins).
    """
    n = x.size(0)
    if n > MAX_NODES:
        raise ValueError(f"impl='dense' needs an N x N matrix; N = {n} exceeds {MAX_NODES}: "
                         "use impl='csr' or 'grid'")
    src, dst = edge_index
    adjacent = torch.zeros(n, n, dtype=torch.bool, device=x.device)
    adjacent[dst, src] = True
    weight = None
    if edge_weight is not None:
        weight = torch.zeros(n, n, dtype=x.dtype, device=x.device).index_put(
            (dst, src), edge_weight.to(x.dtype))
    xn = F.normalize(x, p=2.0, dim=-1)
    cos = xn @ xn.t()
    is_self = torch.eye(n, dtype=torch.bool, device=x.device)
    logits, valid, _ = attention_logits(cos, weight, w, beta, negative, adjacent, is_self)
    logits = logits.masked_fill(~valid, float("-inf"))
    # rows without a valid entry would be NaN: give them zeros
    alpha = torch.nan_to_num(logits.softmax(dim=1), nan=0.0)
    return alpha @ x, alpha[dst, src]
