"""Names that moved, still importable from their old package for one release."""
from __future__ import annotations

import importlib
import warnings
from typing import Callable, Dict


def moved(package: str, homes: Dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``name`` from
    ``homes[name]`` (a module, or ``"module:new_name"`` for a renamed one) with a
    ``DeprecationWarning`` naming the new path.

    The import happens on first use, not when ``package`` is imported, so an old
    path costs nothing and adds no import from a lower package to a higher one.
    """
    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, new = homes[name].partition(":")
        new = new or name
        warnings.warn(f"{package}.{name} moved to {module}.{new}; the old path goes in the "
                      "next release", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module), new)

    return __getattr__
