"""Options that more than one command takes: how a photo's seeds are propagated
(``graphseg demo`` and ``graphseg propagate``)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence, Tuple

from graphseg.propagation import LAYERS, PROPAGATORS, A2GNNConfig
from graphseg.propagation.a2gnn import EPOCHS, HIDDEN

# One torch thread per process: the graphs are small, and two threads, 1.5x faster on
# idle cores, are 13x slower when another job shares them (OpenMP's waiting threads
# spin); a folder goes faster with --workers, one process per core.
THREADS = 1

# graphseg 0.1 spelled the random walk as a layer; accepted for one more release
_OLD_RANDOM_WALK = "random-walk"


def add_propagation_arguments(parser: argparse.ArgumentParser) -> None:
    """``--propagator`` and ``--layer``."""
    parser.add_argument("--propagator", choices=PROPAGATORS, default="gnn",
                        help="gnn: a graph network trained on each photo (default); "
                             "random-walk: the seeds walked along the graph's affinities, "
                             "nothing trained")
    parser.add_argument("--layer", choices=(*LAYERS, _OLD_RANDOM_WALK), default="a2gnn",
                        help="the graph network's layer (default a2gnn; 'random-walk' is "
                             "the deprecated spelling of --propagator random-walk)")


def propagation(args: argparse.Namespace) -> Tuple[str, str]:
    """``(propagator, layer)`` of the parsed arguments."""
    if args.layer == _OLD_RANDOM_WALK:
        print("note: --layer random-walk is deprecated; use --propagator random-walk",
              file=sys.stderr)
        return "random-walk", "a2gnn"
    return args.propagator, args.layer


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """``--hidden``, ``--epochs`` and ``--threads``: the per-photo training."""
    parser.add_argument("--hidden", type=int, default=HIDDEN,
                        help=f"hidden channels (default {HIDDEN}; the thesis used 256)")
    parser.add_argument("--epochs", type=int, nargs=2, metavar=("STAGE1", "STAGE2"),
                        help=f"epochs of the two stages (default {EPOCHS[0]} {EPOCHS[1]})")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"torch threads per process (default {THREADS}: faster than 2 "
                             "as soon as another job shares the cores; a folder goes "
                             "faster with --workers)")


def training_config(kind: str, *, layer: Optional[str] = None, hidden: Optional[int] = None,
                    epochs: Optional[Sequence[int]] = None,
                    lr: Optional[float] = None) -> A2GNNConfig:
    """The commands' training for ``kind``: :meth:`A2GNNConfig.default`, then the
    options given."""
    overrides = {}
    if hidden:
        overrides["hidden_channels"] = hidden
    if epochs:
        overrides["stage1_epochs"], overrides["stage2_epochs"] = epochs
    if layer is not None:
        overrides["layer"] = layer
    if lr is not None:
        overrides["lr"] = lr
    return A2GNNConfig.default(kind, **overrides)
