"""The A2GNN model (thesis Eq. 3.16-3.19)."""
from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import AGNNConv, GATConv, GCNConv
from torch_geometric.typing import Adj, OptTensor

from graphseg.graph.adjacency import CSRAdjacency, GridAdjacency
from graphseg.nn.conv.affinity_attention_conv import AffinityAttentionConv
from graphseg.utils.checks import check_choice, check_positive_int

LAYERS = ("a2gnn", "gcn", "gat", "agnn")


class A2GNNOutput(NamedTuple):
    """What :class:`A2GNN` returns."""

    logits: Tensor
    """``(N, num_classes)`` class logits; ``softmax`` gives :math:`O` of Eq. 3.19."""
    features: Tensor
    """``(N, hidden_channels)`` features after the last attention layer,
    :math:`H^{L+1}`, used by the MP loss and consistency checking."""


class A2GNN(nn.Module):
    r"""Affinity Attention Graph Neural Network (thesis section 3.3.4).

    .. math::
        H^1 = \mathrm{Dropout}(\mathrm{ReLU}(X W^0)), \quad
        H^{l+1} = P^l H^l \ (l = 1..L), \quad
        O = \mathrm{softmax}(H^{L+1} W^{L+1})

    with :math:`P^l` the affinity attention of
    :class:`~graphseg.nn.AffinityAttentionConv` (Eq. 3.18).  Nothing sits
    between the attention layers, as in the authors' release.

    ``layer`` swaps the propagation layers for PyG's ``GCNConv`` (with the
    edge weights), ``GATConv`` (one head) or ``AGNNConv`` in the same
    architecture, the comparison of the thesis' Fig. 3.7.  Those take an
    ``edge_index`` (a ``GridAdjacency`` / ``CSRAdjacency`` is converted).

    Args:
        in_channels (int): node feature size :math:`D`.
        num_classes (int): output classes (background included).
        hidden_channels (int, optional): embedding size. (default: ``256``)
        num_layers (int, optional): attention layers :math:`L`. (default: ``3``)
        dropout (float, optional): dropout after the embedding. (default: ``0.5``)
        beta (float, optional): edge coefficient of every layer. (default: ``10.0``)
        negative (str, optional): ``"gate"`` (thesis) or ``"mask"`` (release).
            (default: ``"gate"``)
        add_self_loops (bool, optional): see the layer. (default: ``True``)
        impl (str, optional): the layers' implementation, see
            :class:`~graphseg.nn.AffinityAttentionConv`. (default: ``"auto"``)
        layer (str, optional): ``"a2gnn"``, ``"gcn"``, ``"gat"`` or ``"agnn"``.
            (default: ``"a2gnn"``)

    Shapes:
        - **input:** node features :math:`(N, D)`, edge indices :math:`(2, E)`
          (or a sparse adjacency, :class:`~graphseg.graph.GridAdjacency` or
          :class:`~graphseg.graph.CSRAdjacency`), edge weights :math:`(E)`
          *(optional)*; a single graph or a PyG batch.
        - **output:** :class:`A2GNNOutput` with logits :math:`(N, C)` and
          features :math:`(N, \text{hidden})`.

    Example:
        >>> import torch
        >>> from graphseg.graph import image_to_graph
        >>> from graphseg.nn import A2GNN
        >>> model = A2GNN(in_channels=32, num_classes=2)
        >>> data = image_to_graph(torch.rand(32, 10, 10), radius=2)
        >>> logits, features = model(data.x, data.edge_index, data.edge_weight)
        >>> logits.shape, features.shape
        (torch.Size([100, 2]), torch.Size([100, 256]))
    """

    def __init__(self, in_channels: int, num_classes: int, hidden_channels: int = 256,
                 num_layers: int = 3, dropout: float = 0.5, beta: float = 10.0,
                 negative: str = "gate", add_self_loops: bool = True,
                 impl: str = "auto", layer: str = "a2gnn") -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(num_classes, "num_classes")
        check_positive_int(hidden_channels, "hidden_channels")
        check_positive_int(num_layers, "num_layers", minimum=0)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = dropout
        self.layer = check_choice(layer, "layer", LAYERS)
        self.embedding = nn.Linear(in_channels, hidden_channels, bias=False)

        def make_conv():
            if layer == "gcn":
                return GCNConv(hidden_channels, hidden_channels, add_self_loops=add_self_loops)
            if layer == "gat":
                return GATConv(hidden_channels, hidden_channels, heads=1,
                               add_self_loops=add_self_loops)
            if layer == "agnn":
                return AGNNConv(add_self_loops=add_self_loops)
            return AffinityAttentionConv(beta=beta, negative=negative,
                                         add_self_loops=add_self_loops, impl=impl)

        self.convs = nn.ModuleList(make_conv() for _ in range(num_layers))
        self.classifier = nn.Linear(hidden_channels, num_classes)

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        self.classifier.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj, edge_weight: OptTensor = None) -> A2GNNOutput:
        h = F.relu(self.embedding(x))
        h = F.dropout(h, p=self.dropout, training=self.training)
        if self.layer != "a2gnn" and isinstance(edge_index, (GridAdjacency, CSRAdjacency)):
            edge_index, edge_weight = edge_index.to_edge_index()
        for conv in self.convs:
            if self.layer in ("a2gnn", "gcn"):
                h = conv(h, edge_index, edge_weight)
            else:  # GAT and AGNN take no edge weights
                h = conv(h, edge_index)
        return A2GNNOutput(self.classifier(h), h)

    def __repr__(self) -> str:
        layer = "" if self.layer == "a2gnn" else f", layer={self.layer!r}"
        return (f"{self.__class__.__name__}({self.embedding.in_features}, "
                f"{self.classifier.out_features}, hidden_channels="
                f"{self.embedding.out_features}, num_layers={len(self.convs)}{layer})")
