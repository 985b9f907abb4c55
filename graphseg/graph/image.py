"""Image (feature map) to graph and back (thesis section 3.3.3)."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from graphseg.graph.affinity import check_feature_map, grid_affinity, l1_normalize
from graphseg.graph.grid import grid_graph, grid_positions
from graphseg.graph.voting import majority_vote
from graphseg.utils.checks import as_index_map, check_choice, check_finite, check_tensor
from graphseg.utils.constants import IGNORE


def image_to_graph(features: Tensor, radius: int = 4, window: str = "square",
                   edge_features: Optional[Tensor] = None, threshold: float = 1e-3,
                   self_loops: bool = True) -> Data:
    r"""Turn a ``(C, H, W)`` feature map into a weighted grid graph (Eq. 3.8, 3.14, 3.15).

    Nodes are the ``H * W`` pixels of the map in row-major order; node features
    are the pixel's feature vector, L1-normalised (Eq. 3.15).  Every node is
    joined to all nodes inside the window (:func:`~graphseg.graph.grid_graph`),
    with weight :math:`D(i, j) = \exp(-\lVert g_i - g_j \rVert_1 / C_g)` computed
    on ``edge_features`` ``g`` (Eq. 3.8).  Edges whose weight is not above
    ``threshold`` are dropped (Eq. 3.14); self loops (weight 1) always stay.

    Args:
        features (Tensor): ``(C, H, W)`` floating node feature map, e.g. the
            concatenated backbone levels resized to a common stride.
        radius (int, optional): window radius in nodes. (default: ``4``, the
            thesis value for boxes and scribbles; it uses 3 for tags and points)
        window (str, optional): ``"square"`` or ``"disk"``. (default: ``"square"``)
        edge_features (Tensor, optional): ``(C_g, H, W)`` map the affinities are
            computed on, e.g. the affinity head.  ``None`` uses ``features``
            (a feature-distance graph). (default: ``None``)
        threshold (float, optional): :math:`\sigma` of Eq. 3.14, in ``[0, 1)``;
            ``0`` keeps every window edge. (default: ``1e-3``)
        self_loops (bool, optional): include ``i -> i`` edges. (default: ``True``)

    Returns:
        Data: ``x`` ``(N, C)``, ``edge_index`` ``(2, E)`` (sorted by target then
        source), ``edge_weight`` ``(E,)``, ``pos`` ``(N, 2)`` as ``(x, y)`` in
        node units, and ``grid_size = (H, W)``, ``radius``, ``window``.

    Example:
        >>> import torch
        >>> from graphseg.graph import image_to_graph
        >>> data = image_to_graph(torch.rand(8, 5, 6), radius=2)
        >>> data.x.shape, data.grid_size
        (torch.Size([30, 8]), (5, 6))
    """
    check_feature_map(features, "features")
    c, h, w = features.shape
    if edge_features is None:
        edge_features = features
    else:
        check_feature_map(edge_features, "edge_features")
        if edge_features.shape[1:] != features.shape[1:]:
            raise ValueError(
                f"edge_features has grid size {tuple(edge_features.shape[1:])} but "
                f"features has {tuple(features.shape[1:])}; they must match"
            )
    threshold = float(threshold)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")

    graph = grid_graph(h, w, radius, window, self_loops)
    planes = grid_affinity(edge_features, radius, window, self_loops)
    edge_index = graph.edge_index.to(features.device)
    edge_weight = planes.view(planes.size(0), -1)[graph.edge_offset.to(features.device),
                                                   edge_index[1]]
    if threshold > 0:
        keep = edge_weight > threshold
        edge_index, edge_weight = edge_index[:, keep], edge_weight[keep]

    x = l1_normalize(features.reshape(c, h * w).t())
    return Data(x=x, edge_index=edge_index, edge_weight=edge_weight,
                pos=grid_positions(h, w).to(features.device),
                grid_size=(h, w), radius=radius, window=window)


def _check_grid_size(grid_size, name: str = "grid_size") -> Tuple[int, int]:
    if isinstance(grid_size, Tensor):
        grid_size = grid_size.reshape(-1).tolist()
    try:
        h, w = (int(v) for v in grid_size)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (H, W), got {grid_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive, got {(h, w)}")
    return h, w


def nodes_to_pixels(scores: Tensor, grid_size, size: Optional[Tuple[int, int]] = None,
                    logits: bool = True) -> Tensor:
    """Per-node class scores to a ``(C, H', W')`` probability map.

    The scores are turned into probabilities (softmax when ``logits``), laid
    out on the ``H x W`` grid and resized bilinearly (``align_corners=False``,
    so each node is the centre of its cell) to ``size``.

    Args:
        scores (Tensor): ``(H * W, C)`` logits or probabilities, nodes row-major.
        grid_size (tuple): ``(H, W)`` of the graph (``data.grid_size``).
        size (tuple, optional): output ``(H', W')`` in pixels; ``None`` keeps
            the grid size. (default: ``None``)
        logits (bool, optional): apply a softmax over classes first; set
            ``False`` for probabilities. (default: ``True``)
    """
    check_tensor(scores, "scores")
    h, w = _check_grid_size(grid_size)
    if scores.dim() != 2 or scores.size(0) != h * w:
        raise ValueError(
            f"scores must have shape ({h * w}, C) for grid size {(h, w)}, "
            f"got {tuple(scores.shape)}"
        )
    check_finite(scores, "scores")
    probs = scores.float().softmax(dim=-1) if logits else scores.float()
    grid = probs.t().reshape(1, -1, h, w)
    out_size = (h, w) if size is None else _check_grid_size(size, "size")
    if out_size != (h, w):
        grid = F.interpolate(grid, size=out_size, mode="bilinear", align_corners=False)
    return grid[0]


def nodes_to_label_map(scores: Tensor, grid_size, size: Optional[Tuple[int, int]] = None,
                       logits: bool = True) -> Tensor:
    """Per-node class scores to an ``(H', W')`` int64 label map.

    Bilinear resize of the probabilities (:func:`nodes_to_pixels`), then argmax,
    so boundaries fall between nodes rather than on the node grid.
    """
    return nodes_to_pixels(scores, grid_size, size, logits).argmax(dim=0)


def label_map_to_nodes(label_map: Union[np.ndarray, Tensor], grid_size,
                       mode: str = "majority", ignore_index: int = IGNORE) -> Tensor:
    """Reduce an ``(H', W')`` label map to one label per node of an ``H x W`` grid.

    Pixel ``(y', x')`` falls in the cell of node ``(y' * H // H', x' * W // W')``.

    * ``"majority"``: the most frequent label among the cell's labelled pixels
      (``ignore_index`` pixels do not vote; ties go to the smaller label).  A
      node is unknown only when none of its pixels is labelled, so thin
      scribbles and single clicks survive the reduction.
    * ``"nearest"``: the label of the pixel at the cell centre (nearest
      neighbour resize), unknown included.

    Args:
        label_map (numpy.ndarray or Tensor): ``(H', W')`` integer labels in
            ``[0, 255]``, ``ignore_index`` for unknown.
        grid_size (tuple): ``(H, W)`` of the graph.
        mode (str, optional): ``"majority"`` or ``"nearest"``. (default: ``"majority"``)
        ignore_index (int, optional): the unknown label. (default: ``255``)

    Returns:
        Tensor: ``(H * W,)`` int64 node labels, ``ignore_index`` where unknown.
    """
    check_choice(mode, "mode", ("majority", "nearest"))
    labels = as_index_map(label_map, "label_map")
    h, w = _check_grid_size(grid_size)
    big_h, big_w = labels.shape
    rows, cols = torch.arange(h, device=labels.device), torch.arange(w, device=labels.device)
    if mode == "nearest":
        ys = ((rows + 0.5) * big_h / h).long()
        xs = ((cols + 0.5) * big_w / w).long()
        return labels[ys][:, xs].reshape(-1)
    cell_y = torch.arange(big_h, device=labels.device) * h // big_h
    cell_x = torch.arange(big_w, device=labels.device) * w // big_w
    cell = (cell_y[:, None] * w + cell_x[None, :]).reshape(-1)
    return majority_vote(cell, labels.reshape(-1), h * w, ignore_index)
