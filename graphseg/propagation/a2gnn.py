"""Per-image A2GNN training: from seed labels on a graph to dense probabilities.

A fresh model is trained on every image (thesis section 3.3.5): cross-entropy
on the labelled nodes, then, in the second stage, the regularised loss on the
graph and, for boxes, the multi-point loss and consistency checking.  The
defaults are the thesis' (section 3.4) and, where it is silent, the authors'
release; :meth:`A2GNNConfig.release` gives the release's per-supervision values.

:func:`train_a2gnn_batch` trains several photos' models at once
(:class:`~graphseg.nn.models.a2gnn_batch.BatchedA2GNN`: one block-diagonal graph,
per-photo parameters), each as it would be trained alone: :func:`train_a2gnn`
is its batch of one.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.typing import Adj

from graphseg.graph.adjacency import CSRAdjacency, GridAdjacency
from graphseg.losses import (
    balanced_cross_entropy,
    box_points,
    consistency_check,
    gaussian_kernel,
    kernel_matrix,
    mp_loss,
    regularized_loss,
)
from graphseg.nn.models.a2gnn import A2GNN
from graphseg.nn.models.a2gnn_batch import BatchedA2GNN
from graphseg.utils.checks import check_choice, check_finite
from graphseg.utils.constants import IGNORE, SUPERVISIONS

HIDDEN = 64          # A2GNNConfig.default's hidden channels
EPOCHS = (50, 50)    # and its epochs of the two stages, for every kind of annotation


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
    def default(cls, supervision: str, **overrides) -> "A2GNNConfig":
        """graphseg's settings for ``"boxes"``, ``"scribbles"``, ``"points"`` or
        ``"tags"`` (what :func:`~graphseg.propagation.propagate`, ``graphseg
        propagate`` and ``graphseg demo`` use): :meth:`release`'s with
        :data:`HIDDEN` channels and :data:`EPOCHS`, then ``overrides``.

        Chosen on the data kit's GrabCut-13 and MSRC-v2 val photos
        (benchmarks/README.md, issue 17): hidden 64 is as good as the thesis' 256
        at a third of the time, and 50 + 50 epochs as good as the release's
        150 + 150 for boxes (GrabCut-13 mean object IoU 0.838 against 0.835).
        """
        stage1, stage2 = EPOCHS
        settings = {"hidden_channels": HIDDEN, "stage1_epochs": stage1,
                    "stage2_epochs": stage2}
        return cls.release(supervision, **{**settings, **overrides})

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


class PhotoGraph(NamedTuple):
    """One photo's training problem for :func:`train_a2gnn_batch` (the arguments of
    :func:`train_a2gnn`, which documents them)."""

    x: Tensor
    graph: Adj
    labels: Tensor
    grid_size: Tuple[int, int]
    colour: Optional[Tensor] = None
    boxes: Optional[Tensor] = None
    edge_weight: Optional[Tensor] = None


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
    photo = PhotoGraph(x, graph, labels, grid_size, colour, boxes, edge_weight)
    return train_a2gnn_batch([photo], num_classes, config=config, seeds=[seed],
                             on_epoch=on_epoch)[0]


def train_a2gnn_batch(photos: Sequence[PhotoGraph], num_classes: int, *,
                      config: A2GNNConfig = A2GNNConfig(),
                      seeds: Optional[Sequence[int]] = None,
                      on_epoch: Optional[Callable[[int, int], None]] = None) -> List[Tensor]:
    """Train a fresh model per photo, all photos at once; their node probabilities.

    Photo ``b`` gets the result :func:`train_a2gnn` gives it alone with seed
    ``seeds[b]`` (up to float rounding): its model is initialised from that seed,
    its dropout drawn from its own random stream, and the loss is the sum of the
    photos' losses, so no photo's gradient depends on another.  With the A2GNN
    layer the attention runs once over the block-diagonal graph of all photos
    (:class:`~graphseg.nn.models.a2gnn_batch.BatchedA2GNN`), which is where the
    time goes; the comparison layers (``"gcn"``, ``"gat"``, ``"agnn"``) run
    photo by photo.  On a CPU the batch is not faster than the photos one by one
    (benchmarks/README.md, issue 17).

    Args:
        photos (sequence of PhotoGraph): the photos' graphs, seeds and losses'
            inputs, on one device.
        num_classes (int): classes, background (0) included, shared by all.
        config (A2GNNConfig, optional): hyper-parameters, shared by all.
            (default: ``A2GNNConfig()``)
        seeds (sequence of int, optional): one per photo. (default: ``0`` for all)
        on_epoch (callable, optional): as :func:`train_a2gnn`'s.

    Returns:
        list of Tensor: ``(N_b, num_classes)`` probabilities per photo, no gradient.

    Raises:
        ValueError: if a photo has no labelled node or inputs disagree in size
            (naming the photo's place in the batch).
    """
    photos = list(photos)
    if not photos:
        raise ValueError("photos is empty: nothing to train")
    first = photos[0].x
    seeds = [0] * len(photos) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(photos):
        raise ValueError(f"seeds has {len(seeds)} entries for {len(photos)} photos")
    for i, photo in enumerate(photos):
        where = "" if len(photos) == 1 else f"photo {i}: "
        try:
            _check_photo(photo, num_classes)
        except ValueError as error:
            raise ValueError(f"{where}{error}") from None
        if photo.x.size(1) != first.size(1) or photo.x.device != first.device:
            raise ValueError(f"{where}x has {photo.x.size(1)} features on {photo.x.device}, "
                             f"photo 0 {first.size(1)} on {first.device}: one model size "
                             "and one device for the batch")

    generator_state = torch.random.get_rng_state()
    try:
        models, streams = [], []
        for seed in seeds:
            torch.manual_seed(seed)
            models.append(A2GNN(first.size(1), num_classes,
                                hidden_channels=config.hidden_channels,
                                num_layers=config.num_layers, dropout=config.dropout,
                                beta=config.beta, negative=config.negative,
                                layer=config.layer))
            streams.append(_rng_state(first.device))
        model = _Models(models, photos, seeds, streams).to(first.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        losses = [_PhotoLoss(photo, config) for photo in photos]
        epochs = config.stage1_epochs + config.stage2_epochs
        for epoch in range(epochs):
            stage2 = epoch >= config.stage1_epochs
            model.train()
            optimizer.zero_grad()
            outputs = model()
            loss = sum(photo_loss(logits, features, stage2)
                       for photo_loss, (logits, features) in zip(losses, outputs))
            loss.backward()
            optimizer.step()
            if on_epoch is not None:
                on_epoch(epoch + 1, epochs)
        model.eval()
        with torch.no_grad():
            return [logits.softmax(dim=-1) for logits, _ in model()]
    finally:
        torch.random.set_rng_state(generator_state)


def _check_photo(photo: PhotoGraph, num_classes: int) -> None:
    h, w = photo.grid_size
    x, labels = photo.x, photo.labels
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


class _Models(torch.nn.Module):
    """The photos' models; calling it gives every photo's ``(logits, features)``.

    A2GNN: one :class:`BatchedA2GNN` over the block-diagonal graph, dropout from a
    generator per photo.  The other layers: the modules themselves, photo by photo,
    each run on its photo's own state of torch's generators (``streams``, as they
    were after its model was initialised), which is where a photo trained alone
    would draw its dropout.
    """

    def __init__(self, models: List[A2GNN], photos: List[PhotoGraph], seeds: List[int],
                 streams: List[tuple]):
        super().__init__()
        self.photos, self.streams = photos, streams
        sizes = [photo.x.size(0) for photo in photos]
        self.ptr = [0]
        for size in sizes:
            self.ptr.append(self.ptr[-1] + size)
        if models[0].layer != "a2gnn":
            self.models = torch.nn.ModuleList(models)
            return
        self.batched = BatchedA2GNN(models)
        self.x = torch.cat([photo.x for photo in photos])
        self.adj = CSRAdjacency.block_diagonal(_with_self_loops(photo) for photo in photos)
        counts = torch.tensor(sizes)
        node_model = torch.repeat_interleave(torch.arange(len(photos)), counts)
        self.edge_model = node_model.to(self.adj.device).index_select(0, self.adj.row)
        device = photos[0].x.device
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def forward(self) -> List[Tuple[Tensor, Tensor]]:
        if not hasattr(self, "batched"):
            outputs = []
            for b, (model, photo) in enumerate(zip(self.models, self.photos)):
                _set_rng_state(self.streams[b], photo.x.device)
                outputs.append(tuple(model(photo.x, photo.graph, photo.edge_weight)))
                self.streams[b] = _rng_state(photo.x.device)
            return outputs
        logits, features = self.batched(self.x, self.adj, self.ptr, self.edge_model,
                                        self.generators)
        return [(logits[a:b], features[a:b]) for a, b in zip(self.ptr[:-1], self.ptr[1:])]


def _rng_state(device: torch.device) -> tuple:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.random.get_rng_state(), cuda


def _set_rng_state(state: tuple, device: torch.device) -> None:
    torch.random.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _with_self_loops(photo: PhotoGraph) -> CSRAdjacency:
    """The photo's graph as a CSR with one self loop per node (the layer's default)."""
    graph = photo.graph
    if isinstance(graph, GridAdjacency):
        if photo.edge_weight is not None:
            raise ValueError("edge_weight must be None with a GridAdjacency: it carries "
                             "its own weights")
        return graph.to_csr(add_self_loops=True)
    if isinstance(graph, CSRAdjacency):
        if photo.edge_weight is not None:
            raise ValueError("edge_weight must be None with a CSRAdjacency: it carries "
                             "its own weights")
        if graph.self_loops:
            return graph
        graph, edge_weight = graph.to_edge_index()
    else:
        edge_weight = photo.edge_weight
    return CSRAdjacency.from_edge_index(graph, edge_weight, photo.x.size(0),
                                        add_self_loops=True)


class _PhotoLoss:
    """One photo's loss at an epoch (and its consistency-checked seeds)."""

    def __init__(self, photo: PhotoGraph, config: A2GNNConfig):
        self.config, self.photo = config, photo
        self.kernel = None
        if photo.colour is not None and config.reg_weight > 0:
            colour = photo.colour.to(photo.x.device)
            self.kernel = kernel_matrix(gaussian_kernel(colour, config.reg_radius,
                                                        config.sigma_xy, config.sigma_rgb),
                                        config.reg_radius)
        self.use_boxes = photo.boxes is not None and len(photo.boxes) > 0
        self.current = photo.labels

    def __call__(self, logits: Tensor, features: Tensor, stage2: bool) -> Tensor:
        config, photo, current = self.config, self.photo, self.current
        loss = balanced_cross_entropy(logits, current, balanced=config.balanced_ce) \
            if bool((current != IGNORE).any()) else logits.sum() * 0
        probs = logits.softmax(dim=-1)
        if stage2 and self.kernel is not None:
            loss = loss + config.reg_weight * regularized_loss(probs, self.kernel,
                                                               config.reg_radius)
        if self.use_boxes and config.mp_weight > 0 and (stage2 or config.mp_in_stage1):
            points = box_points(probs, photo.boxes, photo.grid_size)
            loss = loss + config.mp_weight * mp_loss(logits, features, photo.boxes, points)
            if stage2 and config.consistency:
                source = current if config.accumulate_consistency else photo.labels
                self.current = consistency_check(source, features.detach(), photo.boxes,
                                                 points, photo.grid_size)
        return loss
