r"""The RRM network of thesis chapter 2 (Fig. 2.1): one backbone, a classification
branch (CAMs, Eq. 2.1) and a segmentation branch of two sub-branches, local (dilated
convolutions) and global (:class:`~graphseg.nn.heads.RFAM`), averaged (Eq. 2.13).

* :class:`RRMNet`: the network; :class:`RRMOutput`: what its ``forward`` returns.
* :func:`build_rrm_net`: the network again from its :attr:`RRMNet.architecture`
  (plain values), e.g. to load a saved state dict without the training code.
* The backbone is named by a spec of :data:`graphseg.nn.backbones.BACKBONES`
  (:func:`~graphseg.nn.backbones.build_backbone`), the registry shared with
  :class:`~graphseg.nn.models.DFRNet`.

The same network, built with ``classify=False``, is the segmentation network of the
two-step variant (section 2.3.1: trained on pseudo-label maps with cross-entropy only).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.nn.backbones.registry import (
    backbone_from_architecture,
    backbone_spec,
    check_backbone,
)
from graphseg.nn.heads.rfam import RFAM
from graphseg.utils.checks import check_choice, check_positive_int, check_tensor
from graphseg.utils.constants import IGNORE

__all__ = ["RRMNet", "RRMOutput", "build_rrm_net"]

ATTENTIONS = ("rfam", "plain")
# The thesis' local sub-branch: dilation 12 on ResNet-38's stride-8 map, i.e. taps
# 96 input pixels apart; the default keeps that spacing at other strides.
_TAP_SPACING = 12 * 8


class RRMOutput(NamedTuple):
    """What :class:`RRMNet` returns, all at the backbone's last stride ``s``."""

    class_logits: Optional[Tensor]
    r"""``(B, C_fg)`` image-level logits :math:`\hat{y}` of the foreground classes
    (the pooled CAM, the input of Eq. 2.14); ``None`` with ``classify=False``."""
    cam: Optional[Tensor]
    """``(B, C_fg, h, w)`` raw class activation maps (Eq. 2.1 before resizing);
    ``None`` with ``classify=False``."""
    seg_logits: Tensor
    r"""``(B, C, h, w)`` segmentation logits :math:`(P_l + P_g) / 2`; their softmax
    over classes is :math:`P_{net}` (Eq. 2.13)."""
    features: Tensor
    r"""``(B, D_m, h, w)`` :math:`F_m = \operatorname{concat}([F_l, F_g])` (Eq. 2.22)
    for the BCD loss, ``D_m = local_channels + 2 * global_channels``."""


class RRMNet(nn.Module):
    r"""The RRM network from `"Reliability Does Matter: An End-to-End Weakly Supervised
    Semantic Segmentation Approach" <https://arxiv.org/abs/1911.08039>`_ (Zhang et al.,
    AAAI 2020; thesis chapter 2, Fig. 2.1 and section 2.3.1).

    On the backbone's last feature map :math:`F` (stride ``s``, ``D`` channels):

    * **classification branch** (Eq. 2.1): a 1x1 convolution without bias, the
      fully-connected layer :math:`\omega` applied at every position, gives the
      CAM :math:`\sum_{ch} \omega^c_{ch} F_{ch}` of each foreground class; its
      global average (= the layer on the pooled features) gives the class logits;
    * **local sub-branch**: two 3x3 convolutions of dilation ``dilation`` with a
      ReLU between, ``D -> local_channels -> C``, giving :math:`P_l`;
      :math:`F_l` is the ReLU output;
    * **global sub-branch**: :class:`~graphseg.nn.heads.RFAM` (``global_channels``
      per convolution, ``reweight=False`` for ``attention="plain"``) gives
      :math:`F_g` (``2 * global_channels``), then 3x3 convolutions
      ``2 * global_channels -> global_channels -> C`` with a ReLU between give
      :math:`P_g`;

    .. math::
        P_{net} = \operatorname{softmax}\left(\frac{P_l + P_g}{2}\right), \qquad
        F_m = \operatorname{concat}([F_l, F_g])

    (Eq. 2.13, 2.22; :math:`F_g` is taken after R-FAM, :math:`C_g = 2 C_1` as in
    the thesis, 1024 channels in all there).

    The thesis sizes (ResNet-38 at stride 8): ``local_channels=512``,
    ``dilation=12``, ``global_channels=256``.  The defaults are CPU sizes (128 and
    64 channels); the default dilation keeps the thesis' tap spacing of 96 input
    pixels at the backbone's stride, ``max(1, round(96 / s))``: 12 at stride 8
    (:class:`~graphseg.nn.backbones.SmallCNN`), 6 at stride 16
    (:class:`~graphseg.nn.backbones.ESPNetv2Encoder`).

    For the two-step variant (a segmentation network trained on pseudo-label maps
    with cross-entropy only) build it with ``classify=False``: there is no
    classification layer, ``class_logits`` and ``cam`` are ``None``.

    Args:
        backbone (nn.Module): a backbone with ``forward_features``, ``strides``
            and ``channels`` (:mod:`graphseg.nn.backbones`); its last level is used.
        num_classes (int): ``C``, the segmentation classes (label ids
            ``0..C-1``, background included).
        background (int, optional): the background's label id; the CAM classes
            are all the others. (default: ``0``)
        attention (str, optional): ``"rfam"`` (Eq. 2.9-2.11) or ``"plain"``
            (softmax attention, the ablation of Table 2.5). (default: ``"rfam"``)
        local_channels (int, optional): width of the local sub-branch.
            (default: ``128``; thesis ``512``)
        global_channels (int, optional): :math:`C_1` of R-FAM and width of the
            following convolution. (default: ``64``; thesis ``256``)
        dilation (int, optional): dilation (and padding) of the local
            convolutions; ``None``: ``max(1, round(96 / s))``. (default: ``None``)
        classify (bool, optional): build the classification branch.
            (default: ``True``)
        max_positions (int, optional): the largest feature-map ``h * w`` the
            global attention accepts (see :class:`~graphseg.nn.heads.RFAM`);
            ``None`` for no limit. (default: ``4096``)
        seed (int, optional): initialisation seed of the heads; ``None`` uses the
            global generator. (default: ``None``)

    Shapes:
        - **input:** ``(B, 3, H, W)`` RGB in ``[0, 1]`` normalised with the
          ImageNet mean and std, as the backbones
          (:func:`~graphseg.nn.backbones.preprocess`)
        - **output:** :class:`RRMOutput` at the backbone's last grid ``(h, w)``
          (``ceil(H / s) x ceil(W / s)`` for the bundled backbones)

    Example:
        >>> import torch
        >>> from graphseg.nn.backbones import SmallCNN
        >>> from graphseg.nn.models import RRMNet, build_rrm_net
        >>> net = RRMNet(SmallCNN(width=8), 3, local_channels=16, global_channels=8)
        >>> out = net(torch.zeros(2, 3, 32, 40))
        >>> tuple(out.class_logits.shape), tuple(out.cam.shape), net.foreground_classes
        ((2, 2), (2, 2, 4, 5), (1, 2))
        >>> tuple(out.seg_logits.shape), tuple(out.features.shape)
        ((2, 3, 4, 5), (2, 32, 4, 5))
        >>> net.segment(torch.zeros(1, 3, 32, 40)).shape
        torch.Size([1, 3, 32, 40])
        >>> copy = build_rrm_net(net.architecture)
        >>> copy.load_state_dict(net.state_dict())
        <All keys matched successfully>
    """

    def __init__(self, backbone: nn.Module, num_classes: int, *, background: int = 0,
                 attention: str = "rfam", local_channels: int = 128,
                 global_channels: int = 64, dilation: Optional[int] = None,
                 classify: bool = True, max_positions: Optional[int] = 4096,
                 seed: Optional[int] = None):
        super().__init__()
        strides, channels = check_backbone(backbone, "backbone")
        check_positive_int(num_classes, "num_classes", minimum=2)
        if num_classes > IGNORE:
            raise ValueError(f"num_classes must be <= {IGNORE} (label ids 0..{IGNORE - 1}), "
                             f"got {num_classes}")
        if isinstance(background, bool) or not isinstance(background, int) or not (
                0 <= background < num_classes):
            raise ValueError(f"background must be a label id in 0..{num_classes - 1}, got "
                             f"{background!r}")
        check_choice(attention, "attention", ATTENTIONS)
        check_positive_int(local_channels, "local_channels")
        check_positive_int(global_channels, "global_channels")
        self.stride = int(strides[-1])
        if dilation is None:
            dilation = max(1, round(_TAP_SPACING / self.stride))
        check_positive_int(dilation, "dilation")
        self.backbone = backbone
        self.num_classes, self.background = num_classes, background
        self.foreground_classes: Tuple[int, ...] = tuple(
            c for c in range(num_classes) if c != background)
        self.attention = attention
        self.local_channels, self.global_channels = local_channels, global_channels
        self.dilation = dilation
        self.classify = bool(classify)
        self.backbone_spec = backbone_spec(backbone)
        in_channels = int(channels[-1])
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.classifier = (nn.Conv2d(in_channels, len(self.foreground_classes), 1,
                                         bias=False) if self.classify else None)
            self.local_conv = nn.Conv2d(in_channels, local_channels, 3, padding=dilation,
                                        dilation=dilation)
            self.local_out = nn.Conv2d(local_channels, num_classes, 3, padding=dilation,
                                       dilation=dilation)
            self.global_attention = RFAM(in_channels, global_channels,
                                         reweight=attention == "rfam",
                                         max_positions=max_positions)
            self.global_conv = nn.Conv2d(2 * global_channels, global_channels, 3, padding=1)
            self.global_out = nn.Conv2d(global_channels, num_classes, 3, padding=1)

    @property
    def feature_channels(self) -> int:
        """``D_m = local_channels + 2 * global_channels``, the channels of ``features``."""
        return self.local_channels + 2 * self.global_channels

    @property
    def architecture(self) -> dict:
        """Plain values :func:`build_rrm_net` rebuilds this network from: ``backbone``
        (the spec of :data:`~graphseg.nn.backbones.BACKBONES`, ``None`` for an
        unregistered backbone),
        ``num_classes``, ``background``, ``attention``, ``local_channels``,
        ``global_channels``, ``dilation``, ``classify`` and ``max_positions``."""
        return {"backbone": None if self.backbone_spec is None else dict(self.backbone_spec),
                "num_classes": self.num_classes, "background": self.background,
                "attention": self.attention, "local_channels": self.local_channels,
                "global_channels": self.global_channels, "dilation": self.dilation,
                "classify": self.classify,
                "max_positions": self.global_attention.max_positions}

    def _heads(self) -> Tuple[nn.Module, ...]:
        return tuple(m for m in (self.classifier, self.local_conv, self.local_out,
                                 self.global_attention, self.global_conv, self.global_out)
                     if m is not None)

    def reset_parameters(self) -> None:
        """Re-initialise the heads (the backbone keeps its weights)."""
        for module in self._heads():
            module.reset_parameters()

    def _features(self, images: Tensor) -> Tensor:
        check_tensor(images, "images")
        if images.dim() != 4 or images.size(1) != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        return self.backbone.forward_features(images)[-1]

    def _segmentation(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        local = F.relu(self.local_conv(x))  # F_l
        glob = self.global_attention(x)  # F_g, Eq. 2.12
        p_local = self.local_out(local)
        p_global = self.global_out(F.relu(self.global_conv(glob)))
        return (p_local + p_global) / 2, torch.cat([local, glob], dim=1)  # Eq. 2.13, 2.22

    def forward(self, images: Tensor) -> RRMOutput:
        x = self._features(images)
        seg_logits, features = self._segmentation(x)
        cam = class_logits = None
        if self.classifier is not None:
            cam = self.classifier(x)  # Eq. 2.1 (no bias: the pooled CAM is the logit)
            class_logits = cam.mean(dim=(2, 3))
        return RRMOutput(class_logits, cam, seg_logits, features)

    def segment(self, images: Tensor) -> Tensor:
        """Segmentation logits ``(B, C, H, W)`` at the input size (bilinear), for
        inference; the classification branch is not run."""
        seg_logits, _ = self._segmentation(self._features(images))
        return F.interpolate(seg_logits, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)


def build_rrm_net(architecture: dict, backbone: Optional[nn.Module] = None, *,
                  pretrained: bool = False) -> RRMNet:
    """An :class:`RRMNet` from its :attr:`~RRMNet.architecture`, randomly initialised
    (weights come from a state dict) unless ``pretrained``.

    Args:
        architecture (dict): the ``architecture`` of the network to rebuild.
        backbone (nn.Module, optional): the backbone module, required when
            ``architecture["backbone"]`` is ``None``; otherwise it replaces the
            registered one. (default: ``None``)
        pretrained (bool, optional): load the registered backbone's pretrained
            weights (:func:`~graphseg.nn.backbones.build_backbone`), to start training.
            (default: ``False``)
    """
    backbone, options = backbone_from_architecture(architecture, backbone,
                                                   pretrained=pretrained)
    if "num_classes" not in options:
        raise ValueError(f"architecture has no num_classes: {architecture!r}")
    num_classes = options.pop("num_classes")
    return RRMNet(backbone, num_classes, **options)
