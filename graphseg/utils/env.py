"""Where code runs: the CPU, the torch threads, the GPU and the versions of the stack.

:func:`machine` is what a benchmark states about where it ran (``graphseg info``
reports the same versions); :data:`PACKAGES` is the stack it lists.
"""
from __future__ import annotations

import importlib
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional

from graphseg import __version__

# (distribution on PyPI, module it provides)
PACKAGES = (
    ("torch", "torch"),
    ("torch-geometric", "torch_geometric"),
    ("pydensecrf2", "pydensecrf"),
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("scikit-image", "skimage"),
    ("opencv-python-headless", "cv2"),
    ("networkx", "networkx"),
    ("pillow", "PIL"),
    ("tqdm", "tqdm"),
    ("torch-scatter", "torch_scatter"),
    ("torch-sparse", "torch_sparse"),
    ("triton", "triton"),
)


def package_version(distribution: str, module: str) -> str:
    """The installed version of ``distribution``, else ``module.__version__``
    (``"installed"`` without one), else ``"not installed"``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    try:  # some modules come from a differently named distribution
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else
    ``platform.processor()`` (which may be empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine(threads: Optional[int] = None) -> Dict[str, object]:
    """Machine, CPU count, torch threads, GPU and the versions of the stack, as one
    flat JSON-serialisable dict.

    Args:
        threads (int, optional): the torch threads to report (pass the count a run
            will use when it is set later). (default: ``None``,
            ``torch.get_num_threads()`` now)

    Keys: ``graphseg``, ``python``, ``platform``, ``machine`` (architecture and CPU
    model), ``cpus`` (``os.cpu_count()``), ``torch_threads``, ``gpu`` (the first CUDA
    device's name, or None), then one per :data:`PACKAGES` module, named after it
    (``opencv`` for ``cv2``), with its version or ``"not installed"``.
    """
    import torch
    report: Dict[str, object] = {
        "graphseg": __version__, "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": f"{platform.machine()} {cpu_model()}".strip(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads() if threads is None else threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for distribution, module in PACKAGES:
        report[module.replace("cv2", "opencv")] = package_version(distribution, module)
    return report
