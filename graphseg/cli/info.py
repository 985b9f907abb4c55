"""``graphseg info``: versions of the stack and which optional accelerations are usable."""
from __future__ import annotations

import argparse
import json
import platform
from typing import Dict, Tuple

from graphseg import __version__

# the stack's versions and the benchmarks' machine report (cpu_model and machine are
# re-exported: they used to live here)
from graphseg.utils.env import PACKAGES, cpu_model, machine  # noqa: F401
from graphseg.utils.env import package_version as _version


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
