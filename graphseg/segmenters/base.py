"""The segmenter protocol: one interface for every dataset-level method.

A segmenter is built from its class names and a configuration, trained on a
:class:`~graphseg.data.torch_dataset.SegmentationSet`, and then segments any photo:

* ``Segmenter(class_names, background=0, **settings)``: the method's
  :class:`SegmenterConfig` subclass holds every setting (network, augmentation,
  schedule, loss weights); unknown or invalid settings are errors.
* :meth:`Segmenter.fit`: training through :func:`graphseg.training.fit` (seeded,
  checkpointed after every epoch with an exact resume, DDP under ``torchrun``,
  AMP on CUDA).  A method only defines :meth:`Segmenter.loss`, the loss of one
  batch.
* :meth:`Segmenter.predict`: ``(labels, probs)`` of one photo, with optional
  multi-scale and flip test-time augmentation and a dense CRF.
* :meth:`Segmenter.save` / :func:`load_segmenter`: one self-describing file
  (format and its version, method, configuration, class names, network
  architecture, weights, versions of the stack) that :func:`load_segmenter`
  turns back into the segmenter without any training argument.  It is read with
  ``torch.load(weights_only=True)``: a model file holds plain values and tensors,
  and loading one never runs code from it.

The methods register themselves in :data:`METHODS` by name (``"rrm"``,
``"two-step"``); the command line (``graphseg train METHOD``) reads it.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Dict, Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg import __version__
from graphseg.data.torch_dataset import SegmentationSet
from graphseg.data.transforms import image_to_tensor, normalize
from graphseg.metrics.confusion import ConfusionMatrix
from graphseg.nn.backbones.registry import build_backbone
from graphseg.refine.crf import PRESETS, dense_crf
from graphseg.training.engine import fit
from graphseg.utils.checks import check_choice, check_image, check_positive_int
from graphseg.utils.io import atomic_open, read_checkpoint

__all__ = ["FORMAT", "FORMAT_VERSION", "METHODS", "Segmenter", "SegmenterConfig",
           "load_segmenter"]

FORMAT = "graphseg-segmenter"
FORMAT_VERSION = 1
TRAINING_FORMAT = "graphseg-segmenter-training"
PathLike = Union[str, os.PathLike]

#: method name -> segmenter class, filled by :func:`register`
METHODS: Dict[str, Type["Segmenter"]] = {}

BACKBONES = ("espnetv2", "small-cnn", "efficientnet-lite0")


@dataclass
class SegmenterConfig:
    """Settings every network segmenter shares.

    Args:
        backbone (str, optional): ``"espnetv2"`` (the bundled encoder, pretrained on
            PASCAL VOC *segmentation*: not the ImageNet-only setting of the weakly
            supervised literature), ``"efficientnet-lite0"`` (ImageNet
            classification weights, the ``[imagenet]`` extra) or ``"small-cnn"``
            (from scratch, for tests). (default: ``"espnetv2"``)
        pretrained (bool, optional): start the backbone from its weights (``small-cnn``
            has none). (default: ``True``)
        crop (int, optional): training crop side, pixels. (default: ``321``)
        scale (tuple of float, optional): random rescale range. (default: ``(0.7, 1.3)``)
        flip (bool, optional): random horizontal flips. (default: ``True``)
        epochs (int, optional): passes over the training set. (default: ``20``)
        batch_size (int, optional): photos per batch (and process). (default: ``8``)
        optimizer (str, optional): ``"adam"`` (weight decay as an L2 term in the
            gradient), ``"adamw"`` (decoupled weight decay, Loshchilov & Hutter; DFR's
            thesis setting), or ``"sgd"`` with momentum, RRM's thesis setting (with
            ``lr=1e-3, weight_decay=5e-4`` for 40k steps of 8 photos); Adam reaches a
            usable model in the few epochs a CPU affords. (default: ``"adam"``)
        lr (float, optional): learning rate of the backbone; the heads get
            ``head_lr`` times it. (default: ``1e-4``)
        head_lr (float, optional): the heads' learning-rate factor (DeepLab's 10).
            (default: ``10.0``)
        momentum (float, optional): SGD momentum. (default: ``0.9``)
        weight_decay (float, optional): L2 weight decay. (default: ``1e-4``)
        schedule (str, optional): ``"poly"`` or ``"cosine"``. (default: ``"poly"``)
        seed (int, optional): initialisation, data order and augmentation.
            (default: ``0``)
        width (int, optional): ``small-cnn`` only: its first level's channels.
            (default: ``16``)
    """

    backbone: str = "espnetv2"
    pretrained: bool = True
    crop: int = 321
    scale: Tuple[float, float] = (0.7, 1.3)
    flip: bool = True
    epochs: int = 20
    batch_size: int = 8
    optimizer: str = "adam"
    lr: float = 1e-4
    head_lr: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "poly"
    seed: int = 0
    width: int = 16

    def __post_init__(self):
        check_choice(self.backbone, "backbone", BACKBONES)
        check_choice(self.schedule, "schedule", ("poly", "cosine"))
        check_choice(self.optimizer, "optimizer", ("adam", "adamw", "sgd"))
        for name in ("crop", "epochs", "batch_size", "width"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.seed, "seed", minimum=0)
        self.scale = tuple(float(s) for s in self.scale)
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be a range 0 < low <= high, got {self.scale}")
        for name in ("lr", "head_lr"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("momentum", "weight_decay"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        """Plain values (tuples as lists), as model files and checkpoints store them."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def register(cls: Type["Segmenter"]) -> Type["Segmenter"]:
    """Class decorator: make ``cls`` loadable and trainable by its ``method`` name."""
    METHODS[cls.method] = cls
    return cls


class Segmenter:
    """A trainable network segmenter (see the module notes).

    Args:
        class_names (sequence of str): every class, in id order (the background
            included): the network predicts ``len(class_names)`` classes.
        background (int, optional): the background class id. (default: ``0``)
        config (SegmenterConfig, optional): the settings; or give them as keywords.
            (default: the method's defaults)
        **settings: fields of the method's configuration.

    Attributes:
        net (torch.nn.Module): the network (:meth:`build_model`).
        history (list of float): the loss of every training epoch so far.
    """

    method: ClassVar[str] = ""
    Config: ClassVar[Type[SegmenterConfig]] = SegmenterConfig

    def __init__(self, class_names: Sequence[str], *, background: int = 0,
                 config: Optional[SegmenterConfig] = None, **settings):
        self.class_names = tuple(str(n) for n in class_names)
        if len(self.class_names) < 2:
            raise ValueError(f"class_names must name at least two classes (background "
                             f"included), got {self.class_names}")
        if not 0 <= int(background) < len(self.class_names):
            raise ValueError(f"background must be a class id in 0..{len(self.class_names) - 1},"
                             f" got {background}")
        self.background = int(background)
        if config is None:
            fields = {f.name for f in dataclasses.fields(self.Config)}
            unknown = sorted(set(settings) - fields)
            if unknown:
                raise TypeError(f"{type(self).__name__} has no setting {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(fields))}")
            config = self.Config(**settings)
        elif settings:
            raise TypeError("give config or settings, not both")
        if not isinstance(config, self.Config):
            raise TypeError(f"config must be a {self.Config.__name__}, got "
                            f"{type(config).__name__}")
        self.config = config
        self.net = self.build_net(pretrained=config.pretrained)
        self.history: list = []

    # -- the network ----------------------------------------------------------------

    def build_net(self, pretrained: bool) -> nn.Module:
        """The network of the configuration, initialised from ``config.seed`` (the
        backbone from its weights when ``pretrained`` and it has any)."""
        config = self.config
        spec = {"name": config.backbone}
        if config.backbone == "small-cnn":
            spec["width"] = config.width
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            backbone = build_backbone(
                spec, pretrained=pretrained and config.backbone != "small-cnn")
            return self.build_model(backbone)

    def build_model(self, backbone: nn.Module) -> nn.Module:
        """The method's network on ``backbone``: a module with ``backbone`` (its
        parameters get the backbone learning rate), ``segment(images)`` (full-size
        logits), ``architecture`` (plain values) and a ``forward`` that :meth:`loss`
        understands."""
        raise NotImplementedError

    # -- training -------------------------------------------------------------------

    def loss(self, net: nn.Module, batch: dict, epoch: int):
        """The loss of one batch (on the network's device): a scalar, or
        ``(scalar, logs)``.  ``net`` is :attr:`net` or its DDP wrapper: call it for
        the forward pass."""
        raise NotImplementedError

    def check_data(self, data: SegmentationSet) -> None:
        """Raise ``ValueError`` unless ``data`` carries what the method trains on."""

    def fit(self, data: SegmentationSet, *, checkpoint: Optional[PathLike] = None,
            resume: bool = True, device: Union[str, torch.device] = "cpu", amp: bool = False,
            progress: bool = True,
            on_epoch_end: Optional[Callable[[int, float], None]] = None) -> list:
        """Train :attr:`net` on ``data`` (see :func:`graphseg.training.fit` for the
        checkpoint, resume and distributed behaviour).

        Args:
            data (SegmentationSet): the training photos and labels; its crop, scale,
                flip and seed are set from the configuration.
            checkpoint (path, optional): written after every epoch, resumed from when
                it exists and ``resume``. (default: ``None``)
            resume (bool, optional): continue from ``checkpoint``. (default: ``True``)
            device (str or torch.device, optional): (default: ``"cpu"``)
            amp (bool, optional): mixed precision (CUDA). (default: ``False``)
            progress (bool, optional): a progress bar with the loss. (default: ``True``)
            on_epoch_end (callable, optional): ``on_epoch_end(epoch, loss)`` after every
                epoch and its checkpoint (e.g. validation). (default: ``None``)

        Returns:
            list: the loss of every epoch.
        """
        self.check_data(data)
        config = self.config
        data.crop, data.scale, data.flip, data.seed = (config.crop, config.scale, config.flip,
                                                       config.seed)
        device = torch.device(device)
        self.net.to(device)
        backbone = list(self.net.backbone.parameters())
        known = {id(p) for p in backbone}
        heads = [p for p in self.net.parameters() if id(p) not in known]
        groups = [{"params": backbone, "lr": config.lr},
                  {"params": heads, "lr": config.lr * config.head_lr}]
        if config.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                                        weight_decay=config.weight_decay)
        else:
            adam = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
            optimizer = adam(groups, lr=config.lr, weight_decay=config.weight_decay)
        settings = {k: v for k, v in config.to_dict().items()
                    if k not in ("epochs", "batch_size", "seed", "schedule")}

        def batch_loss(net, items, epoch):
            batch = data.batch(items, epoch)
            batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            return self.loss(net, batch, epoch)

        self.history = fit(
            self.net, optimizer, batch_loss, len(data), epochs=config.epochs,
            batch_size=config.batch_size, schedule=config.schedule, amp=amp, seed=config.seed,
            config={**settings, "class_names": list(self.class_names),
                    "background": self.background, "images": [str(p) for p in data.images]},
            meta={"format": TRAINING_FORMAT, "method": self.method},
            checkpoint=checkpoint, resume=resume, progress=progress,
            desc=f"train {self.method}", on_epoch_end=on_epoch_end)
        return self.history

    # -- inference ------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, image: np.ndarray, *, scales: Sequence[float] = (1.0,),
                flip: bool = False, crf: Optional[str] = None,
                max_side: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Class map and probabilities of one photo.

        Args:
            image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
            scales (sequence of float, optional): the photo's scales whose
                probabilities are averaged (the thesis' multi-scale testing, e.g.
                ``(0.75, 1, 1.25)``). (default: ``(1.0,)``)
            flip (bool, optional): also average the mirrored photo's. (default: ``False``)
            crf (str, optional): a dense-CRF preset (:data:`graphseg.refine.crf.PRESETS`)
                run on the probabilities. (default: ``None``, no CRF)
            max_side (int, optional): the network sees the photo with its longer
                side at most this many pixels (memory and time grow with the
                area); the result is upsampled to the photo's size.
                (default: ``None``, full size)

        Returns:
            tuple: ``(H, W)`` uint8 class ids and ``(C, H, W)`` float32 probabilities.
        """
        image = check_image(image)
        if not scales or any(not float(s) > 0 for s in scales):
            raise ValueError(f"scales must be positive numbers, got {scales}")
        if crf is not None:
            check_choice(crf, "crf", tuple(PRESETS))
        if max_side is not None:
            check_positive_int(max_side, "max_side")
        height, width = image.shape[:2]
        longer = max(height, width)
        x = image_to_tensor(image, max_side if max_side and longer > max_side else None)
        device = next(self.net.parameters()).device
        x = normalize(x).to(device)
        self.net.eval()
        size = tuple(x.shape[-2:])
        total, count = 0, 0
        for factor in scales:
            scaled = x if factor == 1 else F.interpolate(
                x, scale_factor=float(factor), mode="bilinear", align_corners=False,
                recompute_scale_factor=False)
            for mirrored in (False, True) if flip else (False,):
                inp = scaled.flip(-1) if mirrored else scaled
                logits = self.net.segment(inp)
                if mirrored:
                    logits = logits.flip(-1)
                logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
                total = total + logits.softmax(dim=1)
                count += 1
        probs = total / count
        if size != (height, width):
            probs = F.interpolate(probs, size=(height, width), mode="bilinear",
                                  align_corners=False)
        probs = probs[0].float().cpu().numpy()
        probs /= probs.sum(axis=0, keepdims=True)  # resampling drifts from a sum of 1
        if crf is not None:
            probs = dense_crf(image, probs, crf)
        return probs.argmax(axis=0).astype(np.uint8), probs.astype(np.float32)

    def evaluate(self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                 **options) -> ConfusionMatrix:
        """The confusion matrix of :meth:`predict` (with ``options``) on photos with
        ground truth (255 ignored); ``.miou()`` is the mean IoU."""
        confusion = ConfusionMatrix(len(self.class_names))
        for image, label in zip(images, labels):
            confusion.update(self.predict(image, **options)[0], label)
        return confusion

    # -- files ----------------------------------------------------------------------

    def state(self) -> dict:
        """What :meth:`save` writes (plain values and tensors)."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "method": self.method,
                "config": self.config.to_dict(), "class_names": list(self.class_names),
                "background": self.background,
                "architecture": self.net.architecture,
                "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                "history": [float(v) for v in self.history],
                "versions": {"graphseg": __version__, "torch": str(torch.__version__)}}

    def save(self, path: PathLike) -> None:
        """Write the segmenter to ``path`` atomically (see the module notes)."""
        write_model_state(path, self.state())

    @classmethod
    def from_state(cls, state: dict, source: str = "state") -> "Segmenter":
        """The segmenter of a :meth:`state` dict; the network built without
        pretrained weights, then given the saved ones."""
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        saved = dict(state["config"])
        unknown = sorted(set(saved) - fields)
        if unknown:
            raise ValueError(f"{source}: settings {unknown} are unknown to this graphseg's "
                             f"{cls.method}; was it written by a newer graphseg?")
        saved["pretrained"] = False  # the file's weights replace any starting point
        segmenter = cls(state["class_names"], background=state["background"],
                        config=cls.Config(**saved))
        segmenter.config.pretrained = bool(state["config"].get("pretrained", True))
        try:
            segmenter.net.load_state_dict(state["model"])
        except RuntimeError as error:
            raise ValueError(f"{source}: its weights do not fit its architecture "
                             f"({error})") from error
        segmenter.history = list(state.get("history", []))
        segmenter.net.eval()
        return segmenter


def load_segmenter(path: PathLike) -> Segmenter:
    """The segmenter saved at ``path`` by :meth:`Segmenter.save` (in eval mode, on
    the CPU), or saved in a ``graphseg train`` run folder (``RUN/model.pt``).

    Raises:
        FileNotFoundError: no such file (or run folder without a model).
        ValueError: the file is not a graphseg model (another checkpoint, a damaged
            file), or of a newer format or an unknown method.
    """
    path, state = read_model_state(path, FORMAT, FORMAT_VERSION, "graphseg model",
                                   "graphseg train")
    method = state.get("method")
    if method not in METHODS:
        raise ValueError(f"{path}: method {method!r} is unknown to this graphseg (known: "
                         f"{', '.join(sorted(METHODS))})")
    return METHODS[method].from_state(state, str(path))


def read_model_state(path: PathLike, kind: str, version: int, what: str,
                     command: str) -> Tuple[Path, dict]:
    """``(file, state)`` of a model file of format ``kind`` up to ``version``, or of a
    run folder's ``model.pt`` (written by ``command``); the checks of
    :func:`load_segmenter` and :func:`~graphseg.segmenters.load_few_shot`.

    Raises:
        FileNotFoundError: no such file (or run folder without a model).
        ValueError: another kind of file (another graphseg file, a damaged one), or a
            newer format version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path.parent}: no model.pt in this folder (a "
                                    f"'{command}' run writes one after its first epoch)")
    state = read_checkpoint(path, f"a {what} file")
    found = state.get("format")
    if found != kind:
        seen = f"a {found} file" if isinstance(found, str) else "no graphseg format entry"
        raise ValueError(f"{path}: not a {what} file ({seen}); '{command}' writes "
                         "RUN/model.pt")
    saved = state.get("format_version")
    if not isinstance(saved, int) or saved > version:
        raise ValueError(f"{path}: {what} format version {saved!r}; this graphseg "
                         f"({__version__}) reads up to {version}: upgrade graphseg")
    return path, state


def write_model_state(path: PathLike, state: dict) -> None:
    """Write a model file's ``state`` (plain values and tensors) to ``path`` atomically:
    an interrupted write leaves the previous file, never half of one."""
    with atomic_open(path, "wb") as file:
        torch.save(state, file)
