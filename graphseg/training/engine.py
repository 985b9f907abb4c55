r"""The training engine: one :func:`fit` under every training recipe of graphseg.

A recipe (:func:`~graphseg.training.train_affinity_net`,
:func:`~graphseg.training.train_cam_classifier`) builds a model, an optimiser and
the loss of one batch; :func:`fit` owns the rest:

* **Data order.**  Every epoch, a sampler gives the items of the epoch (by
  default a ``DistributedSampler`` over the sample indices, seeded with ``seed``
  and the epoch: under ``torchrun`` every process gets its own shard) and the
  engine cuts them into batches of ``batch_size``.  The loss builds its batch
  from the items and the epoch, so augmentations drawn from ``(seed, epoch,
  index)`` are, like the order, a function of the epoch.
* **Optimisation.**  Gradients of ``accumulate`` batches are summed before each
  optimiser step (each loss divided by the group's size, so a group equals one
  batch of its union); the learning rate follows a schedule of the optimiser step
  (``"poly"``: :math:`(1 - t / T)^{0.9}`, ``"cosine"``: :math:`(1 + \cos(\pi t /
  T)) / 2` times the optimiser's initial rate); ``amp`` runs the loss under CUDA
  autocast with a gradient scaler.
* **Checkpoints.**  After every epoch rank 0 writes, atomically, the model,
  optimiser (and scaler) states, the epoch, the loss history, every process's
  random states, the configuration, every process's samples of the epoch and a
  checksum of its weights.  A later call with the same configuration resumes
  from it; since the data order and the learning rate follow from the epoch, a
  resumed run takes exactly the steps of an uninterrupted one.  A checkpoint of
  another configuration is refused with the differences.
* **Seeding.**  Python's, numpy's and torch's global generators are seeded with
  ``seed + rank`` for the run (dropout and other global draws are reproducible)
  and put back afterwards: the caller's random streams are left as they were.
* **Distributed.**  Under ``torchrun`` (``WORLD_SIZE > 1``) the process group is
  joined from the environment (gloo on the CPU, NCCL on CUDA) unless one exists,
  and the model is wrapped in ``DistributedDataParallel``.  Rank 0 writes the
  checkpoint and shows the progress bar.
* **Hooks.**  ``on_step`` after every optimiser step, ``on_epoch_end`` after
  every epoch and its checkpoint, for logging and evaluation.
"""
from __future__ import annotations

import contextlib
import math
import os
import random
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from graphseg.utils.checks import check_choice, check_positive_int
from graphseg.utils.distributed import rank as process_rank
from graphseg.utils.distributed import world_size
from graphseg.utils.io import atomic_open, read_checkpoint

__all__ = ["fit"]

PathLike = Union[str, os.PathLike]
LossFn = Callable[[nn.Module, List[Any], int], Union[Tensor, Tuple[Tensor, Dict[str, float]]]]

POLY_POWER = 0.9  # the exponent of DeepLab's poly schedule, which the papers we follow use
_SCHEDULES = {
    "poly": lambda progress: (1 - progress) ** POLY_POWER,
    "cosine": lambda progress: 0.5 * (1 + math.cos(math.pi * progress)),
}
# what fit writes into a checkpoint besides the recipe's meta
_STATE_KEYS = ("model", "optimizer", "scaler", "epoch", "history", "config", "rng", "shards",
               "checksums")


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, loss: LossFn, num_samples: int, *,
        epochs: int, batch_size: int, sampler=None, schedule: Optional[str] = None,
        accumulate: int = 1, amp: bool = False, average: str = "samples", seed: int = 0,
        config: Optional[dict] = None, meta: Optional[dict] = None,
        checkpoint: Optional[PathLike] = None, resume: bool = True, progress: bool = True,
        desc: str = "training",
        on_step: Optional[Callable[[int, int, float, Dict[str, float]], None]] = None,
        on_epoch_end: Optional[Callable[[int, float], None]] = None) -> List[float]:
    r"""Train ``model`` with ``optimizer`` on ``loss`` for ``epochs`` passes (see the
    module notes for data order, checkpoints, seeding and distribution).

    Args:
        model (torch.nn.Module): trained in place on the device of its parameters;
            left in eval mode.
        optimizer (torch.optim.Optimizer): over (some of) the model's parameters;
            its learning rates are the schedule's initial ones.
        loss (callable): ``loss(net, items, epoch)`` returns the loss of one batch,
            a scalar tensor, or a pair ``(loss, logs)`` with a dict of floats shown
            on the progress bar and passed to ``on_step``.  ``net`` is ``model``, or
            its ``DistributedDataParallel`` wrapper: call it for the forward pass.
            ``items`` are the batch's sampler items (sample indices by default).
        num_samples (int): the number of samples, recorded in the configuration
            and drawn from by the default sampler.
        epochs (int): passes over the samples.
        batch_size (int): items per batch (and process); the last batch of an
            epoch may be smaller.
        sampler (object, optional): the items of every epoch instead of the
            default sampler: ``set_epoch(epoch)``, then ``len()`` and iteration.
            Its order must follow from the epoch alone, or a resumed run differs.
            (default: ``None``, a seeded ``DistributedSampler`` over
            ``range(num_samples)``)
        schedule (str, optional): ``"poly"`` or ``"cosine"`` learning rates over
            the optimiser steps of the run. (default: ``None``, constant)
        accumulate (int, optional): batches whose gradients are summed before one
            optimiser step. (default: ``1``)
        amp (bool, optional): automatic mixed precision; needs a CUDA model.
            (default: ``False``)
        average (str, optional): the epoch's loss is the mean over its
            ``"samples"`` (each batch weighted by its size) or over its
            ``"batches"``. (default: ``"samples"``)
        seed (int, optional): the default sampler's order and the global random
            generators. (default: ``0``)
        config (dict, optional): the recipe's settings (plain values); saved with
            the engine's own (``epochs``, ``batch_size``, ``seed``,
            ``num_samples``, ``world_size``, ``schedule``, ``accumulate``,
            ``amp``) and compared on resume. (default: ``None``)
        meta (dict, optional): entries written at the top level of the checkpoint,
            for readers that know nothing of training (e.g. ``format`` and
            ``architecture``); a resumed checkpoint must hold the same.
            (default: ``None``)
        checkpoint (str or os.PathLike, optional): written after every epoch;
            resumed from when it exists and ``resume``. (default: ``None``)
        resume (bool, optional): continue from ``checkpoint``. (default: ``True``)
        progress (bool, optional): a tqdm bar over the batches (rank 0 only).
            (default: ``True``)
        desc (str, optional): the bar's label. (default: ``"training"``)
        on_step (callable, optional): ``on_step(epoch, step, loss, logs)`` after
            every optimiser step: the 0-based epoch and step of the run (resumed
            steps counted), the mean loss of its batches and their mean logs with
            the learning rate ``"lr"`` (the first parameter group's).
            (default: ``None``)
        on_epoch_end (callable, optional): ``on_epoch_end(epoch, loss)`` after
            every epoch and its checkpoint. (default: ``None``)

    Returns:
        list: the loss of every epoch (averaged over processes), resumed epochs
        included.

    Example:
        >>> import torch
        >>> from graphseg.training import fit
        >>> x = torch.linspace(-1, 1, 32)[:, None]
        >>> model = torch.nn.Linear(1, 1)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        >>> def loss(net, indices, epoch):
        ...     return torch.nn.functional.mse_loss(net(x[indices]), 3 * x[indices] + 1)
        >>> history = fit(model, optimizer, loss, len(x), epochs=40, batch_size=8,
        ...               progress=False)
        >>> history[-1] < 1e-4
        True
    """
    check_positive_int(num_samples, "num_samples")
    for value, name in ((epochs, "epochs"), (batch_size, "batch_size"),
                        (accumulate, "accumulate")):
        check_positive_int(value, name)
    check_positive_int(seed, "seed", minimum=0)
    if schedule is not None:
        check_choice(schedule, "schedule", tuple(_SCHEDULES))
    check_choice(average, "average", ("samples", "batches"))
    meta = dict(meta or {})
    clash = sorted(set(meta) & set(_STATE_KEYS))
    if clash:
        raise ValueError(f"meta must not set {clash}: fit writes those entries itself")
    try:
        device = next(model.parameters()).device
    except StopIteration:
        raise ValueError("model has no parameter") from None
    if amp and device.type != "cuda":
        raise ValueError(f"amp needs a model on a CUDA device, got one on {device}")

    owns_group = _join_group(device)
    net = None
    try:
        rank, world = process_rank(), world_size()
        settings = {"epochs": epochs, "batch_size": batch_size, "seed": seed,
                    "num_samples": num_samples, "world_size": world, "schedule": schedule,
                    "accumulate": accumulate, "amp": amp}
        clash = sorted(set(config or {}) & set(settings))
        if clash:
            raise ValueError(f"config must not set {clash}: fit records them itself")
        config = {**(config or {}), **settings}
        if sampler is None:
            sampler = DistributedSampler(range(num_samples), num_replicas=world, rank=rank,
                                         shuffle=True, seed=seed)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        with _seeded(seed + rank, device):
            start, history = 0, []
            if checkpoint is not None and resume and Path(checkpoint).is_file():
                state = read_checkpoint(checkpoint, "a graphseg training checkpoint")
                _check_resumable(state, checkpoint, meta, config)
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                scaler.load_state_dict(state["scaler"])
                _set_rng_states(state["rng"][rank], device)
                start, history = int(state["epoch"]), list(state["history"])
            if world > 1:
                net = DistributedDataParallel(
                    model, device_ids=[device] if device.type == "cuda" else None)
            else:
                net = model
            loop = _Loop(model, net, optimizer, scaler, loss, sampler, average, config, meta,
                         checkpoint, device, rank)
            bar = tqdm(total=epochs * loop.batches, initial=start * loop.batches, desc=desc,
                       unit="step", disable=not progress or rank != 0)
            try:
                for epoch in range(start, epochs):
                    history.append(loop.train(epoch, bar, on_step))
                    loop.save(epoch, history)
                    if on_epoch_end is not None:
                        on_epoch_end(epoch, history[-1])
            finally:
                bar.close()
        model.eval()
        return history
    finally:
        # DDP must go before its process group: freeing it afterwards can hang gloo
        del net
        if owns_group:
            dist.destroy_process_group()


class _Loop:
    """The epochs of :func:`fit`: batches, optimiser steps and the epoch's records."""

    def __init__(self, model: nn.Module, net: nn.Module, optimizer, scaler, loss: LossFn,
                 sampler, average: str, config: dict, meta: dict,
                 checkpoint: Optional[PathLike], device: torch.device, rank: int):
        self.model, self.net, self.optimizer, self.scaler = model, net, optimizer, scaler
        self.loss, self.sampler, self.average = loss, sampler, average
        self.config, self.meta, self.checkpoint = config, meta, checkpoint
        self.device, self.rank, self.world = device, rank, config["world_size"]
        self.batch_size, self.accumulate = config["batch_size"], config["accumulate"]
        self.batches = math.ceil(len(sampler) / self.batch_size)  # per epoch
        self.updates = math.ceil(self.batches / self.accumulate)  # optimiser steps per epoch
        self.total = config["epochs"] * self.updates
        self.factor = _SCHEDULES.get(config["schedule"])
        self.order: List[Any] = []

    def train(self, epoch: int, bar, on_step) -> float:
        """Train epoch ``epoch``; its loss, averaged over the processes."""
        self.sampler.set_epoch(epoch)
        self.order = order = list(self.sampler)
        self.model.train()
        values, counts = [], []
        for update in range(self.updates):
            step = epoch * self.updates + update
            if self.factor is not None:
                for group in self.optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * self.factor(step / self.total)
            first = update * self.accumulate
            batches = range(first, min(first + self.accumulate, self.batches))
            self.optimizer.zero_grad(set_to_none=True)
            logs: Dict[str, float] = {}
            for index in batches:
                items = order[index * self.batch_size:(index + 1) * self.batch_size]
                # replicas exchange gradients once per optimiser step, at its last batch
                sync = self.world == 1 or index == batches[-1]
                with contextlib.nullcontext() if sync else self.net.no_sync():
                    with torch.autocast(self.device.type, enabled=self.scaler.is_enabled()):
                        value, parts = _as_pair(self.loss(self.net, items, epoch))
                    self.scaler.scale(value / len(batches)).backward()
                values.append(value.item())
                counts.append(len(items))
                for name, part in parts.items():
                    logs[name] = logs.get(name, 0.0) + part / len(batches)
                bar.update()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            mean = float(np.mean(values[-len(batches):]))
            bar.set_postfix(epoch=epoch + 1, loss=f"{mean:.4f}",
                            **{name: f"{part:.3f}" for name, part in logs.items()})
            if on_step is not None:
                on_step(epoch, step, mean, {**logs, "lr": self.optimizer.param_groups[0]["lr"]})
        if self.average == "batches":
            loss = float(np.mean(values))
        else:
            loss = sum(v * n for v, n in zip(values, counts)) / sum(counts)
        if self.world > 1:
            total = torch.tensor([loss], dtype=torch.float64, device=self.device)
            dist.all_reduce(total)
            loss = float(total / self.world)
        return loss

    def save(self, epoch: int, history: List[float]) -> None:
        """Write the checkpoint of ``epoch`` (rank 0), with every process's items,
        random states and weight checksum."""
        if self.checkpoint is None:
            return
        record = {"order": self.order, "rng": _rng_states(self.device),
                  "checksum": float(sum(p.detach().double().sum()
                                        for p in self.model.parameters()))}
        records = [record]
        if self.world > 1:
            records = [None] * self.world
            dist.all_gather_object(records, record)
        if self.rank == 0:
            state = {**self.meta, "model": self.model.state_dict(),
                     "optimizer": self.optimizer.state_dict(),
                     "scaler": self.scaler.state_dict(), "epoch": epoch + 1,
                     "history": history, "config": self.config,
                     "rng": [r["rng"] for r in records], "shards": [r["order"] for r in records],
                     "checksums": [r["checksum"] for r in records]}
            with atomic_open(self.checkpoint, "wb") as file:
                torch.save(state, file)
        if self.world > 1:
            dist.barrier()  # nobody reads a half-finished epoch's checkpoint


def _as_pair(out) -> Tuple[Tensor, Dict[str, float]]:
    if isinstance(out, tuple):
        value, logs = out
        return value, dict(logs)
    return out, {}


def _check_resumable(state: dict, path: PathLike, meta: dict, config: dict) -> None:
    """Raise ``ValueError`` unless ``state`` continues a run of ``meta`` and ``config``."""
    for key, value in meta.items():
        if state.get(key) != value:
            raise ValueError(f"{path}: was written with {key} {state.get(key)!r}, this run "
                             f"has {value!r}; use resume=False to start over")
    if state.get("config") != config:
        old = state.get("config") or {}
        diff = {k: (old.get(k), config.get(k)) for k in sorted(set(old) | set(config))
                if old.get(k) != config.get(k)}
        raise ValueError(f"{path}: was written with another configuration "
                         f"(checkpoint, now): {diff}; use resume=False to start over")


def _join_group(device: torch.device) -> bool:
    """Join the process group of ``torchrun`` when there is none; whether we did."""
    world = world_size()
    if world == 1:
        return False
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world}, but this build of torch has no "
                           "torch.distributed")
    if dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL's collectives run on the current device
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed the global generators for the block, then put the caller's states back."""
    python, legacy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        random.seed(seed)
        np.random.seed(seed % 2 ** 32)  # numpy's legacy generator takes 32-bit seeds
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(legacy)


def _rng_states(device: torch.device) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    # plain lists and tensors: the checkpoint must load with weights_only=True
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(_tuples(states["python"]))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
