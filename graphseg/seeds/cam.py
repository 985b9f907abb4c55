"""Seeds for image-level tags from class activation maps (thesis section 2.2.2, 3.3.2).

* :func:`multiscale_cam` (Eq. 2.2), :func:`cam_probabilities` (Eq. 2.3-2.4),
  :func:`reliable_regions` (Eq. 2.5-2.7), :func:`confident_labels` (the top-40%
  per class rule that gives M'_I), and :func:`cam_seeds` running them in order.
  :func:`release_regions` is the authors' release's variant of reliable regions.

The classifiers are in :mod:`graphseg.nn.models.cam`, their training in
:mod:`graphseg.training.cam`.

Label ids: the classifier's outputs are the classes listed in
``model.classes`` (e.g. the 20 VOC objects, ids 1..20); seed maps use those ids
and ``background`` (default 0) for the background score of Eq. 2.4.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from graphseg.data.transforms import image_to_tensor
from graphseg.nn.models.cam import CAMClassifier
from graphseg.refine.crf import crf_labels, dense_crf
from graphseg.utils.checks import check_fraction, check_image
from graphseg.utils.constants import IGNORE
from graphseg.utils.types import Seeds

SCALES = (0.5, 1.0, 1.5, 2.0)


@torch.no_grad()
def multiscale_cam(model: CAMClassifier, image: np.ndarray, scales: Sequence[float] = SCALES,
                   flip: bool = True, base_size: Optional[int] = None) -> np.ndarray:
    """Multi-scale, flip-averaged CAM of every class (Eq. 2.1-2.2).

    At every scale (and its mirror image when ``flip``), the ReLU of the raw CAM
    is resized bilinearly to ``H x W``; the maps are averaged.

    Args:
        model (CAMClassifier): the classifier (used in eval mode).
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        scales (sequence of float, optional): factors applied to the base size,
            each > 0. (default: :data:`SCALES`, ``(0.5, 1.0, 1.5, 2.0)``)
        flip (bool, optional): also average the horizontally flipped image's CAM.
            (default: ``True``)
        base_size (int, optional): longer side the image is first resized to
            (pixels). (default: ``None``, ``model.input_size``, or the image's own
            size when that is ``None``)

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
        x = image_to_tensor(image, max(8, round(base * scale))).to(device)
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
        cam (numpy.ndarray): ``(K, H, W)`` non-negative CAMs, from
            :func:`multiscale_cam`.
        tags (sequence of int): label ids present in the image (each in
            ``classes``); may be empty.
        classes (sequence of int): label id of every row of ``cam``.
        background (int, optional): label id of the background, not in ``tags``.
            (default: ``0``)
        gamma (float, optional): decay of the background score, > 0 (the thesis
            asks > 1). (default: ``6.0``)

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
        labels (numpy.ndarray): ``(H, W)`` uint8 label map (255 = unknown, left
            unknown).
        confidence (numpy.ndarray): ``(H, W)`` scores, higher = surer.
        keep (float, optional): fraction in ``(0, 1]``. (default: ``0.4``)

    Returns:
        np.ndarray: ``(H, W)`` uint8, the kept labels, 255 elsewhere.

    >>> import numpy as np
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
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        probs (numpy.ndarray): ``(C, H, W)`` non-negative scores
            (:func:`cam_probabilities`).
        classes (sequence of int): label id of every row.
        keep (float, optional): fraction of each class's pixels passing Eq. 2.6.
            (default: ``0.4``)
        preset (str, optional): CRF preset (see :data:`graphseg.refine.crf.PRESETS`).
            (default: ``"seed"``)

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
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        probs (numpy.ndarray): ``(1 + T, H, W)`` from :func:`cam_probabilities`
            (the background row is recomputed here).
        classes (sequence of int): label id of every row (background first).
        low (float, optional): background exponent of the first CRF, > 0.
            (default: ``4.0``)
        high (float, optional): background exponent of the second CRF, > 0.
            (default: ``32.0``)
        keep (float, optional): fraction of each class's region kept, in
            ``(0, 1]``. (default: ``0.4``)
        threshold (float, optional): smallest CRF probability of a label, in
            ``[0, 1]``. (default: ``0.8``)
        preset (str, optional): CRF preset. (default: ``"seed"``)

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
        model (CAMClassifier): the classifier.
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        tags (sequence of int): label ids present in the image (``model.classes``
            ids).  With no tag (no object in the image) every pixel is
            ``background``, for every method, and the CAM is not computed.
        method (str, optional): ``"reliable"`` reliable regions I_final (Eq. 2.7);
            ``"release"`` the release's form of them (:func:`release_regions`,
            background exponents 4 and 32; ``gamma`` unused);
            ``"confident"`` M'_I, the top ``keep`` of every class of the CAM
            argmax (Eq. 2.6 alone); ``"crf"`` the CRF labels M_I (Eq. 2.5, every
            pixel labelled); ``"argmax"`` the raw CAM argmax (every pixel).
            (default: ``"reliable"``)
        background (int, optional): as for :func:`cam_probabilities`.
            (default: ``0``)
        gamma (float, optional): as for :func:`cam_probabilities`.
            (default: ``6.0``)
        keep (float, optional): fraction kept per class (``"reliable"``,
            ``"confident"``). (default: ``0.4``)
        scales (sequence of float, optional): CAM scales (Eq. 2.2).
            (default: :data:`SCALES`, ``(0.5, 1.0, 1.5, 2.0)``)
        preset (str, optional): CRF preset (``"reliable"``, ``"crf"``).
            (default: ``"seed"``)

    Returns:
        Seeds: labels; ``scores`` the CRF marginals (``"reliable"``, ``"crf"``)
        or the normalised CAM scores, rows for ``(background, *sorted tags)``
        (with no tag: one row of ones).

    >>> import numpy as np
    >>> from graphseg.nn.models import small_cam_classifier
    >>> from graphseg.seeds import cam_seeds
    >>> model = small_cam_classifier(classes=(1, 2), width=4)
    >>> image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    >>> seeds = cam_seeds(model, image, tags=[2], scales=(1.0,))
    >>> seeds.labels.shape, seeds.classes
    ((24, 32), (0, 2))
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    image = check_image(image)
    tags = [int(t) for t in tags]
    if not tags:
        shape = image.shape[:2]
        return Seeds(np.full(shape, background, dtype=np.uint8),
                     np.ones((1, *shape), dtype=np.float32), (int(background),))
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
