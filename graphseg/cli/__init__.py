"""The ``graphseg`` command line.  Each sub-command lives in its own module and
registers itself through ``add_parser(subparsers)``."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from graphseg import __version__
from graphseg.cli import demo, evaluate, info, propagate, seeds, train_affinity, visualize, \
    weak_labels

COMMANDS = (demo, info, weak_labels, evaluate, visualize, seeds, propagate, train_affinity)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphseg",
        description="Dense segmentation masks from cheap annotations by label "
                    "propagation on image graphs.")
    parser.add_argument("--version", action="version", version=f"graphseg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.run(args)
