"""The affinity attention layer of A2GNN (thesis Eq. 3.18)."""
from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional, Tuple, Union

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
from graphseg.graph.grid import GridGraph, window_offsets
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
# dtypes torch's CPU sparse CSR kernels (sampled_addmm, sparse.mm) support
CSR_DTYPES = (torch.float32, torch.float64)
# PyG's message-passing hooks: with one registered, "auto" runs the reference so it fires
_MP_HOOKS = ("_propagate_forward_pre_hooks", "_propagate_forward_hooks",
             "_message_forward_pre_hooks", "_message_forward_hooks",
             "_aggregate_forward_pre_hooks", "_aggregate_forward_hooks",
             "_message_and_aggregate_forward_pre_hooks", "_message_and_aggregate_forward_hooks",
             "_edge_update_forward_pre_hooks", "_edge_update_forward_hooks")


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

    * ``"grid"``: shifts over the window offsets of a grid graph (a
      :class:`~graphseg.graph.GridGraph` or :class:`~graphseg.graph.GridAdjacency`);
      memory about :math:`N F + K N`.
    * ``"csr"``: SDDMM, segment softmax and SpMM on a destination-sorted CSR
      (any graph); memory :math:`O(E + N F)`.
    * ``"message_passing"``: PyG message passing, the reference; memory
      :math:`O(E F)`.
    * ``"dense"``: :math:`N \times N` matrices, for small graphs only.
    * ``"auto"`` (the default) picks by input:

      - a plain ``(2, E)`` ``edge_index`` (with or without edge weights):
        ``"csr"`` on a layout built on the first call and cached (see below);
      - a :class:`~graphseg.graph.GridGraph` (what :func:`~graphseg.graph.grid_graph`
        returns; edge weights, if any, in the order of its ``edge_index``):
        ``"csr"`` on CPU (torch's fused CSR kernels measured faster than shifts
        there) and ``"grid"`` on other devices, both cached per graph;
      - a ``GridAdjacency``: the same choice, the CSR structure cached on the
        adjacency; a ``CSRAdjacency``: ``"csr"``;
      - ``"message_passing"`` for sparse-matrix inputs (``SparseTensor``,
        ``torch.sparse``), and for a ``(2, E)`` ``edge_index`` or a ``GridGraph``
        whenever the fast kernels cannot stand in for the reference: ``x``
        neither float32 nor float64 on the CSR kernels, PyG's explain mode or a
        registered message-passing hook (``register_propagate_forward_hook``
        etc.), or ``return_attention_weights=True`` while autograd records (the
        fast kernels' attention is not differentiable, the reference's is).

      The fast paths equal the reference up to rounding, in values and in the
      gradients with respect to ``x``, the edge weights and :math:`w`.

    **Layout cache.**  A ``(2, E)`` ``edge_index`` is turned into a CSR layout
    (edges sorted by target then source, self loops replaced when
    ``add_self_loops=True``, the transpose, and the permutation from the input
    edges to CSR order, which edge weights follow on every call, so their
    gradients reach the input order); a ``GridGraph`` into window planes.  The
    layouts of the 8 most recently used graphs are kept, shared by all layers,
    keyed on the ``edge_index`` *tensor object itself* (held through a weak
    reference: never an ``id()`` that a new tensor could reuse), its version
    counter, ``data_ptr``, shape, strides, dtype and device, plus the number of
    nodes, ``add_self_loops`` and the device of ``x``.  A layout is dropped as
    soon as its ``edge_index`` is freed.  So a new tensor (another graph, or the
    same graph rebuilt, or moved with ``.to()``) gets a new layout, and an
    in-place edit of ``edge_index`` (``edge_index[0, 3] = 7``, ``add_()``, or of
    any view of it) invalidates its entry.  Pitfalls: writes that bypass the
    version counter (through ``.data``, a NumPy or DLPack view, or the untyped
    storage) are not seen; after such a write call
    :meth:`AffinityAttentionConv.cache_clear` or pass ``cached=False``.
    Inference tensors (made under :func:`torch.inference_mode`) have no version
    counter and are never cached (their layout is rebuilt on every call).
    Unlike PyG's ``cached=True`` (which reuses its first graph for every later
    call), a cached layout is never used for a different graph.  Building the
    adjacency yourself (``GridAdjacency.from_data(data)``,
    ``CSRAdjacency.from_edge_index(..., add_self_loops=True)``) remains the
    way to hold a layout explicitly.

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
        cached (bool, optional): keep the layout of a ``(2, E)`` ``edge_index``
            or ``GridGraph`` in the layout cache (see above); ``False`` builds it
            on every call. (default: ``True``)
        **kwargs (optional): additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)` (or a
          :class:`~graphseg.graph.GridGraph`, or a
          :class:`torch_sparse.SparseTensor` / :class:`torch.sparse.Tensor`
          adjacency ``adj_t[i, j]`` for the edge ``j -> i``, whose values are
          the edge weights, or a :class:`~graphseg.graph.GridAdjacency` /
          :class:`~graphseg.graph.CSRAdjacency`, which carry their weights),
          edge weights :math:`(|\mathcal{E}|)` *(optional; with a
          ``GridGraph``, in the order of its* ``edge_index`` *)*
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
                 impl: str = "auto", cached: bool = True, **kwargs) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.negative = check_choice(negative, "negative", NEGATIVE_MODES)
        self.requires_grad = requires_grad
        self.add_self_loops = add_self_loops
        self.impl = check_choice(impl, "impl", IMPLS)
        self.cached = bool(cached)
        if requires_grad:
            self.w = Parameter(torch.empty(1))
        else:
            self.register_buffer("w", torch.ones(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.requires_grad:
            self.w.data.fill_(1.0)

    @staticmethod
    def cache_clear() -> None:
        """Forget every cached layout (of all layers): see "Layout cache" above."""
        _LAYOUTS.clear()

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
        grid = None
        if isinstance(edge_index, GridGraph):
            grid = edge_index
            if grid.num_nodes != num_nodes:
                raise ValueError(f"the GridGraph has {grid.num_nodes} nodes ({grid.height} x "
                                 f"{grid.width}) but x has {num_nodes}")
            edge_index = grid.edge_index  # on the CPU (grid_graph); moved below

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
            if layout is None:
                check_tensor(edge_index, "edge_index")
                if grid is None and edge_index.device != x.device:
                    raise ValueError(f"edge_index is on {edge_index.device} but x is on "
                                     f"{x.device}")
                route = self._edge_route(x, grid, impl, return_attention_weights)
                if route is not None:
                    return self._fast(x, edge_index, edge_weight, grid, route,
                                      bool(return_attention_weights))
                edge_index = edge_index.to(x.device)
            check_edge_index(edge_index, num_nodes)
            check_edge_weight(edge_weight, edge_index.size(1))
        if impl == "grid":
            raise ValueError("impl='grid' needs a GridAdjacency or GridGraph as edge_index "
                             "(grid_graph(...), or GridAdjacency.from_data(data) for "
                             "image_to_graph's graphs)")

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

    def _edge_route(self, x: Tensor, grid: Optional[GridGraph], impl: str,
                    return_attention_weights: Optional[bool]) -> Optional[str]:
        """The kernel for a ``(2, E)`` edge_index or a GridGraph: ``"csr"``, ``"grid"``,
        or ``None`` for the message-passing / dense code below."""
        if impl in ("message_passing", "dense") or (impl == "grid" and grid is None):
            return None
        if impl != "auto":
            return impl
        route = "grid" if grid is not None and x.device.type != "cpu" else "csr"
        if route == "csr" and x.dtype not in CSR_DTYPES:
            return None
        if getattr(self, "_explain", None) or any(getattr(self, name, None)
                                                  for name in _MP_HOOKS):
            return None  # explain masks and hooks act inside propagate
        if return_attention_weights and torch.is_grad_enabled():
            return None  # the reference's attention is differentiable, the kernels' is not
        return route

    def _fast(self, x: Tensor, edge_index: Tensor, edge_weight: OptTensor,
              grid: Optional[GridGraph], route: str, return_attention_weights: bool):
        """A fast kernel on the cached layout of ``edge_index`` (or of ``grid``)."""
        num_nodes = x.size(0)
        if route == "grid":
            key = ("grid", grid.height, grid.width, grid.radius, grid.window, grid.self_loops,
                   x.device)
            build = partial(_build_grid_layout, grid, x.device)
        else:
            key = ("csr", num_nodes, self.add_self_loops, x.device)
            build = partial(_build_edge_layout, edge_index, num_nodes, self.add_self_loops,
                            x.device)
        layout = _LAYOUTS.get(edge_index, key, build) if self.cached else build()
        check_edge_weight(edge_weight, edge_index.size(1))
        if edge_weight is not None:
            edge_weight = edge_weight.to(x.dtype)

        if route == "grid":
            adj = layout.adj
            if edge_weight is not None:  # scatter into the planes (differentiable)
                planes = edge_weight.new_zeros(adj.mask.numel()).index_put(
                    (layout.slot,), edge_weight)
                adj = adj.with_weight(planes.view(adj.mask.shape))
            out, alpha = grid_attention(x, adj, self.w, self.beta, self.negative,
                                        self.add_self_loops)
            if not return_attention_weights:
                return out
            mask = adj.mask.clone()
            if self.add_self_loops:
                mask[adj.self_offset] = True
            ei, alpha = GridAdjacency(adj.height, adj.width, adj.offsets, mask,
                                      alpha).to_edge_index()
            return out, (ei, alpha)

        csr = layout.csr
        if edge_weight is not None:  # follow the edges' permutation; 1 on added self loops
            csr = csr.with_weight(torch.cat([edge_weight, edge_weight.new_ones(1)])[layout.perm])
        out, alpha = csr_attention(x, csr, self.w, self.beta, self.negative)
        if not return_attention_weights:
            return out
        return out, (torch.stack([csr.col, csr.row]), alpha)

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


@dataclass(frozen=True, eq=False)
class _EdgeLayout:
    """A ``(2, E)`` edge_index as an unweighted CSR, and ``perm``: for every CSR
    edge, its column in the input edge_index (``E`` for an added self loop)."""

    csr: CSRAdjacency
    perm: Tensor


@dataclass(frozen=True, eq=False)
class _GridLayout:
    """A GridGraph as unweighted window planes, and the plane slot ``k * N + i`` of
    every edge of its edge_index."""

    adj: GridAdjacency
    slot: Tensor


def _build_edge_layout(edge_index: Tensor, num_nodes: int, add_self_loops: bool,
                       device: torch.device) -> _EdgeLayout:
    check_edge_index(edge_index, num_nodes)
    edge_index = edge_index.to(device=device, dtype=torch.long)
    num_edges = edge_index.size(1)
    src, dst = edge_index
    index = torch.arange(num_edges, device=device)
    if add_self_loops:  # as remove_self_loops + add_self_loops(fill_value=1.0)
        keep = src != dst
        loop = torch.arange(num_nodes, device=device)
        src, dst = torch.cat([src[keep], loop]), torch.cat([dst[keep], loop])
        index = torch.cat([index[keep], loop.new_full((num_nodes,), num_edges)])
    # by target, then source: CSR rows with sorted columns (stable: duplicates keep order)
    order = torch.argsort(dst * num_nodes + src, stable=True)
    csr = CSRAdjacency.from_sorted(dst[order], src[order], None, num_nodes, add_self_loops)
    return _EdgeLayout(csr, index[order])


def _build_grid_layout(graph: GridGraph, device: torch.device) -> _GridLayout:
    offsets = window_offsets(graph.radius, graph.window)  # with (0, 0), as GridAdjacency
    k = graph.edge_offset
    if not graph.self_loops:  # graph.offsets lacks the middle (0, 0) offset
        k = k + (k >= offsets.size(0) // 2).long()
    n = graph.num_nodes
    slot = (k * n + graph.edge_index[1]).to(device)
    mask = torch.zeros(offsets.size(0) * n, dtype=torch.bool, device=device)
    mask[slot] = True
    adj = GridAdjacency(graph.height, graph.width, offsets,
                        mask.view(offsets.size(0), graph.height, graph.width))
    return _GridLayout(adj, slot)


class _LayoutCache:
    """The layouts of the most recently used graphs, keyed on their edge_index tensor.

    An entry holds a weak reference to the tensor (so a new tensor that reuses a
    freed one's ``id`` or memory can never hit it, and the entry goes when the
    tensor goes) and a stamp (version counter, data pointer, shape, strides,
    dtype, device) that any in-place change of the tensor alters.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: "OrderedDict[tuple, Tuple[weakref.ref, tuple, object]]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def get(self, tensor: Tensor, key: tuple, build: Callable[[], object]):
        if tensor.is_inference():  # no version counter: an in-place edit would go unseen
            return build()
        full_key = (id(tensor),) + key
        stamp = _stamp(tensor)
        entry = self._entries.get(full_key)
        if entry is not None and entry[0]() is tensor and entry[1] == stamp:
            self._entries.move_to_end(full_key)
            return entry[2]
        layout = build()
        ref = weakref.ref(tensor, partial(self._forget, full_key))
        self._entries[full_key] = (ref, stamp, layout)
        self._entries.move_to_end(full_key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return layout

    def _forget(self, full_key: tuple, ref: weakref.ref) -> None:
        entry = self._entries.get(full_key)
        if entry is not None and entry[0] is ref:
            self._entries.pop(full_key, None)


def _stamp(tensor: Tensor) -> tuple:
    return (tensor._version, tensor.data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
            tensor.stride(), tensor.dtype, tensor.device)


_LAYOUTS = _LayoutCache(maxsize=8)


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
