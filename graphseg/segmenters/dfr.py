r"""DFR: the Dynamic Feature Regularised loss, semantic segmentation from scribbles
(Zhang et al., "Dynamic Feature Regularized Loss for Weakly Supervised Semantic
Segmentation", https://arxiv.org/abs/2108.01296; thesis chapter 4).  The authors
released no code; this is a reading of the thesis.

One network (:class:`~graphseg.nn.models.DFRNet`): a backbone, UperNet's PPM + FPN
fusion of its levels, the semantic segmentation head and the training-only feature
consistency head (1x1 convolution + ReLU, ``d = 128``), trained with Eq. 4.1:

.. math::
    \mathcal{L} = \mathcal{L}_{pce} + \lambda_1 \mathcal{L}_{dfr}
    + \lambda_2 (\mathcal{L}_{fd} + \mathcal{L}_{fr})

* :math:`\mathcal{L}_{pce}` (Eq. 4.2): cross-entropy on the scribbled pixels, at
  the crop's resolution;
* :math:`\mathcal{L}_{dfr}` (Eq. 4.3-4.6): the relaxed Potts energy of the
  prediction over a radius-``r`` window of the fused map's grid (stride 4), under a
  Gaussian kernel on position, normalised RGB and the consistency head's
  *detached* features (:func:`graphseg.losses.window_kernel`,
  :func:`graphseg.losses.potts_energy`: the window energy that RRM and A2GNN use);
* :math:`\mathcal{L}_{fd}` (Eq. 4.7-4.11): the feature distance loss on the
  window pairs whose ends are both predicted with confidence above ``gamma``;
* :math:`\mathcal{L}_{fr}` (Eq. 4.12-4.13): the feature regularised loss under
  the static kernel, on the same pairs (the thesis prints :math:`R_A`).

The ablations of the thesis (Tables 4.5, 4.6) are settings: ``kernel="static"``
drops the features from the kernel (position + RGB: the Gated-CRF-style loss),
``consistency_head=False`` removes the head and its two losses, ``fd_weight=0`` /
``fr_weight=0`` one of them, ``dfr_weight=0`` the regulariser (partial
cross-entropy alone).

The window losses work on the fused map's grid (``ceil(crop / 4)`` for the bundled
backbones), where ``radius`` and ``sigma_xy`` are counted: the thesis' ``r = 5``
and :math:`\sigma_1 = 6` on its 1/4-resolution decoder output.  Memory is about
``K x B x h x w`` (``K = (2 r + 1)^2`` window offsets), never
``K x B x C x h x w``.

Example:
    >>> from graphseg.segmenters import DFRSegmenter
    >>> segmenter = DFRSegmenter(("background", "cat"), backbone="small-cnn",
    ...                          pretrained=False, width=4, channels=8, feature_dim=8)
    >>> segmenter.method, segmenter.config.radius, segmenter.config.gamma
    ('dfr', 5, 0.98)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from graphseg.data.torch_dataset import SegmentationSet
from graphseg.graph.grid import WINDOWS
from graphseg.losses import (
    balanced_cross_entropy,
    confident_labels,
    feature_distance_loss,
    feature_regularized_loss,
    potts_energy,
    window_kernel,
)
from graphseg.nn.models.dfr import DFRNet
from graphseg.segmenters.base import Segmenter, SegmenterConfig, register
from graphseg.utils.checks import check_choice, check_positive_int
from graphseg.utils.constants import IGNORE

__all__ = ["DFRConfig", "DFRSegmenter"]

KERNELS = ("dynamic", "static")


@dataclass
class DFRConfig(SegmenterConfig):
    r""":class:`~graphseg.segmenters.SegmenterConfig`, with the thesis' optimiser
    (section 4.3.2: AdamW, weight decay 0.01; its learning rate, 3e-5 for 40k
    steps of 16 crops, is left at the CPU-budget ``1e-4``), and

    Args:
        optimizer (str, optional): as for the base; decoupled decay matters here:
            with Adam's L2 form, the consistency head, whose only gradient is the
            small :math:`\lambda_2` term, decays to zero features.
            (default: ``"adamw"``)
        weight_decay (float, optional): (default: ``0.01``)
        dfr_weight (float, optional): :math:`\lambda_1` of Eq. 4.1; 0 trains on the
            partial cross-entropy alone. (default: ``1e-2``, the thesis')
        feature_weight (float, optional): :math:`\lambda_2` of Eq. 4.1.
            (default: ``1e-3``, the thesis')
        fd_weight (float, optional): factor of :math:`\mathcal{L}_{fd}` inside
            :math:`\lambda_2`'s bracket; 0 is the ablation. (default: ``1.0``)
        fr_weight (float, optional): factor of :math:`\mathcal{L}_{fr}` there.
            (default: ``1.0``)
        kernel (str, optional): ``"dynamic"`` (position, RGB and the consistency
            head's features, Eq. 4.6) or ``"static"`` (position and RGB).
            (default: ``"dynamic"``)
        consistency_head (bool, optional): build the feature consistency head and
            train its two losses; ``False`` needs ``kernel="static"``.
            (default: ``True``)
        radius (int, optional): window radius ``r`` of Eq. 4.3, fused-grid pixels.
            (default: ``5``, the thesis')
        window (str, optional): ``"square"`` (Eq. 4.3) or ``"disk"``.
            (default: ``"square"``)
        gamma (float, optional): confidence threshold of Eq. 4.7. (default: ``0.98``,
            the thesis')
        sigma_xy (float, optional): :math:`\sigma_1`, fused-grid pixels.
            (default: ``6.0``, the thesis')
        sigma_rgb (float, optional): :math:`\sigma_2`, in units of the
            ImageNet-normalised image (the thesis normalises RGB first).
            (default: ``0.5``, the thesis')
        sigma_feat (float, optional): :math:`\sigma_3` on the head's features.
            (default: ``50.0``, the thesis')
        channels (int, optional): width of the fusion neck. (default: ``64``; the
            thesis' UperNet: 512)
        feature_dim (int, optional): ``d``, the consistency head's channels.
            (default: ``128``, the thesis')
    """

    optimizer: str = "adamw"
    weight_decay: float = 0.01
    dfr_weight: float = 1e-2
    feature_weight: float = 1e-3
    fd_weight: float = 1.0
    fr_weight: float = 1.0
    kernel: str = "dynamic"
    consistency_head: bool = True
    radius: int = 5
    window: str = "square"
    gamma: float = 0.98
    sigma_xy: float = 6.0
    sigma_rgb: float = 0.5
    sigma_feat: float = 50.0
    channels: int = 64
    feature_dim: int = 128

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.kernel, "kernel", KERNELS)
        check_choice(self.window, "window", WINDOWS)
        for name in ("radius", "channels", "feature_dim"):
            check_positive_int(getattr(self, name), name)
        if not 0 < float(self.gamma) < 1:
            raise ValueError(f"gamma must be in (0, 1), got {self.gamma}")
        for name in ("sigma_xy", "sigma_rgb", "sigma_feat"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("dfr_weight", "feature_weight", "fd_weight", "fr_weight"):
            value = float(getattr(self, name))
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got "
                                 f"{getattr(self, name)}")
        if self.kernel == "dynamic" and not self.consistency_head:
            raise ValueError("kernel='dynamic' takes its features from the consistency head: "
                             "set consistency_head=True, or kernel='static'")


@register
class DFRSegmenter(Segmenter):
    """DFR from scribbles (see the module notes)."""

    method = "dfr"
    Config = DFRConfig

    def build_model(self, backbone: nn.Module) -> nn.Module:
        config = self.config
        return DFRNet(backbone, len(self.class_names), channels=config.channels,
                      feature_dim=config.feature_dim, consistency=config.consistency_head)

    def check_data(self, data: SegmentationSet) -> None:
        if data.labels is None:
            raise ValueError("DFR trains on scribbles: give the SegmentationSet label maps "
                             "(class ids on the strokes, 255 elsewhere)")

    def loss(self, net, batch: dict, epoch: int):
        config = self.config
        out = net(batch["image"])
        size = batch["label"].shape[-2:]
        logits = F.interpolate(out.seg_logits, size=size, mode="bilinear", align_corners=False)
        pce = balanced_cross_entropy(logits, batch["label"], background=self.background,
                                     balanced=False)  # Eq. 4.2
        total, logs = pce, {"pce": pce.item()}
        if config.dfr_weight == 0 and not config.consistency_head:
            return total, logs
        # the window losses live on the fused grid: the image and the valid pixels
        # are brought to it (area averages, as node colours are)
        grid = tuple(out.seg_logits.shape[-2:])
        probs = out.seg_logits.float().softmax(dim=1)
        image = F.interpolate(batch["image"].float(), size=grid, mode="area")
        valid = F.interpolate(batch["valid"][:, None].float(), size=grid,
                              mode="nearest")[:, 0] > 0
        features = None if out.features is None else out.features.float()
        with torch.no_grad():
            static = window_kernel([(image, config.sigma_rgb)], radius=config.radius,
                                   sigma_xy=config.sigma_xy, window=config.window)
        if config.dfr_weight > 0:
            kernel = static
            if config.kernel == "dynamic":
                with torch.no_grad():  # "non-gradient values" (section 4.2.2)
                    kernel = static * window_kernel(
                        [(features.detach(), config.sigma_feat)], radius=config.radius,
                        sigma_xy=math.inf, window=config.window)
            dfr = potts_energy(probs, kernel, radius=config.radius, window=config.window,
                               mask=valid)  # Eq. 4.4-4.6
            total = total + config.dfr_weight * dfr
            logs["dfr"] = dfr.item()
        if config.consistency_head:
            confident = confident_labels(probs.detach(), gamma=config.gamma, valid=valid)
            fd = feature_distance_loss(features, confident, radius=config.radius,
                                       window=config.window, background=self.background)
            fr = feature_regularized_loss(features, static, radius=config.radius,
                                          window=config.window, mask=confident != IGNORE,
                                          valid=valid)
            total = total + config.feature_weight * (config.fd_weight * fd
                                                     + config.fr_weight * fr)
            logs.update(fd=fd.item(), fr=fr.item(),
                        confident=float((confident != IGNORE).float().mean()))
        return total, logs
