"""The affinity attention layer of A2GNN (thesis Eq. 3.18)."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import (
    add_self_loops,
    is_torch_sparse_tensor,
    remove_self_loops,
    softmax,
    to_edge_index,
    to_torch_coo_tensor,
    to_torch_csr_tensor,
)

from graphseg.graph.adjacency import CSRAdjacency, GridAdjacency
from graphseg.ops.csr_attention import csr_attention
from graphseg.ops.dense_attention import dense_attention
from graphseg.ops.grid_attention import grid_attention
from graphseg.ops.scores import NEGATIVE_MODES, attention_logits
from graphseg.utils.checks import (
    check_choice,
    check_edge_index,
    check_edge_weight,
    check_finite,
    check_tensor,
)

IMPLS = ("auto", "grid", "csr", "message_passing", "dense")


class AffinityAttentionConv(MessagePassing):
    r"""The affinity attention layer from `"Affinity Attention Graph Neural Network
    for Weakly Supervised Semantic Segmentation" <https://arxiv.org/abs/2106.04054>`_
    (Zhang et al., TPAMI 2021; thesis Eq. 3.18).

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i) \cup \{ i \}}
        P_{i,j} \mathbf{x}_j,
        \qquad
        P_{i,j} = \frac{\exp(s_{i,j})}{\sum_{k \in \mathcal{N}(i) \cup \{ i \}} \exp(s_{i,k})}

    with, for ``negative="gate"`` (the thesis),

    .. math::
        s_{i,j} = w \cdot \cos(\mathbf{x}_i, \mathbf{x}_j)
        + \beta \, [\cos(\mathbf{x}_i, \mathbf{x}_j) > 0] \, E_{i,j}

    where :math:`E_{i,j}` is the edge weight (an affinity in ``[0, 1]``),
    :math:`w` a learnable scalar and :math:`\beta` a constant.  With
    ``negative="mask"`` (the authors' release) the edge term is not gated, but
    neighbours with :math:`\cos < 0` are removed from the softmax; the self
    loop always stays.  A node none of whose edges survive outputs zeros.

    Without edge weights the edge term vanishes and the layer is exactly
    :class:`torch_geometric.nn.conv.AGNNConv` (whose :math:`\beta` is our :math:`w`).

    The layer has no weight matrix.  It has several implementations of the
    same function (``impl``):

    * ``"grid"``: shifts over the window offsets of a
      :class:`~graphseg.graph.GridAdjacency` (image graphs); memory about
      :math:`N F + K N`.
    * ``"csr"``: SDDMM, segment softmax and SpMM on a
      :class:`~graphseg.graph.CSRAdjacency` (any graph); memory
      :math:`O(E + N F)`.
    * ``"message_passing"``: PyG message passing, the reference; memory
      :math:`O(E F)`.
    * ``"dense"``: :math:`N \times N` matrices, for small graphs only.
    * ``"auto"``: for a ``GridAdjacency``, ``"csr"`` on CPU (torch's fused CSR
      kernels measured faster than shifts there; the CSR structure is built
      once and cached on the adjacency) and ``"grid"`` on other devices; for a
      ``CSRAdjacency``, ``"csr"``; ``"message_passing"`` otherwise.  Build the
      adjacency once per graph (``GridAdjacency.from_data(data)``,
      ``CSRAdjacency.from_edge_index(..., add_self_loops=True)``) to use the
      fast paths without per-call preprocessing.

    Args:
        beta (float, optional): the constant edge coefficient :math:`\beta`.
            (default: ``10.0``, the authors' release value)
        negative (str, optional): ``"gate"`` or ``"mask"``, see above.
            (default: ``"gate"``)
        requires_grad (bool, optional): if ``False``, :math:`w` is fixed at 1.
            (default: ``True``)
        add_self_loops (bool, optional): replace any self loops of the input by
            one per node with edge weight 1. (default: ``True``)
        impl (str, optional): ``"auto"``, ``"grid"``, ``"csr"``,
            ``"message_passing"`` or ``"dense"``, see above. (default: ``"auto"``)
        **kwargs (optional): additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)` (or a
          :class:`torch_sparse.SparseTensor` / :class:`torch.sparse.Tensor`
          adjacency ``adj_t[i, j]`` for the edge ``j -> i``, whose values are
          the edge weights, or a :class:`~graphseg.graph.GridAdjacency` /
          :class:`~graphseg.graph.CSRAdjacency`, which carry their weights),
          edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F)` or
          :math:`((|\mathcal{V}|, F), ((2, |\mathcal{E}|), (|\mathcal{E}|)))`
          if :obj:`return_attention_weights=True`

    Example:
        >>> import torch
        >>> from graphseg.nn import AffinityAttentionConv
        >>> conv = AffinityAttentionConv()
        >>> x = torch.randn(4, 16)
        >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
        >>> conv(x, edge_index, torch.rand(4)).shape
        torch.Size([4, 16])
    """

    def __init__(self, beta: float = 10.0, negative: str = "gate",
                 requires_grad: bool = True, add_self_loops: bool = True,
                 impl: str = "auto", **kwargs) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.negative = check_choice(negative, "negative", NEGATIVE_MODES)
        self.requires_grad = requires_grad
        self.add_self_loops = add_self_loops
        self.impl = check_choice(impl, "impl", IMPLS)
        if requires_grad:
            self.w = Parameter(torch.empty(1))
        else:
            self.register_buffer("w", torch.ones(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.requires_grad:
            self.w.data.fill_(1.0)

    def forward(self, x: Tensor, edge_index: Adj, edge_weight: OptTensor = None,
                return_attention_weights: Optional[bool] = None
                ) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]],
                           Tuple[Tensor, SparseTensor]]:
        r"""Runs the layer.

        Args:
            x (Tensor): node features.
            edge_index (Tensor or SparseTensor or torch.sparse.Tensor): the graph.
            edge_weight (Tensor, optional): non-negative edge weights
                :math:`E_{i,j}`, only with a ``(2, E)`` ``edge_index``.
                (default: ``None``)
            return_attention_weights (bool, optional): also return the
                attention :math:`P_{i,j}` of every edge, self loops included,
                in the form of ``edge_index``. (default: ``None``)
        """
        check_tensor(x, "x")
        if x.dim() != 2:
            raise ValueError(f"x must have shape (N, F), got {tuple(x.shape)}")
        if x.size(0) == 0:
            raise ValueError("x has no nodes: the graph is empty")
        check_finite(x, "x")
        num_nodes = x.size(0)
        impl = self.impl

        if isinstance(edge_index, (GridAdjacency, CSRAdjacency)):
            adj = edge_index
            if edge_weight is not None:
                raise ValueError(f"edge_weight must be None with a {type(adj).__name__}: "
                                 "it carries its own weights")
            if adj.num_nodes != num_nodes:
                raise ValueError(f"the {type(adj).__name__} has {adj.num_nodes} nodes but "
                                 f"x has {num_nodes}")
            native = ("auto", "grid", "csr") if isinstance(adj, GridAdjacency) else ("auto", "csr")
            if impl in native:
                return self._native(x, adj, impl, bool(return_attention_weights))
            edge_index, edge_weight = adj.to_edge_index()
            layout = None
        else:
            edge_index, edge_weight, layout = _to_edge_list(edge_index, edge_weight, num_nodes)
            check_edge_index(edge_index, num_nodes)
            check_edge_weight(edge_weight, edge_index.size(1))
        if impl == "grid":
            raise ValueError("impl='grid' needs a GridAdjacency as edge_index "
                             "(GridAdjacency.from_data(data) for image_to_graph's graphs)")

        if edge_weight is not None:
            edge_weight = edge_weight.to(x.dtype)
        if self.add_self_loops:
            edge_index, edge_weight = remove_self_loops(edge_index, edge_weight)
            edge_index, edge_weight = add_self_loops(edge_index, edge_weight,
                                                     fill_value=1.0, num_nodes=num_nodes)

        if impl == "csr":
            adj = CSRAdjacency.from_edge_index(edge_index, edge_weight, num_nodes)
            out, alpha = csr_attention(x, adj, self.w, self.beta, self.negative)
            edge_index = adj.to_edge_index()[0]
        elif impl == "dense":
            out, alpha = dense_attention(x, edge_index, edge_weight, self.w, self.beta,
                                         self.negative)
        else:
            x_norm = F.normalize(x, p=2., dim=-1)
            alpha = self.edge_updater(edge_index, x_norm=x_norm, edge_weight=edge_weight)
            out = self.propagate(edge_index, x=x, alpha=alpha)

        if not return_attention_weights:
            return out
        target, source = edge_index[1], edge_index[0]
        if layout == "torch_sparse":
            adj = SparseTensor(row=target, col=source, value=alpha,
                               sparse_sizes=(num_nodes, num_nodes))
            return out, adj
        if layout == torch.sparse_csr:
            return out, to_torch_csr_tensor(torch.stack([target, source]), alpha,
                                            size=num_nodes)
        if layout is not None:
            return out, to_torch_coo_tensor(torch.stack([target, source]), alpha,
                                            size=num_nodes)
        return out, (edge_index, alpha)

    def _native(self, x: Tensor, adj: Union[GridAdjacency, CSRAdjacency], impl: str,
                return_attention_weights: bool):
        """Run a kernel on ``adj`` itself; the attention comes back in ``adj``'s form."""
        if adj.device != x.device:
            raise ValueError(f"the adjacency is on {adj.device} but x is on {x.device}")
        if isinstance(adj, CSRAdjacency):
            if self.add_self_loops and not adj.self_loops:
                adj = CSRAdjacency.from_edge_index(*adj.to_edge_index(), adj.num_nodes,
                                                   add_self_loops=True)
            out, alpha = csr_attention(x, adj, self.w, self.beta, self.negative)
            return (out, adj.with_weight(alpha)) if return_attention_weights else out

        if impl == "auto":  # measured on CPU: torch's CSR kernels beat shifts (README)
            impl = "csr" if x.device.type == "cpu" else "grid"
        if impl == "grid":
            out, alpha = grid_attention(x, adj, self.w, self.beta, self.negative,
                                        self.add_self_loops)
        else:
            out, alpha = csr_attention(x, adj.to_csr(self.add_self_loops), self.w, self.beta,
                                       self.negative)
        if not return_attention_weights:
            return out
        if impl != "grid":
            alpha = adj.planes_from_edges(alpha, self.add_self_loops)
        mask = adj.mask.clone()
        if self.add_self_loops:
            mask[adj.self_offset] = True
        return out, GridAdjacency(adj.height, adj.width, adj.offsets, mask, alpha)

    def edge_update(self, x_norm_i: Tensor, x_norm_j: Tensor, edge_weight: OptTensor,
                    edge_index_i: Tensor, edge_index_j: Tensor, ptr: OptTensor,
                    size_i: Optional[int]) -> Tensor:
        cos = (x_norm_i * x_norm_j).sum(dim=-1)
        is_self = edge_index_i == edge_index_j
        logits, keep, _ = attention_logits(cos, edge_weight, self.w, self.beta, self.negative,
                                           torch.ones_like(is_self), is_self)
        if self.negative == "gate":
            return softmax(logits, edge_index_i, ptr, size_i)
        # Dropped edges are removed before the softmax (not set to -inf), so a
        # node whose every edge is dropped gets zeros instead of NaN.
        alpha = torch.zeros_like(logits)
        alpha[keep] = softmax(logits[keep], edge_index_i[keep], None, size_i)
        return alpha

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return x_j * alpha.view(-1, 1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(beta={self.beta}, negative={self.negative!r}, "
                f"add_self_loops={self.add_self_loops}, impl={self.impl!r})")


def _to_edge_list(edge_index: Adj, edge_weight: OptTensor, num_nodes: int):
    """``(edge_index, edge_weight, layout)`` from any of the accepted graph forms.

    Sparse adjacencies are PyG's transposed ``adj_t[target, source]``; their
    values are the edge weights (a ``SparseTensor`` without values has none).
    """
    if isinstance(edge_index, SparseTensor):
        layout = "torch_sparse"
        row, col, value = edge_index.coo()
        sizes = edge_index.sparse_sizes()
    elif is_torch_sparse_tensor(edge_index):
        layout = edge_index.layout
        if layout == torch.sparse_coo:
            edge_index = edge_index.coalesce()
        sizes = tuple(edge_index.shape[:2])
        (row, col), value = to_edge_index(edge_index)
    else:
        return edge_index, edge_weight, None
    if edge_weight is not None:
        raise ValueError("edge_weight must be None when edge_index is a sparse adjacency: "
                         "its values are the edge weights")
    if tuple(sizes) != (num_nodes, num_nodes):
        raise ValueError(f"the sparse adjacency has size {tuple(sizes)} but x has "
                         f"{num_nodes} nodes; expected ({num_nodes}, {num_nodes})")
    return torch.stack([col, row]).long(), value, layout
