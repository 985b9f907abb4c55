"""Layers and models: :class:`AffinityAttentionConv` (Eq. 3.18) and :class:`A2GNN`."""
from graphseg.nn.conv import AffinityAttentionConv
from graphseg.nn.models import A2GNN, A2GNNOutput

__all__ = ["A2GNN", "A2GNNOutput", "AffinityAttentionConv"]
