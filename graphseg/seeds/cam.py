"""Class activation maps (CAM) and the seeds they give for image-level tags.

Thesis section 2.2.2 and 3.3.2:

* :class:`CAMClassifier`: any backbone returning a ``(B, D, h, w)`` feature map,
  global average pooling and a 1x1 convolution with no bias; the CAM of class
  ``c`` is the classifier applied at every position (Eq. 2.1).
  :func:`small_cam_classifier` is a default CNN that trains on a CPU in minutes
  (:func:`train_cam_classifier`, multi-label soft-margin loss, Eq. 2.14);
  :func:`save_classifier` / :func:`load_classifier` keep it.
* :func:`multiscale_cam` (Eq. 2.2), :func:`cam_probabilities` (Eq. 2.3-2.4),
  :func:`reliable_regions` (Eq. 2.5-2.7), :func:`confident_labels` (the top-40%
  per class rule that gives M'_I), and :func:`cam_seeds` running them in order.

Label ids: the classifier's outputs are the classes listed in
``model.classes`` (e.g. the 20 VOC objects, ids 1..20); seed maps use those ids
and ``background`` (default 0) for the background score of Eq. 2.4.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from graphseg.data.classes import IGNORE
from graphseg.nn.backbones.espnetv2 import ESPNetv2Encoder
from graphseg.nn.backbones.pretrained import BUNDLED_WEIGHTS, IMAGENET_MEAN, IMAGENET_STD, \
    load_espnetv2_voc
from graphseg.seeds.common import Seeds, check_fraction, check_image
from graphseg.seeds.crf import crf_labels, dense_crf
from graphseg.utils.checks import check_positive_int
from graphseg.utils.io import atomic_open, read_checkpoint

SCALES = (0.5, 1.0, 1.5, 2.0)
# ImageNet statistics, so that a pretrained backbone can be plugged in as it is.


class CAMClassifier(nn.Module):
    """Backbone + global average pooling + 1x1 classifier (thesis Eq. 2.1).

    Args:
        backbone: module mapping ``(B, 3, H, W)`` ImageNet-normalised images to a
            ``(B, D, h, w)`` feature map (any stride).
        feature_channels: ``D``.
        classes: label id of every output, distinct, in 0..254.

    Attributes:
        input_size: longer image side (pixels) the classifier was trained at, or
            ``None``; :func:`multiscale_cam` resizes images to it before scaling.
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
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def features(self, images: Tensor) -> Tensor:
        """``(B, D, h, w)`` features of ``(B, 3, H, W)`` RGB images scaled to ``[0, 1]``."""
        out = self.backbone((images - self.mean) / self.std)
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


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dilation, dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def small_cam_classifier(classes: Sequence[int], width: int = 32, seed: int = 0) -> CAMClassifier:
    """The default CNN: six 3x3 conv-BN-ReLU blocks, stride 8, the last two dilated
    (the thesis adds dilation to the last layers to widen the receptive field).

    Args:
        classes: label ids of the outputs.
        width: channels of the first block (then 2x, 4x, 4x, 8x, 8x).
        seed: initialisation seed.

    Returns:
        CAMClassifier: with ``8 * width`` feature channels.
    """
    check_positive_int(width, "width")
    w = width
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = nn.Sequential(_block(3, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2),
                                 _block(4 * w, 4 * w), _block(4 * w, 8 * w, dilation=2),
                                 _block(8 * w, 8 * w, dilation=2))
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
        levels: encoder levels (1-4; strides 2, 4, 8, 16), at least one.
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
        classes: label ids of the outputs.
        weights: the ``.pth`` state dict (default: the bundled copy of the data
            kit's weights); ``None`` leaves the encoder randomly initialised (for
            :func:`load_classifier`, whose checkpoint holds the encoder too).
        levels: encoder levels concatenated (see :class:`ESPNetv2Features`).
        seed: initialisation seed of the classifier.

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


def _frozen(model: CAMClassifier) -> bool:
    return not any(p.requires_grad for p in model.backbone.parameters())


def _to_tensor(image: np.ndarray, size: Optional[int]) -> Tensor:
    """``(1, 3, h, w)`` float in [0, 1], the longer side resized to ``size``."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    if size is not None:
        height, width = image.shape[:2]
        factor = size / max(height, width)
        shape = (max(1, round(height * factor)), max(1, round(width * factor)))
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
    return x


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
    data = torch.cat([F.interpolate(_to_tensor(check_image(im, f"images[{i}]"), None),
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
                x = _to_tensor(image, max(8, round(factor * size))).to(device)
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
        path: the checkpoint.
        backbone: the backbone module for a checkpoint of a custom backbone
            (its weights are loaded from the file); ``None`` for the default CNN
            and the ESPNetv2 classifier, which are rebuilt from the checkpoint.
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


@torch.no_grad()
def multiscale_cam(model: CAMClassifier, image: np.ndarray, scales: Sequence[float] = SCALES,
                   flip: bool = True, base_size: Optional[int] = None) -> np.ndarray:
    """Multi-scale, flip-averaged CAM of every class (Eq. 2.1-2.2).

    At every scale (and its mirror image when ``flip``), the ReLU of the raw CAM
    is resized bilinearly to ``H x W``; the maps are averaged.

    Args:
        model: the classifier (used in eval mode).
        image: ``(H, W, 3)`` uint8 RGB.
        scales: factors applied to the base size, each > 0.
        flip: also average the horizontally flipped image's CAM.
        base_size: longer side the image is first resized to (pixels); default
            ``model.input_size``, or the image's own size when that is ``None``.

    Returns:
        np.ndarray: ``(K, H, W)`` float32, >= 0, row ``k`` for ``model.classes[k]``.
    """
    image = check_image(image)
    if not scales or any(not (s > 0 and math.isfinite(s)) for s in scales):
        raise ValueError(f"scales must be positive numbers, got {scales}")
    height, width = image.shape[:2]
    base = base_size or model.input_size or max(height, width)
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros(len(model.classes), height, width, device=device)
    count = 0
    for scale in scales:
        x = _to_tensor(image, max(8, round(base * scale))).to(device)
        for mirrored in ((False, True) if flip else (False,)):
            cam = F.relu(model.cam(x.flip(3) if mirrored else x))
            cam = cam.flip(3) if mirrored else cam
            total += F.interpolate(cam, size=(height, width), mode="bilinear",
                                   align_corners=False)[0]
            count += 1
    return (total / count).cpu().numpy().astype(np.float32)


def cam_probabilities(cam: np.ndarray, tags: Sequence[int], classes: Sequence[int],
                      background: int = 0,
                      gamma: float = 6.0) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """Foreground and background scores of the tagged classes (Eq. 2.3-2.4).

    ``P_fg^c = CAM_c / max(CAM_c)`` for every tag ``c``;
    ``P_bg = (1 - max_c P_fg^c) ** gamma``.  A tag whose CAM is zero everywhere
    (no response) gets ``P_fg^c = 0``, hence no seeds, with a warning.

    Args:
        cam: ``(K, H, W)`` non-negative CAMs, from :func:`multiscale_cam`.
        tags: label ids present in the image (each in ``classes``); may be empty.
        classes: label id of every row of ``cam``.
        background: label id of the background, not in ``tags``.
        gamma: decay of the background score, > 0 (the thesis asks > 1).

    Returns:
        tuple: ``(probs, ids)``: ``(1 + T, H, W)`` float32 scores in ``[0, 1]``
        (background first, then the tags in sorted order; not normalised to sum
        to 1) and the label id of every row.
    """
    if cam.ndim != 3 or cam.shape[0] != len(classes):
        raise ValueError(f"cam must have shape (K, H, W) with K = {len(classes)} classes, "
                         f"got {cam.shape}")
    if not np.isfinite(cam).all() or cam.min() < 0:
        raise ValueError("cam must be finite and non-negative (take the ReLU first)")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    tags = sorted(set(int(t) for t in tags))
    missing = [t for t in tags if t not in classes]
    if missing or background in tags:
        raise ValueError(f"tags {missing or [background]} are not foreground classes of the "
                         f"classifier (its classes: {list(classes)}, background {background})")
    rows = [list(classes).index(t) for t in tags]
    fg = cam[rows].astype(np.float32)
    peaks = fg.reshape(len(rows), -1).max(axis=1) if rows else np.zeros(0)
    for tag, peak in zip(tags, peaks):
        if peak <= 0:
            warnings.warn(f"tag {tag} has no CAM response in this image; it gets no seeds",
                          stacklevel=2)
    fg = fg / np.where(peaks > 0, peaks, 1)[:, None, None]
    top = fg.max(axis=0) if rows else np.zeros(cam.shape[1:], dtype=np.float32)
    bg = (1.0 - top) ** gamma
    return np.concatenate([bg[None], fg]).astype(np.float32), (int(background), *tags)


def confident_labels(labels: np.ndarray, confidence: np.ndarray, keep: float = 0.4) -> np.ndarray:
    """Keep, for every class, the ``keep`` fraction of its pixels with the highest
    confidence (a per-class threshold alpha, Eq. 2.6; the top-40% rule of M'_I).

    Exactly ``ceil(keep * n)`` of a class's ``n`` pixels are kept; ties at the
    threshold (common: the background score is exactly 1 wherever no CAM
    responds) go to the first pixels in raster order.

    Args:
        labels: ``(H, W)`` uint8 label map (255 = unknown, left unknown).
        confidence: ``(H, W)`` scores, higher = surer.
        keep: fraction in ``(0, 1]``.

    Returns:
        np.ndarray: ``(H, W)`` uint8, the kept labels, 255 elsewhere.

    >>> from graphseg.seeds import confident_labels
    >>> labels = np.array([[1, 1, 1, 1, 2, 2]], dtype=np.uint8)
    >>> confident_labels(labels, np.array([[.1, .9, .8, .2, .5, .6]]), keep=0.5).tolist()
    [[255, 1, 1, 255, 255, 2]]
    """
    keep = check_fraction(keep, "keep")
    if labels.shape != confidence.shape:
        raise ValueError(f"labels {labels.shape} and confidence {confidence.shape} differ")
    out = np.full(labels.shape, IGNORE, dtype=np.uint8)
    for c in np.unique(labels):
        if c == IGNORE:
            continue
        where = np.flatnonzero(labels == c)
        count = math.ceil(keep * where.size)
        order = np.argsort(-confidence.flat[where], kind="stable")[:count]
        out.flat[where[order]] = c
    return out


def reliable_regions(image: np.ndarray, probs: np.ndarray, classes: Sequence[int],
                     keep: float = 0.4, preset: str = "seed") -> Seeds:
    """Reliable regions of CAM scores (Eq. 2.5-2.7).

    ``I_cam`` is the argmax of ``probs`` where its maximum passes a per-class
    threshold alpha set so that a ``keep`` fraction of each class's pixels passes
    (:func:`confident_labels`); ``I_crf`` is the argmax of a dense CRF on
    ``probs`` normalised to sum to 1 (Eq. 2.5); a pixel keeps its ``I_cam``
    label where both agree, else it is 255.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        probs: ``(C, H, W)`` non-negative scores (:func:`cam_probabilities`).
        classes: label id of every row.
        keep: fraction of each class's pixels passing Eq. 2.6.
        preset: CRF preset (see :data:`graphseg.seeds.crf.PRESETS`).

    Returns:
        Seeds: ``I_final``; ``scores`` the CRF marginals.
    """
    ids = np.asarray(classes, dtype=np.uint8)
    cam_labels = confident_labels(ids[probs.argmax(axis=0)], probs.max(axis=0), keep)
    crf = crf_labels(image, _normalise(probs), classes, preset)
    labels = np.where(cam_labels == crf.labels, cam_labels, IGNORE).astype(np.uint8)
    return Seeds(labels, crf.scores, crf.classes)


def release_regions(image: np.ndarray, probs: np.ndarray, classes: Sequence[int],
                    low: float = 4.0, high: float = 32.0, keep: float = 0.4,
                    threshold: float = 0.8, preset: str = "seed") -> Seeds:
    """Reliable regions in the form of the authors' release (RRM), an option next to
    the thesis' :func:`reliable_regions`.

    From the max-normalised CAMs ``P_fg^c`` (rows 1.. of ``probs``; row 0 is
    ignored), two dense CRFs run with background ``(1 - max_c P_fg^c) ** low``
    and ``** high``.  A pixel is labelled ``c`` where ``c`` is its CAM argmax,
    its CAM is in the top ``keep`` of the pixels of ``c``'s argmax region with
    CAM > 0.1, and the low-exponent CRF says ``c`` with probability >=
    ``threshold``; it is background where the high-exponent CRF says
    background with probability >= ``threshold``; else 255.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        probs: ``(1 + T, H, W)`` from :func:`cam_probabilities` (the background
            row is recomputed here).
        classes: label id of every row (background first).
        low, high: background exponents of the two CRFs, > 0.
        keep: fraction of each class's region kept, in ``(0, 1]``.
        threshold: smallest CRF probability of a label, in ``[0, 1]``.
        preset: CRF preset.

    Returns:
        Seeds: the seeds; ``scores`` the low-exponent CRF's marginals.
    """
    image = check_image(image)
    keep = check_fraction(keep, "keep")
    if not (low > 0 and high > 0 and 0 <= threshold <= 1):
        raise ValueError(f"low and high must be > 0 and threshold in [0, 1], got {low}, "
                         f"{high}, {threshold}")
    ids = np.asarray(classes, dtype=np.uint8)
    fg = probs[1:].astype(np.float32)
    top = fg.max(axis=0) if len(fg) else np.zeros(image.shape[:2], np.float32)
    marginals = [dense_crf(image, _normalise(np.concatenate([((1.0 - top) ** e)[None], fg])),
                         preset) for e in (low, high)]
    out = np.full(image.shape[:2], IGNORE, dtype=np.uint8)
    if len(fg):
        argmax = fg.argmax(axis=0)
        crf_low = marginals[0].argmax(axis=0)
        sure_low = marginals[0].max(axis=0) >= threshold
        for k in range(len(fg)):
            region = (argmax == k) & (fg[k] > 0.1)
            if not region.any():
                continue
            cut = np.quantile(fg[k][region], 1.0 - keep)
            out[region & (fg[k] >= cut) & (crf_low == k + 1) & sure_low] = ids[k + 1]
    background = (marginals[1].argmax(axis=0) == 0) & (marginals[1].max(axis=0) >= threshold)
    out[background] = ids[0]
    return Seeds(out, marginals[0].astype(np.float32), tuple(int(c) for c in ids))


def _normalise(probs: np.ndarray) -> np.ndarray:
    """Scores divided by their sum per pixel (uniform where all are zero)."""
    total = probs.sum(axis=0, keepdims=True)
    return np.where(total > 0, probs / np.where(total > 0, total, 1), 1.0 / len(probs))


METHODS = ("reliable", "release", "confident", "crf", "argmax")


def cam_seeds(model: CAMClassifier, image: np.ndarray, tags: Sequence[int],
              method: str = "reliable", background: int = 0, gamma: float = 6.0,
              keep: float = 0.4, scales: Sequence[float] = SCALES,
              preset: str = "seed") -> Seeds:
    """Seeds of one image from its tags and a CAM classifier.

    Args:
        model: the classifier.
        image: ``(H, W, 3)`` uint8 RGB.
        tags: label ids present in the image (``model.classes`` ids).  With no
            tag every pixel is background.
        method: ``"reliable"`` reliable regions I_final (Eq. 2.7);
            ``"release"`` the release's form of them (:func:`release_regions`,
            background exponents 4 and 32; ``gamma`` unused);
            ``"confident"`` M'_I, the top ``keep`` of every class of the CAM
            argmax (Eq. 2.6 alone); ``"crf"`` the CRF labels M_I (Eq. 2.5, every
            pixel labelled); ``"argmax"`` the raw CAM argmax (every pixel).
        background, gamma: as for :func:`cam_probabilities`.
        keep: fraction kept per class (``"reliable"``, ``"confident"``).
        scales: CAM scales (Eq. 2.2).
        preset: CRF preset (``"reliable"``, ``"crf"``).

    Returns:
        Seeds: labels; ``scores`` the CRF marginals (``"reliable"``, ``"crf"``)
        or the normalised CAM scores, rows for ``(background, *sorted tags)``.

    >>> from graphseg.seeds import cam_seeds, small_cam_classifier
    >>> model = small_cam_classifier(classes=(1, 2), width=4)
    >>> image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    >>> seeds = cam_seeds(model, image, tags=[2], scales=(1.0,))
    >>> seeds.labels.shape, seeds.classes
    ((24, 32), (0, 2))
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    image = check_image(image)
    cam = multiscale_cam(model, image, scales)
    probs, ids = cam_probabilities(cam, tags, model.classes, background, gamma)
    lookup = np.asarray(ids, dtype=np.uint8)
    if method == "reliable":
        return reliable_regions(image, probs, ids, keep, preset)
    if method == "release":
        return release_regions(image, probs, ids, keep=keep, preset=preset)
    if method == "crf":
        return crf_labels(image, _normalise(probs), ids, preset)
    labels = lookup[probs.argmax(axis=0)]
    if method == "confident":
        labels = confident_labels(labels, probs.max(axis=0), keep)
    return Seeds(labels, _normalise(probs).astype(np.float32), ids)
