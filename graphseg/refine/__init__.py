"""Refinement of per-pixel class scores on the photo itself (arrays in, arrays out).

* Dense CRF (Krähenbühl & Koltun): :func:`dense_crf`, :func:`crf_labels`,
  :data:`PRESETS` (the thesis' and the release's parameters).
* Random walk over a grid's affinities (Ahn & Kwak; thesis Table 3.4's baseline
  propagator): :func:`random_walk`, :func:`colour_affinity`,
  :func:`walk_probabilities`, :func:`fuse_probabilities` (the 1:3 fusion).
"""
from graphseg.refine.crf import PRESETS, crf_labels, dense_crf
from graphseg.refine.random_walk import (
    colour_affinity,
    fuse_probabilities,
    random_walk,
    walk_probabilities,
)

__all__ = ["PRESETS", "colour_affinity", "crf_labels", "dense_crf", "fuse_probabilities",
           "random_walk", "walk_probabilities"]
