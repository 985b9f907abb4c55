"""One image from seeds to a dense mask: graph, per-image A2GNN, back to pixels, CRF.

The backbone-free form of the pipeline (thesis section 3.3 with hand-crafted
node features): nodes are ``stride x stride`` cells of the photo, node features
their mean colour and position, edge weights colour affinities (Eq. 3.8).  A
backbone's feature maps can be passed instead (``features`` and
``edge_features``), at the same node grid.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from functools import partial
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.graph.adjacency import GridAdjacency
from graphseg.graph.affinity import grid_affinity
from graphseg.graph.image import image_to_graph, label_map_to_nodes, nodes_to_pixels
from graphseg.losses import boxes_to_grid
from graphseg.propagation.a2gnn import A2GNNConfig, train_a2gnn
from graphseg.propagation.progress import Progress
from graphseg.refine.crf import dense_crf
from graphseg.refine.random_walk import random_walk
from graphseg.utils.checks import (
    check_choice,
    check_image,
    check_positive_int,
    check_seed_map,
    trusted_inputs,
)
from graphseg.utils.constants import IGNORE


def colour_position_features(image: np.ndarray, stride: int = 8) -> Tensor:
    """``(10, ceil(H / stride), ceil(W / stride))`` node features of a photo: the
    cell's mean RGB ``c`` in ``[0, 1]`` and ``1 - c``, then its row ``y`` and column
    ``x`` scaled to ``[0, 1]`` and ``1 - y``, ``1 - x``.

    Every node's features sum to 5, so the L1 normalisation of Eq. 3.15 (made for
    CNN activations) only scales them; with plain RGB it would map dark and bright
    greys to the same vector.

    >>> import numpy as np
    >>> from graphseg.propagation import colour_position_features
    >>> colour_position_features(np.zeros((20, 30, 3), np.uint8), stride=8).shape
    torch.Size([10, 3, 4])
    """
    image = check_image(image)
    check_positive_int(stride, "stride")
    pixels = torch.from_numpy(image.copy()).permute(2, 0, 1).float()[None] / 255
    rgb = F.avg_pool2d(pixels, stride, ceil_mode=True)[0]
    h, w = rgb.shape[1:]
    rows, cols = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w),
                                indexing="ij")
    position = torch.stack([rows, cols])
    return torch.cat([rgb, 1 - rgb, position, 1 - position])


PROPAGATORS = ("gnn", "random-walk")


def _propagator(config: A2GNNConfig, propagator: str) -> Tuple[A2GNNConfig, str]:
    """``(config, propagator)`` checked; 0.1's ``layer="random-walk"`` still means
    the random walk, with a warning, for one release."""
    if config.layer == "random-walk":
        warnings.warn('layer="random-walk" is deprecated: pass propagator="random-walk"',
                      DeprecationWarning, stacklevel=3)
        return replace(config, layer=A2GNNConfig.layer), "random-walk"
    return config, check_choice(propagator, "propagator", PROPAGATORS)


def segment_image(image: np.ndarray, seeds: np.ndarray, num_classes: int,
                  boxes=None, stride: int = 8, radius: int = 4,
                  features: Optional[Tensor] = None, edge_features: Optional[Tensor] = None,
                  colour_scale: float = 10.0, config: A2GNNConfig = A2GNNConfig(),
                  propagator: str = "gnn", crf: Optional[str] = "final", seed: int = 0,
                  device: Union[str, torch.device] = "cpu",
                  progress: Optional[Progress] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Dense labels for one photo from its seed map.

    ``propagator`` picks the propagation: ``"gnn"``, a per-image GNN with the
    layer ``config.layer`` (:func:`train_a2gnn`), or ``"random-walk"``, no
    training: the one-hot seeds walked over the same graph's affinities
    (:func:`graphseg.refine.random_walk`, AffinityNet's ``beta = 8``, 64 steps),
    the baseline propagator of Table 3.4.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        seeds (numpy.ndarray): ``(H, W)`` uint8 seed labels, 255 = unknown (e.g. from
            :mod:`graphseg.seeds`).
        num_classes (int): classes, background (0) included.
        boxes (array-like, optional): ``(M, 5)`` pixel boxes ``(class, x1, y1,
            x2, y2)`` (half-open) for the MP loss and consistency checking.
            (default: ``None``)
        stride (int, optional): pixels per node side. (default: ``8``, the
            thesis' feature stride)
        radius (int, optional): window radius in nodes. (default: ``4``)
        features (Tensor, optional): ``(C, h, w)`` node feature map on the
            ``ceil(H / stride) x ceil(W / stride)`` grid. (default: ``None``,
            colour and position (:func:`colour_position_features`))
        edge_features (Tensor, optional): ``(C_g, h, w)`` map for the edge
            affinities. (default: ``None``, the cell colours times
            ``colour_scale``)
        colour_scale (float, optional): RGB in ``[0, 1]`` is scaled by this
            before Eq. 3.8, so that a colour edge of 0.1 weighs ``e^-1``.
            (default: ``10.0``)
        config (A2GNNConfig, optional): the per-image training.
            (default: ``A2GNNConfig()``)
        propagator (str, optional): ``"gnn"`` or ``"random-walk"`` (see
            :data:`PROPAGATORS`). (default: ``"gnn"``)
        crf (str, optional): dense CRF preset for post-processing, ``None``
            for none. (default: ``"final"``)
        seed (int, optional): seeds the training. (default: ``0``)
        device (str or torch.device, optional): where the graph and the model
            live. (default: ``"cpu"``)
        progress (callable, optional): ``progress(stage, done, total)`` for the
            stages ``"graph"``, ``"training"`` (per epoch) or ``"random walk"``,
            and ``"crf"`` (:mod:`graphseg.propagation.progress`).
            (default: ``None``, quiet)

    Returns:
        tuple: ``(labels, probs)``: ``(H, W)`` uint8 labels and ``(C, H, W)``
        float32 probabilities (after the CRF when one is run).
    """
    image = check_image(image)
    height, width = image.shape[:2]
    seeds = check_seed_map(seeds, "seeds", (height, width), num_classes)
    config, propagator = _propagator(config, propagator)
    check_positive_int(stride, "stride")
    with trusted_inputs():
        cells = colour_position_features(image, stride)
        colour = cells[:3]
        features = cells if features is None else features
        if features.shape[1:] != cells.shape[1:]:
            raise ValueError(f"features has grid size {tuple(features.shape[1:])}, expected "
                             f"{tuple(cells.shape[1:])} (the photo at stride {stride})")
        if edge_features is None:
            edge_features = colour * colour_scale
        device = torch.device(device)
        if progress is not None:
            progress("graph", 0, 1)
        data = image_to_graph(features.to(device), radius=radius,
                              edge_features=edge_features.to(device))
        labels = label_map_to_nodes(seeds, data.grid_size, ignore_index=IGNORE)
        if progress is not None:
            progress("graph", 1, 1)
        if propagator == "random-walk":
            if progress is not None:
                progress("random walk", 0, 1)
            node_probs = walk_seeds(labels, num_classes, edge_features.to(device), radius)
            if progress is not None:
                progress("random walk", 1, 1)
        else:
            grid_boxes = None
            if boxes is not None and len(boxes):
                grid_boxes = boxes_to_grid(boxes, (height, width), data.grid_size).to(device)
            on_epoch = None
            if progress is not None:
                progress("training", 0, config.stage1_epochs + config.stage2_epochs)
                on_epoch = partial(progress, "training")
            node_probs = train_a2gnn(data.x, GridAdjacency.from_data(data), labels.to(device),
                                     num_classes, data.grid_size, colour=colour.to(device),
                                     boxes=grid_boxes, config=config, seed=seed,
                                     on_epoch=on_epoch)
        probs = nodes_to_pixels(node_probs.cpu(), data.grid_size, size=(height, width),
                                logits=False).numpy()
        if crf is not None:
            if progress is not None:
                progress("crf", 0, 1)
            probs = dense_crf(image, probs, preset=crf)
            if progress is not None:
                progress("crf", 1, 1)
        return probs.argmax(axis=0).astype(np.uint8), probs.astype(np.float32)


def walk_seeds(labels: Tensor, num_classes: int, edge_features: Tensor, radius: int,
               beta: float = 8.0, steps: int = 64) -> Tensor:
    """Node probabilities from seed labels by random walk (no training).

    The one-hot seeds (unknown nodes start at zero) are walked ``steps`` times
    over ``exp(-mean |g_i - g_j|) ** beta`` in a square window
    (:func:`graphseg.refine.random_walk`) and renormalised per node; a node no
    seed reaches gets uniform probabilities.

    Args:
        labels (Tensor): ``(h * w,)`` int64 node labels, 255 = unknown.
        num_classes (int): classes.
        edge_features (Tensor): ``(C_g, h, w)`` map of the edge affinities.
        radius (int): window radius in nodes.
        beta (float, optional): affinity exponent. (default: ``8.0``)
        steps (int, optional): walk steps. (default: ``64``)

    Returns:
        Tensor: ``(h * w, num_classes)`` probabilities.

    >>> import torch
    >>> from graphseg.propagation import walk_seeds
    >>> labels = torch.full((12,), 255); labels[0], labels[11] = 0, 1
    >>> walk_seeds(labels, 2, torch.zeros(1, 3, 4), radius=1).argmax(dim=1)[[0, 11]]
    tensor([0, 1])
    """
    h, w = edge_features.shape[1:]
    labels = labels.to(edge_features.device)
    known = labels != IGNORE
    if not bool(known.any()):
        raise ValueError("labels has no labelled node: nothing to propagate")
    values = torch.zeros(h * w, num_classes, device=edge_features.device)
    values[known.nonzero().squeeze(1), labels[known]] = 1.0
    affinity = grid_affinity(edge_features.float(), radius)
    walked = random_walk(values.t().reshape(num_classes, h, w), affinity, radius,
                         beta=beta, steps=steps).reshape(num_classes, -1).t()
    total = walked.sum(dim=1, keepdim=True)
    return torch.where(total > 0, walked / total.clamp_min(1e-30), 1.0 / num_classes)
