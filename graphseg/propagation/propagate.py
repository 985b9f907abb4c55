"""Weak annotations of one photo to dense masks: seeds, graph, propagation, CRF.

The whole per-image pipeline of thesis sections 3.3-3.4 (boxes) and 3.6
(scribbles, points, image-level tags) behind one call, :func:`propagate`:

========== ================================= ====== ====================================
kind       seeds                             radius after the GNN
========== ================================= ====== ====================================
boxes      GrabCut in every box, background  4      GrabCut's answer pooled in
           outside (:func:`box_seeds`)              (:func:`grabcut_fusion`), dense
                                                    CRF; one instance per box
scribbles  SLIC expansion (:func:`expand_     4      dense CRF
           seeds`, M_S)
points     SLIC expansion (M_P)              3      dense CRF (with a CAM: only the
                                                    pointed classes, optional fusion)
tags       reliable CAM regions (Eq. 2.7)    3      only the tagged classes, optional
                                                    fusion, dense CRF
========== ================================= ====== ====================================

The thesis fuses the GNN's probabilities with the CAM's random walk 1:3 for
tags and points (section 3.6.1, ``fusion=3``), a walk along AffinityNet's
trained affinities.  Along colour affinities the walk smears the CAM: on 12
MSRC-v2 val images with tags (ESPNetv2 CAM, hidden 64) the fusion lowers the
mIoU from 0.582 to 0.331 (0.511 at 1:1), so it is off by default.

Training follows :meth:`A2GNNConfig.default` for the kind (the release's settings,
shorter) unless a config is given.  Every stage is timed (:attr:`Propagation.seconds`).
``max_side=`` works on a shrunk copy of a large photo and writes its results at full size
(``graphseg propagate --max-side``, default :data:`MAX_SIDE`).
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Dict, NamedTuple, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from torch import nn

from graphseg.data.sample import check_boxes, largest_first
from graphseg.nn.models.affinity_net import AffinityNet, affinity_maps
from graphseg.propagation.a2gnn import A2GNNConfig
from graphseg.propagation.features import node_features
from graphseg.propagation.pipeline import PROPAGATORS, segment_image
from graphseg.propagation.progress import Progress, StageBar
from graphseg.refine.crf import dense_crf
from graphseg.refine.random_walk import walk_probabilities
from graphseg.seeds.boxes import box_seeds
from graphseg.seeds.cam import CAMClassifier, cam_probabilities, multiscale_cam, reliable_regions
from graphseg.seeds.scribbles import expand_seeds
from graphseg.utils.checks import (
    check_choice,
    check_image,
    check_positive_int,
    check_seed_map,
    trusted_inputs,
)
from graphseg.utils.constants import IGNORE, SUPERVISIONS

LAYERS = ("a2gnn", "gcn", "gat", "agnn")
RADIUS = {"boxes": 4, "scribbles": 4, "points": 3, "tags": 3}
FUSION_RATIO = 3.0  # section 3.6.1: GNN : random-walk CAM = 1 : 3 (pass fusion=FUSION_RATIO)
# the working resolution graphseg propagate defaults to (propagate's max_side): above every
# benchmark photo (GrabCut 640 x 480, VOC 500 x 375), so their results do not change
MAX_SIDE = 1024
# boxes: GrabCut's answer pooled with the GNN's (grabcut_fusion), chosen on the data kit
GRABCUT_PRIOR = 0.8


class Propagation(NamedTuple):
    """What :func:`propagate` returns for one photo.

    Attributes:
        labels (numpy.ndarray): ``(H, W)`` uint8 class per pixel; boxes: the
            background outside every box (probability 1 in ``probs``), so it
            agrees with ``instances``.
        probs (numpy.ndarray): ``(num_classes, H, W)`` float32 probabilities behind
            ``labels``.
        seeds (numpy.ndarray): ``(H, W)`` uint8 seed map the graph was trained on,
            255 = unknown.
        instances (numpy.ndarray or None): boxes only: ``(H, W)`` uint16, ``i + 1``
            where the pixel is an instance of box ``i`` (input order), 0
            elsewhere; else ``None``.
        seconds (dict): wall-clock seconds of ``"seeds"``, ``"features"`` (node
            features), ``"propagation"`` (graph and GNN), ``"postprocess"``
            (fusion, CRF) and ``"total"``.
    """

    labels: np.ndarray
    probs: np.ndarray
    seeds: np.ndarray
    instances: Optional[np.ndarray]
    seconds: Dict[str, float]


def box_instances(labels: np.ndarray, boxes) -> np.ndarray:
    """Instance masks from a label map and its boxes (thesis section 3.4).

    The pixels inside a box that carry the box's class form its instance.
    Where boxes overlap, the smaller box owns the pixel (as in :func:`box_seeds`).

    Args:
        labels (numpy.ndarray): ``(H, W)`` uint8 class map.
        boxes (array-like): ``(M, 5)`` ``(class, x1, y1, x2, y2)`` half-open pixel
            boxes.

    Returns:
        np.ndarray: ``(H, W)`` uint16, ``i + 1`` for box ``i``, 0 for no instance.

    >>> import numpy as np
    >>> from graphseg.propagation import box_instances
    >>> labels = np.zeros((6, 8), np.uint8); labels[1:5, 1:7] = 2
    >>> box_instances(labels, [[2, 0, 0, 4, 6], [2, 4, 0, 8, 6]])[2].tolist()
    [0, 1, 1, 1, 2, 2, 2, 0]
    """
    labels = np.asarray(labels)
    boxes = check_boxes(boxes, labels.shape[:2])
    out = np.zeros(labels.shape, dtype=np.uint16)
    for i in largest_first(boxes):
        cls, x1, y1, x2, y2 = boxes[i]
        region = out[y1:y2, x1:x2]
        region[labels[y1:y2, x1:x2] == cls] = i + 1
    return out


def grabcut_fusion(probs: np.ndarray, grabcut: np.ndarray, classes: Sequence[int],
                   prior: float = GRABCUT_PRIOR) -> np.ndarray:
    """The GNN's probabilities pooled with GrabCut's answer in the boxes
    (log-linear: the two as independent evidence).

    For every box class ``c``, the odds of ``c`` are multiplied by
    ``(prior / (1 - prior)) ** (2 s - 1)``, ``s`` GrabCut's answer for ``c``
    (:func:`box_seeds`' scores: 1 foreground, 0 background, 0.5 none), then every
    pixel is renormalised.  Chosen on the data kit (benchmarks/README.md, issue
    17): with the default 0.8 GrabCut-13 boxes go from 0.841 to 0.860 mean object
    IoU (OpenCV GrabCut 0.859); linear pooling at 0.5 or more would let GrabCut
    alone decide every pixel.

    Args:
        probs (numpy.ndarray): ``(C, H, W)`` class probabilities.
        grabcut (numpy.ndarray): ``(K, H, W)`` GrabCut's answers, in ``[0, 1]``.
        classes (sequence of int): the class of each of ``grabcut``'s rows.
        prior (float, optional): in ``(0, 1)``; 0.5 changes nothing.
            (default: :data:`GRABCUT_PRIOR`)

    Returns:
        np.ndarray: ``(C, H, W)`` float32 probabilities.

    >>> import numpy as np
    >>> from graphseg.propagation import grabcut_fusion
    >>> probs = np.full((2, 1, 2), 0.5, np.float32)
    >>> grabcut_fusion(probs, np.array([[[1.0, 0.5]]]), [1], prior=0.8)[1].astype(float).round(2)
    array([[0.8, 0.5]])
    """
    if not 0.0 < prior < 1.0:
        raise ValueError(f"grabcut_prior must be in (0, 1), got {prior}")
    if grabcut.shape != (len(classes), *probs.shape[1:]):
        raise ValueError(f"grabcut must have shape ({len(classes)}, {probs.shape[1]}, "
                         f"{probs.shape[2]}), got {grabcut.shape}")
    fused = probs.astype(np.float64)
    log_odds = np.log(prior / (1 - prior))
    for row, cls in enumerate(classes):
        fused[cls] *= np.exp(log_odds * (2 * grabcut[row].astype(np.float64) - 1))
    fused /= np.maximum(fused.sum(axis=0, keepdims=True), 1e-30)
    return fused.astype(np.float32)


def _present_classes(tags: Sequence[int], background: int, num_classes: int) -> list:
    present = sorted({int(t) for t in tags} | {background})
    if present[-1] >= num_classes:
        raise ValueError(f"class {present[-1]} is not below num_classes = {num_classes}")
    return present


def propagate(image: np.ndarray, annotation, kind: str, num_classes: int, *,
              propagator: str = "gnn", layer: Optional[str] = None,
              config: Optional[A2GNNConfig] = None,
              cam: Optional[CAMClassifier] = None,
              features: Union[str, nn.Module] = "espnetv2",
              affinity: Optional[AffinityNet] = None, stride: int = 8,
              radius: Optional[int] = None, crf: Optional[str] = "final",
              background: int = 0, gamma: float = 6.0, fusion: float = 0.0,
              band: Optional[float] = None, grabcut_prior: float = GRABCUT_PRIOR,
              seed: int = 0, device: Union[str, torch.device] = "cpu",
              progress: Union[None, bool, Progress] = None,
              max_side: Optional[int] = None) -> Propagation:
    """Dense labels for one photo from its weak annotation.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        annotation (array-like or sequence of int): ``"boxes"``: ``(M, 5)``
            ``(class, x1, y1, x2, y2)`` half-open pixel boxes; ``"scribbles"`` /
            ``"points"``: ``(H, W)`` uint8 map, 255 = unlabelled; ``"tags"``: the
            foreground class ids present.
        kind (str): ``"boxes"``, ``"scribbles"``, ``"points"`` or ``"tags"``.
        num_classes (int): classes, background included.
        propagator (str, optional): ``"gnn"``, a GNN trained on the photo's
            graph, or ``"random-walk"``, the seeds walked along its affinities
            (no training; :func:`~graphseg.propagation.segment_image`).
            (default: ``"gnn"``)
        layer (str, optional): the GNN's layer, ``"a2gnn"``, ``"gcn"``, ``"gat"``
            or ``"agnn"``; overrides ``config.layer``. (default: the config's)
        config (A2GNNConfig, optional): per-image training.
            (default: ``A2GNNConfig.default(kind)``)
        cam (CAMClassifier, optional): required for ``"tags"``; with
            ``"points"`` it limits the classes to the pointed ones and allows
            the fusion. (default: ``None``)
        features (str or nn.Module, optional): node features: ``"espnetv2"``
            (the bundled pretrained encoder's last three levels), ``"colour"``
            (colour and position, no network) or a backbone
            (:func:`~graphseg.propagation.features.node_features`); edges are
            colour affinities. (default: ``"espnetv2"``)
        affinity (AffinityNet, optional): a trained affinity network (section
            3.3.3); when given, its levels are the node features and its
            affinity head gives the edge weights (Eq. 3.8, 3.14), and
            ``features`` is unused; ``stride`` must be the network's.
            (default: ``None``)
        stride (int, optional): pixels per node side. (default: ``8``)
        radius (int, optional): window radius in nodes. (default: 4 for boxes
            and scribbles, 3 for points and tags, as in the thesis)
        crf (str, optional): dense CRF preset after propagation, ``None`` for
            none. (default: ``"final"``)
        background (int, optional): background class id. (default: ``0``)
        gamma (float, optional): CAM background decay (Eq. 2.4). (default: ``6.0``)
        fusion (float, optional): with a CAM, the weight of its random walk
            against the GNN's probabilities; :data:`FUSION_RATIO` (3) is
            section 3.6.1's 1:3, 0 no fusion (see the module notes).
            (default: ``0.0``)
        band (float, optional): boxes: :func:`box_seeds`' unknown band.
            (default: :func:`box_seeds`' default)
        grabcut_prior (float, optional): boxes: how much GrabCut's own answer in
            each box (the one the seeds come from) counts next to the GNN's
            probabilities before the CRF: the odds of the box's class are
            multiplied by ``p / (1 - p)`` where GrabCut says foreground and
            divided by it where GrabCut says background (:func:`grabcut_fusion`);
            0.5 = not at all. (default: :data:`GRABCUT_PRIOR`)
        seed (int, optional): seeds GrabCut and the training. (default: ``0``)
        device (str or torch.device, optional): where the GNN runs.
            (default: ``"cpu"``)
        progress (bool or callable, optional): a reporter
            ``progress(stage, done, total)`` called as each stage starts and
            ends and after every training epoch (stages ``"seeds"``,
            ``"features"``, ``"graph"``, ``"training"``, ``"crf"``;
            :mod:`graphseg.propagation.progress`), or ``True`` for a bar on
            stderr (:class:`~graphseg.propagation.progress.StageBar`).
            (default: ``None``, quiet)
        max_side (int, optional): the working resolution: a photo whose longer side
            exceeds it is shrunk (area averaging) to that longer side for the seeds,
            features, graph, GNN and CRF, its annotation with it (boxes scaled and
            rounded outward; every labelled pixel of a scribble or point map moved
            to the nearest pixel of the small grid, so no click is lost; a pixel
            claimed by two classes becomes unlabelled), and the probabilities are
            resized back (bilinear), so ``labels``, ``probs``, ``seeds`` and
            ``instances`` are at the photo's full size (boxes: the outside of every
            box and the instances from the full-size boxes).  The memory of the
            graph grows with the pixels (``H * W / stride**2`` nodes, each with
            ``(2 * radius + 1)**2 - 1`` edges, times the hidden channels per edge
            in attention layers), so a 4000 x 3000 phone photo needs gigabytes at
            full size and a fraction at 1024 (:data:`MAX_SIDE`).
            (default: ``None``, full size)

    Returns:
        Propagation: labels, probabilities, seeds, instances (boxes), timings.

    Raises:
        ValueError: bad image or annotation, or no seed left to propagate.

    Example:
        >>> import numpy as np
        >>> from graphseg.propagation import A2GNNConfig, propagate
        >>> image = np.zeros((48, 64, 3), np.uint8); image[12:36, 16:48] = 220
        >>> config = A2GNNConfig.release("boxes", stage1_epochs=3, stage2_epochs=2,
        ...                              hidden_channels=16)
        >>> out = propagate(image, [[1, 10, 6, 54, 42]], "boxes", 2, config=config,
        ...                 features="colour")
        >>> out.labels.shape, int(out.labels[24, 32]), int(out.instances.max())
        ((48, 64), 1, 1)
    """
    start = time.perf_counter()
    image = check_image(image)
    check_choice(kind, "kind", SUPERVISIONS)
    check_positive_int(num_classes, "num_classes", minimum=2)
    config = config or A2GNNConfig.default(kind)
    if layer is not None:
        # segment_image turns 0.1's layer="random-walk" into the propagator, with a warning
        config = replace(config, layer=layer if layer == "random-walk"
                         else check_choice(layer, "layer", LAYERS))
    if config.layer != "random-walk":
        check_choice(propagator, "propagator", PROPAGATORS)
    shape = image.shape[:2]
    if kind == "tags" and cam is None:
        raise ValueError("kind 'tags' needs a CAM classifier (cam=...)")
    if kind == "boxes":
        annotation = check_boxes(annotation, shape, "boxes")
        if len(annotation) and int(annotation[:, 0].max()) >= num_classes:
            raise ValueError(f"boxes: class {int(annotation[:, 0].max())} is not below "
                             f"num_classes = {num_classes}")
    elif kind != "tags":
        annotation = check_seed_map(annotation, kind, shape, num_classes)
    if affinity is not None and affinity.stride != stride:
        raise ValueError(f"stride is {stride} but the affinity network's is {affinity.stride}")
    if progress is not None and not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be a bool or progress(stage, done, total), "
                        f"got {type(progress).__name__}")
    if max_side is not None:
        check_positive_int(max_side, "max_side", minimum=16)
    if not 0.0 < grabcut_prior < 1.0:
        raise ValueError(f"grabcut_prior must be in (0, 1), got {grabcut_prior}")
    bar = StageBar() if progress is True else None
    full = image, annotation
    if max_side is not None and max(shape) > max_side:
        image, annotation = _shrink(image, annotation, kind, max_side)
    try:
        with trusted_inputs():
            result = _propagate(image, annotation, kind, num_classes, propagator, config, cam,
                                features, affinity, stride,
                                RADIUS[kind] if radius is None else radius, crf, background,
                                gamma, fusion, band, grabcut_prior, seed, device, start,
                                bar if progress is True else progress or None)
    finally:
        if bar is not None:
            bar.close()
    if image.shape[:2] != shape:
        result = _enlarge(result, shape, full[1] if kind == "boxes" else None, background)
        result.seconds["total"] = time.perf_counter() - start
    return result


def _shrink(image: np.ndarray, annotation, kind: str, max_side: int):
    """``image`` with its longer side ``max_side`` (area averaging), and its annotation
    on the small grid (see :func:`propagate`'s ``max_side``)."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
    if kind == "boxes":
        boxes = annotation.astype(np.float64)
        boxes[:, 1:] *= [size[1] / w, size[0] / h, size[1] / w, size[0] / h]
        boxes[:, 1:3] = np.floor(boxes[:, 1:3])  # outward: the box keeps all its object
        boxes[:, 3:] = np.maximum(np.ceil(boxes[:, 3:]), boxes[:, 1:3] + 1)
        boxes[:, 3] = np.minimum(boxes[:, 3], size[1])
        boxes[:, 4] = np.minimum(boxes[:, 4], size[0])
        return small, boxes.astype(np.int64)
    if kind == "tags":
        return small, annotation
    # every labelled pixel lands on its nearest small pixel (nearest-neighbour resizing
    # would drop a click with probability 1 - scale**2); two classes on one: unlabelled
    ys, xs = np.nonzero(annotation != IGNORE)
    values = annotation[ys, xs]
    ys = np.minimum((ys * (size[0] / h)).astype(np.int64), size[0] - 1)
    xs = np.minimum((xs * (size[1] / w)).astype(np.int64), size[1] - 1)
    where = ys * size[1] + xs
    lowest = np.full(size[0] * size[1], IGNORE, np.uint8)
    highest = np.zeros(size[0] * size[1], np.uint8)
    np.minimum.at(lowest, where, values)
    np.maximum.at(highest, where, values)
    # one class: kept; none (IGNORE, 0) or several: unlabelled
    seeds = np.where(lowest == highest, lowest, IGNORE).astype(np.uint8)
    return small, seeds.reshape(size)


def _enlarge(result: Propagation, shape, boxes, background: int) -> Propagation:
    """``result`` of the shrunk photo at the full ``shape``: probabilities resized
    bilinearly, seeds by nearest neighbour; boxes redone at full size."""
    h, w = shape
    probs = np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
                      for p in result.probs])
    seeds = cv2.resize(result.seeds, (w, h), interpolation=cv2.INTER_NEAREST)
    if boxes is not None:
        outside = np.ones(shape, bool)
        for _, x1, y1, x2, y2 in boxes:
            outside[y1:y2, x1:x2] = False
        probs[:, outside] = 0.0
        probs[background, outside] = 1.0
    labels = probs.argmax(axis=0).astype(np.uint8)
    instances = box_instances(labels, boxes) if boxes is not None else None
    return Propagation(labels, probs, seeds, instances, dict(result.seconds))


def _propagate(image, annotation, kind, num_classes, propagator, config, cam, features,
               affinity, stride, radius, crf, background, gamma, fusion, band, grabcut_prior,
               seed, device,
               start, progress=None) -> Propagation:
    """:func:`propagate` on validated inputs."""
    if progress is not None:
        progress("seeds", 0, 1)
    boxes, cam_scores, shape = None, None, image.shape[:2]
    if kind == "boxes":
        boxes = annotation
        options = {} if band is None else {"band": band}
        seeds, grabcut, grabcut_classes = box_seeds(image, boxes, background, seed=seed,
                                                    **options)
    elif kind != "tags":
        seeds = annotation
    if cam is not None and kind in ("points", "tags"):
        tags = annotation if kind == "tags" else np.unique(seeds[seeds != IGNORE])
        present = _present_classes(tags, background, num_classes)
        cam_scores, ids = cam_probabilities(multiscale_cam(cam, image),
                                            [c for c in present if c != background],
                                            cam.classes, background, gamma)
    if kind == "tags":
        seeds = reliable_regions(image, cam_scores, ids).labels
    elif kind != "boxes":
        seeds = expand_seeds(image, seeds, num_classes).labels
    if not (seeds != IGNORE).any():
        raise ValueError(f"no {kind} seed is left to propagate from (every pixel unknown)")
    seeded = time.perf_counter()
    if progress is not None:
        progress("seeds", 1, 1)
        progress("features", 0, 1)

    if affinity is not None:
        cells, edges = affinity_maps(affinity, image)
    else:
        cells, edges = node_features(image, features, stride), None
    described = time.perf_counter()
    if progress is not None:
        progress("features", 1, 1)
    _, probs = segment_image(image, seeds, num_classes, boxes=boxes, stride=stride,
                             radius=radius, features=cells, edge_features=edges, config=config,
                             propagator=propagator, crf=None, seed=seed, device=device,
                             progress=progress)
    propagated = time.perf_counter()
    postprocess = progress is not None and (crf is not None or cam_scores is not None)
    if postprocess:
        progress("crf", 0, 1)

    if cam_scores is not None:
        # only the tagged classes can be present: drop the rest
        mask = np.zeros((num_classes, 1, 1), np.float32)
        mask[present] = 1
        probs = probs * mask
        probs /= np.maximum(probs.sum(axis=0, keepdims=True), 1e-12)
        if fusion > 0:
            walked = np.zeros_like(probs)
            walked[list(ids)] = walk_probabilities(image, cam_scores, ids).scores
            probs = (probs + fusion * walked) / (1.0 + fusion)
    if boxes is not None and grabcut_prior != 0.5:
        probs = grabcut_fusion(probs, grabcut, grabcut_classes, grabcut_prior)
    if crf is not None:
        probs = dense_crf(image, probs, preset=crf)
    if postprocess:
        progress("crf", 1, 1)
    if boxes is not None:
        # box supervision: a pixel outside every box is background (as its seed was), so
        # the label map agrees with the instance map, which only boxes can own
        outside = np.ones(shape, bool)
        for _, x1, y1, x2, y2 in boxes:
            outside[y1:y2, x1:x2] = False
        probs[:, outside] = 0.0
        probs[background, outside] = 1.0
    labels = probs.argmax(axis=0).astype(np.uint8)
    instances = box_instances(labels, boxes) if boxes is not None else None
    end = time.perf_counter()
    seconds = {"seeds": seeded - start, "features": described - seeded,
               "propagation": propagated - described,
               "postprocess": end - propagated, "total": end - start}
    return Propagation(labels, probs.astype(np.float32), seeds, instances, seconds)
