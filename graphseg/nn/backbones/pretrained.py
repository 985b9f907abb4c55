"""Loading the ESPNetv2 PASCAL VOC weights, and the input they expect.

The weights ship with graphseg (:data:`BUNDLED_WEIGHTS`, 3.4 MB, the data kit's
``weights/espnetv2_s_2.0_pascal_384x384.pth`` unchanged: a plain state dict of 526
tensors trained on PASCAL VOC 2012 at 384 x 384; MIT licence, see
``weights/PROVENANCE.md``); nothing is ever downloaded.

Example:
    >>> import numpy as np
    >>> from graphseg.nn.backbones import preprocess
    >>> image = np.zeros((48, 64, 3), dtype=np.uint8)
    >>> preprocess(image).shape
    torch.Size([3, 48, 64])
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch import Tensor

from graphseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, image_to_tensor, normalize
from graphseg.nn.backbones.espnetv2 import ESPNetv2Segmentation
from graphseg.utils.io import load_error

__all__ = ["BUNDLED_WEIGHTS", "IMAGENET_MEAN", "IMAGENET_STD", "load_espnetv2_voc",
           "preprocess"]

BUNDLED_WEIGHTS = Path(__file__).parent / "weights" / "espnetv2_s_2.0_pascal_384x384.pth"

# How many names of each kind a mismatch error lists before "... and N more".
_SHOWN = 8


def preprocess(image: np.ndarray) -> Tensor:
    """The network input for an RGB photo: ``[0, 1]``, ImageNet mean / std.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB array.

    Returns:
        Tensor: ``(3, H, W)`` float32; add a batch dimension with ``[None]``.
        Resizing is up to the caller (the kit's weights were trained at 384 x 384).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} array "
                         f"of shape {image.shape}")
    return normalize(image_to_tensor(image)[0])


def _names(keys) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def load_espnetv2_voc(path: Union[str, Path] = BUNDLED_WEIGHTS) -> ESPNetv2Segmentation:
    """:class:`ESPNetv2Segmentation` with the PASCAL VOC weights, in eval mode.

    Args:
        path (str or os.PathLike, optional): the ``.pth`` state dict.
            (default: :data:`BUNDLED_WEIGHTS`)

    Returns:
        ESPNetv2Segmentation: 21 VOC classes (``graphseg.data.classes.VOC_CLASSES``);
        its ``base_net`` is the pretrained encoder for the backbone interface.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a state dict of tensors (it is loaded with
            ``weights_only=True``: a pickle holding other objects is refused, never
            run), or its keys or shapes do not match the architecture (missing,
            unexpected and mismatched keys listed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ESPNetv2 weights not found: {path} (pass the path of "
                                f"espnetv2_s_2.0_pascal_384x384.pth from the data kit)")
    try:
        # weights_only=True: the kit's file is a pickled OrderedDict of tensors, which the
        # restricted unpickler reads; a file with any other object (code) is refused
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a foreign or damaged file
        raise ValueError(f"{path}: not a PyTorch state dict of tensors "
                         f"({load_error(error)})") from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    model = ESPNetv2Segmentation(num_classes=21)
    expected = model.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    mismatched = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
                  for k in expected.keys() & state.keys() if state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        problems = [f"{len(keys)} {kind}: {_names(keys)}"
                    for kind, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                       ("shape mismatches", mismatched)) if keys]
        raise ValueError(f"{path} does not match ESPNetv2 (s=2.0, 21 classes): "
                         + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    return model.eval()
