"""Graph layouts for the fast attention kernels, built once per graph.

* :class:`GridAdjacency`: a window graph on an ``H x W`` grid as ``K`` planes
  (one per window offset) of edge masks and weights, for the shift kernels.
* :class:`CSRAdjacency`: any graph as a destination-sorted CSR, with the
  permutation to its transpose, for the segment-softmax / SpMM kernels.

Both convert to and from PyG's ``(edge_index, edge_weight)`` and can be passed to
:class:`~graphseg.nn.AffinityAttentionConv` in place of ``edge_index``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.utils import add_self_loops as pyg_add_self_loops
from torch_geometric.utils import remove_self_loops

from graphseg.graph.grid import window_offsets
from graphseg.utils.checks import check_edge_index, check_edge_weight


@dataclass(frozen=True, eq=False)
class GridAdjacency:
    """A grid window graph as per-offset planes.

    Node ``i = y * width + x``.  Plane ``k`` describes the edges
    ``(y + dy, x + dx) -> (y, x)`` for ``(dy, dx) = offsets[k]``.

    Attributes:
        height (int): grid size in nodes: rows.
        width (int): grid size in nodes: columns.
        offsets (Tensor): ``(K, 2)`` int64 window offsets (lexicographic,
            symmetric, ``(0, 0)`` always included so self loops can be switched
            on).
        mask (Tensor): ``(K, H, W)`` bool, ``True`` where the edge exists.
        weight (Tensor or None): ``(K, H, W)`` edge weights (0 where there is no
            edge), or ``None`` for an unweighted graph.
    """

    height: int
    width: int
    offsets: Tensor
    mask: Tensor
    weight: Optional[Tensor] = None
    # add_self_loops -> (CSR structure, plane slot of every CSR edge); see to_csr
    _csr_cache: Dict[bool, Tuple["CSRAdjacency", Tensor]] = field(
        default_factory=dict, repr=False, compare=False)

    @property
    def num_nodes(self) -> int:
        return self.height * self.width

    @property
    def num_edges(self) -> int:
        return int(self.mask.sum())

    @property
    def self_offset(self) -> int:
        """Index of the ``(0, 0)`` offset: the middle of the symmetric list."""
        return self.offsets.size(0) // 2

    @property
    def device(self) -> torch.device:
        return self.mask.device

    def to(self, device) -> "GridAdjacency":
        weight = None if self.weight is None else self.weight.to(device)
        return replace(self, mask=self.mask.to(device), weight=weight, _csr_cache={})

    def with_weight(self, weight: Optional[Tensor]) -> "GridAdjacency":
        """The same graph with other ``(K, H, W)`` weights (the CSR cache is kept)."""
        return replace(self, weight=weight)

    def to_csr(self, add_self_loops: bool = False) -> "CSRAdjacency":
        """The graph as a :class:`CSRAdjacency`, for the CSR kernels.

        The structure is built once per graph and cached; only the weights are
        gathered from the planes on each call (so gradients reach the planes).
        ``add_self_loops=True`` gives every node one self loop of weight 1.
        """
        csr, slot = self._csr_structure(add_self_loops)
        if self.weight is None:
            return csr
        weight = self.weight.reshape(-1).index_select(0, slot)
        if add_self_loops:
            weight = torch.where(csr.is_self, torch.ones_like(weight), weight)
        return csr.with_weight(weight)

    def planes_from_edges(self, values: Tensor, add_self_loops: bool = False) -> Tensor:
        """``(K, H, W)`` planes holding per-edge ``values`` given in :meth:`to_csr` order."""
        _, slot = self._csr_structure(add_self_loops)
        planes = values.new_zeros(self.mask.numel()).index_put((slot,), values)
        return planes.view(self.mask.shape)

    def _csr_structure(self, add_self_loops: bool) -> Tuple["CSRAdjacency", Tensor]:
        """The unweighted CSR and the plane slot ``k * N + i`` of each of its edges."""
        if add_self_loops not in self._csr_cache:
            mask = self.mask.clone()
            if add_self_loops:
                mask[self.self_offset] = True
            # nonzero over (H, W, K) is target-major, then offset (= source) order: CSR order
            ty, tx, k = mask.permute(1, 2, 0).nonzero(as_tuple=True)
            offsets = self.offsets.to(self.device)
            target = ty * self.width + tx
            source = (ty + offsets[k, 0]) * self.width + tx + offsets[k, 1]
            csr = CSRAdjacency.from_sorted(target, source, None, self.num_nodes,
                                           add_self_loops)
            self._csr_cache[add_self_loops] = (csr, k * self.num_nodes + target)
        return self._csr_cache[add_self_loops]

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, edge_weight: Optional[Tensor],
                        grid_size: Tuple[int, int], radius: int,
                        window: str = "square") -> "GridAdjacency":
        """Planes from an edge list whose edges all lie inside the window.

        Raises ``ValueError`` if an edge joins nodes farther apart than the
        window allows (the graph is then not a grid graph of this window).
        """
        h, w = (int(v) for v in grid_size)
        check_edge_index(edge_index, h * w)
        check_edge_weight(edge_weight, edge_index.size(1))
        offsets = window_offsets(radius, window)
        device = edge_index.device
        src, dst = edge_index
        dy = torch.div(src, w, rounding_mode="floor") - torch.div(dst, w, rounding_mode="floor")
        dx = src % w - dst % w
        # offset (dy, dx) -> k through a (2r + 1)^2 lookup table, -1 outside the window
        side = 2 * radius + 1
        lookup = torch.full((side * side,), -1, dtype=torch.long, device=device)
        off = offsets.to(device)
        lookup[(off[:, 0] + radius) * side + off[:, 1] + radius] = torch.arange(
            off.size(0), device=device)
        inside = (dy.abs() <= radius) & (dx.abs() <= radius)
        key = ((dy + radius) * side + dx + radius).clamp(0, side * side - 1)
        k = torch.where(inside, lookup[key], torch.full_like(dy, -1))
        if bool((k < 0).any()):
            bad = int((k < 0).nonzero()[0])
            raise ValueError(
                f"edge_index has edge {int(src[bad])} -> {int(dst[bad])} outside the "
                f"radius-{radius} {window} window of a {h} x {w} grid")
        slot = k * (h * w) + dst
        num_k = offsets.size(0)
        mask = torch.zeros(num_k * h * w, dtype=torch.bool, device=device)
        mask[slot] = True
        weight = None
        if edge_weight is not None:
            weight = torch.zeros(num_k * h * w, dtype=edge_weight.dtype, device=device)
            weight[slot] = edge_weight
            weight = weight.view(num_k, h, w)
        return cls(h, w, offsets, mask.view(num_k, h, w), weight)

    @classmethod
    def from_data(cls, data) -> "GridAdjacency":
        """From the :class:`~torch_geometric.data.Data` of
        :func:`~graphseg.graph.image_to_graph`."""
        for key in ("grid_size", "radius", "window"):
            if key not in data:
                raise ValueError(f"data has no '{key}': it is not a grid graph from "
                                 "image_to_graph")
        return cls.from_edge_index(data.edge_index, data.get("edge_weight"), data.grid_size,
                                   data.radius, data.window)

    def to_edge_index(self) -> Tuple[Tensor, Optional[Tensor]]:
        """``(edge_index, edge_weight)`` sorted by target, then source."""
        # nonzero over (H, W, K) gives target-major, then offset order
        ty, tx, k = self.mask.permute(1, 2, 0).nonzero(as_tuple=True)
        offsets = self.offsets.to(self.device)
        source = (ty + offsets[k, 0]) * self.width + tx + offsets[k, 1]
        target = ty * self.width + tx
        weight = None if self.weight is None else self.weight[k, ty, tx]
        return torch.stack([source, target]), weight


@dataclass(frozen=True, eq=False)
class CSRAdjacency:
    """A graph in destination-sorted CSR form, with its transpose.

    Attributes:
        rowptr (Tensor): ``(N + 1,)`` int64; the in-edges of node ``i`` are
            ``rowptr[i]:rowptr[i + 1]``.
        row (Tensor): ``(E,)`` int64 target of every edge (``rowptr`` expanded).
        col (Tensor): ``(E,)`` int64 source of every edge.
        weight (Tensor or None): ``(E,)`` edge weights or ``None``.
        t_rowptr (Tensor): the transpose (sorted by source): its ``rowptr``.
        t_col (Tensor): the transpose: the targets of the edges in ``t_perm``'s
            order.
        t_perm (Tensor): the transpose: lists the edges sorted by source.
        self_loops (bool): ``True`` when built with ``add_self_loops=True``: every
            node has exactly one self loop, of weight 1.
    """

    rowptr: Tensor
    row: Tensor
    col: Tensor
    weight: Optional[Tensor]
    t_rowptr: Tensor
    t_col: Tensor
    t_perm: Tensor
    self_loops: bool = False

    @property
    def num_nodes(self) -> int:
        return self.rowptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    def to(self, device) -> "CSRAdjacency":
        return CSRAdjacency(*(None if v is None else v.to(device) for v in (
            self.rowptr, self.row, self.col, self.weight, self.t_rowptr, self.t_col,
            self.t_perm)), self_loops=self.self_loops)

    def with_weight(self, weight: Optional[Tensor]) -> "CSRAdjacency":
        return replace(self, weight=weight)

    @functools.cached_property
    def is_self(self) -> Tensor:
        """``(E,)`` bool, the self loops; computed once per graph (every attention
        layer's forward needs it)."""
        return self.row == self.col

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, edge_weight: Optional[Tensor],
                        num_nodes: int, add_self_loops: bool = False) -> "CSRAdjacency":
        """Sort by target (stable, so already sorted lists keep their order).

        ``add_self_loops=True`` replaces any self loops by one per node with
        weight 1, what :class:`~graphseg.nn.AffinityAttentionConv` does by
        default; doing it here, once, spares every forward pass the work.
        """
        check_edge_index(edge_index, num_nodes)
        check_edge_weight(edge_weight, edge_index.size(1))
        if add_self_loops:
            edge_index, edge_weight = remove_self_loops(edge_index, edge_weight)
            edge_index, edge_weight = pyg_add_self_loops(edge_index, edge_weight,
                                                         fill_value=1.0, num_nodes=num_nodes)
        src, dst = edge_index
        order = torch.argsort(dst, stable=True)
        weight = None if edge_weight is None else edge_weight[order]
        return cls.from_sorted(dst[order], src[order], weight, num_nodes, add_self_loops)

    @classmethod
    def from_sorted(cls, row: Tensor, col: Tensor, weight: Optional[Tensor], num_nodes: int,
                    self_loops: bool = False) -> "CSRAdjacency":
        """From edges already sorted by target ``row``; builds the transpose."""
        t_perm = torch.argsort(col, stable=True)
        return cls(_ptr(row, num_nodes), row, col, weight, _ptr(col[t_perm], num_nodes),
                   row[t_perm], t_perm, self_loops)

    @classmethod
    def block_diagonal(cls, graphs) -> "CSRAdjacency":
        """Several graphs as one, node ids offset by the nodes before them (PyG's
        batching): no edge joins two graphs, so a layer run on it computes every
        graph's own result.  All weighted or all unweighted; ``self_loops`` when
        every graph has them."""
        graphs = list(graphs)
        if not graphs:
            raise ValueError("block_diagonal needs at least one graph")
        if len({g.weight is None for g in graphs}) > 1:
            raise ValueError("block_diagonal: either every graph has edge weights or none")
        starts = [0]
        for g in graphs:
            starts.append(starts[-1] + g.num_nodes)
        row = torch.cat([g.row + s for g, s in zip(graphs, starts)])
        col = torch.cat([g.col + s for g, s in zip(graphs, starts)])
        weight = None if graphs[0].weight is None else torch.cat([g.weight for g in graphs])
        return cls.from_sorted(row, col, weight, starts[-1],
                               all(g.self_loops for g in graphs))

    def to_edge_index(self) -> Tuple[Tensor, Optional[Tensor]]:
        return torch.stack([self.col, self.row]), self.weight


def _ptr(sorted_index: Tensor, num_nodes: int) -> Tensor:
    counts = torch.bincount(sorted_index, minlength=num_nodes)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])
