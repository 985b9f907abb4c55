"""Segmenters: dense labels from seeds by training on each image's graph.

* :class:`A2GNNConfig` and :func:`train_a2gnn`: the per-image A2GNN training of
  thesis section 3.3.5 with the two-stage schedule of section 3.4.
* :func:`segment_image`: one photo from its seed map to dense labels (graph,
  training, back to pixels, dense CRF), with colour/position node features
  (:func:`colour_position_features`) or a backbone's feature maps.
* :func:`train_affinity_net`, :func:`save_affinity_net`, :func:`load_affinity_net`:
  training the affinity CNN of section 3.3.3 on seed maps (seeded, checkpointed,
  resumable, DistributedDataParallel under ``torchrun``).
"""
from graphseg.segmenters.a2gnn import A2GNNConfig, train_a2gnn
from graphseg.segmenters.affinity_training import (
    load_affinity_net,
    save_affinity_net,
    train_affinity_net,
)
from graphseg.segmenters.pipeline import colour_position_features, segment_image

__all__ = ["A2GNNConfig", "colour_position_features", "segment_image", "train_a2gnn"]
__all__ += ["load_affinity_net", "save_affinity_net", "train_affinity_net"]
