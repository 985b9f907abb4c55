"""Semantic segmentation metrics from a confusion matrix accumulated over a dataset.

Rows are ground-truth classes, columns predicted classes.  Ground-truth pixels
labelled 255 are ignored.  A prediction of 255 ("no label", e.g. a seed map or an
abstaining model) is kept in an extra last column: it counts as a miss for the
pixel's true class and as a prediction of no class.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from graphseg.utils.checks import as_index_map, check_positive_int
from graphseg.utils.constants import IGNORE


def check_pair(pred, gt, num_classes: Optional[int], source: str = "") -> tuple:
    """Validate a prediction / ground-truth pair of ``(H, W)`` class-index maps.

    Args:
        pred (numpy.ndarray or Tensor): predicted classes, 255 = no prediction.
        gt (numpy.ndarray or Tensor): true classes, 255 = ignore.
        num_classes (int or None): when given, every value must be < ``num_classes``
            or 255.
        source (str, optional): file or sample name, prefixed to error messages.
            (default: ``""``)

    Returns:
        tuple: ``(pred, gt)`` as int64 numpy arrays.
    """
    prefix = f"{source}: " if source else ""
    try:
        pred, gt = as_index_map(pred, "pred").numpy(), as_index_map(gt, "gt").numpy()
    except (TypeError, ValueError) as error:
        raise type(error)(f"{prefix}{error}") from error
    if pred.shape != gt.shape:
        raise ValueError(f"{prefix}prediction is {pred.shape[1]}x{pred.shape[0]} but ground "
                         f"truth is {gt.shape[1]}x{gt.shape[0]} (W x H)")
    limit = IGNORE if num_classes is None else num_classes
    for name, value in (("prediction", pred), ("ground truth", gt)):
        bad = np.unique(value[(value >= limit) & (value != IGNORE)])
        if bad.size:
            raise ValueError(f"{prefix}{name} holds class ids {bad[:10].tolist()} >= "
                             f"num_classes ({limit}); only 255 (ignore) may exceed it")
    return pred, gt


def confusion_matrix(pred, gt, num_classes: int) -> np.ndarray:
    """Pixel counts of (true class, predicted class) for one image.

    Args:
        pred (numpy.ndarray or Tensor): ``(H, W)`` predicted classes, 255 = no
            prediction.
        gt (numpy.ndarray or Tensor): ``(H, W)`` true classes, 255 = ignore.
        num_classes (int): K.

    Returns:
        np.ndarray: ``(K, K + 1)`` int64; entry ``[t, p]`` counts pixels of true class
        ``t`` predicted ``p``; column K counts those predicted 255.

    >>> import numpy as np
    >>> from graphseg.metrics import confusion_matrix
    >>> confusion_matrix(np.array([[0, 1, 255]]), np.array([[0, 0, 1]]), 2).tolist()
    [[1, 1, 0], [0, 0, 1]]
    """
    check_positive_int(num_classes, "num_classes")
    pred, gt = check_pair(pred, gt, num_classes)
    keep = gt != IGNORE
    columns = np.where(pred[keep] == IGNORE, num_classes, pred[keep])
    counts = np.bincount(gt[keep] * (num_classes + 1) + columns,
                         minlength=num_classes * (num_classes + 1))
    return counts.reshape(num_classes, num_classes + 1)


class ConfusionMatrix:
    """Accumulates :func:`confusion_matrix` over a dataset, one image at a time.

    Args:
        num_classes (int, optional): K; ``None`` grows K to the largest class id
            seen (+1). (default: ``None``)

    Attributes:
        counts (numpy.ndarray): ``(K, K + 1)`` int64, as returned by
            :func:`confusion_matrix`.
        pixels (int): every pixel seen, ignored ones included.
        labelled (int): pixels whose prediction is not 255, ignored ones included.
    """

    def __init__(self, num_classes: Optional[int] = None):
        if num_classes is not None:
            check_positive_int(num_classes, "num_classes")
        self.num_classes = num_classes or 0
        self.fixed = num_classes is not None
        self.counts = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)
        self.pixels = 0
        self.labelled = 0

    def update(self, pred, gt, source: str = "") -> "ConfusionMatrix":
        """Add one image.  ``source`` names it in error messages."""
        pred, gt = check_pair(pred, gt, self.num_classes if self.fixed else None, source)
        if not self.fixed:
            seen = max([int(v.max()) for v in (pred[pred != IGNORE], gt[gt != IGNORE])
                        if v.size] + [self.num_classes - 1])
            self._grow(seen + 1)
        if self.num_classes:
            self.counts += confusion_matrix(pred, gt, self.num_classes)
        self.pixels += pred.size
        self.labelled += int((pred != IGNORE).sum())
        return self

    def _grow(self, num_classes: int) -> None:
        if num_classes <= self.num_classes:
            return
        grown = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
        old = self.num_classes
        grown[:old, :old] = self.counts[:, :old]
        grown[:old, num_classes] = self.counts[:, old]
        self.counts, self.num_classes = grown, num_classes

    def iou(self) -> np.ndarray:
        """Per-class IoU ``TP / (TP + FP + FN)``; NaN for a class absent from both maps."""
        tp = np.diag(self.counts[:, :-1]).astype(np.float64)
        union = self.counts.sum(axis=1) + self.counts[:, :-1].sum(axis=0) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes present in the ground truth or the prediction."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        """Correct pixels over non-ignored pixels."""
        total = self.counts.sum()
        return float(np.trace(self.counts[:, :-1]) / total) if total else float("nan")

    def fb_iou(self, background_classes: Sequence[int] = (0,)) -> float:
        """Foreground-background IoU: the mean IoU of two classes, the ``background``
        classes merged and all others merged (0 = background by default)."""
        back = np.zeros(self.num_classes + 1, dtype=bool)
        back[[c for c in background_classes if c < self.num_classes]] = True
        if not back.any():
            raise ValueError(f"background classes {tuple(background_classes)} are not among the "
                             f"{self.num_classes} classes")
        fore = ~back
        fore[-1] = False  # no prediction is neither foreground nor background
        scores = []
        for rows, cols in ((back[:-1], back), (fore[:-1], fore)):
            tp = self.counts[np.ix_(rows, cols)].sum()
            union = self.counts[rows].sum() + self.counts[:, cols].sum() - tp
            if union:
                scores.append(tp / union)
        return float(np.mean(scores)) if scores else float("nan")

    def summary(self, class_names: Optional[Sequence[str]] = None,
                background_classes: Optional[Sequence[int]] = (0,)) -> Dict[str, object]:
        """Everything as a JSON-serialisable dict (NaN written as ``None``).

        Args:
            class_names (sequence of str, optional): class names for the per-class
                entries. (default: ``None``, indices)
            background_classes (sequence of int, optional): classes merged for FB-IoU;
                ``None`` leaves FB-IoU out. (default: ``(0,)``)
        """
        names = list(class_names) if class_names is not None else [str(i) for i in
                                                                    range(self.num_classes)]
        if len(names) < self.num_classes:
            names += [str(i) for i in range(len(names), self.num_classes)]

        def number(value):
            return None if value is None or np.isnan(value) else float(value)

        iou = self.iou()
        out = {"num_classes": self.num_classes, "miou": number(self.miou()),
               "pixel_accuracy": number(self.pixel_accuracy()),
               "per_class_iou": {names[c]: number(iou[c]) for c in range(self.num_classes)},
               "pixels": int(self.counts.sum())}
        if background_classes is not None:
            out["fb_iou"] = number(self.fb_iou(background_classes))
        return out


def object_iou(pred, gt, label: int = 1) -> float:
    """IoU of one class between two label maps (GrabCut's per-photo score):
    ``|pred = label and gt = label| / |pred = label or gt = label|``, 1 when
    the class is in neither map.  255 in ``gt`` is ignored.

    >>> import numpy as np
    >>> from graphseg.metrics import object_iou
    >>> object_iou(np.array([[1, 1, 0]]), np.array([[1, 0, 0]]))
    0.5
    """
    pred, gt = check_pair(pred, gt, None)
    valid = gt != IGNORE
    hit, truth = (pred == label) & valid, (gt == label) & valid
    union = int((hit | truth).sum())
    return float((hit & truth).sum() / union) if union else 1.0
