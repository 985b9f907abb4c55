"""Instance mask mAP^r (Hariharan et al., 2014), the protocol of thesis Table 3.2.

For every class, predicted masks from the whole dataset are ranked by score.  In
each image, going down that ranking, a prediction is a true positive when its
best-overlapping ground-truth instance of the same class, not yet taken, has
mask IoU >= the threshold; otherwise it is a false positive.  AP is the area
under the precision-recall curve with precision made monotone (the all-points
interpolation of PASCAL VOC 2010 and later).  mAP^r averages AP over classes
that have at least one ground-truth instance.  Pixels marked ignore (VOC's void
border) are removed from both masks before the IoU.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from graphseg.utils.constants import IGNORE

THRESHOLDS = (0.5, 0.7, 0.75)


def instances_from_maps(instances, label) -> Tuple[np.ndarray, np.ndarray]:
    """Split a VOC-style instance map into masks with classes.

    Args:
        instances (numpy.ndarray): ``(H, W)`` instance ids (0 = none, 255 = ignore).
        label (numpy.ndarray): ``(H, W)`` class map; an instance takes its majority
            class.

    Returns:
        tuple: ``(masks (N, H, W) bool, classes (N,) int64)``.
    """
    instances, label = np.asarray(instances), np.asarray(label)
    if instances.shape != label.shape:
        raise ValueError(f"instances {instances.shape} and label {label.shape} differ in size")
    ids = [i for i in np.unique(instances) if i not in (0, IGNORE)]
    masks = np.stack([instances == i for i in ids]) if ids else \
        np.zeros((0,) + instances.shape, dtype=bool)
    classes = []
    for mask in masks:
        values = label[mask]
        values = values[values != IGNORE]
        classes.append(int(np.bincount(values).argmax()) if values.size else IGNORE)
    return masks, np.array(classes, dtype=np.int64)


def average_precision(scores: np.ndarray, hits: np.ndarray, num_gt: int) -> float:
    """All-points interpolated AP of detections ranked by score.

    Args:
        scores (numpy.ndarray): ``(D,)`` detection scores.
        hits (numpy.ndarray): ``(D,)`` bool, true positive or not.
        num_gt (int): number of ground-truth instances (> 0).

    Returns:
        float: AP in ``[0, 1]``.

    >>> import numpy as np
    >>> from graphseg.metrics import average_precision
    >>> average_precision(np.array([0.9, 0.8]), np.array([True, False]), 2)
    0.5
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.asarray(hits, dtype=bool)[order]
    tp = np.cumsum(hits)
    recall = np.concatenate([[0.0], tp / num_gt])
    precision = np.concatenate([[0.0], tp / np.arange(1, len(hits) + 1)])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * precision[1:]))


def _mask_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``(P, G)`` IoU between boolean masks flattened to ``(P, N)`` and ``(G, N)``."""
    pred, gt = pred.astype(np.float64), gt.astype(np.float64)
    inter = pred @ gt.T
    union = pred.sum(1)[:, None] + gt.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


class MaskAP:
    """Accumulates mask mAP^r over a dataset, one image at a time.

    Only match flags and scores are kept between images, not the masks.

    Args:
        num_classes (int): K; instances of class 255 are ignored.
        thresholds (sequence of float, optional): IoU thresholds.
            (default: :data:`THRESHOLDS`, ``(0.5, 0.7, 0.75)``)
    """

    def __init__(self, num_classes: int, thresholds: Sequence[float] = THRESHOLDS):
        self.num_classes = num_classes
        self.thresholds = tuple(float(t) for t in thresholds)
        self.num_gt = np.zeros(num_classes, dtype=np.int64)
        self.scores = [[] for _ in range(num_classes)]
        self.hits = [[] for _ in range(num_classes)]  # per class: list of (T,) flags

    def update(self, pred_masks, pred_classes, pred_scores, gt_masks, gt_classes,
               ignore: Optional[np.ndarray] = None, source: str = "") -> "MaskAP":
        """Add one image.

        Args:
            pred_masks (numpy.ndarray): ``(P, H, W)`` bool predicted instance masks.
            pred_classes (numpy.ndarray): ``(P,)`` class of each prediction.
            pred_scores (numpy.ndarray): ``(P,)`` confidence (higher ranks first).
            gt_masks (numpy.ndarray): ``(G, H, W)`` bool ground-truth instance masks.
            gt_classes (numpy.ndarray): ``(G,)`` class of each instance.
            ignore (numpy.ndarray, optional): ``(H, W)`` bool pixels left out of
                every IoU. (default: ``None``)
            source (str, optional): image name for error messages. (default: ``""``)
        """
        prefix = f"{source}: " if source else ""
        pred_masks, gt_masks = np.asarray(pred_masks, bool), np.asarray(gt_masks, bool)
        pred_classes = np.asarray(pred_classes, np.int64).reshape(-1)
        gt_classes = np.asarray(gt_classes, np.int64).reshape(-1)
        pred_scores = np.asarray(pred_scores, np.float64).reshape(-1)
        if pred_masks.ndim != 3 or gt_masks.ndim != 3 or \
                pred_masks.shape[1:] != gt_masks.shape[1:]:
            raise ValueError(f"{prefix}masks must be (N, H, W) of one size, got "
                             f"{pred_masks.shape} and {gt_masks.shape}")
        if not len(pred_classes) == len(pred_scores) == len(pred_masks) or \
                len(gt_classes) != len(gt_masks):
            raise ValueError(f"{prefix}one class (and score) per mask is needed")
        for name, classes in (("pred_classes", pred_classes), ("gt_classes", gt_classes)):
            bad = classes[((classes < 0) | (classes >= self.num_classes)) & (classes != IGNORE)]
            if bad.size:
                raise ValueError(f"{prefix}{name} holds {bad.tolist()}, expected "
                                 f"0..{self.num_classes - 1} or 255")
        keep = np.ones(gt_masks.shape[1:], bool) if ignore is None else ~np.asarray(ignore, bool)
        pred_flat = pred_masks.reshape(len(pred_masks), -1)[:, keep.reshape(-1)]
        gt_flat = gt_masks.reshape(len(gt_masks), -1)[:, keep.reshape(-1)]
        for c in range(self.num_classes):
            preds, gts = np.flatnonzero(pred_classes == c), np.flatnonzero(gt_classes == c)
            self.num_gt[c] += len(gts)
            if not len(preds):
                continue
            preds = preds[np.argsort(-pred_scores[preds], kind="stable")]
            iou = _mask_iou(pred_flat[preds], gt_flat[gts])
            flags = np.zeros((len(preds), len(self.thresholds)), dtype=bool)
            for t, threshold in enumerate(self.thresholds):
                taken = np.zeros(len(gts), dtype=bool)
                for row in range(len(preds)):
                    if not len(gts):
                        break
                    candidates = np.where(taken, -1.0, iou[row])
                    best = int(candidates.argmax())
                    if candidates[best] >= threshold:
                        taken[best] = flags[row, t] = True
            self.scores[c].extend(pred_scores[preds].tolist())
            self.hits[c].extend(flags)
        return self

    def per_class(self) -> np.ndarray:
        """``(T, K)`` AP per threshold and class; NaN for classes without ground truth."""
        out = np.full((len(self.thresholds), self.num_classes), np.nan)
        for c in range(self.num_classes):
            if self.num_gt[c] == 0:
                continue
            hits = np.array(self.hits[c], dtype=bool).reshape(-1, len(self.thresholds))
            for t in range(len(self.thresholds)):
                out[t, c] = average_precision(np.array(self.scores[c]), hits[:, t],
                                              int(self.num_gt[c]))
        return out

    def compute(self) -> Dict[float, float]:
        """mAP^r at each threshold: ``{0.5: ..., 0.7: ..., 0.75: ...}`` in ``[0, 1]``."""
        ap = self.per_class()
        return {t: (float(np.nanmean(row)) if np.isfinite(row).any() else float("nan"))
                for t, row in zip(self.thresholds, ap)}
