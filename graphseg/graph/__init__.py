"""Graph construction: images and feature maps to ``torch_geometric.data.Data``.

* :func:`grid_graph` and :func:`window_offsets`: pixel grids with radius-r windows.
* :func:`grid_affinity`, :func:`l1_normalize`: edge weights (Eq. 3.8) and node
  features (Eq. 3.15).
* :func:`image_to_graph` and its inverses :func:`nodes_to_pixels`,
  :func:`nodes_to_label_map`, :func:`label_map_to_nodes`.
* :func:`superpixel_graph` and its inverses (the GraphNet-style baseline).
* :class:`ImageToGraph`: the conversion as a PyG transform.
* :class:`GridAdjacency`, :class:`CSRAdjacency`: the layouts of the fast
  attention kernels, built once per graph.
"""
from graphseg.graph.adjacency import CSRAdjacency, GridAdjacency
from graphseg.graph.affinity import grid_affinity, l1_normalize
from graphseg.graph.grid import GridGraph, grid_graph, grid_positions, window_offsets
from graphseg.graph.image import (
    image_to_graph,
    label_map_to_nodes,
    nodes_to_label_map,
    nodes_to_pixels,
)
from graphseg.graph.superpixel import (
    pixels_to_superpixels,
    superpixel_graph,
    superpixels_to_pixels,
)
from graphseg.graph.transforms import ImageToGraph

__all__ = [
    "CSRAdjacency",
    "GridAdjacency",
    "GridGraph",
    "ImageToGraph",
    "grid_affinity",
    "grid_graph",
    "grid_positions",
    "image_to_graph",
    "l1_normalize",
    "label_map_to_nodes",
    "nodes_to_label_map",
    "nodes_to_pixels",
    "pixels_to_superpixels",
    "superpixel_graph",
    "superpixels_to_pixels",
    "window_offsets",
]
