"""Options that more than one command takes: how a photo's seeds are propagated
(``graphseg demo`` and ``graphseg propagate``)."""
from __future__ import annotations

import argparse
import sys
from typing import Tuple

from graphseg.propagation import LAYERS, PROPAGATORS

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
