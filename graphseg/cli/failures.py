"""How every command reports what went wrong.

* A bad argument found after parsing (a missing folder, an unreadable classes or
  tags file, an impossible combination) is a :class:`UsageError`:
  :func:`graphseg.cli.main` prints ``error: MESSAGE`` and exits 2, as argparse does
  for the errors it finds itself.  :func:`check_folder` and :func:`reading` raise
  it, naming the argument.
* A bad input file is recorded by :class:`Failures` and skipped: the command works
  through the rest, then prints every failure by name and exits 1.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, TypeVar

T = TypeVar("T")

# What a bad input file raises: OSError (missing, unreadable), ValueError (malformed,
# inconsistent with its image) and RuntimeError, which torch raises for inputs it cannot
# take (an image too large for the device's memory, a checkpoint of another shape).
FILE_ERRORS = (OSError, ValueError, RuntimeError)


class UsageError(Exception):
    """A command-line argument that cannot be used; the message names it."""


def check_folder(flag: str, path) -> Path:
    """``path`` as a :class:`~pathlib.Path`; a :class:`UsageError` naming ``flag``
    unless it is a folder."""
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{flag} {path}: no such folder")
    return path


def check_out_folder(flag: str, path) -> Path:
    """``path`` as a :class:`~pathlib.Path`, checked before any work starts: a
    folder, or a path where one can be created (its nearest existing parent a
    writable folder); a :class:`UsageError` naming ``flag`` otherwise."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{flag} {path}: exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {path}: folder is not writable")
        return path
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: cannot be created, {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot be created, {parent} is not writable")
    return path


@contextmanager
def reading(flag: str) -> Iterator[None]:
    """Turn a file error raised while reading the file of argument ``flag`` into a
    :class:`UsageError` naming it: the command stops before its first image.

    >>> from graphseg.cli.failures import UsageError, reading
    >>> try:
    ...     with reading("--classes"):
    ...         raise FileNotFoundError("c.txt: no such classes file")
    ... except UsageError as error:
    ...     print(error)
    --classes c.txt: no such classes file
    """
    try:
        yield
    except FILE_ERRORS as error:
        raise UsageError(f"{flag} {error}") from error


class Failures:
    """Runs per-file steps, keeping ``(name, message)`` for the ones that fail."""

    def __init__(self):
        self.items: List[Tuple[str, str]] = []

    def add(self, name: str, message: str) -> None:
        """Record that ``name`` failed (for steps run elsewhere, e.g. in a worker)."""
        self.items.append((name, message))

    def attempt(self, name: str, step: Callable[[], T]) -> Optional[T]:
        """``step()``, or ``None`` after recording why it failed on ``name``."""
        try:
            return step()
        except FILE_ERRORS as error:
            self.add(name, str(error))
            return None

    def report(self, total: int) -> int:
        """Print the failures to stderr (and how many of ``total`` images failed, when
        there were several); the exit status: 0 when none failed, else 1."""
        for name, message in self.items:
            print(f"error: {name}: {message}", file=sys.stderr)
        if self.items and total > 1:
            print(f"{len(self.items)} of {total} images failed", file=sys.stderr)
        return 1 if self.items else 0
