"""Seed quality: how much of the ground truth a partial label map covers, and how
much of what it labels is right."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from graphseg.metrics.confusion import ConfusionMatrix


class SeedQuality:
    """Coverage and precision of seeds (scribbles, points, box fills, pseudo-labels).

    Built on :class:`ConfusionMatrix` with the seed map as the prediction (255 =
    unlabelled).  Ground-truth pixels labelled 255 are left out of coverage and
    precision (their correctness is unknown) but count in :meth:`labelled_fraction`.

    Args:
        num_classes (int, optional): K, or ``None`` to grow with the ids seen.
            (default: ``None``)
    """

    def __init__(self, num_classes: Optional[int] = None):
        self.confusion = ConfusionMatrix(num_classes)

    def update(self, seeds, gt, source: str = "") -> "SeedQuality":
        """Add one image's seed map and ground truth."""
        self.confusion.update(seeds, gt, source)
        return self

    def coverage(self) -> np.ndarray:
        """Per class: fraction of its ground-truth pixels that carry a seed (any class)."""
        counts = self.confusion.counts
        total = counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, 1 - counts[:, -1] / np.maximum(total, 1), np.nan)

    def precision(self) -> np.ndarray:
        """Per class: fraction of the pixels seeded with it that truly are it."""
        counts = self.confusion.counts[:, :-1]
        seeded = counts.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(seeded > 0, np.diag(counts) / np.maximum(seeded, 1), np.nan)

    def total_coverage(self) -> float:
        """Fraction of non-ignored ground-truth pixels that carry a seed."""
        counts = self.confusion.counts
        total = counts.sum()
        return float(1 - counts[:, -1].sum() / total) if total else float("nan")

    def total_precision(self) -> float:
        """Fraction of seeded (non-ignored) pixels whose seed is the true class."""
        counts = self.confusion.counts[:, :-1]
        seeded = counts.sum()
        return float(np.trace(counts) / seeded) if seeded else float("nan")

    def labelled_fraction(self) -> float:
        """Fraction of all pixels (ignored ones included) that carry a seed."""
        pixels = self.confusion.pixels
        return self.confusion.labelled / pixels if pixels else float("nan")

    def line(self, decimals: int = 2) -> str:
        """The totals as one line of percentages, as the commands print them."""
        return (f"coverage {100 * self.total_coverage():.{decimals}f}%  precision "
                f"{100 * self.total_precision():.{decimals}f}%  labelled pixels "
                f"{100 * self.labelled_fraction():.{decimals}f}%")

    def summary(self, classes: Optional[Sequence[str]] = None) -> Dict[str, object]:
        """Totals and per-class values as a JSON-serialisable dict (NaN as ``None``)."""
        k = self.confusion.num_classes
        names = list(classes or [])[:k] + [str(i) for i in range(len(classes or []), k)]

        def number(value):
            return None if np.isnan(value) else float(value)

        coverage, precision = self.coverage(), self.precision()
        return {"coverage": number(self.total_coverage()),
                "precision": number(self.total_precision()),
                "labelled_fraction": number(self.labelled_fraction()),
                "per_class": {names[c]: {"coverage": number(coverage[c]),
                                         "precision": number(precision[c])}
                              for c in range(k)}}
