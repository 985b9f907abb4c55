import json
import subprocess
import sys

import torch
import torch_geometric

from graphseg import __version__
from graphseg.cli import main


def test_info_prints_versions_and_capabilities(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"graphseg {__version__}" in out
    assert torch.__version__ in out and torch_geometric.__version__ in out
    for name in ("pydensecrf2", "torch-scatter", "torch-sparse", "triton", "cuda"):
        assert name in out


def test_info_json_reports_what_is_importable(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["versions"]["torch"] == torch.__version__
    assert report["usable"]["cuda"]["usable"] == torch.cuda.is_available()
    try:
        import torch_sparse  # noqa: F401
        has_sparse = True
    except ImportError:
        has_sparse = False
    assert report["usable"]["torch-sparse"]["usable"] == has_sparse


def test_console_entry_point_and_usage_errors():
    run = subprocess.run([sys.executable, "-m", "graphseg", "--version"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and __version__ in run.stdout
    run = subprocess.run([sys.executable, "-m", "graphseg"], capture_output=True, text=True)
    assert run.returncode == 2 and "usage: graphseg" in run.stderr
    run = subprocess.run([sys.executable, "-m", "graphseg", "nope"], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "invalid choice" in run.stderr
