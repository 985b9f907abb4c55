"""Kernels behind :class:`~graphseg.nn.AffinityAttentionConv`: one module per layout.

* :func:`grid_attention`: shifts over window offsets (grid graphs).
* :func:`csr_attention`: SDDMM, segment softmax and SpMM (any graph).
* :func:`dense_attention`: ``N x N`` matrices (small graphs).

All compute Eq. 3.18 with the logits of :mod:`graphseg.ops.scores`.
:func:`window_l1_distance`: window L1 feature distances, memory-lean (DFR's losses).
"""
from graphseg.ops.csr_attention import csr_attention
from graphseg.ops.dense_attention import dense_attention
from graphseg.ops.grid_attention import grid_attention
from graphseg.ops.window_distance import window_l1_distance

__all__ = ["csr_attention", "dense_attention", "grid_attention", "window_l1_distance"]
