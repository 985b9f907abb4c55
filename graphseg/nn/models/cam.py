"""Class activation map (CAM) classifiers (thesis section 2.2.2 and 3.3.2).

* :class:`CAMClassifier`: any backbone returning a ``(B, D, h, w)`` feature map,
  global average pooling and a 1x1 convolution with no bias; the CAM of class
  ``c`` is the classifier applied at every position (Eq. 2.1).
* :func:`small_cam_classifier`: a default CNN that trains on a CPU in minutes;
  :func:`espnetv2_cam_classifier`: a 1x1 classifier on the frozen, pretrained
  ESPNetv2 encoder (:class:`ESPNetv2Features`).
* :func:`save_classifier` / :func:`load_classifier`: one checkpoint file.

Training: :func:`graphseg.training.train_cam_classifier`; seeds from the maps:
:func:`graphseg.seeds.cam_seeds`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.data.transforms import normalize
from graphseg.nn.backbones.espnetv2 import ESPNetv2Encoder
from graphseg.nn.backbones.pretrained import BUNDLED_WEIGHTS, load_espnetv2_voc
from graphseg.nn.backbones.small_cnn import conv_bn_relu
from graphseg.utils.checks import check_positive_int
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import atomic_open, read_checkpoint

__all__ = ["CAMClassifier", "ESPNetv2Features", "espnetv2_cam_classifier", "load_classifier",
           "save_classifier", "small_cam_classifier"]


class CAMClassifier(nn.Module):
    """Backbone + global average pooling + 1x1 classifier (thesis Eq. 2.1).

    Args:
        backbone (nn.Module): module mapping ``(B, 3, H, W)`` ImageNet-normalised
            images to a ``(B, D, h, w)`` feature map (any stride).
        feature_channels (int): ``D``.
        classes (sequence of int): label id of every output, distinct, in 0..254.

    Attributes:
        input_size (int or None): longer image side (pixels) the classifier was
            trained at, or ``None``; :func:`multiscale_cam` resizes images to it
            before scaling.
    """

    def __init__(self, backbone: nn.Module, feature_channels: int, classes: Sequence[int]):
        super().__init__()
        check_positive_int(feature_channels, "feature_channels")
        classes = tuple(int(c) for c in classes)
        if not classes or len(set(classes)) != len(classes) or not all(
                0 <= c < IGNORE for c in classes):
            raise ValueError(f"classes must be distinct label ids in 0..254, got {classes}")
        self.backbone = backbone
        self.classifier = nn.Conv2d(feature_channels, len(classes), 1, bias=False)
        self.classes = classes
        self.input_size: Optional[int] = None

    def features(self, images: Tensor) -> Tensor:
        """``(B, D, h, w)`` features of ``(B, 3, H, W)`` RGB images scaled to ``[0, 1]``."""
        out = self.backbone(normalize(images))
        if out.dim() != 4:
            raise ValueError(f"the backbone must return a (B, D, h, w) feature map, got "
                             f"shape {tuple(out.shape)}")
        return out

    def forward(self, images: Tensor) -> Tensor:
        """Class logits ``(B, K)``: the classifier on the pooled features."""
        return self.classifier(self.features(images).mean(dim=(2, 3), keepdim=True)).flatten(1)

    def cam(self, images: Tensor) -> Tensor:
        """Raw class activation maps ``(B, K, h, w)`` (Eq. 2.1 before resizing)."""
        return self.classifier(self.features(images))


def small_cam_classifier(classes: Sequence[int], width: int = 32, seed: int = 0) -> CAMClassifier:
    """The default CNN: six 3x3 conv-BN-ReLU blocks, stride 8, the last two dilated
    (the thesis adds dilation to the last layers to widen the receptive field).

    Args:
        classes (sequence of int): label ids of the outputs.
        width (int, optional): channels of the first block (then 2x, 4x, 4x, 8x,
            8x). (default: ``32``)
        seed (int, optional): initialisation seed. (default: ``0``)

    Returns:
        CAMClassifier: with ``8 * width`` feature channels.
    """
    check_positive_int(width, "width")
    w = width
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = nn.Sequential(conv_bn_relu(3, w, 2), conv_bn_relu(w, 2 * w, 2),
                                 conv_bn_relu(2 * w, 4 * w, 2), conv_bn_relu(4 * w, 4 * w),
                                 conv_bn_relu(4 * w, 8 * w, dilation=2),
                                 conv_bn_relu(8 * w, 8 * w, dilation=2))
        model = CAMClassifier(backbone, 8 * w, classes)
    model.architecture = {"name": "small", "width": w}
    return model


class ESPNetv2Features(nn.Module):
    """Frozen ESPNetv2 encoder features for a CAM: the chosen levels, the coarser ones
    resized bilinearly to the finest and concatenated along channels.

    The encoder never trains: its parameters do not require gradients and
    :meth:`train` leaves it in eval mode (its batch-norm statistics stay those of
    the pretrained weights).

    Args:
        levels (sequence of int, optional): encoder levels (1-4; strides 2, 4, 8,
            16), at least one. (default: ``(3, 4)``)
    """

    def __init__(self, levels: Sequence[int] = (3, 4)):
        super().__init__()
        levels = tuple(sorted(set(int(level) for level in levels)))
        if not levels or not all(1 <= level <= 4 for level in levels):
            raise ValueError(f"levels must be encoder levels in 1..4, got {levels}")
        self.levels = levels
        self.encoder = ESPNetv2Encoder()
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.channels = sum(ESPNetv2Encoder.channels[level - 1] for level in levels)
        self.stride = ESPNetv2Encoder.strides[levels[0] - 1]

    def train(self, mode: bool = True) -> "ESPNetv2Features":
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        maps = self.encoder.forward_features(x)
        chosen = [maps[level - 1] for level in self.levels]
        size = chosen[0].shape[-2:]
        return torch.cat([chosen[0]] + [F.interpolate(m, size=size, mode="bilinear",
                                                      align_corners=False)
                                        for m in chosen[1:]], dim=1)


def espnetv2_cam_classifier(classes: Sequence[int],
                            weights: Optional[Union[str, Path]] = BUNDLED_WEIGHTS,
                            levels: Sequence[int] = (3, 4), seed: int = 0) -> CAMClassifier:
    """A CAM classifier on the pretrained ESPNetv2 encoder (frozen) with a 1x1 classifier.

    The encoder is that of the PASCAL VOC weights (:func:`load_espnetv2_voc`);
    only the classifier trains (:func:`train_cam_classifier` then caches the
    encoder's pooled features once, so training takes seconds after one pass
    over the images).  With the default levels 3 and 4 the CAM has stride 8
    and 768 feature channels.

    Args:
        classes (sequence of int): label ids of the outputs.
        weights (str or os.PathLike, optional): the ``.pth`` state dict; ``None``
            leaves the encoder randomly initialised (for :func:`load_classifier`,
            whose checkpoint holds the encoder too).
            (default: :data:`~graphseg.nn.backbones.pretrained.BUNDLED_WEIGHTS`, the
            bundled copy of the data kit's weights)
        levels (sequence of int, optional): encoder levels concatenated (see
            :class:`ESPNetv2Features`). (default: ``(3, 4)``)
        seed (int, optional): initialisation seed of the classifier.
            (default: ``0``)

    Returns:
        CAMClassifier: ``input_size`` 320 until trained.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = ESPNetv2Features(levels)
        if weights is not None:
            backbone.encoder.load_state_dict(load_espnetv2_voc(weights).base_net.state_dict())
        model = CAMClassifier(backbone, backbone.channels, classes)
    model.architecture = {"name": "espnetv2", "levels": list(backbone.levels)}
    model.input_size = 320
    return model.eval()


def save_classifier(model: CAMClassifier, path: Union[str, Path]) -> None:
    """Save weights, classes, input size and (for the default CNN and the ESPNetv2
    classifier) architecture, atomically."""
    state = {"state_dict": model.state_dict(), "classes": list(model.classes),
             "input_size": model.input_size,
             "feature_channels": model.classifier.in_channels,
             "architecture": getattr(model, "architecture", None)}
    with atomic_open(path, "wb") as file:
        torch.save(state, file)


def load_classifier(path: Union[str, Path], backbone: Optional[nn.Module] = None) -> CAMClassifier:
    """Load a classifier saved by :func:`save_classifier`, in eval mode.

    Args:
        path (str or os.PathLike): the checkpoint.
        backbone (nn.Module, optional): the backbone module for a checkpoint of a
            custom backbone (its weights are loaded from the file); ``None`` for
            the default CNN and the ESPNetv2 classifier, which are rebuilt from
            the checkpoint. (default: ``None``)
    """
    state = read_checkpoint(path, "a graphseg CAM checkpoint")
    if "state_dict" not in state or "classes" not in state:
        raise ValueError(f"{path}: not a graphseg CAM checkpoint (no state_dict / classes)")
    architecture = state.get("architecture")
    if backbone is None:
        name = (architecture or {}).get("name")
        if name == "small":
            model = small_cam_classifier(state["classes"], architecture["width"])
        elif name == "espnetv2":
            # the encoder's weights are in the checkpoint: no need for the .pth file
            model = espnetv2_cam_classifier(state["classes"], weights=None,
                                            levels=architecture["levels"])
        else:
            raise ValueError(f"{path}: the checkpoint has a custom backbone; pass backbone=")
    else:
        model = CAMClassifier(backbone, state["feature_channels"], state["classes"])
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit the backbone ({error})") from error
    model.input_size = state.get("input_size")
    return model.eval()
