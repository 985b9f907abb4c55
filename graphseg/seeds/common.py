"""What every seed function returns, and the input checks they share.

Seed maps are ``(H, W)`` uint8 class indices with 255 = unknown, the convention
of the whole package (:data:`graphseg.data.IGNORE`).  Functions that also know
how sure they are return per-class scores next to the map.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import numpy as np

from graphseg.data.classes import IGNORE


class Seeds(NamedTuple):
    """A seed map and, where defined, per-class confidences.

    Attributes:
        labels: ``(H, W)`` uint8 class index per pixel, 255 = unknown.
        scores: ``(C, H, W)`` float32 confidences in ``[0, 1]`` (row ``c`` for
            class ``classes[c]``), or ``None`` when the method has none.
        classes: the class index of every row of ``scores`` (empty without scores).
    """

    labels: np.ndarray
    scores: Optional[np.ndarray] = None
    classes: Tuple[int, ...] = ()


def check_image(image, name: str = "image") -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array, C-contiguous and writable (a copy when it
    was not: pydensecrf and torch refuse read-only buffers such as PIL's)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8 (RGB 0..255), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {image.shape}")
    return np.require(image, requirements=["C", "W"])


def check_seed_map(seeds, name: str = "seeds", shape: Optional[Tuple[int, int]] = None,
                   num_classes: Optional[int] = None) -> np.ndarray:
    """An ``(H, W)`` uint8 seed map (255 = unknown), optionally of a given size and
    with every known label below ``num_classes``."""
    if not isinstance(seeds, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(seeds).__name__}")
    if seeds.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8 (class index, 255 = unknown), "
                        f"got {seeds.dtype}")
    if seeds.ndim != 2 or seeds.size == 0:
        raise ValueError(f"{name} must be a non-empty (H, W) map, got shape {seeds.shape}")
    if shape is not None and seeds.shape != tuple(shape):
        raise ValueError(f"{name} has shape {seeds.shape}, expected {tuple(shape)} "
                         "(the image's height and width)")
    if num_classes is not None:
        bad = np.unique(seeds[(seeds >= num_classes) & (seeds != IGNORE)])
        if bad.size:
            raise ValueError(f"{name} holds class ids {bad.tolist()}, but only "
                             f"0..{num_classes - 1} and 255 (unknown) are allowed")
    return seeds


def check_probabilities(probs, name: str = "probs", shape: Optional[Tuple[int, int]] = None,
                        atol: float = 1e-3) -> np.ndarray:
    """A ``(C, H, W)`` finite, non-negative float array whose channels sum to 1 at
    every pixel (within ``atol``), as C-contiguous float32."""
    if not isinstance(probs, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(probs).__name__}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise TypeError(f"{name} must be a floating array, got {probs.dtype}")
    if probs.ndim != 3 or probs.size == 0:
        raise ValueError(f"{name} must be a non-empty (C, H, W) array, got shape {probs.shape}")
    if not 1 <= probs.shape[0] < IGNORE:
        raise ValueError(f"{name} must have 1..254 classes, got {probs.shape[0]}")
    if shape is not None and probs.shape[1:] != tuple(shape):
        raise ValueError(f"{name} is {probs.shape[1]}x{probs.shape[2]} (H x W) but the image "
                         f"is {shape[0]}x{shape[1]}")
    if not np.isfinite(probs).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(probs)).sum())} non-finite values")
    if probs.min() < 0:
        raise ValueError(f"{name} must be non-negative, got minimum {float(probs.min())}")
    error = float(np.abs(probs.sum(axis=0, dtype=np.float64) - 1).max())
    if error > atol:
        raise ValueError(f"{name} must sum to 1 over its first axis (classes) at every "
                         f"pixel; worst pixel is off by {error:.3g}")
    return np.ascontiguousarray(probs, dtype=np.float32)


def check_fraction(value, name: str) -> float:
    """A float in ``(0, 1]``."""
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value
