r"""The SCL few-shot segmentation network of thesis chapter 5 (Fig. 5.1): CANet's
feature processing modules and decoder on a frozen pretrained encoder, with the
self-guided module (SGM, Eq. 5.2-5.12) for training and 1-shot inference and the
cross-guided module (CGM, Eq. 5.15-5.17) for K-shot inference.

* :class:`SCLNet`: the network; :class:`SCLOutput`: what its ``forward`` returns;
  :class:`FewShotFeatures`: what its frozen encoder gives (:meth:`SCLNet.encode`).
* :func:`build_scl_net`: the network again from its :attr:`SCLNet.architecture`
  (plain values), e.g. to load a saved state dict without the training code.

The equations on tensors are :mod:`graphseg.nn.functional.few_shot`; the encoder is
named by a spec of :data:`graphseg.nn.backbones.BACKBONES`.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseg.nn.backbones.registry import (
    backbone_from_architecture,
    backbone_spec,
    check_backbone,
)
from graphseg.nn.functional.few_shot import (
    _check_mask,
    cgm_fuse,
    cgm_weights,
    masked_average_pooling,
    prior_mask,
    resize_mask,
    sgm_prototypes,
)
from graphseg.utils.checks import check_positive_int, check_tensor
from graphseg.utils.constants import IGNORE

__all__ = ["FewShotFeatures", "SCLNet", "SCLOutput", "build_scl_net", "encode_few_shot",
           "few_shot_levels"]

# The encoder levels concatenated into the mid-level features (CANet / PFENet: ResNet
# layer2 + layer3, strides 8 and 8-dilated; here the levels of stride 8 and 16).
MID_STRIDES = (8, 16)
ASPP_RATES = (6, 12, 18)


class FewShotFeatures(NamedTuple):
    """What the frozen encoder of :class:`SCLNet` gives for a batch of images
    (:meth:`SCLNet.encode`); it can be cached, the encoder never changes."""

    mid: Tensor
    """``(B, C_mid, h, w)`` mid-level features: the encoder's levels of stride 8 and 16
    concatenated at the finest of them's size (:attr:`SCLNet.mid_levels`)."""
    high: Tensor
    """``(B, C_high, h', w')`` the encoder's last level, for the prior mask."""


def few_shot_levels(strides) -> Tuple[Tuple[int, ...], int]:
    """``(mid_levels, finest)``: the indices of the encoder levels of stride 8 and 16
    (:data:`MID_STRIDES`) and of the finest of them, whose size the mid-level
    features take."""
    levels = tuple(i for i, s in enumerate(strides) if s in MID_STRIDES)
    if not levels:
        raise ValueError(f"the encoder has no level of stride 8 or 16 for the mid-level "
                         f"features (strides {tuple(strides)})")
    return levels, min(levels, key=lambda i: strides[i])


@torch.no_grad()
def encode_few_shot(encoder: nn.Module, images: Tensor) -> FewShotFeatures:
    """A frozen encoder's :class:`FewShotFeatures` of ``(B, 3, H, W)`` images (no
    gradient; the encoder is put in eval mode): ``mid`` its stride-8 and stride-16
    levels concatenated at the finest of them's size (bilinear), ``high`` its last
    level.  :class:`SCLNet` and the training-free prototype baseline share it."""
    check_tensor(images, "images")
    if images.dim() != 4 or images.size(1) != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if encoder.training:
        encoder.eval()
    mid_levels, finest = few_shot_levels(encoder.strides)
    levels = encoder.forward_features(images)
    size = levels[finest].shape[-2:]
    mid = [levels[i] if levels[i].shape[-2:] == size else
           F.interpolate(levels[i], size=size, mode="bilinear", align_corners=False)
           for i in mid_levels]
    return FewShotFeatures(torch.cat(mid, dim=1), levels[-1])


class SCLOutput(NamedTuple):
    """What :class:`SCLNet` returns, all at the mid-level grid ``(h, w)``."""

    query_logits: Tensor
    """``(B, 2, h, w)`` query logits; their softmax is :math:`P_q` (Eq. 5.12)."""
    support_logits1: Optional[Tensor]
    r"""``(B, 2, h, w)`` support logits from :math:`v_s` (:math:`P_{s1}`, Eq. 5.3);
    ``None`` with ``sgm=False``."""
    support_logits2: Optional[Tensor]
    r"""``(B, 2, h, w)`` support logits from :math:`v_{pri}, v_{aux}` (:math:`P_{s2}`,
    Eq. 5.9); ``None`` with ``sgm=False``."""


def _residual(channels: int) -> nn.Sequential:
    # CANet's residual layers: x + ReLU(conv3x3(ReLU(conv3x3(x)))), added in _Residual
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))


class _FPM(nn.Module):
    """CANet's single-scale feature processing module: ``[F, V1, V2 (, prior)]`` ->
    1x1 conv + ReLU -> residual block of two 3x3 convs."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.ReLU(inplace=True))
        self.residual = _residual(channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(x)
        return x + self.residual(x)


class _Decoder(nn.Module):
    """CANet's decoder: ASPP (image pooling, 1x1, 3x3 at rates 6, 12, 18), a 1x1 fuse,
    a residual block and a 1x1 classifier to 2 classes."""

    def __init__(self, channels: int):
        super().__init__()
        self.pool = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True))
        self.branches = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True))]
            + [nn.Sequential(nn.Conv2d(channels, channels, 3, padding=r, dilation=r),
                             nn.ReLU(inplace=True)) for r in ASPP_RATES])
        self.fuse = nn.Sequential(nn.Conv2d((len(ASPP_RATES) + 2) * channels, channels, 1),
                                  nn.ReLU(inplace=True))
        self.residual = _residual(channels)
        self.classifier = nn.Conv2d(channels, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.pool(F.adaptive_avg_pool2d(x, 1)).expand(-1, -1, *x.shape[-2:])
        x = self.fuse(torch.cat([pooled] + [branch(x) for branch in self.branches], dim=1))
        return self.classifier(x + self.residual(x))


def _expand(vector: Tensor, like: Tensor) -> Tensor:
    """``(B, D)`` -> ``(B, D, h, w)`` at ``like``'s size (the thesis' "duplicated and
    expanded")."""
    return vector[:, :, None, None].expand(-1, -1, *like.shape[-2:])


def _cross_entropy(logits: Tensor, mask: Tensor) -> Tensor:
    """Eq. 5.7: the mean cross-entropy over the mask's labelled pixels, the logits
    upsampled bilinearly to the mask's size; 0 (still a graph) when none is labelled."""
    if logits.shape[-2:] != mask.shape[-2:]:
        logits = F.interpolate(logits, size=mask.shape[-2:], mode="bilinear",
                               align_corners=False)
    total = F.cross_entropy(logits, mask, ignore_index=IGNORE, reduction="sum")
    return total / (mask != IGNORE).sum().clamp(min=1)


class SCLNet(nn.Module):
    r"""The SCL network from `"Self-Guided and Cross-Guided Learning for Few-Shot
    Segmentation" <https://arxiv.org/abs/2103.16129>`_ (Zhang et al., CVPR 2021; thesis
    chapter 5, Fig. 5.1), on the CANet baseline (Fig. 5.4, section 5.4.1) with a
    frozen pretrained encoder.

    * **encoder** (frozen, :meth:`encode`): the mid-level features are the encoder's
      levels of stride 8 and 16 (:data:`MID_STRIDES`) concatenated at the finest of
      them's size (bilinear), as CANet / PFENet concatenate ResNet's layer2 and layer3
      (:class:`~graphseg.nn.backbones.ESPNetv2Encoder`: its stride-8 and stride-16
      levels, 256 + 512 channels at stride 8;
      :class:`~graphseg.nn.backbones.SmallCNN`: its two stride-8 levels); the high
      level is the last level (PFENet's prior).  The encoder is kept in eval mode
      with ``requires_grad_(False)`` whatever :meth:`train` is told.
    * **down**: :math:`F = \operatorname{Dropout2d}(\operatorname{ReLU}(
      \operatorname{conv}_{1\times1}(\text{mid})))`, ``C_mid -> channels``, the
      feature maps :math:`F_s, F_q` of Fig. 5.1.
    * **SGM** (Eq. 5.1-5.10): :math:`v_s` by masked average pooling of :math:`F_s`
      (Eq. 5.1); :math:`P_{s1} = \mathcal{D}(FPM_s([F_s, V_s, V_s]))` (Eq. 5.2-5.3);
      :math:`\hat{M}_s = \operatorname{argmax} P_{s1}` (Eq. 5.4, no gradient);
      :math:`v_{pri}, v_{aux}` (Eq. 5.5-5.6,
      :func:`~graphseg.nn.functional.sgm_prototypes`);
      :math:`P_{s2} = \mathcal{D}(FPM_s([F_s, V_{pri}, V_{aux}]))` (Eq. 5.8-5.9).
    * **query** (Eq. 5.11-5.12): :math:`P_q = \mathcal{D}(FPM_q([F_q, V_{pri},
      V_{aux}]))`; with ``sgm=False`` (the baseline, CANet's one vector)
      :math:`\mathcal{D}(FPM_q([F_q, V_s, V_s]))`.  With ``prior=True`` the query FPM
      also gets PFENet's prior mask (:func:`~graphseg.nn.functional.prior_mask` on
      the high level, resized bilinearly) as one more channel.
    * **FPMs**: CANet's single-scale form, ``[F, V1, V2 (, prior)]`` -> 1x1 conv to
      ``channels`` + ReLU -> a residual block of two 3x3 convs (+ ReLU).  CANet's
      iterative refinement (:math:`P_{q(t-1)}` in the query FPM) is not used.
    * **decoder** :math:`\mathcal{D}`, one module shared by all three predictions
      (section 5.4.1): ASPP (image pooling, 1x1 and 3x3 at rates 6, 12, 18, each
      + ReLU), a 1x1 fuse + ReLU, a residual block, a 1x1 classifier to 2 classes
      (0 background, 1 the episode's class).
    * **loss** (Eq. 5.14): :meth:`loss`; **K shots** (CGM, Eq. 5.15-5.17):
      :meth:`predict`.

    The support FPM exists with ``sgm=False`` too (it then gets no gradient), so one
    state dict serves both modes.  The thesis' channel size ``d = 256`` is the
    default; on a CPU a smaller ``channels`` trains in minutes.

    Args:
        encoder (nn.Module): a pretrained backbone with ``forward_features``,
            ``strides`` and ``channels`` (:mod:`graphseg.nn.backbones`), levels finest
            first, with at least one level of stride 8 or 16; it is frozen here.
        channels (int, optional): ``d``, the width of the FPMs and the decoder.
            (default: ``256``, the thesis)
        sgm (bool, optional): use the self-guided module; ``False`` is the CANet
            baseline. (default: ``True``)
        prior (bool, optional): give the query FPM PFENet's prior mask.
            (default: ``False``)
        dropout (float, optional): the ``Dropout2d`` probability of ``down``, in
            ``[0, 1)``. (default: ``0.5``, CANet's)
        seed (int, optional): initialisation seed of the trainable parts; ``None``
            uses the global generator. (default: ``None``)

    Shapes:
        - **encode:** ``(B, 3, H, W)`` images normalised as the encoder expects
          (:func:`~graphseg.nn.backbones.preprocess`) -> :class:`FewShotFeatures`
        - **forward:** support and query :class:`FewShotFeatures` of one batch size
          ``B`` and the support mask ``(B, H, W)`` of ``{0, 1, 255}`` ->
          :class:`SCLOutput` at the mid-level grid ``(h, w)``
          (``ceil(H / 8) x ceil(W / 8)`` for the bundled stride-8 encoders)
        - **predict:** K supports of batch 1 -> ``(1, 2, h, w)`` probabilities

    Example:
        >>> import torch
        >>> from graphseg.nn.backbones import SmallCNN
        >>> from graphseg.nn.models import FewShotFeatures, SCLNet, build_scl_net
        >>> net = SCLNet(SmallCNN(width=4), channels=8, seed=0)
        >>> net.mid_levels, net.mid_channels, net.stride
        ((2, 3), 32, 8)
        >>> support, query = net.encode(torch.randn(2, 3, 40, 36)), net.encode(
        ...     torch.randn(2, 3, 40, 36))
        >>> mask = torch.zeros(2, 40, 36, dtype=torch.long)
        >>> mask[:, 10:30, 8:20] = 1
        >>> out = net(support, mask, query)
        >>> tuple(out.query_logits.shape), tuple(out.support_logits2.shape)
        ((2, 2, 5, 5), (2, 2, 5, 5))
        >>> loss, logs = net.loss(out, mask, mask)
        >>> sorted(logs)
        ['ce_q', 'ce_s1', 'ce_s2', 'loss']
        >>> shots = [FewShotFeatures(mid[None], high[None]) for mid, high in zip(*support)]
        >>> net.eval().predict(shots, [mask[:1], mask[1:]], shots[0]).shape   # CGM, K = 2
        torch.Size([1, 2, 5, 5])
        >>> copy = build_scl_net(net.architecture)
        >>> copy.load_state_dict(net.state_dict())
        <All keys matched successfully>
    """

    def __init__(self, encoder: nn.Module, *, channels: int = 256, sgm: bool = True,
                 prior: bool = False, dropout: float = 0.5, seed: Optional[int] = None):
        super().__init__()
        strides, in_channels = check_backbone(encoder, "encoder")
        check_positive_int(channels, "channels")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
                0 <= dropout < 1):
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        self.mid_levels, finest = few_shot_levels(strides)
        self.stride = int(strides[finest])
        self.mid_channels = int(sum(in_channels[i] for i in self.mid_levels))
        self.high_channels = int(in_channels[-1])
        self.channels = channels
        self.sgm, self.prior = bool(sgm), bool(prior)
        self.dropout_p = float(dropout)
        self.encoder_spec = backbone_spec(encoder)
        self.encoder = encoder
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.down = nn.Sequential(nn.Conv2d(self.mid_channels, channels, 1),
                                      nn.ReLU(inplace=True), nn.Dropout2d(self.dropout_p))
            self.support_fpm = _FPM(3 * channels, channels)
            self.query_fpm = _FPM(3 * channels + int(self.prior), channels)
            self.decoder = _Decoder(channels)
        if not self.sgm:
            # built so one state dict serves both modes, but untrained here: frozen, so
            # neither the optimiser nor DDP (which refuses unused parameters) sees it
            self.support_fpm.requires_grad_(False)

    # ---------------------------------------------------------------- bookkeeping
    @property
    def architecture(self) -> dict:
        """Plain values :func:`build_scl_net` rebuilds this network from: ``encoder``
        (the spec of :data:`~graphseg.nn.backbones.BACKBONES`, ``None`` for an
        unregistered encoder), ``channels``, ``sgm``, ``prior`` and ``dropout``."""
        return {"encoder": None if self.encoder_spec is None else dict(self.encoder_spec),
                "channels": self.channels, "sgm": self.sgm, "prior": self.prior,
                "dropout": self.dropout_p}

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters of the trainable parts (``down``, the FPMs, the decoder),
        for the optimiser; the encoder's are frozen (and the support FPM's with
        ``sgm=False``)."""
        for part in (self.down, self.support_fpm, self.query_fpm, self.decoder):
            yield from (p for p in part.parameters() if p.requires_grad)

    def reset_parameters(self) -> None:
        """Re-initialise the trainable parts (the encoder keeps its weights)."""
        for part in (self.down, self.support_fpm, self.query_fpm, self.decoder):
            for module in part.modules():
                if isinstance(module, nn.Conv2d):
                    module.reset_parameters()

    def train(self, mode: bool = True) -> "SCLNet":
        """Set the trainable parts' mode; the frozen encoder stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    # ------------------------------------------------------------------ encoding
    @torch.no_grad()
    def encode(self, images: Tensor) -> FewShotFeatures:
        """The frozen encoder's :class:`FewShotFeatures` of ``(B, 3, H, W)`` images
        (no gradient): ``mid`` the levels :attr:`mid_levels` concatenated at the
        finest of them's size (bilinear), ``high`` the last level."""
        return encode_few_shot(self.encoder, images)

    # ------------------------------------------------------------------- forward
    def _check_features(self, features, name: str) -> FewShotFeatures:
        if not isinstance(features, FewShotFeatures):
            raise TypeError(f"{name} must be a FewShotFeatures (mid, high), got "
                            f"{type(features).__name__}")
        mid, high = features
        check_tensor(mid, f"{name}.mid")
        check_tensor(high, f"{name}.high")
        if mid.dim() != 4 or mid.size(1) != self.mid_channels:
            raise ValueError(f"{name}.mid must have shape (B, {self.mid_channels}, h, w), "
                             f"got {tuple(mid.shape)}")
        if high.dim() != 4 or high.size(1) != self.high_channels or high.size(0) != mid.size(0):
            raise ValueError(f"{name}.high must have shape ({mid.size(0)}, "
                             f"{self.high_channels}, h', w'), got {tuple(high.shape)}")
        return features

    def _support(self, support: FewShotFeatures, mask: Tensor):
        """``(v1, v2, support_logits1, support_logits2)``: the vectors guiding the query
        (``v_pri, v_aux`` with SGM, ``v_s, v_s`` without)."""
        f_s = self.down(support.mid)
        v_s = masked_average_pooling(f_s, mask)
        if not self.sgm:
            return v_s, v_s, None, None
        logits1 = self.decoder(self.support_fpm(torch.cat(
            [f_s, _expand(v_s, f_s), _expand(v_s, f_s)], dim=1)))
        predicted = logits1.detach().argmax(dim=1)
        v_pri, v_aux = sgm_prototypes(f_s, mask, predicted)
        logits2 = self.decoder(self.support_fpm(torch.cat(
            [f_s, _expand(v_pri, f_s), _expand(v_aux, f_s)], dim=1)))
        return v_pri, v_aux, logits1, logits2

    def _query(self, query: FewShotFeatures, v1: Tensor, v2: Tensor,
               support: FewShotFeatures, mask: Tensor) -> Tensor:
        f_q = self.down(query.mid)
        parts = [f_q, _expand(v1, f_q), _expand(v2, f_q)]
        if self.prior:
            prior = prior_mask(query.high, support.high, mask)
            if prior.shape[-2:] != f_q.shape[-2:]:
                prior = F.interpolate(prior, size=f_q.shape[-2:], mode="bilinear",
                                      align_corners=False)
            parts.append(prior)
        return self.decoder(self.query_fpm(torch.cat(parts, dim=1)))

    def _check_episode(self, support, support_mask, query, name: str = "support"):
        support = self._check_features(support, name)
        query = self._check_features(query, "query")
        if support.mid.size(0) != query.mid.size(0):
            raise ValueError(f"{name} and query must have one batch size, got "
                             f"{support.mid.size(0)} and {query.mid.size(0)}")
        mask = _check_mask(support_mask, f"{name}_mask", support.mid.size(0), IGNORE)
        return support, mask, query

    def forward(self, support: FewShotFeatures, support_mask: Tensor,
                query: FewShotFeatures) -> SCLOutput:
        """1-shot: the query's logits guided by the support (Eq. 5.2-5.12), and the
        support's own two predictions with SGM.

        Args:
            support (FewShotFeatures): the support images' :meth:`encode`.
            support_mask (Tensor): ``(B, H, W)`` uint8 / int64 mask of ``{0, 1, 255}``
                (any size: nearest-resized to the features).
            query (FewShotFeatures): the query images' :meth:`encode`.
        """
        support, mask, query = self._check_episode(support, support_mask, query)
        v1, v2, logits1, logits2 = self._support(support, mask)
        return SCLOutput(self._query(query, v1, v2, support, mask), logits1, logits2)

    # ---------------------------------------------------------------------- loss
    def loss(self, output: SCLOutput, support_mask: Tensor,
             query_mask: Tensor) -> Tuple[Tensor, Dict[str, float]]:
        r"""Eq. 5.14, :math:`\mathcal{L}_{ce}^{s1} + \mathcal{L}_{ce}^{s2} +
        \mathcal{L}_{ce}^{q}` (the baseline: :math:`\mathcal{L}_{ce}^{q}` only): each the
        mean cross-entropy (Eq. 5.7, 5.10, 5.13) over the mask's pixels that are not
        255, at the masks' resolution (the logits upsampled bilinearly); a mask
        without a labelled pixel gives 0, still connected to the logits.

        Returns:
            Tuple[Tensor, Dict[str, float]]: the loss and its terms as floats
            (``"loss"``, ``"ce_q"``, and ``"ce_s1"``, ``"ce_s2"`` with SGM).
        """
        if not isinstance(output, SCLOutput):
            raise TypeError(f"output must be an SCLOutput, got {type(output).__name__}")
        batch = output.query_logits.size(0)
        query_mask = _check_mask(query_mask, "query_mask", batch, IGNORE)
        terms = {"ce_q": _cross_entropy(output.query_logits, query_mask)}
        if output.support_logits1 is not None or output.support_logits2 is not None:
            support_mask = _check_mask(support_mask, "support_mask", batch, IGNORE)
            for key, logits in (("ce_s1", output.support_logits1),
                                ("ce_s2", output.support_logits2)):
                if logits is not None:
                    terms[key] = _cross_entropy(logits, support_mask)
        total = sum(terms.values())
        logs = {"loss": float(total.detach()),
                **{key: float(value.detach()) for key, value in terms.items()}}
        return total, logs

    # ----------------------------------------------------------------- inference
    @torch.no_grad()
    def predict(self, supports: Sequence[FewShotFeatures], support_masks: Sequence[Tensor],
                query: FewShotFeatures, *, cgm: bool = True) -> Tensor:
        r"""K-shot probabilities ``(1, 2, h, w)`` of one query (no gradient; call
        :meth:`eval` first to switch the dropout off).

        * ``K = 1``: :math:`P_q`, the softmax of the query logits.
        * ``K > 1``, ``cgm=True`` (Eq. 5.15-5.17): every support ``k`` segments every
          support ``i`` as a query (``i = k`` included, as the thesis' sum over
          ``i = 1..K``); the foreground IoU with ``i``'s ground truth (nearest-resized
          to the logits' grid, 255 ignored) averaged over ``i`` is ``k``'s confidence
          :math:`U_s^k` (:func:`~graphseg.nn.functional.cgm_weights`), and the
          query's K score maps are fused by :func:`~graphseg.nn.functional.cgm_fuse`.
        * ``K > 1``, ``cgm=False``: the mean of the K softmax maps (the common
          practice the thesis compares with).

        Args:
            supports (Sequence[FewShotFeatures]): K support encodings, batch 1 each.
            support_masks (Sequence[Tensor]): K masks ``(1, H, W)`` (or ``(H, W)``) of
                ``{0, 1, 255}``.
            query (FewShotFeatures): the query's encoding, batch 1.
            cgm (bool, optional): fuse by CGM; ``False`` averages. (default: ``True``)
        """
        supports, support_masks = list(supports), list(support_masks)
        if not supports:
            raise ValueError("predict needs at least one support")
        if len(support_masks) != len(supports):
            raise ValueError(f"got {len(supports)} supports but {len(support_masks)} masks")
        masks: List[Tensor] = []
        for k, (support, mask) in enumerate(zip(supports, support_masks)):
            self._check_features(support, f"supports[{k}]")
            if support.mid.size(0) != 1:
                raise ValueError(f"supports[{k}] must have batch size 1, got "
                                 f"{support.mid.size(0)}")
            check_tensor(mask, f"support_masks[{k}]")
            masks.append(mask[None] if mask.dim() == 2 else mask)
        self._check_features(query, "query")
        if query.mid.size(0) != 1:
            raise ValueError(f"query must have batch size 1, got {query.mid.size(0)}")
        guides = []
        for k, support in enumerate(supports):
            _, masks[k], _ = self._check_episode(support, masks[k], query,
                                                 name=f"supports[{k}]")
            guides.append(self._support(support, masks[k])[:2])
        logits = torch.stack([self._query(query, v1, v2, support, mask)
                              for (v1, v2), support, mask in zip(guides, supports, masks)])
        if len(supports) == 1:
            return torch.softmax(logits[0], dim=1)
        if not cgm:
            return torch.softmax(logits, dim=2).mean(dim=0)
        ious = torch.empty(len(supports), len(supports))
        for k, ((v1, v2), support, mask) in enumerate(zip(guides, supports, masks)):
            for i, (other, other_mask) in enumerate(zip(supports, masks)):
                predicted = self._query(other, v1, v2, support, mask).argmax(dim=1)
                ious[k, i] = cgm_weights(predicted[None], resize_mask(
                    other_mask, predicted.shape[-2:]))[0]
        return cgm_fuse(logits, ious.mean(dim=1))


def build_scl_net(architecture: dict, encoder: Optional[nn.Module] = None, *,
                  pretrained: bool = False) -> SCLNet:
    """An :class:`SCLNet` from its :attr:`~SCLNet.architecture`, its trainable parts
    randomly initialised (weights come from a state dict).

    Args:
        architecture (dict): the ``architecture`` of the network to rebuild.
        encoder (nn.Module, optional): the encoder module, required when
            ``architecture["encoder"]`` is ``None``; otherwise it replaces the
            registered one. (default: ``None``)
        pretrained (bool, optional): load the registered encoder's pretrained weights
            (:func:`~graphseg.nn.backbones.build_backbone`), to start training.
            (default: ``False``)
    """
    encoder, options = backbone_from_architecture(architecture, encoder, key="encoder",
                                                  pretrained=pretrained)
    return SCLNet(encoder, **options)
