r"""The DFR network of thesis chapter 4 (Fig. 4.2): a backbone, UperNet's feature fusion
(:class:`~graphseg.nn.necks.UperFusion`), a semantic segmentation head and a feature
consistency head.

* :class:`DFRNet`: the network; :class:`DFROutput`: what its ``forward`` returns.
* :func:`build_dfr_net`: the network again from its :attr:`DFRNet.architecture`
  (plain values), e.g. to load a saved state dict without the training code.

The backbone is named by a spec of :data:`graphseg.nn.backbones.BACKBONES`, the
registry shared with :class:`~graphseg.nn.models.RRMNet`.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.nn.backbones.registry import (
    backbone_from_architecture,
    backbone_spec,
    check_backbone,
)
from graphseg.nn.necks.uper import UperFusion
from graphseg.utils.checks import check_positive_int, check_tensor
from graphseg.utils.constants import IGNORE

__all__ = ["DFRNet", "DFROutput", "build_dfr_net"]


class DFROutput(NamedTuple):
    """What :class:`DFRNet` returns, both at the fused map's stride ``s``
    (:attr:`DFRNet.stride`)."""

    seg_logits: Tensor
    """``(B, C, h, w)`` semantic segmentation logits (their softmax over classes is
    the network's class probability map)."""
    features: Optional[Tensor]
    """``(B, d, h, w)`` output of the feature consistency head (thesis section 4.3.2,
    non-negative after its ReLU), for the training losses; ``None`` with
    ``consistency=False``."""


class DFRNet(nn.Module):
    r"""The DFR network of thesis chapter 4 (Fig. 4.2; `arXiv:2108.01296
    <https://arxiv.org/abs/2108.01296>`_): a backbone, UperNet's feature fusion
    (`Xiao et al., ECCV 2018 <https://arxiv.org/abs/1807.10221>`_) and two heads on
    the fused map.

    * **backbone**: its levels of stride ``>= min_stride`` (UperNet's stride 4 to 32
      stages; :class:`~graphseg.nn.backbones.ESPNetv2Encoder`: strides 4, 8, 16;
      :class:`~graphseg.nn.backbones.SmallCNN`: 4, 8, 8), finest first;
    * **fusion**: :class:`~graphseg.nn.necks.UperFusion` (pyramid pooling on the
      coarsest used level, a top-down pyramid, all levels fused) gives
      :math:`F` (``channels``) at the first used level's stride :attr:`stride`;
    * **semantic segmentation head** (UperNet's scene head):
      :math:`P = \operatorname{conv}_{1 \times 1}(\operatorname{Dropout2d}(F))`,
      ``channels -> C``;
    * **feature consistency head** (section 4.3.2):
      :math:`F_c = \operatorname{ReLU}(\operatorname{conv}_{1 \times 1}(F))`,
      ``channels -> d``; only with ``consistency=True``.  It serves the training
      losses: :meth:`segment` (inference) does not run it.

    The thesis sizes: a Swin-B backbone with UperNet, a 512-channel pyramid and a
    2048-channel fusion (4 x 512), ``d = 128``.  The defaults are CPU sizes: a
    ``channels=64`` pyramid and fusion (the fusion convolution maps the
    ``L * 64`` concatenated channels back to 64), ``feature_dim=128`` as printed.

    Args:
        backbone (nn.Module): a backbone with ``forward_features``, ``strides`` and
            ``channels`` (:mod:`graphseg.nn.backbones`), levels finest first.
        num_classes (int): ``C``, the segmentation classes (label ids ``0..C-1``,
            background included), 2 to 255.
        channels (int, optional): width of the fusion (pyramid and fused map).
            (default: ``64``; thesis ``512``)
        feature_dim (int, optional): ``d``, the channels of the feature
            consistency head. (default: ``128``, the thesis)
        consistency (bool, optional): build the feature consistency head.
            (default: ``True``)
        min_stride (int, optional): the backbone levels of a smaller stride are not
            used. (default: ``4``)
        dropout (float, optional): the ``Dropout2d`` probability before the
            segmentation classifier, in ``[0, 1)``. (default: ``0.1``, UperNet's)
        bins (Sequence[int], optional): the pyramid pooling grids.
            (default: ``(1, 2, 3, 6)``)
        seed (int, optional): initialisation seed of the fusion and the heads;
            ``None`` uses the global generator. (default: ``None``)

    Shapes:
        - **input:** ``(B, 3, H, W)`` RGB normalised with the ImageNet mean and std,
          as the backbones (:func:`~graphseg.nn.backbones.preprocess`)
        - **output:** :class:`DFROutput` at the first used level's grid ``(h, w)``
          (``ceil(H / s) x ceil(W / s)`` for the bundled backbones); training with a
          batch of one needs the coarsest used level larger than 1 x 1 (batch norm)

    Example:
        >>> import torch
        >>> from graphseg.nn.backbones import SmallCNN
        >>> from graphseg.nn.models import DFRNet, build_dfr_net
        >>> net = DFRNet(SmallCNN(width=8), 3, channels=16, feature_dim=8)
        >>> net.stride, net.levels
        (4, (1, 2, 3))
        >>> out = net(torch.zeros(2, 3, 32, 40))
        >>> tuple(out.seg_logits.shape), tuple(out.features.shape)
        ((2, 3, 8, 10), (2, 8, 8, 10))
        >>> net.segment(torch.zeros(1, 3, 32, 40)).shape
        torch.Size([1, 3, 32, 40])
        >>> copy = build_dfr_net(net.architecture)
        >>> copy.load_state_dict(net.state_dict())
        <All keys matched successfully>
    """

    def __init__(self, backbone: nn.Module, num_classes: int, *, channels: int = 64,
                 feature_dim: int = 128, consistency: bool = True, min_stride: int = 4,
                 dropout: float = 0.1, bins: Sequence[int] = (1, 2, 3, 6),
                 seed: Optional[int] = None):
        super().__init__()
        strides, in_channels = check_backbone(backbone, "backbone")
        check_positive_int(num_classes, "num_classes", minimum=2)
        if num_classes > IGNORE:
            raise ValueError(f"num_classes must be <= {IGNORE} (label ids 0..{IGNORE - 1}), "
                             f"got {num_classes}")
        check_positive_int(channels, "channels")
        check_positive_int(feature_dim, "feature_dim")
        check_positive_int(min_stride, "min_stride")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
                0 <= dropout < 1):
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        if any(b > a for a, b in zip(strides[1:], strides)):
            raise ValueError(f"the backbone's levels must come finest first (non-decreasing "
                             f"strides), got strides {strides}")
        self.levels: Tuple[int, ...] = tuple(i for i, s in enumerate(strides)
                                             if s >= min_stride)
        if not self.levels:
            raise ValueError(f"no backbone level has a stride >= min_stride={min_stride} "
                             f"(strides {strides})")
        self.stride = int(strides[self.levels[0]])
        self.backbone = backbone
        self.num_classes = num_classes
        self.channels, self.feature_dim = channels, feature_dim
        self.consistency = bool(consistency)
        self.min_stride, self.dropout_p = min_stride, float(dropout)
        self.backbone_spec = backbone_spec(backbone)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.fusion = UperFusion([in_channels[i] for i in self.levels], channels, bins)
            self.dropout = nn.Dropout2d(self.dropout_p)
            self.classifier = nn.Conv2d(channels, num_classes, 1)
            self.consistency_head = (nn.Sequential(nn.Conv2d(channels, feature_dim, 1),
                                                   nn.ReLU(inplace=True))
                                     if self.consistency else None)

    @property
    def bins(self) -> Tuple[int, ...]:
        """The pyramid pooling grids of the fusion."""
        return self.fusion.bins

    @property
    def architecture(self) -> dict:
        """Plain values :func:`build_dfr_net` rebuilds this network from: ``backbone``
        (the spec of :data:`~graphseg.nn.backbones.BACKBONES`, ``None`` for an
        unregistered backbone), ``num_classes``, ``channels``, ``feature_dim``,
        ``consistency``, ``min_stride``, ``dropout`` and ``bins`` (a list)."""
        return {"backbone": None if self.backbone_spec is None else dict(self.backbone_spec),
                "num_classes": self.num_classes, "channels": self.channels,
                "feature_dim": self.feature_dim, "consistency": self.consistency,
                "min_stride": self.min_stride, "dropout": self.dropout_p,
                "bins": list(self.bins)}

    def reset_parameters(self) -> None:
        """Re-initialise the fusion and the heads (the backbone keeps its weights)."""
        self.fusion.reset_parameters()
        self.classifier.reset_parameters()
        if self.consistency_head is not None:
            self.consistency_head[0].reset_parameters()

    def _fused(self, images: Tensor) -> Tensor:
        check_tensor(images, "images")
        if images.dim() != 4 or images.size(1) != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        features = self.backbone.forward_features(images)
        return self.fusion([features[i] for i in self.levels])

    def forward(self, images: Tensor) -> DFROutput:
        fused = self._fused(images)
        seg_logits = self.classifier(self.dropout(fused))
        features = (self.consistency_head(fused) if self.consistency_head is not None
                    else None)
        return DFROutput(seg_logits, features)

    def segment(self, images: Tensor) -> Tensor:
        """Segmentation logits ``(B, C, H, W)`` at the input size (bilinear), for
        inference; the feature consistency head is not run."""
        seg_logits = self.classifier(self.dropout(self._fused(images)))
        return F.interpolate(seg_logits, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)


def build_dfr_net(architecture: dict, backbone: Optional[nn.Module] = None, *,
                  pretrained: bool = False) -> DFRNet:
    """A :class:`DFRNet` from its :attr:`~DFRNet.architecture`, randomly initialised
    (weights come from a state dict) unless ``pretrained``.

    Args:
        architecture (dict): the ``architecture`` of the network to rebuild.
        backbone (nn.Module, optional): the backbone module, required when
            ``architecture["backbone"]`` is ``None``; otherwise it replaces the
            registered one. (default: ``None``)
        pretrained (bool, optional): load the registered backbone's pretrained
            weights (:func:`~graphseg.nn.backbones.build_backbone`), to start
            training. (default: ``False``)
    """
    backbone, options = backbone_from_architecture(architecture, backbone,
                                                   pretrained=pretrained)
    if "num_classes" not in options:
        raise ValueError(f"architecture has no num_classes: {architecture!r}")
    num_classes = options.pop("num_classes")
    return DFRNet(backbone, num_classes, **options)
