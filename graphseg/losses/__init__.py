"""Losses for training A2GNN on one image's graph (thesis section 3.3.5).

* :func:`balanced_cross_entropy`: Eq. 3.21 on the labelled nodes, background and
  foreground averaged separately (the authors' release).
* :func:`gaussian_kernel` and :func:`regularized_loss`: Eq. 3.13 and 3.22.
* :func:`affinity_labels`, :func:`affinity_pairs` and :func:`affinity_loss`: the
  affinity CNN's labels and loss (Eq. 3.6-3.13).
* :func:`box_points`, :func:`mp_loss` and :func:`consistency_check`: the
  multi-point loss and consistency checking for boxes (Eq. 3.23-3.28).
"""
from graphseg.losses.affinity import (
    AffinityPairs,
    affinity_labels,
    affinity_loss,
    affinity_pairs,
    pair_distances,
)
from graphseg.losses.cross_entropy import balanced_cross_entropy
from graphseg.losses.multi_point import box_points, boxes_to_grid, consistency_check, mp_loss
from graphseg.losses.regularized import gaussian_kernel, regularized_loss

__all__ = [
    "AffinityPairs",
    "affinity_labels",
    "affinity_loss",
    "affinity_pairs",
    "balanced_cross_entropy",
    "box_points",
    "boxes_to_grid",
    "consistency_check",
    "gaussian_kernel",
    "mp_loss",
    "pair_distances",
    "regularized_loss",
]
