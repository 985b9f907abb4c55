"""What the commands that write one file per photo share (``propagate``,
``predict``): the manifest of an earlier run, Ctrl-C handling, and scoring the
written label maps against ground truth."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from graphseg.cli.failures import Failures
from graphseg.cli.help import binary_note
from graphseg.data.dataset import find_file
from graphseg.data.layouts import resolve_gt
from graphseg.metrics import ConfusionMatrix
from graphseg.utils.io import read_label_map, write_json


def load_manifest(path: Path) -> dict:
    """The manifest of an earlier run into the same folder (resumed), or a new one."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}  # written atomically, so only a hand-edited file gets here


def stamp(manifest: dict, path: Path, key: str) -> None:
    """Record the time under ``key`` (``"finished"``, ``"interrupted"``) and write the
    manifest."""
    manifest[key] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(path, manifest)


def interrupted_exit(finished: int, total: int, out: Path, what: str = "images") -> int:
    """Say how far an interrupted run got; the exit status of a Ctrl-C (130)."""
    print(f"interrupted: {finished} of {total} {what} done in {out}; rerun the same command "
          "to resume", file=sys.stderr)
    return 130


def recorded_failures(records: Mapping[str, dict], names: Sequence[str]) -> Failures:
    """The failures the manifest records for ``names``."""
    failures = Failures()
    for name in names:
        if records.get(name, {}).get("status") == "failed":
            failures.add(name, records[name]["error"])
    return failures


class Interrupted:
    """Context manager that stops a Ctrl-C (KeyboardInterrupt) and remembers it."""

    caught = False

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self.caught = kind is not None and issubclass(kind, KeyboardInterrupt)
        return self.caught


def score_folder(names: Sequence[str], out: Path, gt_root: Path,
                 num_classes: int) -> ConfusionMatrix:
    """The confusion matrix of the label maps ``out/NAME.png`` that exist against the
    ground truth under ``gt_root`` (a folder of ``STEM.png``, or a GrabCut, MSRC or
    VOC root; 0/255 masks are read as background/object, with a note)."""
    gt_dir, binary, _ = resolve_gt(gt_root)
    if binary:
        print(binary_note("--gt", gt_dir))
    confusion = ConfusionMatrix(num_classes)
    for name in names:
        pred = out / f"{name}.png"
        if not pred.is_file():
            continue
        gt = read_label_map(find_file(gt_dir, name, (".png",)))
        confusion.update(read_label_map(pred), (gt > 127).astype(np.uint8) if binary else gt,
                         name)
    return confusion
