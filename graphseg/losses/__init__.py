"""Losses of A2GNN (thesis section 3.3.5) and of RRM's segmentation branch (section 2.2.4).

* :func:`balanced_cross_entropy`: Eq. 2.16 / 3.21 on the labelled nodes or pixels
  (``(N, C)`` logits or ``(B, C, H, W)`` maps), background and foreground averaged
  separately (the authors' releases).
* :func:`window_kernel` and :func:`potts_energy`: the bilateral kernel over a
  window of the pixel grid with any number of guides (RGB, network features) and
  the weighted relaxed Potts energy under it (Eq. 2.17-2.20), shared by RRM, DFR
  and A2GNN; :func:`soft_filter` (Eq. 2.21); :func:`dense_energy_loss`, RRM's
  dense energy loss in one call; :func:`dense_potts_energy_reference`, the exact
  all-pairs energy.
* :func:`bcd_loss`: RRM's batch-based class distance loss (Eq. 2.22-2.26).
* :func:`confident_labels`, :func:`feature_distance_loss`,
  :func:`feature_regularized_loss` and :func:`dfr_loss`: DFR's confident labels,
  feature distance, feature regularised and dynamic-kernel losses (Eq. 4.4-4.13).
* :func:`gaussian_kernel` and :func:`regularized_loss`: Eq. 3.13 and 3.22 (A2GNN's
  one-image case of :func:`window_kernel` and :func:`potts_energy`).
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
from graphseg.losses.bcd import bcd_loss
from graphseg.losses.cross_entropy import balanced_cross_entropy
from graphseg.losses.dfr import (
    confident_labels,
    dfr_loss,
    feature_distance_loss,
    feature_regularized_loss,
)
from graphseg.losses.energy import (
    dense_energy_loss,
    dense_potts_energy_reference,
    potts_energy,
    soft_filter,
    window_kernel,
)
from graphseg.losses.multi_point import box_points, boxes_to_grid, consistency_check, mp_loss
from graphseg.losses.regularized import gaussian_kernel, kernel_matrix, regularized_loss

__all__ = [
    "AffinityPairs",
    "affinity_labels",
    "affinity_loss",
    "affinity_pairs",
    "balanced_cross_entropy",
    "bcd_loss",
    "box_points",
    "boxes_to_grid",
    "confident_labels",
    "consistency_check",
    "dense_energy_loss",
    "dense_potts_energy_reference",
    "dfr_loss",
    "feature_distance_loss",
    "feature_regularized_loss",
    "gaussian_kernel",
    "kernel_matrix",
    "mp_loss",
    "pair_distances",
    "potts_energy",
    "regularized_loss",
    "soft_filter",
    "window_kernel",
]
