"""A small CNN trained from scratch: the default backbone of the affinity network.

Four stages of 3x3 conv-BN-ReLU blocks at strides 2, 4, 8 and 8; the last stage
is dilated instead of strided (the thesis and AffinityNet keep the last blocks
at stride 8 and widen their receptive field with dilation), so the three last
levels all have a useful resolution for a stride-8 node grid.  With the default
``width=32`` it has about 0.6 M parameters and trains on a CPU in minutes.

Example:
    >>> import torch
    >>> from graphseg.nn.backbones import SmallCNN
    >>> net = SmallCNN(width=8)
    >>> net.strides, net.channels
    ((2, 4, 8, 8), (8, 16, 32, 32))
    >>> [tuple(f.shape) for f in net.forward_features(torch.zeros(1, 3, 20, 30))]
    [(1, 8, 10, 15), (1, 16, 5, 8), (1, 32, 3, 4), (1, 32, 3, 4)]
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from graphseg.utils.checks import check_positive_int

__all__ = ["SmallCNN", "conv_bn_relu"]


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1,
                 dilation: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias), batch norm, ReLU.  ``padding = dilation`` keeps
    the size at stride 1 and gives ``ceil(size / 2)`` at stride 2."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, dilation, dilation, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Four-level CNN implementing the backbone interface
    (:mod:`graphseg.nn.backbones`).

    ========  ======  ================================  ==============
    level     stride  blocks                            channels
    ========  ======  ================================  ==============
    1         2       conv s2                           ``width``
    2         4       conv s2, conv                     ``2 * width``
    3         8       conv s2, conv                     ``4 * width``
    4         8       conv d2, conv d4 (dilated)        ``4 * width``
    ========  ======  ================================  ==============

    Args:
        width (int, optional): channels of the first level. (default: ``32``)
        seed (int, optional): initialisation seed; ``None`` uses the global
            generator. (default: ``None``)

    Shapes:
        - **input:** ``(B, 3, H, W)`` RGB normalised with the ImageNet mean
          and std (:func:`~graphseg.nn.backbones.preprocess`)
        - **forward_features:** ``[(B, C_l, ceil(H / s_l), ceil(W / s_l))]``
          for ``(C_l, s_l)`` in ``zip(channels, strides)``
        - **output:** the last level
    """

    strides: Tuple[int, ...] = (2, 4, 8, 8)

    def __init__(self, width: int = 32, seed: Optional[int] = None):
        super().__init__()
        check_positive_int(width, "width")
        w = width
        self.channels: Tuple[int, ...] = (w, 2 * w, 4 * w, 4 * w)
        self.architecture = {"name": "small", "width": w}
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.level1 = conv_bn_relu(3, w, stride=2)
            self.level2 = nn.Sequential(conv_bn_relu(w, 2 * w, stride=2),
                                        conv_bn_relu(2 * w, 2 * w))
            self.level3 = nn.Sequential(conv_bn_relu(2 * w, 4 * w, stride=2),
                                        conv_bn_relu(4 * w, 4 * w))
            self.level4 = nn.Sequential(conv_bn_relu(4 * w, 4 * w, dilation=2),
                                        conv_bn_relu(4 * w, 4 * w, dilation=4))

    def forward_features(self, x: Tensor) -> List[Tensor]:
        """The four levels, strides 2, 4, 8, 8."""
        out1 = self.level1(x)
        out2 = self.level2(out1)
        out3 = self.level3(out2)
        out4 = self.level4(out3)
        return [out1, out2, out3, out4]

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[-1]
