"""Photos to network inputs: one definition of the tensor layout, the resize and the
ImageNet normalisation that every backbone of graphseg expects.

>>> import numpy as np
>>> from graphseg.data.transforms import image_to_tensor, normalize
>>> x = image_to_tensor(np.zeros((30, 40, 3), np.uint8), longer_side=20)
>>> tuple(x.shape), tuple(normalize(x).shape)
((1, 3, 15, 20), (1, 3, 15, 20))
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# ImageNet statistics, so that a pretrained backbone can be plugged in as it is.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "image_to_tensor", "normalize"]


def image_to_tensor(image: np.ndarray, longer_side: Optional[int] = None) -> Tensor:
    """``(1, 3, h, w)`` float32 in ``[0, 1]`` from an ``(H, W, 3)`` uint8 RGB photo
    (checked by the caller), the longer side resized bilinearly to ``longer_side``
    (aspect kept) unless it is ``None``."""
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / 255.0
    if longer_side is not None:
        height, width = image.shape[:2]
        factor = longer_side / max(height, width)
        shape = (max(1, round(height * factor)), max(1, round(width * factor)))
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
    return x


def normalize(images: Tensor) -> Tensor:
    """ImageNet mean / std normalisation of ``(..., 3, H, W)`` RGB in ``[0, 1]``."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device)
    return (images - mean.view(3, 1, 1)) / std.view(3, 1, 1)
