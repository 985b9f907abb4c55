"""Which process this is, under ``torchrun`` or any launcher that sets the
``torch.distributed`` environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

An initialised process group is the authority; before one exists (a command
deciding whether to print, or which images are its shard) the environment is.
Without either, a process is rank 0 of 1.

Example:
    >>> from graphseg.utils.distributed import rank, world_size
    >>> 0 <= rank() < world_size()
    True
"""
from __future__ import annotations

import os

import torch.distributed as dist

__all__ = ["local_rank", "rank", "world_size"]


def _group() -> bool:
    return dist.is_available() and dist.is_initialized()


def _environment(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be an integer, got "
                         f"{value!r}") from None


def world_size() -> int:
    """The number of processes: the process group's, else ``WORLD_SIZE``, else 1."""
    if _group():
        return dist.get_world_size()
    world = _environment("WORLD_SIZE", 1)
    if world < 1:
        raise ValueError(f"the environment variable WORLD_SIZE must be >= 1, got {world}")
    return world


def rank() -> int:
    """This process's rank in ``[0, world_size())``: the process group's, else ``RANK``,
    else 0."""
    if _group():
        return dist.get_rank()
    value, world = _environment("RANK", 0), world_size()
    if not 0 <= value < world:
        raise ValueError(f"RANK={value} is not in [0, WORLD_SIZE={world})")
    return value


def local_rank() -> int:
    """This process's index on its machine (``LOCAL_RANK``, else 0): the CUDA device
    it should use is ``cuda:{local_rank()}``."""
    return _environment("LOCAL_RANK", 0)
