"""Models built from the layers in :mod:`graphseg.nn.conv`, and the affinity CNN."""
from graphseg.nn.models.a2gnn import A2GNN, A2GNNOutput
from graphseg.nn.models.affinity_net import (
    AffinityNet,
    AffinityOutput,
    affinity_graph,
    affinity_maps,
)

__all__ = ["A2GNN", "A2GNNOutput", "AffinityNet", "AffinityOutput", "affinity_graph",
           "affinity_maps"]
