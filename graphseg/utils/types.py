"""What every seed rule and every refiner returns: :class:`Seeds`.

Seed maps are ``(H, W)`` uint8 class indices with 255 = unknown, the convention
of the whole package (:data:`graphseg.utils.constants.IGNORE`).  Functions that
also know how sure they are return per-class scores next to the map.  It sits
below :mod:`graphseg.refine` and :mod:`graphseg.seeds`, which both return it.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import numpy as np


class Seeds(NamedTuple):
    """A seed map and, where defined, per-class confidences.

    Attributes:
        labels (numpy.ndarray): ``(H, W)`` uint8 class index per pixel,
            255 = unknown.
        scores (numpy.ndarray or None): ``(C, H, W)`` float32 confidences in
            ``[0, 1]`` (row ``c`` for class ``classes[c]``), or ``None`` when the
            method has none.
        classes (tuple of int): the class index of every row of ``scores`` (empty
            without scores).
    """

    labels: np.ndarray
    scores: Optional[np.ndarray] = None
    classes: Tuple[int, ...] = ()
