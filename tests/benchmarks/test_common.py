"""benchmarks/_common.py: the standard arguments, the JSON report and the plot helpers;
and what every script shares (main(argv) -> int, no graphseg.cli)."""
import argparse
import ast
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphseg.utils.env import machine

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
sys.path.insert(0, str(BENCHMARKS))
import _common  # noqa: E402

pytestmark = pytest.mark.slow


def test_parser_has_the_standard_arguments():
    parser = _common.benchmark_parser("Title.\n\nMore.", quick="tiny", plot=True, seed=3,
                                      threads=2)
    assert parser.description == "Title."
    args = parser.parse_args([])
    assert (args.quick, args.json, args.plot, args.seed, args.threads) == (False, None, None,
                                                                           3, 2)
    args = parser.parse_args(["--quick", "--json", "a.json", "--plot", "a.png", "--seed", "7",
                              "--threads", "1"])
    assert (args.quick, args.json, args.plot, args.seed, args.threads) == (True, "a.json",
                                                                           "a.png", 7, 1)


def test_parser_leaves_out_what_a_script_lacks(capsys):
    parser = _common.benchmark_parser("Title.", seed=False, threads=False)
    assert vars(parser.parse_args([])) == {"json": None}
    for flag in ("--quick", "--plot", "--seed", "--threads"):
        with pytest.raises(SystemExit):
            parser.parse_args([flag, "1"])
    assert _common.benchmark_parser("Title.", seed=None).parse_args([]).seed is None


def test_apply_defaults_explicit_flags_win():
    quick, full = {"runs": 2, "epochs": 100}, {"runs": 10, "epochs": 500}
    args = argparse.Namespace(quick=True, runs=None, epochs=30)
    _common.apply_defaults(args, quick, full)
    assert (args.runs, args.epochs) == (2, 30)
    args = argparse.Namespace(quick=False, runs=None, epochs=None)
    _common.apply_defaults(args, quick, full)
    assert (args.runs, args.epochs) == (10, 500)


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with _common.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), _common.torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_missing(tmp_path, capsys):
    assert not _common.missing(tmp_path)
    assert _common.missing(tmp_path / "kit")
    assert "kit not found" in capsys.readouterr().err


def test_machine_line_and_report():
    info = machine(threads=3)
    assert info["torch_threads"] == 3 and info["torch"] == torch.__version__
    assert {"graphseg", "python", "machine", "cpus", "gpu", "torch_geometric"} <= set(info)
    line = _common.machine_line(info)
    assert line.startswith("machine: ") and f"torch={torch.__version__}" in line
    assert _common.settings_line({"seed": 0, "quick": True}) == "settings: seed=0, quick=True"


def test_write_json_is_strict_json_and_atomic(tmp_path, capsys):
    path = tmp_path / "out" / "report.json"  # the folder is created
    report = {"nan": float("nan"), "inf": -math.inf, "path": Path("a/b"), "tuple": (1, 2),
              "numpy": [np.float32(0.5), np.int64(3), np.arange(2)], "nested": {1: [None]},
              "args": argparse.Namespace(x=1)}
    _common.write_json(path, report)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "inf": None, "path": "a/b", "tuple": [1, 2],
                                "numpy": [0.5, 3, [0, 1]], "nested": {"1": [None]},
                                "args": {"x": 1}}
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temporary left
    assert f"results written to {path}" in capsys.readouterr().out
    # a report that cannot be written leaves the old file as it was
    with pytest.raises(TypeError):
        _common.write_json(path, {"object": object()})
    assert path.read_text() == text


def test_grouped_bars_and_save_figure(tmp_path, capsys):
    plt = _common.pyplot()
    if plt is None:
        pytest.skip("matplotlib is not installed")
    fig, ax = plt.subplots()
    _common.grouped_bars(ax, ["a", "b", "c"], {"x": [0.5, None, 0.25],
                                               "y": [float("nan"), 1.0, 0.75]})
    heights = sorted(bar.get_height() for bar in ax.patches)
    assert heights == [0.25, 0.5, 0.75, 1.0]  # None and NaN draw no bar
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    path = tmp_path / "plots" / "chart.png"
    _common.save_figure(fig, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["chart.png"]
    assert not plt.get_fignums()  # closed
    assert f"plot written to {path}" in capsys.readouterr().out


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_has_main_argv_and_no_cli_import(name):
    tree = ast.parse((BENCHMARKS / f"{name}.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not any(m == "graphseg.cli" or m.startswith("graphseg.cli.") for m in imported)
    assert "_common" in imported
    main = next(node for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert [a.arg for a in main.args.args] == ["argv"] and main.args.defaults
    assert ast.unparse(main.returns) == "int"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_answers_help(name, load_benchmark, capsys):
    with pytest.raises(SystemExit) as exit:
        load_benchmark(name).main(["--help"])
    assert exit.value.code == 0
    assert "--json PATH" in capsys.readouterr().out
