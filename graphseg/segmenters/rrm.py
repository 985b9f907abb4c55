r"""RRM: Reliable Region Mining, one-step semantic segmentation from image-level tags
(Zhang et al., "Reliability Does Matter: An End-to-End Weakly Supervised Semantic
Segmentation Approach", AAAI 2020; thesis chapter 2).

One network (:class:`~graphseg.nn.models.RRMNet`), two branches on a shared
backbone, trained together on every batch:

1. **Classification branch** (Eq. 2.1, 2.14): GAP + FC over the foreground
   classes, the multi-label soft margin loss on the photo's tags.  Its CAMs give,
   online, the *reliable regions* of each training crop: CAMs (averaged over
   ``cam_scales``, Eq. 2.2), max-normalised per tagged class with the background
   score :math:`(1 - \max_c P^c)^\gamma` (Eq. 2.3-2.4), the top ``keep`` of every
   class where a dense CRF agrees (Eq. 2.5-2.7,
   :func:`graphseg.seeds.reliable_regions`); 255 elsewhere.
2. **Segmentation branch** (Eq. 2.8-2.13): local (dilated convolutions) and
   global (R-FAM) sub-branches, averaged, trained with the joint loss Eq. 2.15:

   .. math::
       \mathcal{L} = \mathcal{L}_{class} + \mathcal{L}_{ce} + \lambda_1
       \mathcal{L}_{energy} + \mathcal{L}_{BCD}

   the balanced cross-entropy on the reliable pixels (Eq. 2.16), the dense energy
   loss with the soft filter (Eq. 2.17-2.21,
   :func:`graphseg.losses.dense_energy_loss`, a window graph regulariser computed
   with our grid kernels: no compiled extension) and the batch-based class
   distance loss on the concatenated branch features (Eq. 2.22-2.26,
   :func:`graphseg.losses.bcd_loss`).

The first ``warmup_epochs`` train the classification branch alone: a CAM of an
untrained classifier marks no reliable region (the thesis starts from a trained
classifier).  Each loss has a weight; 0 removes it (the ablations of Table 2.x).
Only the segmentation branch predicts (:meth:`~Segmenter.predict`).

Example:
    >>> from graphseg.segmenters import RRMSegmenter
    >>> segmenter = RRMSegmenter(("background", "cat", "dog"), backbone="small-cnn",
    ...                          pretrained=False, width=4)
    >>> segmenter.net.foreground_classes
    (1, 2)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.data.torch_dataset import SegmentationSet, multi_hot
from graphseg.losses import balanced_cross_entropy, bcd_loss, dense_energy_loss
from graphseg.nn.models.rrm import ATTENTIONS, RRMNet
from graphseg.refine.crf import PRESETS
from graphseg.seeds.cam import cam_probabilities, reliable_regions
from graphseg.segmenters.base import Segmenter, SegmenterConfig, register
from graphseg.utils.checks import check_choice, check_fraction, check_positive_int
from graphseg.utils.constants import IGNORE

__all__ = ["RRMConfig", "RRMNetConfig", "RRMNetSegmenter", "RRMSegmenter"]


@dataclass
class RRMNetConfig(SegmenterConfig):
    """:class:`~graphseg.segmenters.SegmenterConfig` and, for the segmenters on
    :class:`~graphseg.nn.models.RRMNet` (RRM, two-step),

    Args:
        attention (str, optional): the global sub-branch's attention, ``"rfam"``
            (Eq. 2.8-2.12) or ``"plain"`` (non-local). (default: ``"rfam"``)
    """

    attention: str = "rfam"

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.attention, "attention", ATTENTIONS)


class RRMNetSegmenter(Segmenter):
    """A segmenter on :class:`~graphseg.nn.models.RRMNet`."""

    Config = RRMNetConfig
    #: whether the network needs its classification branch (image-level tags)
    classify: ClassVar[bool] = False

    def build_model(self, backbone: nn.Module) -> nn.Module:
        return RRMNet(backbone, len(self.class_names), background=self.background,
                      attention=self.config.attention, classify=self.classify)


@dataclass
class RRMConfig(RRMNetConfig):
    """:class:`RRMNetConfig` and

    Args:
        warmup_epochs (int, optional): epochs of the classification loss alone.
            (default: ``2``)
        cam_scales (tuple of float, optional): crop scales whose CAMs are averaged
            for the reliable regions (Eq. 2.2); every scale but 1 costs one more
            forward pass per step.  The thesis: ``(0.5, 1, 1.5, 2)``.
            (default: ``(1.0,)``, the training forward's own CAM)
        gamma (float, optional): background decay of Eq. 2.4. (default: ``4.0``,
            the thesis')
        keep (float, optional): fraction of each class's pixels kept by Eq. 2.6.
            (default: ``0.4``, the thesis')
        crf (str, optional): the CRF preset of Eq. 2.5. (default: ``"seed"``)
        class_weight (float, optional): weight of Eq. 2.14. (default: ``1.0``)
        ce_weight (float, optional): weight of Eq. 2.16. (default: ``1.0``)
        energy_weight (float, optional): :math:`\\lambda_1` of Eq. 2.15.
            (default: ``1.0``, the thesis')
        bcd_weight (float, optional): weight of Eq. 2.26. (default: ``1.0``)
        sigma_xy (float, optional): the energy kernel's spatial bandwidth, pixels of
            the crop. (default: ``100.0``, the thesis')
        sigma_rgb (float, optional): its colour bandwidth, 0-255 units.
            (default: ``15.0``, the thesis')
    """

    warmup_epochs: int = 2
    cam_scales: Tuple[float, ...] = (1.0,)
    gamma: float = 4.0
    keep: float = 0.4
    crf: str = "seed"
    class_weight: float = 1.0
    ce_weight: float = 1.0
    energy_weight: float = 1.0
    bcd_weight: float = 1.0
    sigma_xy: float = 100.0
    sigma_rgb: float = 15.0

    def __post_init__(self):
        super().__post_init__()
        check_positive_int(self.warmup_epochs, "warmup_epochs", minimum=0)
        self.cam_scales = tuple(float(s) for s in self.cam_scales)
        if not self.cam_scales or any(not s > 0 for s in self.cam_scales):
            raise ValueError(f"cam_scales must be positive numbers, got {self.cam_scales}")
        check_fraction(self.keep, "keep")
        check_choice(self.crf, "crf", tuple(PRESETS))
        for name in ("gamma", "sigma_xy", "sigma_rgb"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("class_weight", "ce_weight", "energy_weight", "bcd_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@register
class RRMSegmenter(RRMNetSegmenter):
    """RRM from image-level tags (see the module notes)."""

    method = "rrm"
    Config = RRMConfig
    classify = True

    def check_data(self, data: SegmentationSet) -> None:
        if data.tags is None:
            raise ValueError("RRM trains on image-level tags: give the SegmentationSet tags")
        known = set(self.net.foreground_classes)
        for name, tags in zip(data.names, data.tags):
            unknown = sorted(set(tags) - known)
            if unknown:
                raise ValueError(f"{name}: tags {unknown} are not foreground classes "
                                 f"{sorted(known)}")

    @torch.no_grad()
    def reliable_labels(self, cam: Tensor, batch: dict) -> Tensor:
        """``(B, H, W)`` reliable-region labels of a batch's crops (Eq. 2.2-2.7) from
        the ``(B, K, h, w)`` CAMs of its forward pass (other ``cam_scales`` added)."""
        config, size = self.config, batch["label"].shape[-2:]
        maps = []
        for factor in config.cam_scales:
            if factor == 1:
                scaled = cam
            else:
                images = F.interpolate(batch["image"], scale_factor=factor, mode="bilinear",
                                       align_corners=False)
                scaled = self.net(images).cam
            maps.append(F.interpolate(scaled.float().relu(), size=size, mode="bilinear",
                                      align_corners=False))
        cams = (sum(maps) / len(maps)).cpu().numpy()
        rgb = batch["rgb"].cpu().numpy()
        valid = batch["valid"].cpu()
        out = torch.full(batch["label"].shape, IGNORE, dtype=torch.int64)
        for b, tags in enumerate(batch["tags"]):
            # the photo is the crop's top-left rectangle: padding goes right and down
            height, width = int(valid[b].any(1).sum()), int(valid[b].any(0).sum())
            if not height or not width:
                continue
            if not tags:  # nothing tagged: every pixel is background
                out[b, :height, :width] = self.background
                continue
            probs, ids = cam_probabilities(cams[b, :, :height, :width], tags,
                                           self.net.foreground_classes, self.background,
                                           config.gamma)
            seeds = reliable_regions(rgb[b, :height, :width], probs, ids, config.keep,
                                     config.crf)
            out[b, :height, :width] = torch.from_numpy(seeds.labels.astype("int64"))
        return out.to(batch["label"].device)

    def loss(self, net, batch: dict, epoch: int):
        config = self.config
        out = net(batch["image"])
        targets = multi_hot(batch["tags"], self.net.foreground_classes).to(out.class_logits)
        classification = F.multilabel_soft_margin_loss(out.class_logits, targets)
        if epoch < config.warmup_epochs:
            # the segmentation branch joins the graph with weight 0, so DDP sees every
            # parameter used
            zero = out.seg_logits.sum() * 0 + out.features.sum() * 0
            return config.class_weight * classification + zero, {"cls": classification.item()}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="tag .* has no CAM response")
            labels = self.reliable_labels(out.cam.detach(), batch)
        size = batch["label"].shape[-2:]
        logits = F.interpolate(out.seg_logits, size=size, mode="bilinear", align_corners=False)
        ce = balanced_cross_entropy(logits, labels, background=self.background)
        probs = logits.float().softmax(dim=1)
        energy = dense_energy_loss(probs, batch["rgb"].permute(0, 3, 1, 2).float(),
                                   labels=labels, valid=batch["valid"],
                                   sigma_xy=config.sigma_xy, sigma_rgb=config.sigma_rgb)
        mask = out.seg_logits.detach().argmax(dim=1)
        valid = F.interpolate(batch["valid"][:, None].float(), size=mask.shape[-2:],
                              mode="nearest")[:, 0].bool()
        bcd = bcd_loss(out.features, mask.masked_fill(~valid, IGNORE),
                       background=self.background)
        total = (config.class_weight * classification + config.ce_weight * ce
                 + config.energy_weight * energy + config.bcd_weight * bcd)
        return total, {"cls": classification.item(), "ce": ce.item(),
                       "energy": energy.item(), "bcd": bcd.item()}
