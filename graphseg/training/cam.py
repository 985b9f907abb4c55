"""Training a CAM classifier on image-level tags (thesis Eq. 2.14).

:func:`train_cam_classifier` trains the whole network on resized images, or, when
the backbone is frozen (:func:`graphseg.nn.models.espnetv2_cam_classifier`), only
its classifier on the backbone's pooled features, computed once.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from graphseg.data.transforms import image_to_tensor
from graphseg.nn.models.cam import CAMClassifier
from graphseg.utils.checks import check_image, check_positive_int

__all__ = ["train_cam_classifier"]


def _frozen(model: CAMClassifier) -> bool:
    return not any(p.requires_grad for p in model.backbone.parameters())


def train_cam_classifier(model: CAMClassifier, images: Sequence[np.ndarray],
                         tags: Sequence[Sequence[int]], epochs: int = 20, size: int = 112,
                         batch_size: int = 16, lr: float = 1e-3, seed: int = 0,
                         progress: bool = True) -> List[float]:
    """Train ``model`` on image-level tags with the multi-label soft-margin loss (Eq. 2.14).

    Images are resized to ``size x size`` once; each epoch shuffles them and
    flips half horizontally.  Adam with weight decay 1e-4.

    A model whose backbone has no trainable parameter (a frozen pretrained
    encoder, :func:`espnetv2_cam_classifier`) trains only its classifier on
    cached features: every image, its longer side resized to ``0.75 * size``,
    ``size`` and ``1.25 * size`` (aspect kept), and its mirror image go once
    through the backbone; the pooled features are kept, and each epoch is a
    pass over those six vectors per image.

    Args:
        model: the classifier; trained in place, left in eval mode, and its
            ``input_size`` set to ``size``.
        images: ``(H, W, 3)`` uint8 RGB images.
        tags: per image, the label ids present (each in ``model.classes``; ids
            of other classes, e.g. background, are an error).
        epochs, batch_size: >= 1.
        size: training resolution in pixels.
        lr: learning rate.
        seed: shuffling and flipping seed.
        progress: show a tqdm bar with the running loss.

    Returns:
        list of float: mean loss of every epoch.
    """
    for value, name in ((epochs, "epochs"), (size, "size"), (batch_size, "batch_size")):
        check_positive_int(value, name)
    if len(images) != len(tags) or not images:
        raise ValueError(f"images and tags must be non-empty and of equal length, got "
                         f"{len(images)} and {len(tags)}")
    index = {c: k for k, c in enumerate(model.classes)}
    targets = torch.zeros(len(tags), len(model.classes))
    for i, image_tags in enumerate(tags):
        unknown = sorted(set(int(t) for t in image_tags) - set(index))
        if unknown:
            raise ValueError(f"tags of image {i} name classes {unknown} that the classifier "
                             f"does not have (its classes: {list(model.classes)})")
        targets[i, [index[int(t)] for t in image_tags]] = 1
    if _frozen(model):
        return _train_head(model, images, targets, epochs, size, batch_size, lr, seed, progress)
    data = torch.cat([F.interpolate(image_to_tensor(check_image(im, f"images[{i}]"), None),
                                    size=(size, size), mode="bilinear", align_corners=False)
                      for i, im in enumerate(images)])
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = nn.MultiLabelSoftMarginLoss()
    history = []
    model.train()
    bar = tqdm(range(epochs), desc="CAM classifier", unit="epoch", disable=not progress)
    for _ in bar:
        order = torch.randperm(len(data), generator=generator)
        flips = torch.rand(len(data), generator=generator) < 0.5
        total = 0.0
        for start in range(0, len(data), batch_size):
            batch = order[start:start + batch_size]
            x = data[batch]
            x = torch.where(flips[batch].view(-1, 1, 1, 1), x.flip(3), x)
            loss = loss_fn(model(x), targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        history.append(total / len(data))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()
    model.input_size = size
    return history


def _train_head(model: CAMClassifier, images, targets: Tensor, epochs: int, size: int,
                batch_size: int, lr: float, seed: int, progress: bool) -> List[float]:
    """The classifier of a frozen backbone, on cached pooled features."""
    model.eval()
    device = model.classifier.weight.device
    pooled = []
    with torch.no_grad():
        for i, image in enumerate(tqdm(images, desc="CAM features", unit="image",
                                       disable=not progress)):
            image = check_image(image, f"images[{i}]")
            for factor in (0.75, 1.0, 1.25):
                x = image_to_tensor(image, max(8, round(factor * size))).to(device)
                for view in (x, x.flip(3)):
                    pooled.append(model.features(view).mean(dim=(2, 3)))
    features = torch.cat(pooled)
    views = len(features) // len(targets)
    labels = targets.repeat_interleave(views, dim=0).to(device)
    weight = model.classifier.weight
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam([weight], lr=lr, weight_decay=1e-4)
    loss_fn = nn.MultiLabelSoftMarginLoss()
    history = []
    bar = tqdm(range(epochs), desc="CAM classifier", unit="epoch", disable=not progress)
    for _ in bar:
        order = torch.randperm(len(features), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(features), batch_size):
            batch = order[start:start + batch_size]
            logits = features[batch] @ weight.flatten(1).t()
            loss = loss_fn(logits, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        history.append(total / len(features))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()
    model.input_size = size
    return history
