"""Metrics that every method and benchmark is judged by.

* :func:`object_iou`: one class's IoU in one image (GrabCut's per-photo score).
* :class:`ConfusionMatrix` / :func:`confusion_matrix`: mIoU, per-class IoU, pixel
  accuracy, FB-IoU, accumulated over a dataset (255 = ignore).
* :class:`FewShotScores`: the few-shot protocol's mean IoU over classes and FB-IoU.
* :class:`SeedQuality`: coverage and precision of partial label maps, per class.
* :class:`MaskAP`: instance mask mAP^r at IoU 0.5 / 0.7 / 0.75 (thesis Table 3.2);
  :func:`average_precision`, :func:`instances_from_maps`.
"""
from graphseg.metrics.confusion import ConfusionMatrix, check_pair, confusion_matrix, object_iou
from graphseg.metrics.few_shot import FewShotScores
from graphseg.metrics.instances import (
    THRESHOLDS,
    MaskAP,
    average_precision,
    instances_from_maps,
)
from graphseg.metrics.seeds import SeedQuality

__all__ = ["THRESHOLDS", "ConfusionMatrix", "FewShotScores", "MaskAP", "SeedQuality",
           "average_precision", "check_pair", "confusion_matrix", "instances_from_maps",
           "object_iou"]
