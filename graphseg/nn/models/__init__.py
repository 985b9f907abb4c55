"""Models built from the layers in :mod:`graphseg.nn.conv`."""
from graphseg.nn.models.a2gnn import A2GNN, A2GNNOutput

__all__ = ["A2GNN", "A2GNNOutput"]
