"""Per-image propagation: dense labels of one photo from its seeds, by training a
graph network on that photo's own graph (thesis chapter 3).

* :class:`A2GNNConfig` and :func:`train_a2gnn`: the per-image A2GNN training of
  thesis section 3.3.5 with the two-stage schedule of section 3.4;
  :func:`train_a2gnn_batch` trains several photos' models at once
  (:class:`PhotoGraph` each), each with its one-photo result.
* :func:`segment_image`: one photo from its seed map to dense labels (graph,
  training, back to pixels, dense CRF), with colour/position node features
  (:func:`colour_position_features`) or a backbone's feature maps.
* :func:`node_features`: the graph's node features, from the bundled ESPNetv2
  encoder (:func:`backbone_features`) or colour and position.
* :func:`propagate`: one photo from its weak annotation (boxes, scribbles,
  points, tags) to dense labels, seeds included; :func:`box_instances`;
  :func:`grabcut_fusion` (boxes: GrabCut's answer pooled with the GNN's);
  ``progress=`` reports its stages (:mod:`graphseg.propagation.progress`).
"""
from graphseg.propagation.a2gnn import A2GNNConfig, PhotoGraph, train_a2gnn, train_a2gnn_batch
from graphseg.propagation.features import FEATURES, backbone_features, node_features
from graphseg.propagation.pipeline import (
    PROPAGATORS,
    colour_position_features,
    segment_image,
    walk_seeds,
)
from graphseg.propagation.progress import STAGES, StageBar
from graphseg.propagation.propagate import (
    LAYERS,
    Propagation,
    box_instances,
    grabcut_fusion,
    propagate,
)
from graphseg.utils.deprecation import moved

__getattr__ = moved(__name__, {"KINDS": "graphseg.utils.constants:SUPERVISIONS"})

__all__ = ["A2GNNConfig", "FEATURES", "LAYERS", "PROPAGATORS", "PhotoGraph", "Propagation",
           "STAGES", "StageBar", "backbone_features", "box_instances",
           "colour_position_features", "grabcut_fusion", "node_features", "propagate",
           "segment_image", "train_a2gnn", "train_a2gnn_batch", "walk_seeds"]
