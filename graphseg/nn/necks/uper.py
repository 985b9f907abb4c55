r"""UperNet's feature fusion (Xiao et al., ECCV 2018): a pyramid pooling module on the
coarsest backbone level, a top-down feature pyramid, and the fusion of all its levels
into one map at the finest resolution (the fusion of the DFR network, thesis Fig. 4.2).

Example:
    >>> import torch
    >>> from graphseg.nn.necks import UperFusion
    >>> neck = UperFusion((8, 16, 32), channels=16)
    >>> levels = [torch.zeros(2, 8, 10, 15), torch.zeros(2, 16, 5, 8),
    ...           torch.zeros(2, 32, 3, 4)]
    >>> neck(levels).shape
    torch.Size([2, 16, 10, 15])
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.utils.checks import check_positive_int, check_tensor

__all__ = ["UperFusion"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                  bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def _resize(x: Tensor, size: Tuple[int, int]) -> Tensor:
    # always to a size, never by a scale factor: the levels' sizes are ceil-divided
    # (20 x 30 -> 10 x 15, 5 x 8, 3 x 4) and two levels may share a stride
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _positive_ints(values, name: str) -> Tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got "
                         f"{values!r}")
    return tuple(check_positive_int(v, f"{name}[{i}]") for i, v in enumerate(values))


class UperFusion(nn.Module):
    r"""The feature fusion of UperNet from `"Unified Perceptual Parsing for Scene
    Understanding" <https://arxiv.org/abs/1807.10221>`_ (Xiao et al., ECCV 2018), the
    Swin + UperNet fusion of the thesis' DFR network (chapter 4, Fig. 4.2).

    On backbone levels :math:`X_0, \dots, X_{L-1}` (finest first, ``in_channels[l]``
    channels, sizes :math:`h_l \times w_l`), with ``c = channels`` and :math:`\uparrow_l`
    the bilinear resize to :math:`h_l \times w_l`:

    * **pyramid pooling** on the last level: per bin :math:`b`,
      :math:`P_b = \uparrow_{L-1} \operatorname{ReLU}(\operatorname{conv}_{1 \times 1}
      (\operatorname{AvgPool}_{b \times b}(X_{L-1})))`; the top of the pyramid is
      :math:`T_{L-1} = \operatorname{CBR}_{3 \times 3}(\operatorname{concat}([X_{L-1},
      P_{b_1}, \dots]))`;
    * **laterals and top-down path**: :math:`T_l = \operatorname{CBR}_{1 \times 1}(X_l)
      + \uparrow_l T_{l+1}` for :math:`l = L-2, \dots, 0`, then
      :math:`O_l = \operatorname{CBR}_{3 \times 3}(T_l)` (:math:`O_{L-1} = T_{L-1}`);
    * **fusion**: :math:`\operatorname{CBR}_{3 \times 3}(\operatorname{concat}(
      [\uparrow_0 O_0, \dots, \uparrow_0 O_{L-1}]))`, ``L * c -> c`` channels;

    :math:`\operatorname{CBR}` being convolution (no bias), batch norm, ReLU.  The
    pooled branches have no batch norm (a 1x1 map of a batch of one cannot be
    normalised in training).  With a single level there is no top-down path: the
    output is the fusion convolution of :math:`T_0`.

    Args:
        in_channels (Sequence[int]): channels of the levels, finest first.
        channels (int, optional): ``c``, the width of the pooled branches, of the
            pyramid and of the output. (default: ``64``; UperNet ``512``)
        bins (Sequence[int], optional): the pooled grids of the pyramid pooling.
            (default: ``(1, 2, 3, 6)``, PSPNet's and UperNet's)

    Shapes:
        - **input:** a list of ``L`` maps ``(B, in_channels[l], h_l, w_l)``, finest
          first (any sizes: each level is resized to the size of the one it meets)
        - **output:** ``(B, channels, h_0, w_0)``
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 64,
                 bins: Sequence[int] = (1, 2, 3, 6)):
        super().__init__()
        self.in_channels = _positive_ints(in_channels, "in_channels")
        self.channels = check_positive_int(channels, "channels")
        self.bins = _positive_ints(bins, "bins")
        top = self.in_channels[-1]
        # 1x1 conv + ReLU, no batch norm: batch norm of a 1x1 pooled map (bin 1) fails
        # for a batch of one in training (one value per channel)
        self.pooled = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(top, channels, 1),
                          nn.ReLU(inplace=True))
            for b in self.bins)
        self.bottleneck = _conv_bn_relu(top + len(self.bins) * channels, channels, 3)
        self.laterals = nn.ModuleList(_conv_bn_relu(c, channels, 1)
                                      for c in self.in_channels[:-1])
        self.outputs = nn.ModuleList(_conv_bn_relu(channels, channels, 3)
                                     for _ in self.in_channels[:-1])
        self.fuse = _conv_bn_relu(len(self.in_channels) * channels, channels, 3)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
                module.reset_parameters()

    def _check(self, features) -> None:
        if not isinstance(features, (list, tuple)) or len(features) != len(self.in_channels):
            got = (f"{len(features)} maps" if isinstance(features, (list, tuple))
                   else type(features).__name__)
            raise ValueError(f"features must be a list of {len(self.in_channels)} maps "
                             f"(one per level, finest first), got {got}")
        batch = None
        for i, (x, c) in enumerate(zip(features, self.in_channels)):
            check_tensor(x, f"features[{i}]")
            if x.dim() != 4 or x.size(1) != c:
                raise ValueError(f"features[{i}] must have shape (B, {c}, h, w), got "
                                 f"{tuple(x.shape)}")
            if batch is not None and x.size(0) != batch:
                raise ValueError(f"the levels have different batch sizes: {batch} and "
                                 f"{x.size(0)} (features[{i}])")
            batch = x.size(0)

    def forward(self, features: List[Tensor]) -> Tensor:
        self._check(features)
        top = features[-1]
        size = top.shape[-2:]
        pooled = [_resize(branch(top), size) for branch in self.pooled]
        pyramid = [lateral(x) for lateral, x in zip(self.laterals, features)]
        pyramid.append(self.bottleneck(torch.cat([top, *pooled], dim=1)))  # T_{L-1}
        for level in range(len(pyramid) - 2, -1, -1):  # top-down
            pyramid[level] = pyramid[level] + _resize(pyramid[level + 1],
                                                      pyramid[level].shape[-2:])
        outputs = [conv(t) for conv, t in zip(self.outputs, pyramid)] + [pyramid[-1]]
        size = outputs[0].shape[-2:]
        return self.fuse(torch.cat([_resize(o, size) for o in outputs], dim=1))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.channels}, bins={self.bins}"
