"""Grid graphs: every pixel of an H x W map joined to all pixels in a window.

The graph of thesis section 3.3.3: nodes are the pixels of a (feature) map in
row-major order, node ``i = y * W + x``, and each node is joined to every node
inside a window of radius ``r`` around it.  Because the window is the same at
every pixel, the edge set is also described by its list of *offsets*
``(dy, dx)``, which is what fast kernels use instead of an edge list.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

from graphseg.utils.checks import check_choice, check_positive_int

WINDOWS = ("square", "disk")


@dataclass(frozen=True, eq=False)
class GridGraph:
    """A window graph on an ``height x width`` grid, as built by :func:`grid_graph`.

    Attributes:
        height (int): grid size in nodes: rows.
        width (int): grid size in nodes: columns.
        radius (int): window radius in nodes.
        window (str): ``"square"`` (Chebyshev distance ``<= radius``) or
            ``"disk"`` (Euclidean distance ``<= radius``).
        self_loops (bool): whether the offset ``(0, 0)`` is part of the window.
        offsets (Tensor): ``(K, 2)`` int64 window offsets ``(dy, dx)`` in
            lexicographic order.  The set is symmetric, so offset ``K - 1 - k``
            is ``-offsets[k]``.
        edge_index (Tensor): ``(2, E)`` int64; row 0 is the source ``j``, row 1 the
            target ``i`` (PyG's convention: messages flow ``j -> i``), with
            ``j = i + dy * width + dx`` for ``(dy, dx) = offsets[edge_offset]``.
            Edges are sorted by target, then by source, which is the same as
            by target, then by offset index: a CSR layout by destination.
        edge_offset (Tensor): ``(E,)`` int64 index into ``offsets`` of every edge.

    The tensors are shared by every caller of :func:`grid_graph` with the same
    arguments (the result is cached): do not modify them in place.
    """

    height: int
    width: int
    radius: int
    window: str
    self_loops: bool
    offsets: Tensor
    edge_index: Tensor
    edge_offset: Tensor

    @property
    def num_nodes(self) -> int:
        return self.height * self.width

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def pos(self) -> Tensor:
        """``(N, 2)`` float32 node positions ``(x, y)`` = (column, row), row-major."""
        return grid_positions(self.height, self.width)


def window_offsets(radius: int, window: str = "square", self_loops: bool = True) -> Tensor:
    """The ``(K, 2)`` int64 offsets ``(dy, dx)`` of a window, in lexicographic order.

    ``window="square"`` keeps ``max(|dy|, |dx|) <= radius`` (``(2r + 1)^2``
    offsets), ``window="disk"`` keeps ``dy^2 + dx^2 <= radius^2`` (81 offsets
    for ``radius=5``).  ``self_loops=False`` drops ``(0, 0)``.

    Example:
        >>> from graphseg.graph import window_offsets
        >>> window_offsets(1, "disk").tolist()
        [[-1, 0], [0, -1], [0, 0], [0, 1], [1, 0]]
    """
    check_positive_int(radius, "radius")
    check_choice(window, "window", WINDOWS)
    return _window_offsets(radius, window, self_loops).clone()


@lru_cache(maxsize=64)
def _window_offsets(radius: int, window: str, self_loops: bool) -> Tensor:
    d = torch.arange(-radius, radius + 1)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    keep = torch.ones_like(dy, dtype=torch.bool)
    if window == "disk":
        keep = dy * dy + dx * dx <= radius * radius
    if not self_loops:
        keep &= (dy != 0) | (dx != 0)
    return torch.stack([dy[keep], dx[keep]], dim=1)


def grid_positions(height: int, width: int) -> Tensor:
    """``(height * width, 2)`` float32 positions ``(x, y)`` of the nodes, row-major."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).float()


def grid_graph(height: int, width: int, radius: int, window: str = "square",
               self_loops: bool = True) -> GridGraph:
    """Join every node of a ``height x width`` grid to all nodes within a window.

    Args:
        height (int): grid rows, >= 1.
        width (int): grid columns, >= 1.
        radius (int): window radius in nodes, >= 1.  The thesis uses 4 for box
            and scribble supervision, 3 for image tags and points.
        window (str, optional): ``"square"`` or ``"disk"``. (default: ``"square"``)
        self_loops (bool, optional): include the edge ``i -> i``. (default: ``True``)

    Returns:
        GridGraph: edges sorted by target node then source node (see
        :class:`GridGraph`), and the window offsets.  Results are cached per
        argument tuple (the 8 most recent: a 512 x 512 radius-5 graph takes about
        0.5 GB); ``grid_graph.cache_clear()`` frees them.

    Example:
        >>> from graphseg.graph import grid_graph
        >>> g = grid_graph(2, 3, radius=1)
        >>> g.num_nodes, g.num_edges, g.offsets.shape
        (6, 28, torch.Size([9, 2]))
    """
    check_positive_int(height, "height")
    check_positive_int(width, "width")
    check_positive_int(radius, "radius")
    check_choice(window, "window", WINDOWS)
    return _grid_graph(height, width, radius, window, bool(self_loops))


@lru_cache(maxsize=8)
def _grid_graph(height: int, width: int, radius: int, window: str,
                self_loops: bool) -> GridGraph:
    offsets = _window_offsets(radius, window, self_loops)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    # (N, K) candidate sources; flattening row-major gives target-major order.
    sy = ys.reshape(-1, 1) + offsets[:, 0]
    sx = xs.reshape(-1, 1) + offsets[:, 1]
    valid = (sy >= 0) & (sy < height) & (sx >= 0) & (sx < width)
    target, k = valid.nonzero(as_tuple=True)
    source = (sy * width + sx)[target, k]
    edge_index = torch.stack([source, target])
    return GridGraph(height, width, radius, window, self_loops, offsets, edge_index, k)


grid_graph.cache_clear = _grid_graph.cache_clear  # type: ignore[attr-defined]
