"""PyG transforms that build graphs, so datasets of images batch with PyG's DataLoader."""
from __future__ import annotations

from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from graphseg.graph.image import image_to_graph, label_map_to_nodes
from graphseg.utils.constants import IGNORE


class ImageToGraph(BaseTransform):
    r"""Replace a sample's feature map by its grid graph (:func:`~graphseg.graph.image_to_graph`).

    The input :class:`~torch_geometric.data.Data` holds ``feature_map``
    (``(C, H, W)``), optionally ``edge_features`` (``(C_g, H, W)``) and
    optionally ``label_map`` (``(H', W')`` labels, 255 = unknown).  The output
    holds the graph (``x``, ``edge_index``, ``edge_weight``, ``pos``,
    ``grid_size``, ``radius``, ``window``), ``y`` = the node labels from
    ``label_map`` (:func:`~graphseg.graph.label_map_to_nodes`), and every other
    attribute of the input unchanged.  The maps themselves are removed, so
    samples of different sizes batch with :class:`torch_geometric.loader.DataLoader`.

    Args:
        radius (int, optional): window radius. (default: ``4``)
        window (str, optional): ``"square"`` or ``"disk"``. (default: ``"square"``)
        threshold (float, optional): Eq. 3.14 threshold. (default: ``1e-3``)
        self_loops (bool, optional): keep ``i -> i`` edges. (default: ``True``)
        label_mode (str, optional): ``"majority"`` or ``"nearest"``. (default: ``"majority"``)

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> from graphseg.graph import ImageToGraph
        >>> t = ImageToGraph(radius=2)
        >>> t(Data(feature_map=torch.rand(4, 6, 6))).num_nodes
        36
    """

    def __init__(self, radius: int = 4, window: str = "square", threshold: float = 1e-3,
                 self_loops: bool = True, label_mode: str = "majority") -> None:
        self.radius = radius
        self.window = window
        self.threshold = threshold
        self.self_loops = self_loops
        self.label_mode = label_mode

    def forward(self, data: Data) -> Data:
        if "feature_map" not in data:
            raise ValueError("ImageToGraph needs a 'feature_map' attribute of shape (C, H, W)")
        out = image_to_graph(data.feature_map, self.radius, self.window,
                             edge_features=data.get("edge_features"),
                             threshold=self.threshold, self_loops=self.self_loops)
        if "label_map" in data:
            out.y = label_map_to_nodes(data.label_map, out.grid_size, self.label_mode,
                                       IGNORE)
        for key, value in data.items():
            if key not in ("feature_map", "edge_features", "label_map"):
                out[key] = value
        return out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(radius={self.radius}, window={self.window!r}, "
                f"threshold={self.threshold}, self_loops={self.self_loops})")
