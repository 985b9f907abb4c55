"""Segmenters: dense labels from seeds by training on each image's graph.

* :class:`A2GNNConfig` and :func:`train_a2gnn`: the per-image A2GNN training of
  thesis section 3.3.5 with the two-stage schedule of section 3.4.
"""
from graphseg.segmenters.a2gnn import A2GNNConfig, train_a2gnn

__all__ = ["A2GNNConfig", "train_a2gnn"]
