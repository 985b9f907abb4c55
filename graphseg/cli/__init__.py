"""The ``graphseg`` command line.

Each command lives in its own module, named after it (``weak-labels`` in
``weak_labels.py``), with two functions: ``add_arguments(parser)`` adds its options
and ``run(args)`` does the work and returns the exit status.  The modules import
torch and PyG, which takes seconds, so this one imports a command's module only once
the command line names it: ``graphseg --help`` and ``graphseg --version`` need none.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from graphseg import __version__
from graphseg.cli.failures import UsageError

# command -> the one-line description ``graphseg --help`` lists (and ``graphseg
# COMMAND --help`` starts with), in the order of a typical session
COMMANDS = {
    "demo": "boxes and scribbles to masks on the bundled sample photos, scored against "
            "ground truth and OpenCV GrabCut",
    "info": "print versions and whether CUDA, torch-scatter, torch-sparse and Triton are "
            "usable",
    "weak-labels": "write boxes, points, scribbles or tags derived from the ground truth of "
                   "a dataset folder",
    "evaluate": "mIoU, per-class IoU, pixel accuracy and FB-IoU of a folder of predicted "
                "label maps",
    "visualize": "write a side-by-side PNG: image, weak labels, prediction, ground truth, "
                 "with a legend",
    "seeds": "seed label maps (255 = unknown) from boxes, scribbles, points or tags",
    "propagate": "dense masks for a folder of photos from boxes, scribbles, points or tags "
                 "(seeds, graph, A2GNN, CRF)",
    "train-affinity": "train the affinity CNN (graph edges) on seed maps",
    "train": "train a segmenter on a folder of photos: RRM from tags, DFR from scribbles, "
             "or the two-step network on label maps",
    "predict": "class maps for a folder of photos from a trained segmenter",
    "few-shot": "masks of one object in a folder of photos from a few photos where it is "
                "drawn (SCL, or the training-free prototype baseline)",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``--version`` and the commands' names and descriptions.

    A command's options are not part of it (they would need the command's module):
    its sub-parser accepts anything and leaves it to :func:`command_parser`.
    """
    parser = argparse.ArgumentParser(
        prog="graphseg",
        description="Dense segmentation masks from cheap annotations by label "
                    "propagation on image graphs.",
        epilog="'graphseg COMMAND --help' describes a command, with examples and the "
               "formats of the files it reads.  The sample photos bundled with graphseg "
               "lie in the folder that python -c \"from graphseg.data import sample_root; "
               "print(sample_root())\" prints.")
    parser.add_argument("--version", action="version", version=f"graphseg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, description in COMMANDS.items():
        # no -h of its own: "graphseg NAME --help" is answered by the full parser
        subparsers.add_parser(name, help=description, add_help=False)
    return parser


def command_parser(name: str):
    """``(parser, module)`` of command ``name``: its full parser and the module that
    runs it."""
    from graphseg.cli import help

    module = importlib.import_module(f"graphseg.cli.{name.replace('-', '_')}")
    # the description is the module's docstring, the epilog examples and file formats;
    # the raw formatter keeps their line breaks and indentation
    parser = argparse.ArgumentParser(
        prog=f"graphseg {name}",
        description=help.description(name, COMMANDS[name], module.__doc__),
        epilog=help.EPILOGS.get(name),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser, module


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``graphseg`` on ``argv`` (default ``sys.argv[1:]``); the exit status."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        parser.print_help(sys.stderr)
        return 2
    try:
        command, module = command_parser(args.command)
        return module.run(command.parse_args(rest))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback (a command that loops
        print("interrupted", file=sys.stderr)  # over images says what it finished)
        return 130
