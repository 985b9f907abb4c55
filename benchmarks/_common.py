"""What every benchmark shares: the standard arguments, the machine line, the JSON
report and the plot helpers.

A script imports it after putting this folder on ``sys.path``, so that the import
also works when the script is loaded by file name (as the tests do)::

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
    from _common import benchmark_parser, ...  # noqa: E402

The standard arguments (:func:`benchmark_parser`) mean the same in every script:

* ``--quick``: a tiny setting (what it is: the script's ``--help``) that the tests run;
* ``--json PATH``: also write the results as JSON, atomically (:func:`write_json`);
* ``--plot PATH``: also write a PNG chart, atomically (needs matplotlib);
* ``--seed N``: the random seed (the script's docstring says what it seeds);
* ``--threads N``: torch threads (:func:`torch_threads`).

Every report starts with :func:`machine_line` of :func:`graphseg.utils.env.machine`,
which the JSON report holds too.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path
from typing import Dict, Iterator, Mapping, Optional, Sequence

import numpy as np

from graphseg.utils.env import machine
from graphseg.utils.io import atomic_open
from graphseg.utils.io import write_json as _write_json

__all__ = ["apply_defaults", "benchmark_parser", "grouped_bars", "jsonable", "machine",
           "machine_line", "missing", "pyplot", "save_figure", "settings_line",
           "torch_threads", "write_json"]


# ----------------------------------------------------------------------------- arguments
def benchmark_parser(doc: str, *, quick: Optional[str] = None, plot: bool = False,
                     seed=0, seed_help: Optional[str] = None, threads=1,
                     threads_help: Optional[str] = None) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` described by the first paragraph of ``doc``, with the
    standard arguments: ``--json PATH`` always, and

    Args:
        quick: ``--quick``'s help (what the tiny setting is); None: no ``--quick``.
        plot: add ``--plot PATH``.
        seed: ``--seed``'s default (None: the script resolves it); False: no ``--seed``.
        threads: ``--threads``' default; False: no ``--threads``.
        seed_help, threads_help: replace the standard help text.
    """
    parser = argparse.ArgumentParser(description=doc.strip().split("\n\n")[0])
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", metavar="PATH",
                        help="also write the results here as JSON (atomically)")
    if plot:
        parser.add_argument("--plot", metavar="PATH",
                            help="also write a PNG chart here (needs matplotlib)")
    if seed is not False:
        parser.add_argument("--seed", type=int, default=seed,
                            help=seed_help or f"random seed (default {seed})")
    if threads is not False:
        parser.add_argument("--threads", type=int, default=threads,
                            help=threads_help or f"torch threads (default {threads})")
    return parser


def apply_defaults(args: argparse.Namespace, quick: Mapping[str, object],
                   full: Mapping[str, object]) -> None:
    """Every key of ``quick`` / ``full`` that is None in ``args`` (not given on the
    command line) gets its ``--quick`` (when ``args.quick``) or full-run default:
    explicit flags win over both."""
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def missing(path, what: str = "the data kit") -> bool:
    """True, with an error on stderr, when ``path`` does not exist."""
    if Path(path).exists():
        return False
    print(f"error: {path} not found (set GRAPHSEG_DATA or --data to {what})", file=sys.stderr)
    return True


@contextlib.contextmanager
def torch_threads(count: Optional[int]) -> Iterator[None]:
    """``torch.set_num_threads(count)`` inside the block, the previous count restored
    after it (``main()`` also runs inside the tests).  None: leave it as it is."""
    import torch
    before = torch.get_num_threads()
    try:
        if count is not None:
            torch.set_num_threads(count)
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- report
def machine_line(info: Mapping[str, object]) -> str:
    """``machine: key=value, ...`` of a :func:`machine` report, for a report's top."""
    return "machine: " + ", ".join(f"{k}={v}" for k, v in info.items())


def settings_line(settings: Mapping[str, object]) -> str:
    """``settings: key=value, ...``: what a run was asked to do, under its machine line."""
    return "settings: " + ", ".join(f"{k}={v}" for k, v in settings.items())


def jsonable(value):
    """``value`` with what JSON cannot hold replaced: NaN and infinities by None,
    paths by strings, tuples by lists, NumPy scalars and arrays by Python values,
    an ``argparse.Namespace`` by its dict."""
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path, report: Mapping[str, object]) -> None:
    """``report`` (through :func:`jsonable`) as indented JSON at ``path``, atomically
    (parent folders created); prints where it went."""
    _write_json(path, jsonable(report))
    print(f"results written to {path}")


# ----------------------------------------------------------------------------- plots
def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or None (with a message) when
    matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot written (pip install matplotlib)")
        return None
    return plt


def save_figure(fig, path, dpi: int = 120, **options) -> None:
    """Write ``fig`` as a PNG at ``path`` atomically (parent folders created), close
    it and print where it went.  ``options`` go to ``savefig``."""
    with atomic_open(path, "wb") as file:
        fig.savefig(file, format="png", dpi=dpi, **options)
    import matplotlib.pyplot as plt
    plt.close(fig)
    print(f"plot written to {path}")


def grouped_bars(ax, groups: Sequence[str], series: Dict[str, Sequence[Optional[float]]],
                 ) -> None:
    """One group of bars per ``groups`` label, one bar (and legend entry) per
    ``series`` name in each group: ``series[name][i]`` is its height in group ``i``
    (None or NaN: no bar)."""
    width = 0.8 / max(len(series), 1)
    for j, (name, values) in enumerate(series.items()):
        bars = [(i + j * width, v) for i, v in enumerate(values)
                if v is not None and math.isfinite(v)]
        ax.bar([x for x, _ in bars], [v for _, v in bars], width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))])
    ax.set_xticklabels(list(groups), fontsize=8)
