"""Per-image A2GNN training: from seed labels on a graph to dense probabilities.

A fresh model is trained on every image (thesis section 3.3.5): cross-entropy
on the labelled nodes, then, in the second stage, the regularised loss on the
graph and, for boxes, the multi-point loss and consistency checking.  The
defaults are the thesis' (section 3.4) and, where it is silent, the authors'
release; :meth:`A2GNNConfig.release` gives the release's per-supervision values.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import Adj

from graphseg.losses import (
    balanced_cross_entropy,
    box_points,
    consistency_check,
    gaussian_kernel,
    mp_loss,
    regularized_loss,
)
from graphseg.nn.models.a2gnn import A2GNN
from graphseg.utils.checks import check_choice, check_finite
from graphseg.utils.constants import IGNORE, SUPERVISIONS


@dataclass(frozen=True)
class A2GNNConfig:
    """Hyper-parameters of :func:`train_a2gnn`; every field can be overridden.

    Attributes:
        layer (str): propagation layer, ``"a2gnn"``, ``"gcn"``, ``"gat"`` or
            ``"agnn"``; :func:`~graphseg.propagation.segment_image` also takes
            ``"random-walk"`` (no training). (default: ``"a2gnn"``)
        hidden_channels (int): the model (Eq. 3.16-3.19): embedding size.
            (default: ``256``)
        num_layers (int): the model: attention layers :math:`L`. (default: ``3``)
        dropout (float): the model: dropout after the embedding. (default: ``0.5``)
        beta (float): the model: edge coefficient of every layer. (default: ``10.0``)
        negative (str): the model: ``"gate"`` (thesis) or ``"mask"`` (release).
            (default: ``"gate"``)
        lr (float): Adam's learning rate. (default: ``0.03``)
        weight_decay (float): Adam's weight decay. (default: ``5e-4``)
        stage1_epochs (int): epochs of cross-entropy (and, with ``mp_in_stage1``,
            MP loss). (default: ``50``)
        stage2_epochs (int): epochs with every loss and consistency checking.
            (default: ``50``)
        reg_weight (float): :math:`\\lambda_1` of Eq. 3.20 (0 disables).
            (default: ``0.01``)
        reg_radius (int): the Gaussian kernel (Eq. 3.13): its radius, in nodes.
            (default: ``5``)
        sigma_xy (float): the Gaussian kernel: its position scale, in nodes.
            (default: ``6.0``)
        sigma_rgb (float): the Gaussian kernel: its colour scale, in colour units
            of ``[0, 1]``. (default: ``0.1``)
        mp_weight (float): weight of the MP loss (boxes; 0 disables).
            (default: ``1.0``)
        mp_in_stage1 (bool): the thesis uses the MP loss in both stages, the
            release only in the second. (default: ``True``)
        consistency (bool): consistency checking in the second stage (boxes).
            (default: ``True``)
        accumulate_consistency (bool): the release writes removals into the
            seeds, so they accumulate over epochs; the thesis re-checks the
            original seeds at every epoch. (default: ``False``)
        balanced_ce (bool): background and foreground averaged separately
            (release). (default: ``True``)
    """

    layer: str = "a2gnn"
    hidden_channels: int = 256
    num_layers: int = 3
    dropout: float = 0.5
    beta: float = 10.0
    negative: str = "gate"
    lr: float = 0.03
    weight_decay: float = 5e-4
    stage1_epochs: int = 50
    stage2_epochs: int = 50
    reg_weight: float = 0.01
    reg_radius: int = 5
    sigma_xy: float = 6.0
    sigma_rgb: float = 0.1
    mp_weight: float = 1.0
    mp_in_stage1: bool = True
    consistency: bool = True
    accumulate_consistency: bool = False
    balanced_ce: bool = True

    @classmethod
    def release(cls, supervision: str, **overrides) -> "A2GNNConfig":
        """The authors' release settings for ``"boxes"``, ``"scribbles"``, ``"points"``
        or ``"tags"`` (the hyper-parameters of their released training scripts: one
        set for boxes, one shared by the other three, as written below), then
        ``overrides``."""
        check_choice(supervision, "supervision", SUPERVISIONS)
        if supervision == "boxes":
            base = cls(lr=0.035, stage1_epochs=150, stage2_epochs=150, reg_weight=0.01,
                       mp_weight=1.0, mp_in_stage1=False, consistency=True,
                       accumulate_consistency=True, negative="mask")
        else:
            base = cls(lr=0.03, stage1_epochs=50, stage2_epochs=50, reg_weight=0.3,
                       mp_weight=0.0, consistency=False, negative="mask")
        return replace(base, **overrides)


def train_a2gnn(x: Tensor, graph: Adj, labels: Tensor, num_classes: int,
                grid_size: Tuple[int, int], colour: Optional[Tensor] = None,
                boxes: Optional[Tensor] = None, edge_weight: Optional[Tensor] = None,
                config: A2GNNConfig = A2GNNConfig(), seed: int = 0,
                on_epoch: Optional[Callable[[int, int], None]] = None) -> Tensor:
    """Train a fresh model on one image's graph and return its node probabilities.

    Args:
        x (Tensor): ``(N, D)`` node features (``data.x``), ``N = h * w``.
        graph (GridAdjacency or CSRAdjacency or Tensor): the graph
            (``GridAdjacency``, ``CSRAdjacency`` or ``edge_index``).
        labels (Tensor): ``(N,)`` int64 seed labels, 255 = unknown.
        num_classes (int): classes, background (0) included.
        grid_size (tuple): ``(h, w)`` of the node grid.
        colour (Tensor, optional): ``(3, h, w)`` node colours in ``[0, 1]`` for
            the regularised loss; without it that loss is off. (default: ``None``)
        boxes (Tensor, optional): ``(M, 5)`` node-grid boxes
            (:func:`~graphseg.losses.boxes_to_grid`) for the MP loss and
            consistency checking. (default: ``None``)
        edge_weight (Tensor, optional): with an ``edge_index`` graph.
            (default: ``None``)
        config (A2GNNConfig, optional): hyper-parameters.
            (default: ``A2GNNConfig()``)
        seed (int, optional): seeds the model's initialisation and dropout.
            (default: ``0``)
        on_epoch (callable, optional): ``on_epoch(done, total)`` after every
            epoch, ``total`` = both stages' epochs; it gets no tensor, so it
            forces no device sync. (default: ``None``, nothing called)

    Returns:
        Tensor: ``(N, num_classes)`` probabilities (Eq. 3.19), no gradient.

    Raises:
        ValueError: if no node is labelled, or inputs disagree in size.
    """
    h, w = grid_size
    if x.dim() != 2 or x.size(0) != h * w:
        raise ValueError(f"x must have shape ({h * w}, D) for grid size {(h, w)}, "
                         f"got {tuple(x.shape)}")
    check_finite(x, "x")
    if labels.shape != (h * w,):
        raise ValueError(f"labels must have shape ({h * w},), got {tuple(labels.shape)}")
    known = labels != IGNORE
    if not bool(known.any()):
        raise ValueError("labels has no labelled node: nothing to propagate")
    if int(labels[known].max()) >= num_classes:
        raise ValueError(f"labels holds class {int(labels[known].max())} but num_classes "
                         f"is {num_classes}")

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = A2GNN(x.size(1), num_classes, hidden_channels=config.hidden_channels,
                      num_layers=config.num_layers, dropout=config.dropout, beta=config.beta,
                      negative=config.negative, layer=config.layer).to(x.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        kernel = None
        if colour is not None and config.reg_weight > 0:
            kernel = gaussian_kernel(colour.to(x.device), config.reg_radius, config.sigma_xy,
                                     config.sigma_rgb)
        use_boxes = boxes is not None and len(boxes) > 0
        current = labels
        epochs = config.stage1_epochs + config.stage2_epochs
        for epoch in range(epochs):
            stage2 = epoch >= config.stage1_epochs
            model.train()
            optimizer.zero_grad()
            logits, features = model(x, graph, edge_weight)
            loss = balanced_cross_entropy(logits, current, balanced=config.balanced_ce) \
                if bool((current != IGNORE).any()) else logits.sum() * 0
            probs = logits.softmax(dim=-1)
            if stage2 and kernel is not None:
                loss = loss + config.reg_weight * regularized_loss(probs, kernel,
                                                                   config.reg_radius)
            if use_boxes and config.mp_weight > 0 and (stage2 or config.mp_in_stage1):
                points = box_points(probs, boxes, grid_size)
                loss = loss + config.mp_weight * mp_loss(logits, features, boxes, points)
                if stage2 and config.consistency:
                    source = current if config.accumulate_consistency else labels
                    current = consistency_check(source, features.detach(), boxes, points,
                                                grid_size)
            loss.backward()
            optimizer.step()
            if on_epoch is not None:
                on_epoch(epoch + 1, epochs)
        model.eval()
        with torch.no_grad():
            return model(x, graph, edge_weight).logits.softmax(dim=-1)
    finally:
        torch.random.set_rng_state(generator_state)
