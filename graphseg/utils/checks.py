"""Input validation with errors that name the offending argument.

These checks run at the public entry points so that a bad input fails early with
a message saying which argument was wrong and what was expected, instead of a
shape error deep inside a kernel.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


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
