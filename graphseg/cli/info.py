"""``graphseg info``: versions of the stack and which optional accelerations are usable."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Dict, Tuple

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


def _version(distribution: str, module: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    try:  # some modules come from a differently named distribution
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return "not installed"


def _probe(check) -> Tuple[bool, str]:
    """Run ``check``; usable when it returns without raising."""
    try:
        return True, check() or ""
    except Exception as error:  # noqa: BLE001 - report why it is unusable
        return False, f"{type(error).__name__}: {error}".splitlines()[0]


def _cuda() -> str:
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device (torch.cuda.is_available() is False)")
    return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"


def _torch_scatter() -> str:
    import torch
    import torch_scatter
    out = torch_scatter.scatter(torch.ones(3), torch.tensor([0, 0, 1]), reduce="sum")
    if out.tolist() != [2.0, 1.0]:
        raise RuntimeError(f"scatter gave {out.tolist()}")
    return ""


def _torch_sparse() -> str:
    import torch
    import torch_sparse
    adj = torch_sparse.SparseTensor(row=torch.tensor([0, 1]), col=torch.tensor([1, 0]),
                                    sparse_sizes=(2, 2))
    if adj.matmul(torch.ones(2, 1)).view(-1).tolist() != [1.0, 1.0]:
        raise RuntimeError("SparseTensor.matmul gave a wrong result")
    return ""


def _triton() -> str:
    import os

    import torch
    import triton  # noqa: F401
    if torch.cuda.is_available():
        return "CUDA kernels"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return "interpreter only (TRITON_INTERPRET=1, no GPU)"
    raise RuntimeError("installed, but there is no GPU; set TRITON_INTERPRET=1 to "
                       "run kernels in the interpreter")


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine() -> Dict[str, object]:
    """What a benchmark states about where it ran: machine, CPU count, torch threads,
    GPU, and the versions of the stack, as one flat JSON-serialisable dict."""
    import torch
    report: Dict[str, object] = {
        "graphseg": __version__, "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": f"{platform.machine()} {cpu_model()}".strip(),
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for distribution, module in PACKAGES:
        report[module.replace("cv2", "opencv")] = _version(distribution, module)
    return report


def collect() -> Dict[str, object]:
    """Versions and capability probes, as a JSON-serialisable dict."""
    report: Dict[str, object] = {
        "graphseg": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {dist: _version(dist, module) for dist, module in PACKAGES},
    }
    usable = {}
    for name, check in (("cuda", _cuda), ("torch-scatter", _torch_scatter),
                        ("torch-sparse", _torch_sparse), ("triton", _triton)):
        ok, detail = _probe(check)
        usable[name] = {"usable": ok, "detail": detail}
    report["usable"] = usable
    return report


def format_report(report: Dict[str, object]) -> str:
    lines = [f"graphseg {report['graphseg']}  (Python {report['python']}, "
             f"{report['platform']})", "", "versions:"]
    width = max(len(name) for name in report["versions"])
    for name, version in report["versions"].items():
        lines.append(f"  {name:<{width}}  {version}")
    lines += ["", "usable:"]
    for name, probe in report["usable"].items():
        mark = "yes" if probe["usable"] else "no "
        detail = f"  ({probe['detail']})" if probe["detail"] else ""
        lines.append(f"  {name:<{width}}  {mark}{detail}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = collect()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="print versions and whether CUDA, torch-scatter, torch-sparse "
                     "and Triton are usable")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)
