"""Several independent A2GNN models run as one (per-image training of a folder)."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.graph.adjacency import CSRAdjacency
from graphseg.nn.models.a2gnn import A2GNN, A2GNNOutput
from graphseg.ops.csr_attention import csr_attention


class BatchedA2GNN(nn.Module):
    r"""``B`` independent :class:`A2GNN` models (``layer="a2gnn"``), each with its
    own parameters, evaluated together on the block-diagonal union of their graphs
    (:meth:`~graphseg.graph.CSRAdjacency.block_diagonal`).

    Per-image training fits one model per photo (thesis section 3.3.5); the
    attention layers, which cost the most, then run once over all the photos'
    edges instead of once per photo, with each edge using the :math:`w` of its
    photo's layer.  The embedding and the classifier are per-photo matrix
    products.  Model ``b`` computes exactly what ``models[b]`` computes on its
    own graph; with the loss a sum of per-photo losses, every parameter's
    gradient is its photo's own, and Adam, elementwise, updates each model as
    if it were trained alone.

    Dropout draws each photo's mask from its own generator, so a photo's
    result does not depend on the others in the batch.

    Args:
        models (sequence of A2GNN): the initial models, same sizes and settings,
            ``layer="a2gnn"``, ``add_self_loops=True`` (their parameters are copied).

    Shapes:
        - **input:** node features :math:`(\sum_b N_b, D)`, photo ``b``'s nodes
          at ``ptr[b]:ptr[b + 1]``; the block-diagonal graph with self loops;
          the photo of every edge :math:`(E)`.
        - **output:** :class:`~graphseg.nn.models.a2gnn.A2GNNOutput`, logits
          :math:`(\sum_b N_b, C)` and features :math:`(\sum_b N_b, \text{hidden})`.
    """

    def __init__(self, models: Sequence[A2GNN]) -> None:
        super().__init__()
        models = list(models)
        if not models:
            raise ValueError("BatchedA2GNN needs at least one model")
        first = models[0]
        for model in models:
            if model.layer != "a2gnn":
                raise ValueError(f"BatchedA2GNN runs A2GNN's own layer, not {model.layer!r}")
            if not all(conv.add_self_loops for conv in model.convs):
                raise ValueError("BatchedA2GNN needs add_self_loops=True (the graph it is "
                                 "given carries the self loops)")
            if (repr(model) != repr(first) or model.dropout != first.dropout
                    or [(c.beta, c.negative, c.add_self_loops) for c in model.convs]
                    != [(c.beta, c.negative, c.add_self_loops) for c in first.convs]):
                raise ValueError("BatchedA2GNN: every model must have the same settings")
        self.dropout = first.dropout
        self.beta = [conv.beta for conv in first.convs]
        self.negative = [conv.negative for conv in first.convs]
        # (B, D, hidden), (L, B), (B, hidden, C), (B, C): x @ weight per photo
        self.embedding = nn.Parameter(torch.stack([m.embedding.weight.t() for m in models])
                                      .detach().clone())
        self.w = nn.Parameter(torch.stack([torch.cat([c.w for c in m.convs]) for m in models],
                                          dim=1).detach().clone())
        self.classifier = nn.Parameter(torch.stack([m.classifier.weight.t() for m in models])
                                       .detach().clone())
        self.bias = nn.Parameter(torch.stack([m.classifier.bias for m in models])
                                 .detach().clone())

    @property
    def num_models(self) -> int:
        return self.embedding.size(0)

    def forward(self, x: Tensor, adj: CSRAdjacency, ptr: Sequence[int], edge_model: Tensor,
                generators: Optional[Sequence[torch.Generator]] = None) -> A2GNNOutput:
        """``adj``: the block-diagonal graph with self loops; ``ptr``: ``B + 1`` node
        offsets; ``edge_model``: ``(E,)`` int64 photo of every edge (in ``adj``'s
        order); ``generators``: one per photo for dropout in training."""
        parts: List[Tensor] = []
        for b in range(self.num_models):
            h = F.relu(x[ptr[b]:ptr[b + 1]] @ self.embedding[b])
            if self.training and self.dropout > 0:
                # rand < p, not bernoulli_: the same law, about 3x faster on CPU
                keep = torch.rand(h.shape, generator=generators[b], device=h.device,
                                  dtype=h.dtype) >= self.dropout
                h = h * keep / (1 - self.dropout)
            parts.append(h)
        h = torch.cat(parts)
        for layer, (beta, negative) in enumerate(zip(self.beta, self.negative)):
            w = self.w[layer].index_select(0, edge_model)
            h, _ = csr_attention(h, adj, w, beta, negative)
        logits = torch.cat([h[ptr[b]:ptr[b + 1]] @ self.classifier[b] + self.bias[b]
                            for b in range(self.num_models)])
        return A2GNNOutput(logits, h)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.num_models} x A2GNN("
                f"{self.embedding.size(1)}, {self.classifier.size(2)}, hidden_channels="
                f"{self.embedding.size(2)}, num_layers={self.w.size(0)}))")
