r"""Few-shot segmentation on feature maps: the prototype and fusion rules of SCL
(thesis chapter 5, `Zhang et al., CVPR 2021 <https://arxiv.org/abs/2103.16129>`_) and
two training-free baselines it builds on.

* :func:`masked_average_pooling`: the initial support vector :math:`v_s` (Eq. 5.1).
* :func:`sgm_prototypes`: the self-guided module's primary and auxiliary support
  vectors :math:`v_{pri}`, :math:`v_{aux}` (Eq. 5.5-5.6).
* :func:`cgm_weights` and :func:`cgm_fuse`: the cross-guided module's confidence of
  each support image and the weighted fusion of its K-shot predictions
  (Eq. 5.16-5.17).
* :func:`prior_mask`: PFENet's training-free prior (Tian et al., TPAMI 2020).
* :func:`prototype_segmentation`: PANet's non-parametric prototype matching (Wang et
  al., ICCV 2019), logits by cosine similarity to masked-average prototypes.
* :func:`resize_mask`: a label mask at a feature map's size (nearest), as every
  function here does for a mask given at another size.

Masks hold ``0`` (background), ``1`` (the episode's class) and ``ignore_index``
(``255``, unknown): an ignored pixel is neither foreground nor background.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.utils.checks import check_tensor
from graphseg.utils.constants import IGNORE

__all__ = ["cgm_fuse", "cgm_weights", "masked_average_pooling", "prior_mask",
           "prototype_segmentation", "resize_mask", "sgm_prototypes"]

_EPS = 1e-7  # PFENet's cosine and min-max epsilon


def _check_features(features, name: str) -> Tensor:
    check_tensor(features, name)
    if features.dim() != 4:
        raise ValueError(f"{name} must have shape (B, D, h, w), got {tuple(features.shape)}")
    if not features.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {features.dtype}")
    return features


def _check_mask(mask, name: str, batch: int, ignore_index: int,
                allow_ignore: bool = True) -> Tensor:
    """An integer / bool ``(B, H, W)`` mask of ``{0, 1, ignore_index}`` as int64."""
    check_tensor(mask, name)
    if mask.dim() != 3:
        raise ValueError(f"{name} must have shape (B, H, W), got {tuple(mask.shape)}")
    if mask.size(0) != batch:
        raise ValueError(f"{name} has batch size {mask.size(0)} but the features have "
                         f"{batch}")
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"{name} must hold integer labels (0, 1, {ignore_index}), got "
                        f"{mask.dtype}")
    mask = mask.long()
    allowed = (mask == 0) | (mask == 1)
    if allow_ignore:
        allowed |= mask == ignore_index
    if mask.numel() and not bool(allowed.all()):
        bad = int(mask[~allowed][0])
        expected = f"0, 1 or {ignore_index}" if allow_ignore else "0 or 1"
        raise ValueError(f"{name} must hold {expected}, got {bad}")
    return mask


def resize_mask(mask: Tensor, size: Sequence[int]) -> Tensor:
    """A ``(B, H, W)`` label mask at ``size = (h, w)`` by nearest-neighbour resizing
    (``torch.nn.functional.interpolate``'s ``"nearest"``: the output pixel ``(y, x)``
    takes the input pixel ``(floor(y H / h), floor(x W / w))``), as int64; a mask
    already at ``size`` is returned as is (as int64).  This is the "downsampling"
    of the thesis' Eq. 5.1: no pixel value is invented, so ``255`` stays ``255``.

    Args:
        mask (Tensor): ``(B, H, W)`` integer or bool labels.
        size (Sequence[int]): ``(h, w)``.

    Returns:
        Tensor: ``(B, h, w)`` int64 labels.

    Example:
        >>> import torch
        >>> from graphseg.nn.functional import resize_mask
        >>> mask = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [255, 255, 1, 1],
        ...                       [255, 255, 1, 1]]])
        >>> resize_mask(mask, (2, 2))
        tensor([[[  0,   1],
                 [255,   1]]])
    """
    check_tensor(mask, "mask")
    if mask.dim() != 3:
        raise ValueError(f"mask must have shape (B, H, W), got {tuple(mask.shape)}")
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"mask must hold integer labels, got {mask.dtype}")
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (h, w) with positive sides, got {size}")
    mask = mask.long()
    if tuple(mask.shape[-2:]) == size:
        return mask
    if mask.numel() == 0:
        raise ValueError(f"mask is empty: shape {tuple(mask.shape)}")
    # float32 holds the labels 0..255 exactly
    return F.interpolate(mask[:, None].float(), size=size, mode="nearest")[:, 0].long()


def _pool(features: Tensor, weight: Tensor) -> Tensor:
    """``sum_i F(i) w(i) / sum_i w(i)`` per image, the zero vector where ``sum w = 0``."""
    weight = weight.to(features.dtype)[:, None]            # (B, 1, h, w)
    total = (features * weight).sum(dim=(2, 3))            # (B, D)
    count = weight.sum(dim=(2, 3))                         # (B, 1)
    return total / count.clamp(min=1)


def masked_average_pooling(features: Tensor, mask: Tensor, *,
                           ignore_index: int = IGNORE) -> Tensor:
    r"""Masked global average pooling of the foreground (thesis Eq. 5.1):

    .. math::
        v_s = \frac{\sum_{i=1}^{hw} F_s(i) \cdot [M_s(i) = 1]}
                   {\sum_{i=1}^{hw} [M_s(i) = 1]}

    The mask is first brought to the features' size by nearest resizing
    (:func:`resize_mask`; the thesis: ":math:`M_s` needs to be downsampled to the same
    height and width as :math:`F_s`").  ``ignore_index`` pixels are not foreground.
    An image without a foreground pixel (0 / 0 in Eq. 5.1) gets the zero vector.

    Args:
        features (Tensor): ``(B, D, h, w)`` feature maps :math:`F_s`.
        mask (Tensor): ``(B, H, W)`` (or ``(B, h, w)``) integer / bool mask of
            ``{0, 1, ignore_index}``.
        ignore_index (int, optional): the unknown label. (default: ``255``)

    Returns:
        Tensor: ``(B, D)`` support vectors :math:`v_s`.

    Example:
        >>> import torch
        >>> from graphseg.nn.functional import masked_average_pooling
        >>> features = torch.arange(4.0).view(1, 1, 2, 2)   # [[0, 1], [2, 3]]
        >>> mask = torch.tensor([[[1, 1], [255, 0]]])
        >>> masked_average_pooling(features, mask)
        tensor([[0.5000]])
    """
    _check_features(features, "features")
    mask = _check_mask(mask, "mask", features.size(0), ignore_index)
    mask = resize_mask(mask, features.shape[-2:])
    return _pool(features, mask == 1)


def sgm_prototypes(features: Tensor, mask: Tensor, predicted: Tensor, *,
                   ignore_index: int = IGNORE) -> Tuple[Tensor, Tensor]:
    r"""The self-guided module's primary and auxiliary support vectors (thesis
    Eq. 5.5-5.6): masked average pooling of the correctly predicted foreground and of
    the missed foreground,

    .. math::
        v_{pri} = \frac{\sum_i F_s(i) [M_s(i) = 1] [\hat{M}_s(i) = 1]}
                       {\sum_i [M_s(i) = 1] [\hat{M}_s(i) = 1]}, \quad
        v_{aux} = \frac{\sum_i F_s(i) [M_s(i) = 1] [\hat{M}_s(i) \ne 1]}
                       {\sum_i [M_s(i) = 1] [\hat{M}_s(i) \ne 1]}

    with :math:`\hat{M}_s = \operatorname{argmax}(P_{s1})` (Eq. 5.4).  The thesis
    leaves 0 / 0 undefined: when a set is empty (the initial prediction found all the
    foreground, so nothing is missed, or found none of it) that vector falls back to
    the initial prototype :math:`v_s` of Eq. 5.1 (the zero vector when the mask has
    no foreground at all).

    Args:
        features (Tensor): ``(B, D, h, w)`` support feature maps :math:`F_s`.
        mask (Tensor): ``(B, H, W)`` ground truth :math:`M_s` of
            ``{0, 1, ignore_index}``, nearest-resized to ``(h, w)`` when at another
            size (:func:`resize_mask`).
        predicted (Tensor): ``(B, h, w)`` predicted mask :math:`\hat{M}_s` of
            ``{0, 1}`` at the features' size (the argmax of :math:`P_{s1}`).
        ignore_index (int, optional): the unknown label of ``mask``. (default: ``255``)

    Returns:
        Tuple[Tensor, Tensor]: ``(v_pri, v_aux)``, each ``(B, D)``.

    Example:
        >>> import torch
        >>> from graphseg.nn.functional import sgm_prototypes
        >>> features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> mask = torch.tensor([[[1, 1], [1, 0]]])
        >>> predicted = torch.tensor([[[1, 0], [0, 0]]])
        >>> sgm_prototypes(features, mask, predicted)   # found {1}, missed {2, 3}
        (tensor([[1.]]), tensor([[2.5000]]))
    """
    _check_features(features, "features")
    mask = _check_mask(mask, "mask", features.size(0), ignore_index)
    mask = resize_mask(mask, features.shape[-2:])
    predicted = _check_mask(predicted, "predicted", features.size(0), ignore_index,
                            allow_ignore=False)
    if predicted.shape[-2:] != features.shape[-2:]:
        raise ValueError(f"predicted must have the features' size {tuple(features.shape[-2:])}"
                         f", got {tuple(predicted.shape[-2:])}")
    foreground, found = mask == 1, predicted == 1
    v_s = _pool(features, foreground)
    prototypes = []
    for region in (foreground & found, foreground & ~found):
        empty = region.flatten(1).sum(1) == 0                 # (B,)
        prototypes.append(torch.where(empty[:, None], v_s, _pool(features, region)))
    return prototypes[0], prototypes[1]


def cgm_weights(predicted_masks: Tensor, gt_masks: Tensor, *,
                ignore_index: int = IGNORE) -> Tensor:
    r"""The cross-guided module's confidence of each support image (thesis Eq. 5.16):

    .. math::
        U_s^k = \frac{1}{K} \sum_{i=1}^K \operatorname{IOU}(\hat{M}_s^{i|k}, M_s^i)

    the foreground IoU of the masks predicted for every support image ``i`` with
    support ``k`` as the support (Eq. 5.15, ``i = k`` included).  ``ignore_index``
    pixels of the ground truth count in neither the intersection nor the union; an
    empty union (no foreground predicted, none annotated) counts as IoU 1.  A ground
    truth at another size is nearest-resized to the predictions' (:func:`resize_mask`).

    Args:
        predicted_masks (Tensor): ``(K, K, h, w)`` integer / bool masks of ``{0, 1}``,
            ``[k, i]`` the mask of support ``i`` predicted under support ``k``.
        gt_masks (Tensor): ``(K, H, W)`` ground-truth masks :math:`M_s^i` of
            ``{0, 1, ignore_index}``.
        ignore_index (int, optional): the unknown label. (default: ``255``)

    Returns:
        Tensor: ``(K,)`` float32 weights :math:`U_s^k` in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from graphseg.nn.functional import cgm_weights
        >>> gt = torch.tensor([[[1, 1, 0, 0]], [[0, 1, 1, 0]]])
        >>> predicted = torch.stack([gt, torch.tensor([[[1, 0, 0, 0]], [[0, 0, 0, 0]]])])
        >>> cgm_weights(predicted, gt)    # support 0 is perfect; 1: IoUs 1/2 and 0
        tensor([1.0000, 0.2500])
    """
    check_tensor(predicted_masks, "predicted_masks")
    if predicted_masks.dim() != 4 or predicted_masks.size(0) != predicted_masks.size(1):
        raise ValueError(f"predicted_masks must have shape (K, K, h, w), got "
                         f"{tuple(predicted_masks.shape)}")
    k = predicted_masks.size(0)
    if k == 0:
        raise ValueError("predicted_masks is empty: K = 0")
    predicted = _check_mask(predicted_masks.flatten(0, 1), "predicted_masks", k * k,
                            ignore_index, allow_ignore=False).view(predicted_masks.shape)
    gt = _check_mask(gt_masks, "gt_masks", k, ignore_index)
    gt = resize_mask(gt, predicted.shape[-2:])[None]        # (1, K, h, w), shared by k
    known = gt != ignore_index
    pred_fg, gt_fg = (predicted == 1) & known, gt == 1
    intersection = (pred_fg & gt_fg).flatten(2).sum(2).float()
    union = (pred_fg | gt_fg).flatten(2).sum(2).float()
    iou = torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))
    return iou.mean(dim=1)


def cgm_fuse(logits: Tensor, weights: Tensor) -> Tensor:
    r"""The cross-guided fusion of K-shot predictions (thesis Eq. 5.17):

    .. math::
        \hat{P}_q = \operatorname{softmax}\Big(\frac{1}{K} \sum_{k=1}^K
                    U_s^k \, \mathcal{G}(I_q | I_s^k)\Big)

    the softmax over classes of the confidence-weighted mean of the score maps the
    query gets from each support image.

    Args:
        logits (Tensor): ``(K, B, C, h, w)`` score maps :math:`\mathcal{G}(I_q|I_s^k)`
            (``C = 2``: background, foreground).
        weights (Tensor): ``(K,)`` confidences :math:`U_s^k` (:func:`cgm_weights`).

    Returns:
        Tensor: ``(B, C, h, w)`` probabilities :math:`\hat{P}_q`.

    Example:
        >>> import torch
        >>> from graphseg.nn.functional import cgm_fuse
        >>> logits = torch.tensor([[-1.0, 1.0], [3.0, -3.0]]).view(2, 1, 2, 1, 1)
        >>> cgm_fuse(logits, torch.tensor([1.0, 0.0])).flatten()   # softmax([-1, 1] / 2)
        tensor([0.2689, 0.7311])
    """
    check_tensor(logits, "logits")
    check_tensor(weights, "weights")
    if logits.dim() != 5 or logits.size(0) == 0:
        raise ValueError(f"logits must have shape (K, B, C, h, w) with K >= 1, got "
                         f"{tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating tensor, got {logits.dtype}")
    if weights.shape != (logits.size(0),):
        raise ValueError(f"weights must have shape ({logits.size(0)},) to match logits' K, "
                         f"got {tuple(weights.shape)}")
    weights = weights.to(logits.dtype).view(-1, 1, 1, 1, 1)
    return torch.softmax((weights * logits).mean(dim=0), dim=1)


def prior_mask(query_high: Tensor, support_high: Tensor, support_mask: Tensor, *,
               ignore_index: int = IGNORE) -> Tensor:
    r"""PFENet's training-free prior mask (`Tian et al., TPAMI 2020
    <https://arxiv.org/abs/2008.01449>`_) from high-level features of a frozen
    encoder: per query pixel the largest cosine similarity to the support's
    foreground pixels, min-max normalised per image,

    .. math::
        c_q = \max_{j:\,M_s(j)=1} \frac{X_q^\top X_s(j)}{\|X_q\| \|X_s(j)\|}, \quad
        Y_Q = \frac{Y - \min(Y)}{\max(Y) - \min(Y) + \epsilon}

    (``epsilon = 1e-7``, PFENet's).  The support mask is nearest-resized to the
    support features (:func:`resize_mask`; ``ignore_index`` is not foreground).  A
    support without a foreground pixel gives a zero prior; a constant similarity map
    gives zeros too.

    Args:
        query_high (Tensor): ``(B, D, h, w)`` query features :math:`X_q`.
        support_high (Tensor): ``(B, D, h_s, w_s)`` support features :math:`X_s`.
        support_mask (Tensor): ``(B, H, W)`` support mask of ``{0, 1, ignore_index}``.
        ignore_index (int, optional): the unknown label. (default: ``255``)

    Returns:
        Tensor: ``(B, 1, h, w)`` prior in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from graphseg.nn.functional import prior_mask
        >>> support = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])    # two pixels
        >>> query = torch.tensor([[[[2.0, 1.0, 0.0]], [[0.0, 1.0, 3.0]]]])
        >>> prior_mask(query, support, torch.tensor([[[1, 0]]])).flatten()
        tensor([1.0000, 0.7071, 0.0000])
    """
    _check_features(query_high, "query_high")
    _check_features(support_high, "support_high")
    batch, dim = query_high.shape[:2]
    if support_high.shape[:2] != (batch, dim):
        raise ValueError(f"support_high must have the query's batch and channels "
                         f"{(batch, dim)}, got {tuple(support_high.shape[:2])}")
    mask = _check_mask(support_mask, "support_mask", batch, ignore_index)
    foreground = resize_mask(mask, support_high.shape[-2:]).flatten(1) == 1   # (B, n_s)
    query = F.normalize(query_high.flatten(2), dim=1, eps=_EPS)              # (B, D, n_q)
    support = F.normalize(support_high.flatten(2), dim=1, eps=_EPS)          # (B, D, n_s)
    similarity = torch.bmm(query.transpose(1, 2), support)                    # (B, n_q, n_s)
    similarity = similarity.masked_fill(~foreground[:, None], float("-inf"))
    best = similarity.max(dim=2).values                                       # (B, n_q)
    best = torch.where(foreground.any(dim=1, keepdim=True), best, torch.zeros_like(best))
    low = best.min(dim=1, keepdim=True).values
    high = best.max(dim=1, keepdim=True).values
    prior = (best - low) / (high - low + _EPS)
    return prior.view(batch, 1, *query_high.shape[-2:])


def prototype_segmentation(query_features: Tensor, support_features: Tensor,
                           support_mask: Tensor, *, scale: float = 20.0,
                           ignore_index: int = IGNORE) -> Tensor:
    r"""PANet's non-parametric prototype matching (`Wang et al., ICCV 2019
    <https://arxiv.org/abs/1908.06391>`_), a training-free few-shot baseline: a
    background and a foreground prototype by masked average pooling of the support
    features (Eq. 5.1 for each class; ``ignore_index`` pixels in neither), and per
    query pixel the scaled cosine similarity to each,

    .. math::
        \text{logits}_c(i) = \alpha \cos(F_q(i), p_c), \quad c \in \{0, 1\}

    (:math:`\alpha` = ``scale``, PANet's 20).  An empty class gives the zero
    prototype, whose cosine is 0 everywhere.

    Args:
        query_features (Tensor): ``(B, D, h, w)`` query features.
        support_features (Tensor): ``(B, D, h_s, w_s)`` support features.
        support_mask (Tensor): ``(B, H, W)`` support mask of ``{0, 1, ignore_index}``,
            nearest-resized to the support features (:func:`resize_mask`).
        scale (float, optional): :math:`\alpha`. (default: ``20.0``)
        ignore_index (int, optional): the unknown label. (default: ``255``)

    Returns:
        Tensor: ``(B, 2, h, w)`` logits, channel 0 background, 1 foreground.

    Example:
        >>> import torch
        >>> from graphseg.nn.functional import prototype_segmentation
        >>> support = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
        >>> query = torch.tensor([[[[0.1, 3.0]], [[2.0, 0.2]]]])
        >>> logits = prototype_segmentation(query, support, torch.tensor([[[0, 1]]]))
        >>> logits.argmax(dim=1)       # pixel 0 is like the foreground pixel
        tensor([[[1, 0]]])
    """
    _check_features(query_features, "query_features")
    _check_features(support_features, "support_features")
    batch, dim = query_features.shape[:2]
    if support_features.shape[:2] != (batch, dim):
        raise ValueError(f"support_features must have the query's batch and channels "
                         f"{(batch, dim)}, got {tuple(support_features.shape[:2])}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    mask = _check_mask(support_mask, "support_mask", batch, ignore_index)
    mask = resize_mask(mask, support_features.shape[-2:])
    prototypes = torch.stack([_pool(support_features, mask == 0),
                              _pool(support_features, mask == 1)], dim=1)   # (B, 2, D)
    prototypes = F.normalize(prototypes, dim=2, eps=_EPS)
    query = F.normalize(query_features, dim=1, eps=_EPS)
    return float(scale) * torch.einsum("bcd,bdhw->bchw", prototypes, query)
