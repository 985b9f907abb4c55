"""Input validation with errors that name the offending argument: the one check
vocabulary of graphseg.

These checks run at the public entry points so that a bad input fails early with
a message saying which argument was wrong and what was expected, instead of a
shape error deep inside a kernel.  A public function that has validated its inputs
and goes on to call other public functions (``propagate`` calls the seed rules,
the features, the pipeline and the CRF) runs them inside :func:`trusted_inputs`:
there the array checks (:func:`check_image`, :func:`check_seed_map`,
:func:`check_probabilities`) skip their scans and only convert, so a photo is
validated once, not at every hop.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from graphseg.utils.constants import IGNORE

_TRUSTED = contextvars.ContextVar("graphseg_trusted_inputs", default=False)


@contextlib.contextmanager
def trusted_inputs() -> Iterator[None]:
    """Within the block the array checks trust their input (see the module notes);
    for public functions whose inputs are already validated, never for user data."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def check_tensor(value, name: str) -> Tensor:
    """Raise ``TypeError`` unless ``value`` is a :class:`torch.Tensor`."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_finite(value: Tensor, name: str) -> None:
    """Raise ``ValueError`` if a floating tensor holds NaN or infinity."""
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as ``int``, raising unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_choice(value, name: str, choices) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {expected}, got {value!r}")
    return value


def check_edge_index(edge_index: Tensor, num_nodes: int, name: str = "edge_index") -> None:
    """Check a ``(2, E)`` integer edge index whose entries lie in ``[0, num_nodes)``."""
    check_tensor(edge_index, name)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name} must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers, got {edge_index.dtype}")
    if edge_index.numel() > 0:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= num_nodes:
            raise ValueError(
                f"{name} refers to node {low if low < 0 else high}, but the graph has "
                f"{num_nodes} nodes (valid indices are 0..{num_nodes - 1})"
            )


def check_edge_weight(edge_weight: Optional[Tensor], num_edges: int,
                      name: str = "edge_weight") -> None:
    """Check a finite, non-negative ``(E,)`` edge weight vector (``None`` passes)."""
    if edge_weight is None:
        return
    check_tensor(edge_weight, name)
    if edge_weight.dim() != 1 or edge_weight.numel() != num_edges:
        raise ValueError(
            f"{name} must have shape ({num_edges},) to match edge_index, "
            f"got {tuple(edge_weight.shape)}"
        )
    if not edge_weight.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {edge_weight.dtype}")
    check_finite(edge_weight, name)
    if num_edges and bool((edge_weight < 0).any()):
        raise ValueError(f"{name} must be non-negative, got minimum {float(edge_weight.min())}")


def as_index_map(value, name: str) -> Tensor:
    """An ``(H, W)`` non-empty, non-negative integer map (numpy or torch) as int64 tensor."""
    if hasattr(value, "__array__") and not isinstance(value, Tensor):
        value = torch.tensor(value)  # a copy: arrays from PIL are read-only
    check_tensor(value, name)
    if value.dim() != 2:
        raise ValueError(f"{name} must have shape (H, W), got {tuple(value.shape)}")
    if value.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(value.shape)}")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer labels, got {value.dtype}")
    value = value.long()
    if int(value.min()) < 0:
        raise ValueError(f"{name} must hold values >= 0, got {int(value.min())}")
    return value


def check_image(image, name: str = "image") -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array, C-contiguous and writable (a copy when it
    was not: pydensecrf and torch refuse read-only buffers such as PIL's)."""
    if not _TRUSTED.get():
        _validate_image(image, name)
    return np.require(image, requirements=["C", "W"])


def _validate_image(image, name: str) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8 (RGB 0..255), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {image.shape}")


def check_seed_map(seeds, name: str = "seeds", shape: Optional[Tuple[int, int]] = None,
                   num_classes: Optional[int] = None) -> np.ndarray:
    """An ``(H, W)`` uint8 seed map (255 = unknown), optionally of a given size and
    with every known label below ``num_classes``."""
    if _TRUSTED.get():
        return seeds
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
        bad = class_ids_out_of_range(seeds, num_classes)
        if bad:
            raise ValueError(f"{name} holds class ids {bad}, but only "
                             f"0..{num_classes - 1} and 255 (unknown) are allowed")
    return seeds


def class_ids_out_of_range(labels: np.ndarray, num_classes: int) -> list:
    """The distinct labels of ``labels`` that are neither below ``num_classes`` nor
    :data:`~graphseg.utils.constants.IGNORE`, sorted."""
    return np.unique(labels[(labels >= num_classes) & (labels != IGNORE)]).tolist()


def check_probabilities(probs, name: str = "probs", shape: Optional[Tuple[int, int]] = None,
                        atol: float = 1e-3) -> np.ndarray:
    """A ``(C, H, W)`` finite, non-negative float array whose channels sum to 1 at
    every pixel (within ``atol``), as C-contiguous float32."""
    if not _TRUSTED.get():
        _validate_probabilities(probs, name, shape, atol)
    return np.ascontiguousarray(probs, dtype=np.float32)


def _validate_probabilities(probs, name: str, shape: Optional[Tuple[int, int]],
                            atol: float) -> None:
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


def check_fraction(value, name: str) -> float:
    """A float in ``(0, 1]``."""
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value
