"""The two-step path: a segmentation network trained on label maps.

The second step of every two-step weakly supervised pipeline: pseudo-label maps
(for instance ``graphseg propagate --tags`` output, 255 = unknown, ignored)
train a segmentation network, which then segments new photos.  Given full masks
it is the fully supervised upper bound of the same network.  The network is
RRM's segmentation branch (:class:`~graphseg.nn.models.RRMNet` without its
classification head), so two-step and one-step RRM compare on equal terms.

Example:
    >>> from graphseg.segmenters import TwoStepSegmenter
    >>> segmenter = TwoStepSegmenter(("background", "object"), backbone="small-cnn",
    ...                              pretrained=False, width=4)
    >>> segmenter.method, segmenter.config.balanced
    ('two-step', False)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from graphseg.data.torch_dataset import SegmentationSet
from graphseg.losses import balanced_cross_entropy
from graphseg.segmenters.base import register
from graphseg.segmenters.rrm import RRMNetConfig, RRMNetSegmenter

__all__ = ["TwoStepConfig", "TwoStepSegmenter"]


@dataclass
class TwoStepConfig(RRMNetConfig):
    """:class:`~graphseg.segmenters.RRMNetConfig` and

    Args:
        balanced (bool, optional): average the cross-entropy of background and
            foreground pixels separately and sum the two (as RRM's does); the plain
            mean over labelled pixels, DeepLab's, otherwise. (default: ``False``)
    """

    balanced: bool = False


@register
class TwoStepSegmenter(RRMNetSegmenter):
    """The segmentation network on label maps (see the module notes)."""

    method = "two-step"
    Config = TwoStepConfig
    classify = False

    def check_data(self, data: SegmentationSet) -> None:
        if data.labels is None:
            raise ValueError("two-step trains on label maps: give the SegmentationSet labels")

    def loss(self, net, batch: dict, epoch: int):
        logits = net(batch["image"]).seg_logits
        logits = F.interpolate(logits, size=batch["label"].shape[-2:], mode="bilinear",
                               align_corners=False)
        return balanced_cross_entropy(logits, batch["label"], background=self.background,
                                      balanced=self.config.balanced)
