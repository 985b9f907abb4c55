"""A network's prediction of one photo, refined by propagation over the photo's graph.

A client of the per-image propagation core for any model that outputs class
probabilities (the few-shot segmenters of :mod:`graphseg.segmenters.few_shot`
first): the confident pixels of the prediction are seeds, and the photo's own
graph decides the rest.

* ``"walk"``: the probabilities walked along the colour affinities of the photo's
  stride-4 grid (:func:`graphseg.refine.walk_probabilities`; no training, about a
  tenth of a second);
* ``"a2gnn"``: the pixels predicted with probability above ``confidence`` become
  seeds, and A2GNN trained on the photo's graph from them labels the rest
  (:func:`graphseg.propagation.propagate` with ``"scribbles"``, the release's
  scribble schedule; seconds per photo);
* ``"crf"``: the dense CRF on the probabilities (a fully connected graph, mean
  field; no seeds).

Example:
    >>> import numpy as np
    >>> from graphseg.propagation.refinement import refine_probabilities
    >>> image = np.zeros((32, 32, 3), np.uint8)
    >>> image[:, 16:] = 200
    >>> probs = np.full((2, 32, 32), 0.5, np.float32)
    >>> probs[1, :, 20:], probs[0, :, 20:] = 0.99, 0.01  # confident right part
    >>> refined = refine_probabilities(image, probs, "walk")
    >>> refined.shape, bool(refined[1, :, 16:].mean() > refined[1, :, :16].mean())
    ((2, 32, 32), True)
"""
from __future__ import annotations

import numpy as np

from graphseg.propagation.a2gnn import A2GNNConfig
from graphseg.propagation.propagate import propagate
from graphseg.refine.crf import dense_crf
from graphseg.refine.random_walk import walk_probabilities
from graphseg.utils.checks import check_choice, check_fraction, check_image
from graphseg.utils.constants import IGNORE

__all__ = ["REFINEMENTS", "refine_probabilities"]

REFINEMENTS = ("walk", "a2gnn", "crf")


def refine_probabilities(image: np.ndarray, probs: np.ndarray, method: str, *,
                         confidence: float = 0.9, seed: int = 0) -> np.ndarray:
    """Class probabilities of ``image`` after propagation over its graph.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        probs (numpy.ndarray): ``(C, H, W)`` probabilities, summing to 1 over ``C``.
        method (str): ``"walk"``, ``"a2gnn"`` or ``"crf"`` (see the module notes).
        confidence (float, optional): ``"a2gnn"``: the probability above which a
            pixel is a seed. (default: ``0.9``)
        seed (int, optional): ``"a2gnn"``: the GNN's random seed. (default: ``0``)

    Returns:
        numpy.ndarray: ``(C, H, W)`` float32 probabilities.  ``"a2gnn"`` returns
        ``probs`` unchanged when fewer than two classes have a seed (the graph would
        learn one class).
    """
    image = check_image(image)
    check_choice(method, "method", REFINEMENTS)
    check_fraction(confidence, "confidence")
    if not isinstance(probs, np.ndarray) or probs.ndim != 3 or probs.shape[1:] != image.shape[:2]:
        raise ValueError(f"probs must be a (C, H, W) array of the image's size "
                         f"{image.shape[:2]}, got {getattr(probs, 'shape', type(probs))}")
    probs = probs.astype(np.float32)
    if method == "walk":
        return walk_probabilities(image, probs).scores
    if method == "crf":
        return dense_crf(image, probs, "final").astype(np.float32)
    seeds = np.where(probs.max(axis=0) > confidence, probs.argmax(axis=0), IGNORE)
    if len(np.unique(seeds[seeds != IGNORE])) < 2:
        return probs
    config = A2GNNConfig.release("scribbles", hidden_channels=64)
    return propagate(image, seeds.astype(np.uint8), "scribbles", len(probs), config=config,
                     seed=seed).probs.astype(np.float32)
