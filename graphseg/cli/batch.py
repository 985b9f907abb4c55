"""What the commands that write one file per photo share (``propagate``,
``predict``, ``few-shot``): the manifest of an earlier run, Ctrl-C handling, the
resumable loop over a folder (:class:`FolderRun`), and scoring the written label
maps against ground truth."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from graphseg.cli.failures import Failures, UsageError
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


class FolderRun:
    """One output file per photo, written atomically, resumable: ``OUT/NAME.png``
    (the file that marks a photo done) and ``OUT/manifest.json`` (the command, the
    ``settings`` that made every file, each photo's status and seconds).

    Built before any work: photos whose file these ``settings`` made are skipped; a
    file made by other settings stops the command (:class:`UsageError`) unless
    ``overwrite``; a file written but not recorded before a kill (newer than the last
    run's start, same settings) counts as done.

    Args:
        names (sequence of str): the photos.
        out (Path): the output folder.
        settings (dict): what makes the files (model, options), compared on resume.
        overwrite (bool): recompute the photos whose file exists.
        complete (callable, optional): ``complete(name)``: whether the photo's files
            all exist. (default: ``OUT/NAME.png`` exists)
        what (str, optional): the files, for messages. (default: ``"label maps"``)
    """

    def __init__(self, names: Sequence[str], out: Path, settings: dict, *, overwrite: bool,
                 complete: Optional[Callable[[str], bool]] = None, what: str = "label maps"):
        self.names, self.out, self.settings, self.what = list(names), out, settings, what
        self.path = out / "manifest.json"
        self.manifest = load_manifest(self.path)
        self.records = self.manifest.setdefault("images", {})
        complete = complete or (lambda name: (out / f"{name}.png").is_file())
        done = {n for n in self.names if complete(n)}
        if self.manifest.get("settings") == settings:
            # a file the last run wrote but had no time to record (killed between the
            # two writes) was made by these settings: it is newer than that run's start
            for name in done - {n for n in self.records
                                if self.records[n].get("status") == "ok"}:
                if (out / f"{name}.png").stat().st_mtime >= self.manifest.get(
                        "since", float("inf")):
                    self.records[name] = {"status": "ok", "settings": settings}
        stale = sorted(n for n in done if self.records.get(n, {}).get("settings") != settings)
        if stale and not overwrite:
            raise UsageError(f"--out {out}: {len(stale)} {what} there ({', '.join(stale[:3])}"
                             f"{', ...' if len(stale) > 3 else ''}) were made by another model "
                             "or other options; rerun with --overwrite to recompute them, or "
                             "choose another --out")
        self.todo = self.names if overwrite else [n for n in self.names if n not in done]

    def run(self, compute: Callable[[str], dict], *, desc: str, **entries) -> Optional[int]:
        """``compute(name)`` (its manifest record, ``{"status": "ok" | "failed", ...}``)
        for every photo to do, the manifest written after each; ``entries`` go to the
        manifest's top level.  Returns 130 after a Ctrl-C (said on stderr), else ``None``."""
        self.manifest.update(command=["graphseg", *sys.argv[1:]], settings=self.settings,
                             started=time.strftime("%Y-%m-%dT%H:%M:%S"), since=time.time(),
                             **entries)
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.manifest)
        interrupted = Interrupted()
        with interrupted, tqdm(total=len(self.todo), desc=desc, unit="image") as bar:
            for name in self.todo:
                self.records[name] = compute(name)
                if self.records[name]["status"] == "ok":
                    self.records[name]["settings"] = self.settings
                write_json(self.path, self.manifest)
                bar.update()
        if interrupted.caught:
            stamp(self.manifest, self.path, "interrupted")
            return interrupted_exit(sum(self.records.get(n, {}).get("settings") == self.settings
                                        for n in self.names), len(self.names), self.out,
                                    "photos")
        stamp(self.manifest, self.path, "finished")
        written = sum(self.records.get(n, {}).get("status") == "ok" for n in self.todo)
        print(f"wrote {written} {self.what} to {self.out}, {len(self.names) - len(self.todo)} "
              f"there already (manifest: {self.path})")
        return None

    def report(self) -> int:
        """Name the photos that failed (stderr); the exit status (1 if any, else 0)."""
        return recorded_failures(self.records, self.names).report(len(self.names))
