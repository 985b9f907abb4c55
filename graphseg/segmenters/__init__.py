"""Segmenters: dense labels from seeds by training on each image's graph.

* :class:`A2GNNConfig` and :func:`train_a2gnn`: the per-image A2GNN training of
  thesis section 3.3.5 with the two-stage schedule of section 3.4.
* :func:`segment_image`: one photo from its seed map to dense labels (graph,
  training, back to pixels, dense CRF), with colour/position node features
  (:func:`colour_position_features`) or a backbone's feature maps.
* :func:`train_affinity_net`, :func:`save_affinity_net`, :func:`load_affinity_net`:
  training the affinity CNN of section 3.3.3 on seed maps (seeded, checkpointed,
  resumable, DistributedDataParallel under ``torchrun``).
* :func:`node_features`: the graph's node features, from the bundled ESPNetv2
  encoder (:func:`backbone_features`) or colour and position.
* :func:`propagate`: one photo from its weak annotation (boxes, scribbles,
  points, tags) to dense labels, seeds included; :func:`box_instances`.
"""
from graphseg.segmenters.a2gnn import A2GNNConfig, train_a2gnn
from graphseg.segmenters.affinity_training import (
    load_affinity_net,
    save_affinity_net,
    train_affinity_net,
)
from graphseg.segmenters.pipeline import colour_position_features, segment_image, walk_seeds
from graphseg.segmenters.features import FEATURES, backbone_features, node_features
from graphseg.segmenters.propagate import KINDS, LAYERS, Propagation, box_instances, propagate

__all__ = ["A2GNNConfig", "FEATURES", "KINDS", "LAYERS", "Propagation", "backbone_features",
           "box_instances", "colour_position_features", "load_affinity_net", "node_features",
           "propagate", "save_affinity_net", "segment_image", "train_a2gnn",
           "train_affinity_net", "walk_seeds"]
