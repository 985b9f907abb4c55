"""ESPNetv2 (Mehta et al., "ESPNetv2: A Light-weight, Power Efficient, and General
Purpose Convolutional Neural Network", CVPR 2019) with its segmentation decoder.

The modules are written from the paper and from the parameter names and shapes of
the data kit's PASCAL VOC 2012 weights (``espnetv2_s_2.0_pascal_384x384.pth``, width
``s = 2.0``), so that :func:`load_espnetv2_voc` loads that state dict with
``strict=True``.  No model code came with the weights.

What the names and shapes fix (see the kit's ``*.keys.txt``):

* ``base_net.level1``: a 3x3 stride-2 convolution, BN, PReLU (3 -> 32 channels).
* ``base_net.level{2,3,4}_0``: strided EESP units (:class:`StridedEESP`):
  ``eesp`` produces ``out - in`` channels, the rest is the average-pooled input;
  ``inp_reinf`` (3x3 conv 3 -> 3, BN, PReLU; 1x1 conv 3 -> out, BN) is the input
  reinforcement from the image; ``act`` is the PReLU after the sum.
* ``base_net.level3.{0..2}`` (256 ch.) and ``base_net.level4.{0..6}`` (512 ch.):
  :class:`EESP` units with a residual connection.
* EESP: ``proj_1x1`` is a group-4 point-wise conv (e.g. ``(64, 64, 1, 1)`` for 256
  channels in, 64 out), ``spp_dw.{0..3}`` four depth-wise 3x3 branches without BN,
  ``br_after_cat`` BN + PReLU on the concatenated branches, ``conv_1x1_exp`` a
  group-4 point-wise conv + BN (no activation), ``module_act`` a PReLU.
* Decoder: four :class:`EfficientPyramidPooling` blocks ``bu_dec_l{1..4}`` (projection
  to 10 channels, five depth-wise 3x3 ``stages``, BN + PReLU on the 50 concatenated
  channels, a 3x3 conv in 10 groups of 5 channels, a 1x1 conv to the output
  channels); three :class:`EfficientPWConv` ``merge_enc_dec_l{2..4}`` that bring the
  encoder levels 3, 2, 1 into the decoder (their grouped 3x3 conv has
  ``gcd(in, out)`` groups: ``(64, 4, 3, 3)`` for 256 -> 64, ``(48, 8, 3, 3)`` for
  128 -> 48, ``(32, 1, 3, 3)`` for 32 -> 32) and the BN + PReLU ``bu_br_l{2..4}``
  after each fusion; ``bu_dec_l4`` ends with the 21-class 1x1 conv (it has a bias).

What they do not fix was chosen from the paper and checked on real photos: PASCAL
VOC predictions on MSRC-v2 (``benchmarks/espnetv2_msrc.py``).  The numbers are the
mean IoU over cow, sheep, car, aeroplane, cat on 100 of the photos at 384 x 384,
0.89 with all the choices below, with one choice changed at a time:

* strided units concatenate ``[avg-pooled input, EESP]`` in that order (the other
  order: 0.00) and do not apply the EESP's ``module_act`` (applying it: 0.84);
* the decoder's pyramid scales are 2, 1.5, 1, 0.5, 0.1 in that order (reversed:
  0.09); a scaled map has at least 5 pixels a side (no floor: 0.59; 4: 0.88; 6:
  0.89), downscaling is adaptive average pooling, and a channel shuffle puts the 5
  scales of each projected channel together before the 10-group merge conv (no
  shuffle, or a 10-group shuffle: 0.00);
* every bilinear resize uses ``align_corners=True`` (``False``: 0.87);
* the depth-wise branches have dilations 1, 2, 3, 4 in every unit, fused narrowest
  first.  The weights barely tell this apart from 1, 1, 2, 3 in level 4 (0.861 vs
  0.862 on all 591 photos); 1, 1, 2, 3 in levels 3 and 4 is worse (0.88);
* the image for the input reinforcement is downsampled by the same 3 x 3 average
  pooling as the features (bilinear or adaptive pooling: within 0.004).

The encoder is the backbone interface of the project: :meth:`ESPNetv2Encoder.forward_features`
returns the four levels with their ``strides`` and ``channels``; ``forward`` returns the
last one, so the encoder also plugs into anything that takes a ``(B, D, h, w)`` feature
map (e.g. a CAM classifier, :class:`~graphseg.nn.models.CAMClassifier`).

Example:
    >>> import torch
    >>> from graphseg.nn.backbones import ESPNetv2Segmentation
    >>> model = ESPNetv2Segmentation().eval()
    >>> x = torch.randn(1, 3, 64, 96)
    >>> model(x).shape
    torch.Size([1, 21, 64, 96])
    >>> [tuple(f.shape[1:]) for f in model.base_net.forward_features(x)]
    [(32, 32, 48), (128, 16, 24), (256, 8, 12), (512, 4, 6)]
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "EESP",
    "ESPNetv2Encoder",
    "ESPNetv2Segmentation",
    "EfficientPWConv",
    "EfficientPyramidPooling",
    "StridedEESP",
]

# Dilation rates of the four depth-wise branches of every EESP unit.  The paper
# shrinks the receptive field of the branches on the coarser levels (section 3.2);
# the keys cannot show the rates, and on MSRC-v2 narrower rates (1, 1, 2, 3) lose
# IoU in level 3 and are no better in level 4, so every unit uses all four.
DILATIONS = (1, 2, 3, 4)


class _ConvBNAct(nn.Module):
    """Convolution without bias, BN and (optionally) a PReLU: keys ``conv``, ``bn``, ``act``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class _BNAct(nn.Module):
    """BN and PReLU: keys ``bn``, ``act``."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(x))


class _DepthwiseConv(nn.Module):
    """Dilated depth-wise 3x3 convolution, no BN (key ``conv``)."""

    def __init__(self, channels: int, stride: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride, padding=dilation,
                              dilation=dilation, groups=channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class EESP(nn.Module):
    r"""Extremely Efficient Spatial Pyramid unit (paper, Fig. 1c).

    Group point-wise projection to ``out_channels / K`` channels, :math:`K`
    dilated depth-wise 3x3 convolutions with hierarchical feature fusion (branch
    ``k`` adds the fused output of branch ``k - 1``, which removes the gridding of
    dilated convolutions), concatenation, BN + PReLU, group point-wise expansion +
    BN, then (stride 1) the residual sum and a PReLU.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels (a multiple of :math:`K`).
        stride (int, optional): 1, or 2 for the strided unit: the depth-wise
            branches are strided and the output is returned before any residual
            or activation (:class:`StridedEESP` fuses it). (default: ``1``)
        groups (int, optional): groups of the point-wise convolutions. (default: ``4``)
        dilations (sequence of int, optional): dilation of each branch, narrowest
            first; its length is :math:`K`. (default: ``(1, 2, 3, 4)``)

    Shapes:
        - **input:** ``(B, in_channels, H, W)``
        - **output:** ``(B, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, groups: int = 4,
                 dilations: Sequence[int] = DILATIONS):
        super().__init__()
        branches = len(dilations)
        if out_channels % branches:
            raise ValueError(f"out_channels ({out_channels}) must be a multiple of the "
                             f"number of branches ({branches})")
        if stride == 1 and in_channels != out_channels:
            raise ValueError("a stride-1 EESP unit has a residual: in_channels must equal "
                             f"out_channels, got {in_channels} and {out_channels}")
        width = out_channels // branches
        self.stride = stride
        self.proj_1x1 = _ConvBNAct(in_channels, width, 1, groups=groups)
        self.spp_dw = nn.ModuleList(_DepthwiseConv(width, stride, d) for d in dilations)
        self.br_after_cat = _BNAct(out_channels)
        self.conv_1x1_exp = _ConvBNAct(out_channels, out_channels, 1, groups=groups, act=False)
        self.module_act = nn.PReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        projected = self.proj_1x1(x)
        fused = [self.spp_dw[0](projected)]
        for branch in self.spp_dw[1:]:
            fused.append(branch(projected) + fused[-1])
        out = self.conv_1x1_exp(self.br_after_cat(torch.cat(fused, dim=1)))
        if self.stride == 2:
            return out
        return self.module_act(out + x)


class StridedEESP(nn.Module):
    r"""Strided EESP unit with the input reinforcement (paper, Fig. 3).

    .. math::
        y = \mathrm{PReLU}\big([\mathrm{AvgPool}(x) \,\|\, \mathrm{EESP}_{s=2}(x)]
        + \mathrm{PW}(\mathrm{Conv}_{3\times3}(I_\downarrow))\big)

    where :math:`I_\downarrow` is the input image downsampled to the output size.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels; the EESP branch gives
            ``out_channels - in_channels`` of them.

    Shapes:
        - **input:** ``x`` ``(B, in_channels, H, W)``, ``image``
          ``(B, 3, ceil(H / 2), ceil(W / 2))`` (already downsampled)
        - **output:** ``(B, out_channels, ceil(H / 2), ceil(W / 2))``
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.eesp = EESP(in_channels, out_channels - in_channels, stride=2)
        self.inp_reinf = nn.Sequential(_ConvBNAct(3, 3, 3),
                                       _ConvBNAct(3, out_channels, 1, act=False))
        self.act = nn.PReLU(out_channels)

    def forward(self, x: Tensor, image: Tensor) -> Tensor:
        out = torch.cat([_halve(x), self.eesp(x)], dim=1)
        return self.act(out + self.inp_reinf(image))


def _halve(x: Tensor) -> Tensor:
    # 3x3 average pooling with stride 2: the same ceil(H / 2) output size as the
    # strided 3x3 convolutions, so levels line up for any input size.
    return F.avg_pool2d(x, 3, stride=2, padding=1)


class ESPNetv2Encoder(nn.Module):
    r"""ESPNetv2 encoder (width ``s = 2.0``, levels 1-4 of the paper's Table 1).

    Level 1 is a strided 3x3 conv; levels 2, 3, 4 each start with a
    :class:`StridedEESP` (``level{l}_0``) followed by 0, 3 and 7 :class:`EESP`
    units.  Keys match ``base_net.*`` of the kit's weights.

    This is the backbone interface of the project: :meth:`forward_features`
    returns one feature map per level with the strides in :attr:`strides` and the
    channels in :attr:`channels`; :meth:`forward` returns the last one.  Any module
    with these three members plugs into the affinity / node-feature and CAM code the
    same way.

    Shapes:
        - **input:** ``(B, 3, H, W)``, RGB in ``[0, 1]`` normalised with the
          ImageNet mean and std (:func:`~graphseg.nn.backbones.preprocess`)
        - **forward_features:** ``[(B, C_l, ceil(H / s_l), ceil(W / s_l))]`` for
          ``(C_l, s_l)`` in ``zip(channels, strides)``
        - **output:** ``(B, 512, ceil(H / 16), ceil(W / 16))``
    """

    strides: Tuple[int, ...] = (2, 4, 8, 16)
    channels: Tuple[int, ...] = (32, 128, 256, 512)

    def __init__(self):
        super().__init__()
        c1, c2, c3, c4 = self.channels
        self.level1 = _ConvBNAct(3, c1, 3, stride=2)
        self.level2_0 = StridedEESP(c1, c2)
        self.level3_0 = StridedEESP(c2, c3)
        self.level3 = nn.ModuleList(EESP(c3, c3) for _ in range(3))
        self.level4_0 = StridedEESP(c3, c4)
        self.level4 = nn.ModuleList(EESP(c4, c4) for _ in range(7))

    def forward_features(self, x: Tensor) -> List[Tensor]:
        """The four levels, strides 2, 4, 8, 16."""
        # The image pyramid for the input reinforcement: the same 3x3 average
        # pooling as the feature path, so the sizes match at every level.
        image = _halve(x)
        out1 = self.level1(x)
        image = _halve(image)
        out2 = self.level2_0(out1, image)
        image = _halve(image)
        out3 = self.level3_0(out2, image)
        for unit in self.level3:
            out3 = unit(out3)
        image = _halve(image)
        out4 = self.level4_0(out3, image)
        for unit in self.level4:
            out4 = unit(out4)
        return [out1, out2, out3, out4]

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[-1]


class _CBR(nn.Module):
    """Conv (no bias), BN, PReLU as ``cbr.0``, ``cbr.1``, ``cbr.2`` (decoder naming)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1):
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels), nn.PReLU(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.cbr(x)


class _BR(nn.Module):
    """BN, PReLU as ``br.0``, ``br.1`` (decoder naming)."""

    def __init__(self, channels: int):
        super().__init__()
        self.br = _bn_prelu(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.br(x)


def _bn_prelu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))


class _ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle: ``(g, c/g)`` channel layout to ``(c/g, g)``."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class EfficientPyramidPooling(nn.Module):
    r"""Pyramid pooling with depth-wise convolutions (the decoder block ``bu_dec_l*``).

    The input is projected to ``proj_channels``; for each scale :math:`s` the
    projection is resized by :math:`s` (adaptive average pooling below 1, bilinear
    above; at least ``min_size`` pixels a side, so that the 3x3 filter of the
    coarsest scale does not see mostly padding), filtered by a depth-wise 3x3 conv
    and resized back bilinearly.  The scale outputs are concatenated, normalised
    (BN + PReLU), shuffled so that every group of the following grouped 3x3 conv
    sees one projected channel at all scales, merged to ``proj_channels`` and
    expanded by a 1x1 conv to ``out_channels``.

    Args:
        in_channels (int): input channels.
        proj_channels (int): channels per scale.
        out_channels (int): output channels.
        scales (sequence of float, optional): resize factors, one depth-wise conv
            each. (default: ``(2.0, 1.5, 1.0, 0.5, 0.1)``)
        min_size (int, optional): smallest side of a scaled map. (default: ``5``)
        last_br (bool, optional): end with BN + PReLU; without it the final 1x1
            conv has a bias (the classifier of the last block). (default: ``True``)

    Shapes:
        - **input:** ``(B, in_channels, H, W)``
        - **output:** ``(B, out_channels, H, W)``
    """

    def __init__(self, in_channels: int, proj_channels: int, out_channels: int,
                 scales: Sequence[float] = (2.0, 1.5, 1.0, 0.5, 0.1), min_size: int = 5,
                 last_br: bool = True):
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        self.min_size = min_size
        n = len(self.scales)
        self.projection_layer = _CBR(in_channels, proj_channels, 1)
        self.stages = nn.ModuleList(
            nn.Conv2d(proj_channels, proj_channels, 3, padding=1, groups=proj_channels, bias=False)
            for _ in self.scales)
        self.merge_layer = nn.Sequential(
            _BR(n * proj_channels),
            _ChannelShuffle(n),
            _CBR(n * proj_channels, proj_channels, 3, groups=proj_channels),
            nn.Conv2d(proj_channels, out_channels, 1, bias=not last_br))
        self.br = _BR(out_channels) if last_br else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.projection_layer(x)
        size = x.shape[-2:]
        outs = []
        for scale, stage in zip(self.scales, self.stages):
            scaled = tuple(max(self.min_size, math.ceil(d * scale)) for d in size)
            if scale > 1:
                y = F.interpolate(x, size=scaled, mode="bilinear", align_corners=True)
            elif scale < 1:
                y = F.adaptive_avg_pool2d(x, scaled)
            else:
                y = x
            y = stage(y)
            if scale != 1:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=True)
            outs.append(y)
        return self.br(self.merge_layer(torch.cat(outs, dim=1)))


class EfficientPWConv(nn.Module):
    r"""Brings an encoder level into the decoder (``merge_enc_dec_l*``).

    A grouped 3x3 conv (``gcd(in, out)`` groups) + BN + PReLU, gated channel-wise
    by a sigmoid of a 1x1 conv on the globally averaged input.

    Args:
        in_channels (int): encoder channels.
        out_channels (int): decoder channels.

    Shapes:
        - **input:** ``(B, in_channels, H, W)``
        - **output:** ``(B, out_channels, H, W)``
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                      nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                      nn.Sigmoid())
        self.expansion_layer = _CBR(in_channels, out_channels, 3,
                                    groups=math.gcd(in_channels, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.expansion_layer(x) * self.wt_layer(x)


class ESPNetv2Segmentation(nn.Module):
    r"""ESPNetv2 encoder + bottom-up decoder for semantic segmentation.

    The decoder starts from level 4 (stride 16) and, at strides 8, 4, 2, upsamples
    by 2 (bilinear), adds the encoder level brought in by an
    :class:`EfficientPWConv`, applies BN + PReLU and an
    :class:`EfficientPyramidPooling`; the last one outputs the class scores at
    stride 2, upsampled bilinearly to the input size.

    Args:
        num_classes (int, optional): output classes; 21 for the kit's PASCAL VOC
            weights (background + 20 objects). (default: ``21``)

    Shapes:
        - **input:** ``(B, 3, H, W)`` normalised images (:func:`~graphseg.nn.backbones.preprocess`)
        - **output:** ``(B, num_classes, H, W)`` logits
    """

    def __init__(self, num_classes: int = 21):
        super().__init__()
        self.base_net = ESPNetv2Encoder()
        c1, c2, c3, c4 = self.base_net.channels
        self.bu_dec_l1 = EfficientPyramidPooling(c4, 10, 64)
        self.bu_dec_l2 = EfficientPyramidPooling(64, 10, 48)
        self.bu_dec_l3 = EfficientPyramidPooling(48, 10, 32)
        self.bu_dec_l4 = EfficientPyramidPooling(32, 10, num_classes, last_br=False)
        self.merge_enc_dec_l2 = EfficientPWConv(c3, 64)
        self.merge_enc_dec_l3 = EfficientPWConv(c2, 48)
        self.merge_enc_dec_l4 = EfficientPWConv(c1, 32)
        self.bu_br_l2 = _bn_prelu(64)
        self.bu_br_l3 = _bn_prelu(48)
        self.bu_br_l4 = _bn_prelu(32)

    @property
    def strides(self) -> Tuple[int, ...]:
        """Strides of the encoder levels."""
        return self.base_net.strides

    @property
    def channels(self) -> Tuple[int, ...]:
        """Channels of the encoder levels."""
        return self.base_net.channels

    def forward_features(self, x: Tensor) -> List[Tensor]:
        """The encoder levels (see :class:`ESPNetv2Encoder`)."""
        return self.base_net.forward_features(x)

    def decode(self, features: Sequence[Tensor]) -> Tensor:
        """Class scores ``(B, num_classes, H / 2, W / 2)`` from the four encoder levels."""
        out1, out2, out3, out4 = features
        out = self.bu_dec_l1(out4)
        for skip, merge, br, dec in ((out3, self.merge_enc_dec_l2, self.bu_br_l2, self.bu_dec_l2),
                                     (out2, self.merge_enc_dec_l3, self.bu_br_l3, self.bu_dec_l3),
                                     (out1, self.merge_enc_dec_l4, self.bu_br_l4, self.bu_dec_l4)):
            out = F.interpolate(out, size=skip.shape[-2:], mode="bilinear", align_corners=True)
            out = dec(br(out + merge(skip)))
        return out

    def forward(self, x: Tensor) -> Tensor:
        out = self.decode(self.forward_features(x))
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=True)
