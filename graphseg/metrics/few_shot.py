"""The few-shot segmentation scores of the Pascal-5i protocol (OSLSM, Shaban et al.,
BMVC 2017; the thesis' Tables 5.1-5.3).

* **mean IoU over classes**: for every test class, the foreground IoU with the
  intersections and unions summed over all of its episodes; then the mean over
  the classes.
* **FB-IoU**: the mean of the foreground and the background IoU, each summed over
  all episodes whatever their class.

Example:
    >>> import numpy as np
    >>> from graphseg.metrics import FewShotScores
    >>> scores = FewShotScores()
    >>> scores.update(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]]), cls=3)
    >>> scores.update(np.array([[1, 1, 0, 0]]), np.array([[1, 1, 0, 255]]), cls=5)
    >>> round(scores.miou(), 4), round(scores.fb_iou(), 4), scores.episodes
    (0.75, 0.75, 2)
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from graphseg.metrics.confusion import check_pair
from graphseg.utils.constants import IGNORE

__all__ = ["FewShotScores"]


class FewShotScores:
    """Accumulates episodes' binary predictions (0 background, 1 the episode's class)
    against their masks (255 ignored)."""

    def __init__(self):
        self.classes: Dict[int, np.ndarray] = {}  # class -> [intersection, union]
        self.foreground = np.zeros(2, dtype=np.int64)
        self.background = np.zeros(2, dtype=np.int64)
        self.episodes = 0

    def update(self, pred, gt, cls: int) -> None:
        """One episode: ``pred`` and ``gt`` ``(H, W)`` maps of 0 / 1 (``gt`` 255 =
        ignore), ``cls`` the episode's class."""
        pred, gt = check_pair(pred, gt, None)
        valid = gt != IGNORE
        for target, value in ((self.foreground, 1), (self.background, 0)):
            hit, truth = (pred == value) & valid, (gt == value) & valid
            target += (int((hit & truth).sum()), int((hit | truth).sum()))
        counts = self.classes.setdefault(int(cls), np.zeros(2, dtype=np.int64))
        hit, truth = (pred == 1) & valid, (gt == 1) & valid
        counts += (int((hit & truth).sum()), int((hit | truth).sum()))
        self.episodes += 1

    def class_iou(self) -> Dict[int, float]:
        """Foreground IoU of every class seen (1 when its union is empty)."""
        return {c: float(i / u) if u else 1.0 for c, (i, u) in sorted(self.classes.items())}

    def miou(self) -> float:
        """Mean over classes of :meth:`class_iou` (``nan`` before any episode)."""
        values = list(self.class_iou().values())
        return float(np.mean(values)) if values else float("nan")

    def fb_iou(self) -> float:
        """Mean of the foreground and background IoU over all episodes."""
        ious = [i / u if u else 1.0 for i, u in (self.foreground, self.background)]
        return float(np.mean(ious)) if self.episodes else float("nan")
