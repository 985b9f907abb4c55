"""Layers and models: :class:`AffinityAttentionConv` (Eq. 3.18), :class:`A2GNN`,
:class:`RFAM` (Eq. 2.8-2.12) and :class:`RRMNet`."""
from graphseg.nn.conv import AffinityAttentionConv
from graphseg.nn.heads import RFAM
from graphseg.nn.models import A2GNN, A2GNNOutput, RRMNet, RRMOutput

__all__ = ["A2GNN", "A2GNNOutput", "AffinityAttentionConv", "RFAM", "RRMNet", "RRMOutput"]
