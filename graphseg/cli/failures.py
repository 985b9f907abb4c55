"""Per-file error collection for commands that work through a folder: a bad file
is reported by name and skipped, and the command still exits non-zero."""
from __future__ import annotations

import sys
from typing import Callable, List, Optional, Tuple, TypeVar

T = TypeVar("T")


class Failures:
    """Runs per-file steps, keeping ``(name, message)`` for the ones that fail."""

    def __init__(self):
        self.items: List[Tuple[str, str]] = []

    def attempt(self, name: str, step: Callable[[], T]) -> Optional[T]:
        """``step()``, or ``None`` after recording why it failed on ``name``."""
        try:
            return step()
        except (OSError, ValueError) as error:
            self.items.append((name, str(error)))
            return None

    def report(self, total: int) -> int:
        """Print the failures to stderr; the exit status (0 when none failed)."""
        for name, message in self.items:
            print(f"error: {name}: {message}", file=sys.stderr)
        if self.items:
            print(f"{len(self.items)} of {total} files failed", file=sys.stderr)
        return 1 if self.items else 0
