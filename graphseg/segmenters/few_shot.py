r"""Few-shot segmenters: an object in new photos from K photos with its mask.

Both take the same inputs at prediction time, ``predict(supports, image)`` with
``supports`` a list of ``(photo, mask)`` pairs (mask: 1 object, 0 background, 255
unknown), and return ``(mask, probs)`` for the photo:

* :class:`PrototypeSegmenter`: the training-free baseline.  The frozen encoder's
  mid-level features, a background and a foreground prototype by masked average
  pooling over the support, every query pixel given to the nearer one by cosine
  similarity (PANet's non-parametric matching; K shots: the mean of the K
  probability maps).  Needs no training and no model file.
* :class:`SCLSegmenter`: SCL (thesis chapter 5, :class:`~graphseg.nn.models.SCLNet`):
  the trainable parts on the frozen encoder learn from episodes of *other* classes
  (:meth:`SCLSegmenter.fit` through :func:`graphseg.training.fit`: seeded, resumable,
  DDP); K > 1 shots are fused by CGM (Eq. 5.15-5.17) without retraining.

``refine=`` refines the prediction over the query photo's own graph
(:func:`graphseg.propagation.refinement.refine_probabilities`: a random walk, A2GNN
from the confident pixels, or the dense CRF).

Photos are seen at ``size x size`` pixels (resized, as CANet does); the result is
resized back to the photo.  The encoder is frozen, so a photo's encoding is computed
once and reused: in training every photo is encoded once (half precision) and
episodes only run the trainable parts.

Example:
    >>> import numpy as np
    >>> from graphseg.segmenters import PrototypeSegmenter
    >>> rng = np.random.default_rng(0)
    >>> def photo(y, x):
    ...     image = rng.integers(90, 110, (64, 64, 3)).astype(np.uint8)
    ...     mask = np.zeros((64, 64), np.uint8)
    ...     image[y:y + 24, x:x + 24], mask[y:y + 24, x:x + 24] = (200, 40, 40), 1
    ...     return image, mask
    >>> support, (query, truth) = photo(8, 8), photo(30, 28)
    >>> mask, probs = PrototypeSegmenter(encoder="small-cnn", size=64).predict(
    ...     [support], query)
    >>> mask.shape, probs.shape, bool(((mask == 1) == (truth == 1)).mean() > 0.9)
    ((64, 64), (2, 64, 64), True)
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg import __version__
from graphseg.data.episodes import ClassPhotos, Episode, EpisodeSampler
from graphseg.data.transforms import normalize
from graphseg.metrics.few_shot import FewShotScores
from graphseg.nn.backbones.registry import build_backbone
from graphseg.nn.functional.few_shot import prototype_segmentation
from graphseg.nn.models.scl import FewShotFeatures, SCLNet, encode_few_shot
from graphseg.propagation.refinement import REFINEMENTS, refine_probabilities
from graphseg.segmenters.base import read_model_state, write_model_state
from graphseg.training.engine import fit
from graphseg.utils.checks import check_choice, check_image, check_positive_int
from graphseg.utils.constants import IGNORE

__all__ = ["EncodedSupports", "FEW_SHOT_FORMAT", "PrototypeSegmenter", "SCLConfig", "SCLSegmenter",
           "load_few_shot"]

FEW_SHOT_FORMAT = "graphseg-few-shot"
FEW_SHOT_VERSION = 1
ENCODERS = ("espnetv2", "small-cnn", "efficientnet-lite0")
PathLike = Union[str, os.PathLike]
Support = Tuple[np.ndarray, np.ndarray]


def _check_supports(supports: Sequence[Support]) -> List[Support]:
    supports = list(supports)
    if not supports:
        raise ValueError("supports is empty: give at least one (photo, mask) pair")
    out = []
    for k, pair in enumerate(supports):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"supports[{k}] must be a (photo, mask) pair")
        image = check_image(pair[0])
        mask = np.asarray(pair[1])
        if mask.shape != image.shape[:2]:
            raise ValueError(f"supports[{k}]: the mask is {mask.shape} but the photo is "
                             f"{image.shape[:2]}")
        if not np.isin(mask, (0, 1, IGNORE)).all():
            raise ValueError(f"supports[{k}]: the mask must hold 0 (background), 1 (object) "
                             f"and 255 (unknown); got values {np.unique(mask)[:6].tolist()}")
        if not (mask == 1).any():
            raise ValueError(f"supports[{k}]: the mask marks no object pixel")
        out.append((image, mask.astype(np.uint8)))
    return out


def _photo_tensor(image: np.ndarray, size: int) -> Tensor:
    """``(1, 3, size, size)`` normalised tensor of a uint8 photo."""
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    return normalize(F.interpolate(x, size=(size, size), mode="bilinear",
                                   align_corners=False))


def _mask_tensor(mask: np.ndarray, size: int) -> Tensor:
    """``(1, size, size)`` int64 mask, nearest-resized (255 kept)."""
    x = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    return F.interpolate(x, size=(size, size), mode="nearest")[0].long()


class EncodedSupports(NamedTuple):
    """Support photos as :meth:`~PrototypeSegmenter.encode_supports` returns them."""

    features: list
    masks: List[Tensor]


class _FewShot:
    """What both segmenters share: prediction at the photo's size, refinement, and
    the episode evaluation (each photo encoded once)."""

    size: int

    def _encode(self, image: np.ndarray):
        """The photo's encoding (the frozen encoder's features at ``size x size``)."""
        raise NotImplementedError

    def _guided(self, supports: list, masks: List[Tensor], query, cgm: bool) -> Tensor:
        """``(1, 2, h, w)`` probabilities of the encoded query from encoded supports."""
        raise NotImplementedError

    def _finish(self, probs: Tensor, image: np.ndarray, refine: Optional[str],
                seed: int) -> Tuple[np.ndarray, np.ndarray]:
        probs = F.interpolate(probs.float(), size=image.shape[:2], mode="bilinear",
                              align_corners=False)[0]
        probs = (probs / probs.sum(dim=0, keepdim=True)).cpu().numpy()
        if refine is not None:
            probs = refine_probabilities(image, probs, refine, seed=seed)
        return probs.argmax(axis=0).astype(np.uint8), probs.astype(np.float32)

    def _mask(self, mask: np.ndarray) -> Tensor:
        return _mask_tensor(mask, self.size).to(next(self.net.parameters()).device)

    @torch.no_grad()
    def predict(self, supports: Sequence[Support], image: np.ndarray, *, cgm: bool = True,
                refine: Optional[str] = None, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """The object's mask in ``image`` from the annotated ``supports``.

        Args:
            supports (sequence): ``(photo, mask)`` pairs, ``(H, W, 3)`` uint8 RGB and
                ``(H, W)`` uint8 with 1 = object, 0 = background, 255 = unknown; or
                their :meth:`encode_supports`.
            image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB, the query.
            cgm (bool, optional): K > 1: fuse the shots by CGM (SCL); ``False``
                averages them. (default: ``True``)
            refine (str, optional): ``"walk"``, ``"a2gnn"`` or ``"crf"``: refine the
                prediction over the photo's graph (see the module notes).
                (default: ``None``)
            seed (int, optional): ``refine="a2gnn"``'s seed. (default: ``0``)

        Returns:
            tuple: ``(H, W)`` uint8 mask (1 = object) and ``(2, H, W)`` float32
            probabilities (background, object).
        """
        if not isinstance(supports, EncodedSupports):
            supports = self.encode_supports(supports)
        image = check_image(image)
        if refine is not None:
            check_choice(refine, "refine", REFINEMENTS)
        self.net.eval()
        probs = self._guided(supports.features, supports.masks, self._encode(image), cgm)
        return self._finish(probs, image, refine, seed)

    @torch.no_grad()
    def encode_supports(self, supports: Sequence[Support]) -> "EncodedSupports":
        """The support photos encoded once, for :meth:`predict` on many photos (the
        encoder is frozen: the encoding does not depend on the query)."""
        supports = _check_supports(supports)
        self.net.eval()
        return EncodedSupports([self._encode(photo) for photo, _ in supports],
                               [self._mask(mask) for _, mask in supports])

    @torch.no_grad()
    def evaluate(self, photos: ClassPhotos, episodes: Sequence[Episode], *, cgm: bool = True,
                 refine: Optional[str] = None, seed: int = 0,
                 progress: bool = False) -> FewShotScores:
        """The scores of :meth:`predict` on ``episodes`` of ``photos`` (each photo
        encoded once), against the query masks at the photos' size."""
        if refine is not None:
            check_choice(refine, "refine", REFINEMENTS)
        self.net.eval()
        cache: dict = {}

        def encoded(i: int):
            if i not in cache:
                cache[i] = self._encode(photos.images[i])
            return cache[i]

        scores = FewShotScores()
        items = episodes
        if progress:
            from tqdm.auto import tqdm
            items = tqdm(episodes, desc="episodes", unit="episode")
        for episode in items:
            probs = self._guided([encoded(i) for i in episode.support],
                                 [self._mask(photos.mask(i, episode.cls))
                                  for i in episode.support], encoded(episode.query), cgm)
            pred, _ = self._finish(probs, photos.images[episode.query], refine, seed)
            scores.update(pred, photos.mask(episode.query, episode.cls), episode.cls)
        return scores


class PrototypeSegmenter(_FewShot):
    """The training-free prototype baseline (see the module notes).

    Args:
        encoder (str, optional): ``"espnetv2"`` (bundled, PASCAL VOC-pretrained),
            ``"efficientnet-lite0"`` (ImageNet, the ``[imagenet]`` extra) or
            ``"small-cnn"`` (random weights, for tests). (default: ``"espnetv2"``)
        size (int, optional): the side photos are resized to. (default: ``320``)
        scale (float, optional): the cosine similarity's temperature.
            (default: ``20.0``, PANet's)
    """

    method = "prototype"

    def __init__(self, *, encoder: str = "espnetv2", size: int = 320, scale: float = 20.0):
        check_choice(encoder, "encoder", ENCODERS)
        check_positive_int(size, "size", minimum=16)
        self.encoder_name, self.size, self.scale = encoder, int(size), float(scale)
        spec = {"name": encoder} if encoder != "small-cnn" else {"name": encoder, "width": 16}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # small-cnn's random weights
            #: the frozen encoder (SCL's encoding of its stride-8 and 16 levels)
            self.net = build_backbone(spec, pretrained=encoder != "small-cnn").eval()
        self.net.requires_grad_(False)

    def describe(self) -> str:
        return (f"the training-free prototype baseline (masked-average prototypes on the "
                f"frozen {self.encoder_name} encoder's features, cosine matching)")

    def _encode(self, image):
        device = next(self.net.parameters()).device
        return encode_few_shot(self.net, _photo_tensor(check_image(image),
                                                       self.size).to(device)).mid

    def _guided(self, supports, masks, query, cgm):
        return torch.stack([prototype_segmentation(query, features, mask,
                                                   scale=self.scale).softmax(dim=1)
                            for features, mask in zip(supports, masks)]).mean(dim=0)


@dataclass
class SCLConfig:
    """Settings of :class:`SCLSegmenter`.

    Args:
        encoder (str, optional): the frozen encoder, ``"espnetv2"`` (bundled, PASCAL
            VOC-pretrained: VOC's classes overlap the test classes of most few-shot
            splits, so this is not the ImageNet-only setting of the literature),
            ``"efficientnet-lite0"`` (ImageNet classification, the ``[imagenet]``
            extra) or ``"small-cnn"`` (random weights, for tests).
            (default: ``"espnetv2"``)
        pretrained (bool, optional): the encoder's weights. (default: ``True``)
        width (int, optional): ``small-cnn``'s first level's channels. (default: ``16``)
        size (int, optional): the side photos are resized to. (default: ``320``)
        channels (int, optional): ``d``, the FPMs' and decoder's width.
            (default: ``64``; the thesis: 256, several times the CPU time)
        sgm (bool, optional): the self-guided module; ``False`` is the baseline.
            (default: ``True``)
        prior (bool, optional): PFENet's training-free prior mask in the query FPM.
            (default: ``False``)
        dropout (float, optional): dropout after the encoder's projection.
            (default: ``0.5``)
        epochs (int, optional): (default: ``10``)
        episodes (int, optional): training episodes per epoch. (default: ``1000``)
        batch_size (int, optional): episodes per step. (default: ``4``, the thesis')
        optimizer (str, optional): ``"sgd"`` (momentum 0.9, CANet's) or ``"adam"``.
            (default: ``"adam"``)
        lr (float, optional): (default: ``1e-3``)
        weight_decay (float, optional): (default: ``5e-4``, CANet's)
        schedule (str, optional): ``"poly"`` or ``"cosine"``. (default: ``"poly"``)
        flip (bool, optional): mirror each episode photo at random. (default: ``True``)
        seed (int, optional): initialisation, episodes and flips. (default: ``0``)
    """

    encoder: str = "espnetv2"
    pretrained: bool = True
    width: int = 16
    size: int = 320
    channels: int = 64
    sgm: bool = True
    prior: bool = False
    dropout: float = 0.5
    epochs: int = 10
    episodes: int = 1000
    batch_size: int = 4
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    schedule: str = "poly"
    flip: bool = True
    seed: int = 0

    def __post_init__(self):
        check_choice(self.encoder, "encoder", ENCODERS)
        check_choice(self.optimizer, "optimizer", ("adam", "sgd"))
        check_choice(self.schedule, "schedule", ("poly", "cosine"))
        for name in ("width", "channels", "epochs", "episodes", "batch_size"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.size, "size", minimum=16)
        check_positive_int(self.seed, "seed", minimum=0)
        if not float(self.lr) > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not float(self.weight_decay) >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class SCLSegmenter(_FewShot):
    """SCL (see the module notes).

    Args:
        config (SCLConfig, optional): the settings; or give them as keywords.
        **settings: fields of :class:`SCLConfig`.

    Attributes:
        net (SCLNet): the network; ``history`` the loss of every epoch;
        ``classes`` the class names it was trained on (for the record).
    """

    method = "scl"

    def __init__(self, config: Optional[SCLConfig] = None, **settings):
        if config is None:
            fields = {f.name for f in dataclasses.fields(SCLConfig)}
            unknown = sorted(set(settings) - fields)
            if unknown:
                raise TypeError(f"SCLSegmenter has no setting {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(fields))}")
            config = SCLConfig(**settings)
        elif settings:
            raise TypeError("give config or settings, not both")
        self.config = config
        self.size = config.size
        self.net = self._build(pretrained=config.pretrained)
        self.history: list = []
        self.classes: list = []

    def _build(self, pretrained: bool) -> SCLNet:
        config = self.config
        spec = {"name": config.encoder}
        if config.encoder == "small-cnn":
            spec["width"] = config.width
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            encoder = build_backbone(spec, pretrained=pretrained
                                     and config.encoder != "small-cnn")
            return SCLNet(encoder, channels=config.channels, sgm=config.sgm,
                          prior=config.prior, dropout=config.dropout, seed=config.seed)

    def describe(self) -> str:
        trained = ", ".join(self.classes[:6]) + (" ..." if len(self.classes) > 6 else "")
        return (f"SCL ({'SGM' if self.config.sgm else 'baseline'}, {self.config.encoder} "
                f"encoder), trained on {len(self.classes)} classes ({trained})")

    # -- training -------------------------------------------------------------------

    def encode_photos(self, photos: ClassPhotos, device: Union[str, torch.device] = "cpu",
                      progress: bool = False) -> list:
        """Every photo's encoding (half precision, on the CPU) and its label map at
        ``size x size``: what training episodes are assembled from."""
        self.net.to(device)
        out = []
        items = range(len(photos))
        if progress:
            from tqdm.auto import tqdm
            items = tqdm(items, desc="encode photos", unit="photo")
        for i in items:
            features = self.net.encode(_photo_tensor(photos.images[i], self.size).to(device))
            label = _mask_tensor(photos.labels[i], self.size)[0].to(torch.uint8)
            out.append((FewShotFeatures(*(f.half().cpu() for f in features)), label))
        return out

    def _episode_batch(self, encoded: list, episodes: Sequence[Episode], flips, device):
        """Stacked support / query features and masks of 1-shot episodes."""
        parts = {"support": [], "query": [], "support_mask": [], "query_mask": []}
        for episode, (flip_s, flip_q) in zip(episodes, flips):
            for key, photo, flip in (("support", episode.support[0], flip_s),
                                     ("query", episode.query, flip_q)):
                features, label = encoded[photo]
                mask = torch.where(label == episode.cls, 1, 0).masked_fill(label == IGNORE,
                                                                           IGNORE)
                if flip:
                    features = FewShotFeatures(*(f.flip(-1) for f in features))
                    mask = mask.flip(-1)
                parts[key].append(features)
                parts[f"{key}_mask"].append(mask.long())
        stack = {k: FewShotFeatures(*(torch.cat([f[j] for f in v]).float().to(device)
                                      for j in range(2)))
                 for k, v in parts.items() if k in ("support", "query")}
        masks = {k: torch.stack(v).to(device) for k, v in parts.items() if k.endswith("mask")}
        return stack["support"], masks["support_mask"], stack["query"], masks["query_mask"]

    def fit(self, photos: ClassPhotos, classes: Sequence[int], *,
            checkpoint: Optional[PathLike] = None, resume: bool = True,
            device: Union[str, torch.device] = "cpu", progress: bool = True,
            on_epoch_end: Optional[Callable[[int, float], None]] = None,
            encoded: Optional[list] = None) -> list:
        """Train on 1-shot episodes of ``classes`` drawn from ``photos``.

        Args:
            photos (ClassPhotos): the training photos and their class maps.
            classes (sequence of int): the training classes (e.g. the other folds').
            checkpoint (path, optional): written after every epoch, resumed from when
                it exists and ``resume``. (default: ``None``)
            resume (bool, optional): (default: ``True``)
            device (str or torch.device, optional): (default: ``"cpu"``)
            progress (bool, optional): progress bars. (default: ``True``)
            on_epoch_end (callable, optional): ``on_epoch_end(epoch, loss)``.
            encoded (list, optional): :meth:`encode_photos` of ``photos`` by a segmenter
                with the same encoder and size (the encoder is frozen: models trained
                on one set of photos can share it). (default: ``None``, computed)

        Returns:
            list: the loss of every epoch.
        """
        config = self.config
        sampler = EpisodeSampler(photos, classes, shots=1, episodes_per_epoch=config.episodes,
                                 seed=config.seed)
        device = torch.device(device)
        if encoded is None:
            encoded = self.encode_photos(photos, device, progress)
        elif len(encoded) != len(photos):
            raise ValueError(f"encoded holds {len(encoded)} photos but photos has "
                             f"{len(photos)}")
        params = list(self.net.trainable_parameters())
        if config.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9,
                                        weight_decay=config.weight_decay)
        else:
            optimizer = torch.optim.Adam(params, lr=config.lr,
                                         weight_decay=config.weight_decay)
        names = photos.class_names
        self.classes = [names[c] if names and c < len(names) else str(c) for c in
                        sampler.classes]

        def batch_loss(net, items, epoch):
            episodes = [sampler.episode(int(i), epoch) for i in items]
            flips = [tuple(np.random.default_rng((config.seed, epoch, int(i), 1)).random(2)
                           < 0.5) if config.flip else (False, False) for i in items]
            support, support_mask, query, query_mask = self._episode_batch(
                encoded, episodes, flips, device)
            out = net(support, support_mask, query)
            total, logs = self.net.loss(out, support_mask, query_mask)
            logs.pop("loss", None)  # the engine shows its own
            return total, logs

        self.history = fit(
            self.net, optimizer, batch_loss, config.episodes, epochs=config.epochs,
            batch_size=config.batch_size, schedule=config.schedule, seed=config.seed,
            config={k: v for k, v in config.to_dict().items()
                    if k not in ("epochs", "batch_size", "seed", "schedule")}
            | {"classes": list(map(int, classes)), "photos": list(photos.names)},
            meta={"format": "graphseg-few-shot-training", "method": self.method},
            checkpoint=checkpoint, resume=resume, progress=progress, desc="train scl",
            on_epoch_end=on_epoch_end)
        self.net.eval()
        return self.history

    # -- inference ------------------------------------------------------------------

    def _encode(self, image):
        device = next(self.net.parameters()).device
        return self.net.encode(_photo_tensor(check_image(image), self.size).to(device))

    def _guided(self, supports, masks, query, cgm):
        return self.net.predict(supports, masks, query, cgm=cgm)

    # -- files ----------------------------------------------------------------------

    def state(self) -> dict:
        """What :meth:`save` writes (plain values and tensors)."""
        return {"format": FEW_SHOT_FORMAT, "format_version": FEW_SHOT_VERSION,
                "method": self.method, "config": self.config.to_dict(),
                "architecture": self.net.architecture, "classes": list(self.classes),
                "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                "history": [float(v) for v in self.history],
                "versions": {"graphseg": __version__, "torch": str(torch.__version__)}}

    def save(self, path: PathLike) -> None:
        """Write the segmenter to ``path`` atomically (read back by :func:`load_few_shot`)."""
        write_model_state(path, self.state())

    @classmethod
    def from_state(cls, state: dict, source: str = "state") -> "SCLSegmenter":
        fields = {f.name for f in dataclasses.fields(SCLConfig)}
        unknown = sorted(set(state["config"]) - fields)
        if unknown:
            raise ValueError(f"{source}: settings {unknown} are unknown to this graphseg's "
                             "SCL; was it written by a newer graphseg?")
        segmenter = cls(SCLConfig(**{**state["config"], "pretrained": False}))
        segmenter.config.pretrained = bool(state["config"].get("pretrained", True))
        try:
            segmenter.net.load_state_dict(state["model"])
        except RuntimeError as error:
            raise ValueError(f"{source}: its weights do not fit its architecture "
                             f"({error})") from error
        segmenter.history = list(state.get("history", []))
        segmenter.classes = list(state.get("classes", []))
        segmenter.net.eval()
        return segmenter


def load_few_shot(path: PathLike) -> SCLSegmenter:
    """The few-shot segmenter saved at ``path`` by :meth:`SCLSegmenter.save`, or in a
    ``graphseg train scl`` run folder (``RUN/model.pt``).

    Raises:
        FileNotFoundError: no such file (or run folder without a model).
        ValueError: not a graphseg few-shot model (another graphseg model or
            checkpoint, a damaged file), or of a newer format.
    """
    path, state = read_model_state(path, FEW_SHOT_FORMAT, FEW_SHOT_VERSION,
                                   "graphseg few-shot model", "graphseg train scl")
    return SCLSegmenter.from_state(state, str(path))
