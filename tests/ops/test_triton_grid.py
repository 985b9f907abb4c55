"""The Triton grid kernels against the tensor-shift backend.

Without a GPU they run under Triton's interpreter (``TRITON_INTERPRET=1``), which
must be set before Triton compiles anything, so the check runs in a fresh process.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="Triton is not installed (the [triton] extra)")

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, sys
import torch
from graphseg.graph import GridAdjacency, image_to_graph
from graphseg.ops.grid_attention import grid_attention

device = sys.argv[1]
errors = {}
for h, w, r, window, f in [(6, 7, 2, "disk", 70), (3, 4, 4, "square", 5), (9, 5, 1, "square", 64)]:
    graph = image_to_graph(torch.rand(3, h, w, generator=torch.Generator().manual_seed(0)) * 4,
                           radius=r, window=window, threshold=0.3)
    adj = GridAdjacency.from_data(graph).to(device)
    for negative in ("gate", "mask"):
        for add_self_loops in (True, False):
            results = []
            for backend in ("torch", "triton"):
                g = torch.Generator().manual_seed(1)
                x = torch.randn(h * w, f, generator=g).to(device).requires_grad_(True)
                weight = adj.weight.clone().requires_grad_(True)
                coef = torch.tensor([1.3], device=device, requires_grad=True)
                out, alpha = grid_attention(x, adj.with_weight(weight), coef, 10.0, negative,
                                            add_self_loops, backend=backend)
                ramp = torch.linspace(-1, 1, out.numel(), device=device).view_as(out)
                (out * ramp).sum().backward()
                results.append([out, alpha, x.grad, weight.grad, coef.grad])
            key = f"{h}x{w} r{r} {window} F={f} {negative} loops={add_self_loops}"
            # float32 sums in another order: relative to the largest value, or absolute
            # below 1 (grad w is a sum of many terms that nearly cancel)
            errors[key] = [float((a - b).abs().max() / a.abs().max().clamp_min(1.0))
                           for a, b in zip(*results)]
print(json.dumps(errors))
"""


def run_check(device: str, interpret: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    done = subprocess.run([sys.executable, "-c", CHECK, device], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_close(errors: dict, tolerance: float) -> None:
    names = ["out", "alpha", "grad x", "grad weight", "grad w"]
    for case, values in errors.items():
        for name, value in zip(names, values):
            assert value < tolerance, \
                f"{case}: {name} differs by {value} (relative to max(|value|, 1))"


def test_triton_kernels_match_shifts_in_the_interpreter():
    assert_close(run_check("cpu", interpret=True), 1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_triton_kernels_match_shifts_on_cuda():
    assert_close(run_check("cuda", interpret=False), 1e-4)
