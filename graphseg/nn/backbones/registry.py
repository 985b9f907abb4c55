"""The backbone registry shared by the segmentation networks
(:class:`~graphseg.nn.models.RRMNet`, :class:`~graphseg.nn.models.DFRNet`): a
network's ``architecture`` names its backbone by a plain spec
(``{"name": "small-cnn", "width": 32}``) that rebuilds it without the training code.

* :data:`BACKBONES`: backbone name -> builder.
* :func:`build_backbone`: a backbone from its spec.
* :func:`backbone_spec`: the spec of a backbone module, or ``None``.
* :func:`check_backbone`: a module's ``strides`` and ``channels``, or a clear error
  when it does not have the backbone interface.
* :func:`backbone_from_architecture`: the backbone and the other options of a
  network's ``architecture`` dict (what every ``build_*_net`` starts with).

Example:
    >>> from graphseg.nn.backbones import SmallCNN, backbone_spec, build_backbone
    >>> spec = backbone_spec(SmallCNN(width=8))
    >>> spec
    {'name': 'small-cnn', 'width': 8}
    >>> build_backbone(spec).channels
    (8, 16, 32, 32)
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from torch import nn

from graphseg.nn.backbones.efficientnet_lite import EfficientNetLite0Encoder
from graphseg.nn.backbones.espnetv2 import ESPNetv2Encoder
from graphseg.nn.backbones.pretrained import load_espnetv2_voc
from graphseg.nn.backbones.small_cnn import SmallCNN

__all__ = ["BACKBONES", "backbone_from_architecture", "backbone_spec", "build_backbone",
           "check_backbone"]


def _small_cnn(*, pretrained: bool = False, width: int = 32) -> nn.Module:
    if pretrained:
        raise ValueError("the small-cnn backbone has no pretrained weights")
    return SmallCNN(int(width))


def _espnetv2(*, pretrained: bool = False) -> nn.Module:
    # the bundled PASCAL VOC weights (never a download); a checkpoint overwrites them
    return load_espnetv2_voc().base_net if pretrained else ESPNetv2Encoder()


def _efficientnet_lite0(*, pretrained: bool = False, output_stride: int = 16) -> nn.Module:
    # the [imagenet] extra's weights (a pip package, never a download)
    return EfficientNetLite0Encoder(pretrained=pretrained, output_stride=output_stride)


BACKBONES: Dict[str, Callable[..., nn.Module]] = {
    "small-cnn": _small_cnn,
    "espnetv2": _espnetv2,
    "efficientnet-lite0": _efficientnet_lite0,
}
"""Backbone name -> builder ``f(*, pretrained=False, **options) -> nn.Module``, the
options being the other keys of the backbone's spec (``{"name": "small-cnn", "width": 32}``).
To add a backbone, add its builder here; an instance is recognised by
:func:`backbone_spec` when it has an ``architecture`` dict whose ``"name"`` is a key
here (its other keys being the builder's options)."""


def build_backbone(spec: dict, *, pretrained: bool = False) -> nn.Module:
    """A backbone from its spec (``{"name": ..., **options}``, see :data:`BACKBONES`).

    Args:
        spec (dict): the backbone's entry of a network's ``architecture``.
        pretrained (bool, optional): load the backbone's pretrained weights
            (``"espnetv2"``: the bundled PASCAL VOC weights); ``False`` leaves it
            randomly initialised, for weights from a checkpoint. (default: ``False``)
    """
    name = spec.get("name") if isinstance(spec, dict) else None
    if name not in BACKBONES:
        known = ", ".join(repr(n) for n in BACKBONES)
        raise ValueError(f"unknown backbone {spec!r}: the name must be one of {known}, or "
                         "pass the backbone module")
    options = {k: v for k, v in spec.items() if k != "name"}
    return BACKBONES[name](pretrained=pretrained, **options)


def backbone_spec(backbone: nn.Module) -> Optional[dict]:
    """The spec :func:`build_backbone` rebuilds ``backbone`` from, or ``None`` for an
    unregistered backbone (a subclass of a registered one included)."""
    if type(backbone) is SmallCNN:
        return {"name": "small-cnn", "width": backbone.channels[0]}
    if type(backbone) is ESPNetv2Encoder:
        return {"name": "espnetv2"}
    spec = getattr(backbone, "architecture", None)
    if isinstance(spec, dict) and spec.get("name") in BACKBONES:
        return dict(spec)
    return None


def check_backbone(module: nn.Module, name: str = "backbone") -> Tuple[tuple, tuple]:
    """``(strides, channels)`` of a module with the backbone interface
    (``forward_features``, ``strides``, ``channels``, one of each per level).

    Raises:
        TypeError: a member is missing (``name`` names the argument).
        ValueError: no level, or as many strides as channels.
    """
    for member in ("forward_features", "strides", "channels"):
        if not hasattr(module, member):
            raise TypeError(f"{name} must have forward_features, strides and channels (the "
                            f"backbone interface); {type(module).__name__} has no {member}")
    strides, channels = tuple(module.strides), tuple(module.channels)
    if not strides or len(strides) != len(channels):
        raise ValueError(f"{name} has {len(strides)} strides but {len(channels)} channels")
    return strides, channels


def backbone_from_architecture(architecture: dict, backbone: Optional[nn.Module] = None, *,
                               key: str = "backbone",
                               pretrained: bool = False) -> Tuple[nn.Module, dict]:
    """``(backbone, options)`` of a network's ``architecture``: the module given, or the
    one its registered spec under ``key`` builds (with its pretrained weights when
    ``pretrained``), and the other entries.

    Raises:
        TypeError: ``architecture`` is not a dict.
        ValueError: no registered spec and no ``backbone``.
    """
    if not isinstance(architecture, dict):
        raise TypeError(f"architecture must be a dict, got {type(architecture).__name__}")
    options = dict(architecture)
    spec = options.pop(key, None)
    if backbone is None:
        if spec is None:
            raise ValueError(f"the architecture has no registered {key}; pass {key}=")
        backbone = build_backbone(spec, pretrained=pretrained)
    return backbone, options
