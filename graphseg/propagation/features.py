"""Node features of a photo's graph: a backbone's feature maps (thesis section 3.3.3)
or hand-crafted colour and position.

The thesis' nodes carry the concatenated feature maps of the backbone's last
three blocks (Fig. 3.3).  :func:`backbone_features` does that for any backbone of
the :mod:`graphseg.nn.backbones` interface; ``"espnetv2"`` is the bundled ESPNetv2
encoder with its PASCAL VOC weights, so the default needs no training and no data
kit.  ``"colour"`` (:func:`colour_position_features`) needs no network at all.
"""
from __future__ import annotations

import functools
from typing import Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.nn.backbones import load_espnetv2_voc, preprocess
from graphseg.propagation.pipeline import colour_position_features
from graphseg.utils.checks import check_image, check_positive_int, trusted_inputs

FEATURES = ("espnetv2", "colour")


@functools.lru_cache(maxsize=1)
def espnetv2_backbone() -> nn.Module:
    """The bundled ESPNetv2 encoder (PASCAL VOC weights), in eval mode; loaded once."""
    return load_espnetv2_voc().base_net.eval()


def backbone_features(backbone: nn.Module, image: np.ndarray, grid_size: Tuple[int, int],
                      levels: int = 3) -> Tensor:
    """The backbone's last ``levels`` feature maps of a photo, on the node grid.

    Every map is resized bilinearly to ``grid_size`` and passed through a ReLU
    (Eq. 3.15's L1 normalisation assumes non-negative activations, as after
    ResNet's blocks), then the maps are concatenated.

    Args:
        backbone (nn.Module): ``forward_features(x) -> [(1, C_l, h_l, w_l)]`` on
            an ImageNet-normalised batch (:func:`graphseg.nn.backbones.preprocess`).
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        grid_size (tuple): ``(h, w)`` of the node grid.
        levels (int, optional): how many of the last maps to use. (default: ``3``)

    Returns:
        Tensor: ``(sum of C_l, h, w)`` float32, no gradient.

    >>> import numpy as np
    >>> from graphseg.propagation import backbone_features
    >>> from graphseg.nn.backbones import ESPNetv2Encoder
    >>> image = np.zeros((64, 80, 3), np.uint8)
    >>> backbone_features(ESPNetv2Encoder().eval(), image, (8, 10)).shape
    torch.Size([896, 8, 10])
    """
    image = check_image(image)
    check_positive_int(levels, "levels")
    parameter = next(backbone.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    with torch.no_grad():
        maps = backbone.forward_features(preprocess(image)[None].to(device))
    if levels > len(maps):
        raise ValueError(f"levels = {levels} but the backbone gives {len(maps)} feature maps")
    resized = [F.interpolate(m, size=tuple(grid_size), mode="bilinear", align_corners=False)
               for m in maps[-levels:]]
    return torch.cat(resized, dim=1)[0].relu().float()


def node_features(image: np.ndarray, features: Union[str, nn.Module] = "espnetv2",
                  stride: int = 8) -> Tensor:
    """``(C, ceil(H / stride), ceil(W / stride))`` node features of a photo.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        features (str or nn.Module, optional): ``"espnetv2"`` (the bundled
            pretrained encoder), ``"colour"`` (:func:`colour_position_features`)
            or a backbone module. (default: ``"espnetv2"``)
        stride (int, optional): pixels per node side. (default: ``8``)

    >>> import numpy as np
    >>> from graphseg.propagation import node_features
    >>> node_features(np.zeros((20, 30, 3), np.uint8), "colour").shape
    torch.Size([10, 3, 4])
    """
    image = check_image(image)
    check_positive_int(stride, "stride")
    if isinstance(features, str):
        if features not in FEATURES:
            raise ValueError(f"features must be one of {', '.join(map(repr, FEATURES))} or a "
                             f"backbone module, got {features!r}")
        if features == "espnetv2":
            features = espnetv2_backbone()
    height, width = image.shape[:2]
    with trusted_inputs():
        if features == "colour":
            return colour_position_features(image, stride)
        return backbone_features(features, image, (-(-height // stride), -(-width // stride)))
