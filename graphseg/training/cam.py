"""Training a CAM classifier on image-level tags (thesis Eq. 2.14).

:func:`train_cam_classifier` trains the whole network on resized images, or, when
the backbone is frozen (:func:`graphseg.nn.models.espnetv2_cam_classifier`), only
its classifier on the backbone's pooled features, computed once.  Both loops are
:func:`graphseg.training.fit`'s: seeded, and checkpointed and resumable when given
a ``checkpoint``.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from graphseg.data.transforms import image_to_tensor
from graphseg.nn.models.cam import CAMClassifier
from graphseg.training.engine import fit
from graphseg.utils.checks import check_image, check_positive_int

__all__ = ["train_cam_classifier"]

FORMAT = "graphseg-cam-training"
PathLike = Union[str, os.PathLike]


def _frozen(model: CAMClassifier) -> bool:
    return not any(p.requires_grad for p in model.backbone.parameters())


class _Reshuffled:
    """The items of every epoch as the CAM loops draw them: one generator, seeded
    once, gives each epoch a permutation of ``size`` items and, with ``flips``, a
    coin per item (items are then ``(index, flip)`` pairs).

    Epoch ``e``'s draws are replayed from the seed, so the order is a function of
    ``(seed, e)`` alone and a resumed run needs no generator state.
    """

    def __init__(self, size: int, seed: int, flips: bool):
        self.size, self.seed, self.flips, self.epoch = size, seed, flips, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epoch + 1):
            order = torch.randperm(self.size, generator=generator)
            flips = torch.rand(self.size, generator=generator) < 0.5 if self.flips else None
        if flips is None:
            return iter(order.tolist())
        return iter(zip(order.tolist(), flips[order].tolist()))


class _Head(nn.Module):
    """The classifier of a CAM on pooled features: ``(B, D)`` to ``(B, K)`` logits."""

    def __init__(self, classifier: nn.Conv2d):
        super().__init__()
        self.classifier = classifier

    def forward(self, pooled: Tensor) -> Tensor:
        return pooled @ self.classifier.weight.flatten(1).t()


def train_cam_classifier(model: CAMClassifier, images: Sequence[np.ndarray],
                         tags: Sequence[Sequence[int]], epochs: int = 20, size: int = 112,
                         batch_size: int = 16, lr: float = 1e-3, seed: int = 0,
                         progress: bool = True, checkpoint: Optional[PathLike] = None,
                         resume: bool = True,
                         callback: Optional[Callable[[int, float], None]] = None) -> List[float]:
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
        model (CAMClassifier): trained in place, left in eval mode, and its
            ``input_size`` set to ``size``.
        images (sequence of np.ndarray): ``(H, W, 3)`` uint8 RGB images.
        tags (sequence): per image, the label ids present (each in
            ``model.classes``; ids of other classes, e.g. background, are an error).
        epochs (int, optional): passes over the images. (default: ``20``)
        size (int, optional): training resolution in pixels. (default: ``112``)
        batch_size (int, optional): images (or feature vectors) per step.
            (default: ``16``)
        lr (float, optional): Adam's learning rate. (default: ``1e-3``)
        seed (int, optional): shuffling and flipping. (default: ``0``)
        progress (bool, optional): a tqdm bar with the running loss.
            (default: ``True``)
        checkpoint (str or os.PathLike, optional): written after every epoch;
            resumed from when it exists and ``resume``. (default: ``None``, none
            written)
        resume (bool, optional): continue from ``checkpoint``; its configuration
            must match. (default: ``True``)
        callback (callable, optional): ``callback(epoch, loss)`` after every epoch
            (0-based) and its checkpoint. (default: ``None``)

    Returns:
        list: the mean loss of every epoch (over its images, or feature vectors),
        the resumed epochs included.
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
    head = _frozen(model)
    options = dict(epochs=epochs, batch_size=batch_size, seed=seed,
                   config={"size": size, "lr": float(lr), "classes": list(model.classes),
                           "architecture": getattr(model, "architecture", None),
                           "head_only": head},
                   meta={"format": FORMAT}, checkpoint=checkpoint, resume=resume,
                   progress=progress, desc="CAM classifier", on_epoch_end=callback)
    loss_fn = nn.MultiLabelSoftMarginLoss()
    if head:
        history = _train_head(model, images, targets, size, lr, seed, progress, loss_fn,
                              options)
    else:
        data = torch.cat([F.interpolate(image_to_tensor(check_image(im, f"images[{i}]"), None),
                                        size=(size, size), mode="bilinear", align_corners=False)
                          for i, im in enumerate(images)])
        optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)

        def loss(net: nn.Module, items, epoch: int) -> Tensor:
            batch = torch.tensor([i for i, _ in items])
            flips = torch.tensor([flip for _, flip in items])
            x = data[batch]
            x = torch.where(flips.view(-1, 1, 1, 1), x.flip(3), x)
            return loss_fn(net(x), targets[batch])

        history = fit(model, optimiser, loss, len(data),
                      sampler=_Reshuffled(len(data), seed, flips=True), **options)
    model.eval()
    model.input_size = size
    return history


def _train_head(model: CAMClassifier, images, targets: Tensor, size: int, lr: float,
                seed: int, progress: bool, loss_fn: nn.Module, options: dict) -> List[float]:
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
    head = _Head(model.classifier)
    optimiser = torch.optim.Adam([model.classifier.weight], lr=lr, weight_decay=1e-4)

    def loss(net: nn.Module, items: List[int], epoch: int) -> Tensor:
        batch = torch.tensor(items, device=device)
        return loss_fn(net(features[batch]), labels[batch])

    return fit(head, optimiser, loss, len(features),
               sampler=_Reshuffled(len(features), seed, flips=False), **options)
