r"""The affinity CNN of thesis section 3.3.3: an image to node features and affinities.

A backbone (the interface of :mod:`graphseg.nn.backbones`) gives multi-level
feature maps; the last ``levels`` of them, resized to the stride-``s`` node grid
and concatenated, are the node features :math:`X` (Fig. 3.3).  The affinity
head maps every level through a 1x1 convolution (GroupNorm, ELU), concatenates
them and fuses them with another 1x1 convolution into :math:`F_A`, the
``d_A``-channel map whose L1 distances give the edge weights
:math:`D(i, j) = \exp(-\lVert F_A(i) - F_A(j) \rVert_1 / d_A)` (Eq. 3.8), as in
AffinityNet (Ahn & Kwak, CVPR 2018) and the authors' release (448 channels,
split 64 / 128 / 256 over the three levels, finer levels getting fewer).

:func:`affinity_graph` turns one photo into the graph of Eq. 3.14-3.15 with
:func:`graphseg.graph.image_to_graph`.  The node grid is always
``ceil(H / s) x ceil(W / s)``, the grid of
:func:`graphseg.propagation.colour_position_features`, so per-node colours and
the CRF line up with the graph.
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from graphseg.graph.image import image_to_graph
from graphseg.nn.backbones.espnetv2 import ESPNetv2Encoder
from graphseg.nn.backbones.pretrained import preprocess
from graphseg.nn.backbones.small_cnn import SmallCNN
from graphseg.utils.checks import check_finite, check_positive_int, check_tensor

__all__ = ["AffinityNet", "AffinityOutput", "affinity_graph", "affinity_maps", "build_backbone"]


class AffinityOutput(NamedTuple):
    """What :class:`AffinityNet` returns, both on the stride-``s`` node grid."""

    features: Tensor
    """``(B, sum C_l, h, w)`` node features: the last ``levels`` backbone maps
    concatenated (not yet L1-normalised; :func:`image_to_graph` does Eq. 3.15)."""
    affinity: Tensor
    """``(B, d_A, h, w)`` affinity features :math:`F_A` (Eq. 3.8)."""


def _split_channels(total: int, levels: int) -> List[int]:
    """``total`` channels over ``levels`` in ratios 1 : 2 : 4 ... (finest first):
    448 over three levels gives 64, 128, 256 as in AffinityNet."""
    weights = [2 ** i for i in range(levels)]
    out = [max(1, total * w // sum(weights)) for w in weights]
    out[-1] += total - sum(out)
    return out


def _groups(channels: int) -> int:
    """GroupNorm groups: the largest of 16, 8, 4, 2, 1 dividing ``channels``."""
    return next(g for g in (16, 8, 4, 2, 1) if channels % g == 0)


def build_backbone(spec: dict) -> nn.Module:
    """A backbone from its ``architecture`` record (``{"name": "small", "width": 32}``
    or ``{"name": "espnetv2"}``), randomly initialised; weights come from a checkpoint."""
    name = spec.get("name") if isinstance(spec, dict) else None
    if name == "small":
        return SmallCNN(int(spec.get("width", 32)))
    if name == "espnetv2":
        return ESPNetv2Encoder()
    raise ValueError(f"unknown backbone architecture {spec!r}; pass the backbone module")


def _backbone_spec(backbone: nn.Module) -> Optional[dict]:
    if isinstance(backbone, ESPNetv2Encoder):
        return {"name": "espnetv2"}
    spec = getattr(backbone, "architecture", None)
    return dict(spec) if isinstance(spec, dict) else None


class AffinityNet(nn.Module):
    r"""Affinity CNN (thesis section 3.3.3, Fig. 3.3): node features and the
    affinity map :math:`F_A` of Eq. 3.8 from one forward pass.

    Args:
        backbone (nn.Module): a backbone with ``forward_features``, ``strides``
            and ``channels`` (:mod:`graphseg.nn.backbones`), e.g.
            :class:`~graphseg.nn.backbones.SmallCNN` or the pretrained
            :class:`~graphseg.nn.backbones.ESPNetv2Encoder`.
        levels (int, optional): how many of the last backbone levels make the
            node features and feed the head. (default: ``3``, the thesis'
            "last three blocks")
        affinity_channels (int, optional): :math:`d_A`. (default: ``448``, the
            release; split 1 : 2 : 4 over the levels)
        stride (int, optional): node grid stride ``s`` in pixels. (default: ``8``)
        freeze_backbone (bool, optional): keep the backbone's weights fixed
            (no gradients, batch norm statistics frozen in eval mode), train the
            head only. (default: ``False``)
        seed (int, optional): initialisation seed of the head; ``None`` uses
            the global generator. (default: ``None``)

    Shapes:
        - **input:** ``(B, 3, H, W)`` RGB normalised with the ImageNet mean and
          std (:func:`~graphseg.nn.backbones.preprocess`)
        - **output:** :class:`AffinityOutput` with ``features``
          ``(B, sum C_l, ceil(H / s), ceil(W / s))`` and ``affinity``
          ``(B, d_A, ceil(H / s), ceil(W / s))``

    Example:
        >>> from graphseg.nn.backbones import SmallCNN
        >>> import torch
        >>> from graphseg.nn.models import AffinityNet
        >>> net = AffinityNet(SmallCNN(width=8), affinity_channels=28)
        >>> out = net(torch.zeros(2, 3, 21, 30))
        >>> tuple(out.features.shape), tuple(out.affinity.shape)
        ((2, 80, 3, 4), (2, 28, 3, 4))
    """

    def __init__(self, backbone: nn.Module, levels: int = 3, affinity_channels: int = 448,
                 stride: int = 8, freeze_backbone: bool = False, seed: Optional[int] = None):
        super().__init__()
        for member in ("forward_features", "strides", "channels"):
            if not hasattr(backbone, member):
                raise TypeError(f"backbone must have forward_features, strides and channels "
                                f"(the backbone interface); {type(backbone).__name__} has no "
                                f"{member}")
        strides, channels = tuple(backbone.strides), tuple(backbone.channels)
        if len(strides) != len(channels):
            raise ValueError(f"backbone has {len(strides)} strides but {len(channels)} channels")
        check_positive_int(levels, "levels")
        if levels > len(strides):
            raise ValueError(f"levels must be <= the backbone's {len(strides)} levels, "
                             f"got {levels}")
        check_positive_int(affinity_channels, "affinity_channels", minimum=levels)
        check_positive_int(stride, "stride")
        self.backbone = backbone
        self.levels, self.stride = levels, stride
        self.level_strides = strides[-levels:]
        self.level_channels = channels[-levels:]
        self.affinity_channels = affinity_channels
        self.freeze_backbone = bool(freeze_backbone)
        widths = _split_channels(affinity_channels, levels)
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.level_heads = nn.ModuleList(
                nn.Sequential(nn.Conv2d(c, k, 1, bias=False), nn.GroupNorm(_groups(k), k),
                              nn.ELU())
                for c, k in zip(self.level_channels, widths))
            self.fuse = nn.Conv2d(sum(widths), affinity_channels, 1, bias=False)
        if self.freeze_backbone:
            self.backbone.requires_grad_(False)
        self.architecture = {"backbone": _backbone_spec(backbone), "levels": levels,
                             "affinity_channels": affinity_channels, "stride": stride,
                             "freeze_backbone": self.freeze_backbone}

    @property
    def feature_channels(self) -> int:
        """Node feature channels ``sum C_l`` of the last ``levels`` levels."""
        return sum(self.level_channels)

    def train(self, mode: bool = True) -> "AffinityNet":
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # frozen batch-norm statistics
        return self

    def grid_size(self, height: int, width: int) -> Tuple[int, int]:
        """The node grid ``(ceil(H / s), ceil(W / s))`` of an ``H x W`` input."""
        return math.ceil(height / self.stride), math.ceil(width / self.stride)

    def _resize(self, x: Tensor, level_stride: int, size: Tuple[int, int]) -> Tensor:
        if tuple(x.shape[-2:]) == size:
            return x
        if level_stride < self.stride and self.stride % level_stride == 0:
            # finer level: average the cells, as the colours of the grid are averaged
            x = F.avg_pool2d(x, self.stride // level_stride, ceil_mode=True)
            if tuple(x.shape[-2:]) == size:
                return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward(self, images: Tensor) -> AffinityOutput:
        check_tensor(images, "images")
        if images.dim() != 4 or images.size(1) != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        size = self.grid_size(images.size(2), images.size(3))
        maps = self.backbone.forward_features(images)[-self.levels:]
        maps = [self._resize(m, s, size) for m, s in zip(maps, self.level_strides)]
        features = torch.cat(maps, dim=1)
        heads = [head(m) for head, m in zip(self.level_heads, maps)]
        affinity = self.fuse(torch.cat(heads, dim=1))
        return AffinityOutput(features, affinity)


@torch.no_grad()
def affinity_maps(model: "AffinityNet", image: np.ndarray,
                  device: Union[str, torch.device, None] = None) -> AffinityOutput:
    """Node features and affinity features of one photo on its exact node grid.

    Runs the model in eval mode (restoring its mode afterwards) on the
    ImageNet-normalised photo and resizes both maps to ``model.grid_size(H, W)``
    if the backbone rounds sizes differently.

    Args:
        model (AffinityNet): the (trained) affinity network.
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB photo.
        device (str or torch.device, optional): where to run.
            (default: ``None``, the model's device)

    Returns:
        AffinityOutput: ``features`` ``(sum C_l, h, w)`` and ``affinity``
        ``(d_A, h, w)``, no batch dimension.
    """
    if not isinstance(model, AffinityNet):
        raise TypeError(f"model must be an AffinityNet, got {type(model).__name__}")
    x = preprocess(image)[None]
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = model(x.to(device))
    finally:
        model.train(was_training)
    size = model.grid_size(*image.shape[:2])
    features, affinity = out.features[0], out.affinity[0]
    if tuple(features.shape[-2:]) != size:  # a backbone with another size convention
        features = F.interpolate(features[None], size, mode="bilinear", align_corners=False)[0]
        affinity = F.interpolate(affinity[None], size, mode="bilinear", align_corners=False)[0]
    check_finite(affinity, "the network's affinity map")
    return AffinityOutput(features, affinity)


@torch.no_grad()
def affinity_graph(model: AffinityNet, image: np.ndarray, radius: int = 4,
                   window: str = "square", threshold: float = 1e-3,
                   device: Union[str, torch.device, None] = None) -> Data:
    r"""One photo to its graph (thesis Fig. 3.3, Eq. 3.8, 3.14, 3.15).

    Nodes are the cells of the ``ceil(H / s) x ceil(W / s)`` grid, node
    features the concatenated levels L1-normalised (Eq. 3.15), edges every
    pair within the window whose affinity
    :math:`D(i, j) = \exp(-\lVert F_A(i) - F_A(j) \rVert_1 / d_A)` is above
    ``threshold`` (Eq. 3.14), weighted by it.  The model runs in eval mode
    (its mode is restored afterwards).

    Args:
        model (AffinityNet): the (trained) affinity network.
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB photo.
        radius (int, optional): window radius in nodes. (default: ``4``, boxes
            and scribbles; the thesis uses 3 for tags and points)
        window (str, optional): ``"square"`` (the release) or ``"disk"``.
            (default: ``"square"``)
        threshold (float, optional): :math:`\sigma` of Eq. 3.14. (default: ``1e-3``)
        device (str or torch.device, optional): where to run.
            (default: ``None``, the model's device)

    Returns:
        Data: as :func:`graphseg.graph.image_to_graph` (``x``, ``edge_index``,
        ``edge_weight``, ``pos``, ``grid_size``, ``radius``, ``window``), plus
        ``stride``.

    Example:
        >>> from graphseg.nn.backbones import SmallCNN
        >>> import numpy as np
        >>> from graphseg.nn.models import AffinityNet, affinity_graph
        >>> net = AffinityNet(SmallCNN(width=8), affinity_channels=28)
        >>> data = affinity_graph(net, np.zeros((20, 30, 3), np.uint8), radius=1)
        >>> data.grid_size, data.x.shape
        ((3, 4), torch.Size([12, 80]))
    """
    features, affinity = affinity_maps(model, image, device)
    data = image_to_graph(features, radius, window, edge_features=affinity, threshold=threshold)
    data.stride = model.stride
    return data
