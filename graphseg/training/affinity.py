"""Training the affinity CNN on seed maps (thesis section 3.3.3, Eq. 3.9).

:func:`train_affinity_net` trains an :class:`~graphseg.nn.models.AffinityNet` on
``(image, seed map)`` pairs with :func:`graphseg.losses.affinity_loss`: random
crops and horizontal flips, SGD with momentum and the poly learning rate,
defaults of the authors' release (batch 4, crop 448, 12 epochs, lr 0.01,
weight decay 5e-4, radius 5, lambda 3).

The loop is :func:`graphseg.training.fit`'s:

* **Seeded.**  Sample order comes from a ``DistributedSampler`` seeded with
  ``seed`` and the epoch; the crop and flip of sample ``i`` in epoch ``e`` from
  a generator seeded with ``(seed, e, i)``.  So a run is reproducible (CPU, one
  thread), and a resumed run sees exactly the batches an uninterrupted one would.
* **Checkpointed.**  After every epoch the model, optimiser, epoch, history,
  random states and configuration are written atomically to ``checkpoint``; a
  later call with the same configuration resumes from it (``resume=True``).
  :func:`load_affinity_net` reloads such a file, or one written by
  :func:`save_affinity_net`, without knowing the configuration.
* **Distributed.**  Under ``torchrun`` (``WORLD_SIZE > 1``) the process group (gloo;
  NCCL for a CUDA ``device``, e.g. ``cuda:{LOCAL_RANK}``) is initialised from the
  environment (unless one already is), the model is wrapped in
  ``DistributedDataParallel`` and every process trains on its own shard of the
  samples; ``batch_size`` is per process.  Rank 0 writes the
  checkpoint and shows the progress bar.  The checkpoint records which samples
  every rank saw in the last epoch and a checksum of every rank's weights.
"""
from __future__ import annotations

import math
import os
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from graphseg.graph.image import label_map_to_nodes
from graphseg.losses.affinity import REG_NORMS, WEIGHTINGS, affinity_loss
from graphseg.nn.models.affinity_net import AffinityNet, build_backbone
from graphseg.training.engine import fit
from graphseg.utils.checks import check_choice, check_image, check_positive_int, check_seed_map
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import atomic_open, read_checkpoint

__all__ = ["load_affinity_net", "save_affinity_net", "train_affinity_net"]

FORMAT = "graphseg-affinity-net"
PathLike = Union[str, os.PathLike]
_CROP_TRIES = 10  # random crops tried before one is centred on a labelled pixel


def save_affinity_net(model: AffinityNet, path: PathLike) -> None:
    """Write the weights and architecture of ``model`` atomically, for
    :func:`load_affinity_net`."""
    if not isinstance(model, AffinityNet):
        raise TypeError(f"model must be an AffinityNet, got {type(model).__name__}")
    state = {"format": FORMAT, "architecture": model.architecture, "model": model.state_dict()}
    with atomic_open(path, "wb") as file:
        torch.save(state, file)


def _read(path: PathLike) -> dict:
    state = read_checkpoint(path, "a graphseg affinity-net checkpoint")
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a graphseg affinity-net checkpoint")
    return state


def load_affinity_net(path: PathLike, backbone: Optional[nn.Module] = None) -> AffinityNet:
    """An :class:`AffinityNet` from :func:`save_affinity_net` or a training
    checkpoint, in eval mode.

    Args:
        path (str or os.PathLike): the file.
        backbone (nn.Module, optional): the backbone module for a network with a
            custom backbone (its weights are loaded from the file); ``None`` for
            the built-in ones (:class:`~graphseg.nn.backbones.SmallCNN`,
            :class:`~graphseg.nn.backbones.ESPNetv2Encoder`). (default: ``None``)
    """
    state = _read(path)
    arch = state["architecture"]
    if backbone is None:
        if arch.get("backbone") is None:
            raise ValueError(f"{path}: the network has a custom backbone; pass backbone=")
        backbone = build_backbone(arch["backbone"])
    model = AffinityNet(backbone, arch["levels"], arch["affinity_channels"], arch["stride"],
                        arch.get("freeze_backbone", False))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit the architecture ({error})") from error
    return model.eval()


def _check_samples(samples) -> List[Tuple[Tensor, Tensor]]:
    """``(3, H, W)`` float images in [0, 1] and ``(H, W)`` int64 seeds."""
    out = []
    if len(samples) == 0:
        raise ValueError("samples is empty: nothing to train on")
    for i, pair in enumerate(samples):
        try:
            image, seeds = pair
        except (TypeError, ValueError):
            raise TypeError(f"samples[{i}] must be a pair (image, seed map)") from None
        image = check_image(image, f"samples[{i}] image")
        seeds = check_seed_map(seeds, f"samples[{i}] seed map", image.shape[:2])
        if not (seeds != IGNORE).any():
            raise ValueError(f"samples[{i}] seed map has no labelled pixel (all 255)")
        out.append((torch.from_numpy(image).permute(2, 0, 1).float().div(255),
                     torch.from_numpy(seeds.astype(np.int64))))
    return out


def _crop(seeds: Tensor, size: Tuple[int, int], rng: np.random.Generator) -> Tuple[int, int]:
    """Top-left corner of a ``size`` crop holding at least one labelled pixel."""
    height, width = seeds.shape
    ch, cw = size
    for _ in range(_CROP_TRIES):
        y, x = int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1))
        if bool((seeds[y:y + ch, x:x + cw] != IGNORE).any()):
            return y, x
    ys, xs = (seeds != IGNORE).nonzero(as_tuple=True)
    pick = int(rng.integers(0, ys.numel()))
    y = min(max(int(ys[pick]) - ch // 2, 0), height - ch)
    x = min(max(int(xs[pick]) - cw // 2, 0), width - cw)
    return y, x


def _batch(data, indices: Sequence[int], crop: int, stride: int, seed: int, epoch: int):
    """Normalised images, node-grid seeds and node-grid colours of one batch.

    Every image of the batch is cut to the same ``min(crop, smallest H) x
    min(crop, smallest W)`` window, so no padding is needed."""
    ch = min(crop, min(data[i][0].shape[1] for i in indices))
    cw = min(crop, min(data[i][0].shape[2] for i in indices))
    grid = (math.ceil(ch / stride), math.ceil(cw / stride))
    images, labels = [], []
    for i in indices:
        image, seeds = data[i]
        rng = np.random.default_rng([seed, epoch, i])
        y, x = _crop(seeds, (ch, cw), rng)
        image, seeds = image[:, y:y + ch, x:x + cw], seeds[y:y + ch, x:x + cw]
        if rng.random() < 0.5:
            image, seeds = image.flip(-1), seeds.flip(-1)
        images.append(image)
        labels.append(label_map_to_nodes(seeds, grid).view(grid))
    images = torch.stack(images)
    colour = F.avg_pool2d(images, stride, ceil_mode=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std, torch.stack(labels), colour


def train_affinity_net(model: AffinityNet, samples: Sequence[Tuple[np.ndarray, np.ndarray]],
                       epochs: int = 12, batch_size: int = 4, crop: int = 448,
                       lr: float = 0.01, weight_decay: float = 5e-4, momentum: float = 0.9,
                       radius: int = 5, window: str = "disk", reg_weight: float = 3.0,
                       sigma_xy: float = 6.0, sigma_rgb: float = 0.1,
                       weighting: str = "release", background: int = 0,
                       reg_norm: str = "nodes", seed: int = 0,
                       checkpoint: Optional[PathLike] = None, resume: bool = True,
                       progress: bool = True,
                       callback: Optional[Callable[[int, float], None]] = None,
                       device: Union[str, torch.device] = "cpu") -> List[float]:
    r"""Train ``model`` with :math:`L_{Ac} + \lambda L_{Ar}` (Eq. 3.9) on seed maps.

    Args:
        model (AffinityNet): trained in place; left in eval mode.
        samples (sequence): ``(image, seeds)`` pairs: ``(H, W, 3)`` uint8 RGB and
            ``(H, W)`` uint8 seed labels, 255 = unknown (e.g. from
            :mod:`graphseg.seeds`), each with at least one labelled pixel.
        epochs (int, optional): passes over the samples. (default: ``12``)
        batch_size (int, optional): crops per step and process. (default: ``4``)
        crop (int, optional): crop side in pixels; a batch is cut to its
            smallest image when that is smaller. (default: ``448``)
        lr (float, optional): initial learning rate, poly decay
            ``lr * (1 - t / T) ** 0.9``. (default: ``0.01``)
        weight_decay (float, optional): SGD's weight decay. (default: ``5e-4``)
        momentum (float, optional): SGD's momentum. (default: ``0.9``)
        radius (int, optional): passed to :func:`graphseg.losses.affinity_loss`.
            (default: ``5``)
        window (str, optional): passed to :func:`graphseg.losses.affinity_loss`.
            (default: ``"disk"``)
        reg_weight (float, optional): passed to
            :func:`graphseg.losses.affinity_loss`. (default: ``3.0``)
        sigma_xy (float, optional): passed to :func:`graphseg.losses.affinity_loss`.
            (default: ``6.0``)
        sigma_rgb (float, optional): passed to
            :func:`graphseg.losses.affinity_loss`. (default: ``0.1``)
        weighting (str, optional): passed to :func:`graphseg.losses.affinity_loss`.
            (default: ``"release"``)
        background (int, optional): passed to
            :func:`graphseg.losses.affinity_loss`. (default: ``0``)
        reg_norm (str, optional): passed to :func:`graphseg.losses.affinity_loss`.
            (default: ``"nodes"``)
        seed (int, optional): sample order, crops and flips. (default: ``0``)
        checkpoint (str or os.PathLike, optional): written after every epoch;
            resumed from when it exists and ``resume``. (default: ``None``, none written)
        resume (bool, optional): continue from ``checkpoint``; its
            configuration must match. (default: ``True``)
        progress (bool, optional): a tqdm bar (rank 0 only). (default: ``True``)
        callback (callable, optional): ``callback(epoch, loss)`` after every
            epoch (0-based) and its checkpoint. (default: ``None``)
        device (str or torch.device, optional): (default: ``"cpu"``)

    Returns:
        list: the mean loss of every epoch (averaged over processes), the
        resumed epochs included.
    """
    if not isinstance(model, AffinityNet):
        raise TypeError(f"model must be an AffinityNet, got {type(model).__name__}")
    data = _check_samples(samples)
    for value, name in ((epochs, "epochs"), (batch_size, "batch_size"), (crop, "crop"),
                        (radius, "radius")):
        check_positive_int(value, name)
    check_choice(window, "window", ("square", "disk"))
    check_choice(weighting, "weighting", WEIGHTINGS)
    check_choice(reg_norm, "reg_norm", REG_NORMS)
    for value, name in ((lr, "lr"), (sigma_xy, "sigma_xy"), (sigma_rgb, "sigma_rgb")):
        if not float(value) > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    for value, name in ((weight_decay, "weight_decay"), (momentum, "momentum"),
                        (reg_weight, "reg_weight")):
        if not float(value) >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")

    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameter")
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    reg_weight, sigma_xy, sigma_rgb = float(reg_weight), float(sigma_xy), float(sigma_rgb)
    background = int(background)
    config = {"crop": crop, "lr": float(lr), "weight_decay": float(weight_decay),
              "momentum": float(momentum), "radius": radius, "window": window,
              "reg_weight": reg_weight, "sigma_xy": sigma_xy, "sigma_rgb": sigma_rgb,
              "weighting": weighting, "background": background, "reg_norm": reg_norm}

    def loss(net: nn.Module, indices: List[int], epoch: int):
        images, labels, colour = _batch(data, indices, crop, model.stride, seed, epoch)
        out = net(images.to(device))
        value, parts = affinity_loss(out.affinity, labels.to(device), colour.to(device),
                                     radius, reg_weight, sigma_xy, sigma_rgb, window, weighting,
                                     background, reg_norm)
        return value, {"ac": parts["ac"], "ar": parts["ar"]}

    # average="batches": the epoch's loss is the mean of its steps, as this loop has
    # always reported it (its last batch may be smaller)
    return fit(model, optimizer, loss, len(data), epochs=epochs, batch_size=batch_size,
               schedule="poly", average="batches", seed=seed, config=config,
               meta={"format": FORMAT, "architecture": model.architecture},
               checkpoint=checkpoint, resume=resume, progress=progress, desc="affinity net",
               on_epoch_end=callback)
