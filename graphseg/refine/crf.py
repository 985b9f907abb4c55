"""Fully connected CRF (Krähenbühl & Koltun, 2011) over ``pydensecrf``, with the
parameter presets of the thesis and the authors' release, and input checks that
raise a clear error where pydensecrf would crash or silently misread memory."""
from __future__ import annotations

from typing import Dict

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax

from graphseg.utils.checks import check_image, check_positive_int, check_probabilities
from graphseg.utils.constants import IGNORE
from graphseg.utils.types import Seeds

# Kernel widths in pixels (sxy) and RGB levels (srgb); compat is the Potts weight.
PRESETS: Dict[str, Dict[str, float]] = {
    # seed labels from CAMs (release, image-level seeds)
    "seed": {"gaussian_sxy": 3, "gaussian_compat": 3,
             "bilateral_sxy": 80, "bilateral_srgb": 13, "bilateral_compat": 10},
    # final pseudo labels (release)
    "final": {"gaussian_sxy": 2, "gaussian_compat": 3,
              "bilateral_sxy": 50, "bilateral_srgb": 5, "bilateral_compat": 10},
}


def dense_crf(image: np.ndarray, probs: np.ndarray, preset: str = "seed",
              iterations: int = 10, **params: float) -> np.ndarray:
    """Mean-field inference of a dense CRF with a Gaussian and a bilateral kernel.

    The unary is ``-log(p)`` with ``p`` clipped to ``[1e-5, 1]``.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB (copied if not
            C-contiguous).
        probs (numpy.ndarray): ``(C, H, W)`` float class probabilities,
            non-negative, summing to 1 over ``C`` at every pixel (within 1e-3).
        preset (str, optional): a key of :data:`PRESETS` (``"seed"`` or
            ``"final"``). (default: ``"seed"``)
        iterations (int, optional): mean-field steps, >= 1. (default: ``10``)
        **params (float, optional): override single preset values (``gaussian_sxy``,
            ``gaussian_compat``, ``bilateral_sxy``, ``bilateral_srgb``,
            ``bilateral_compat``), each > 0.

    Returns:
        np.ndarray: ``(C, H, W)`` float32 marginals, summing to 1 over ``C``.
    """
    image = check_image(image)
    probs = check_probabilities(probs, "probs", image.shape[:2])
    check_positive_int(iterations, "iterations")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}, got {preset!r}")
    settings = dict(PRESETS[preset])
    for key, value in params.items():
        if key not in settings:
            raise TypeError(f"unknown CRF parameter {key!r}; known: {', '.join(settings)}")
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{key} must be a finite number > 0, got {value}")
        settings[key] = float(value)
    classes, height, width = probs.shape
    crf = dcrf.DenseCRF2D(width, height, classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs)))
    crf.addPairwiseGaussian(sxy=settings["gaussian_sxy"], compat=settings["gaussian_compat"])
    crf.addPairwiseBilateral(sxy=settings["bilateral_sxy"], srgb=settings["bilateral_srgb"],
                             rgbim=image, compat=settings["bilateral_compat"])
    marginals = np.array(crf.inference(iterations), dtype=np.float32)
    return marginals.reshape(classes, height, width)


def crf_labels(image: np.ndarray, probs: np.ndarray, classes=None, preset: str = "seed",
               iterations: int = 10, **params: float) -> Seeds:
    """The CRF's label map: argmax of :func:`dense_crf`, every pixel labelled.

    Args:
        image (numpy.ndarray): as for :func:`dense_crf`.
        probs (numpy.ndarray): as for :func:`dense_crf`.
        classes (sequence of int, optional): class index of every row of
            ``probs``. (default: ``None``, ``0..C-1``)
        preset (str, optional): as for :func:`dense_crf`. (default: ``"seed"``)
        iterations (int, optional): as for :func:`dense_crf`. (default: ``10``)
        **params (float, optional): as for :func:`dense_crf`.

    Returns:
        Seeds: ``labels`` (no 255), ``scores`` the CRF marginals, ``classes``.

    >>> import numpy as np
    >>> from graphseg.refine import crf_labels
    >>> image = np.zeros((8, 8, 3), dtype=np.uint8); image[:, 4:] = 255
    >>> probs = np.full((2, 8, 8), 0.5, dtype=np.float32)  # unsure in the middle
    >>> probs[1, :, :2], probs[1, :, 6:] = 0.1, 0.9
    >>> probs[0] = 1 - probs[1]
    >>> crf_labels(image, probs, classes=(0, 7)).labels[0].tolist()
    [0, 0, 0, 0, 7, 7, 7, 7]
    """
    marginals = dense_crf(image, probs, preset, iterations, **params)
    ids = _class_ids(classes, marginals.shape[0])
    return Seeds(ids[marginals.argmax(axis=0)], marginals, tuple(int(c) for c in ids))


def _class_ids(classes, count: int) -> np.ndarray:
    """``classes`` as a uint8 lookup of ``count`` distinct ids in 0..254."""
    ids = np.arange(count) if classes is None else np.asarray(classes)
    if ids.shape != (count,):
        raise ValueError(f"classes must list one class per row of probs ({count}), "
                         f"got {ids.tolist()}")
    if ids.size and (ids.min() < 0 or ids.max() >= IGNORE or len(set(ids.tolist())) != count):
        raise ValueError(f"classes must be distinct ids in 0..254, got {ids.tolist()}")
    return ids.astype(np.uint8)
