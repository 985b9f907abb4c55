r"""The batch-based class distance loss of RRM (thesis Eq. 2.22-2.26).

On the high-level features :math:`F_m` (Eq. 2.22, the local and global branch
features concatenated) and the predicted mask :math:`M_p` (Eq. 2.23, the argmax of
the segmentation output, a constant), with the foreground classes :math:`C_p`
present in the batch:

* one centre per foreground class over the *whole batch* (Eq. 2.24) and one
  background centre per *image* (Eq. 2.25): the same object class should look
  alike across images, backgrounds need not;
* four terms, each a mean over its pairs (Eq. 2.26):

.. math::
    \mathcal{L}_{BCD} =
    \frac{1}{N_{ff}} \sum_{c \ne c'} (1 + \cos(F^c_{ctr}, F^{c'}_{ctr}))
    + \frac{1}{N_{fb}} \sum_{c, b} (1 + \cos(F^c_{ctr}, F^{c_0}_{ctr}(b)))
    + \frac{1}{N_{fg}} \sum_{j: M_p(j) \in C_p} (1 - \cos(F_m(j), F^{M_p(j)}_{ctr}))
    + \frac{1}{N_{bg}} \sum_{b, j: M^b_p(j) = c_0} (1 - \cos(F^b_m(j), F^{c_0}_{ctr}(b)))

  pushing centres of different classes apart and pulling every feature to its
  centre.  A term without pairs (one foreground class, no background, ...)
  contributes 0.

**Pairs.** The first term sums over ordered pairs :math:`(i, j)`,
:math:`c_p^i \ne c_p^j`, as printed, so :math:`N_{ff} = K (K - 1)`; because the
cosine is symmetric its mean equals the mean over unordered pairs, so the choice
does not change the loss.  :math:`N_{fb} = K B'` (:math:`B'` the images with a
background centre), :math:`N_{fg}` and :math:`N_{bg}` the pixel counts.

Gradients reach the features both directly and through the centres (Eq. 2.24-2.25
are functions of :math:`F_m`; the thesis detaches nothing but the mask).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.utils.checks import check_tensor
from graphseg.utils.constants import IGNORE

__all__ = ["bcd_loss"]


def _pair_mean(cos: Tensor, keep: Tensor, sign: float) -> Tensor:
    """Mean of ``1 + sign * cos`` over the ``keep`` entries; 0 when there are none."""
    n = keep.sum()
    return ((1 + sign * cos) * keep).sum() / n.clamp(min=1)


def bcd_loss(features: Tensor, mask: Tensor, *, background: int = 0,
             ignore_index: int = IGNORE) -> Tensor:
    """The BCD loss (Eq. 2.26) of a batch.

    Args:
        features (Tensor): ``(B, D, H, W)`` high-level features :math:`F_m`.
        mask (Tensor): ``(B, H, W)`` int64 predicted classes :math:`M_p` on the
            same grid, e.g. ``logits.detach().argmax(1)``; ``ignore_index`` pixels
            (padding) take no part.
        background (int, optional): the background class :math:`c_0`. (default: ``0``)
        ignore_index (int, optional): the excluded value. (default: ``255``)

    Returns:
        Tensor: the scalar loss, in ``[0, 8]``; 0 (with a graph) when no pixel
        takes part.

    Example:
        >>> import torch
        >>> from graphseg.losses import bcd_loss
        >>> mask = torch.tensor([[[0, 1], [2, 2]]])
        >>> bcd_loss(torch.randn(1, 4, 2, 2), mask).dim()
        0
    """
    check_tensor(features, "features")
    check_tensor(mask, "mask")
    if features.dim() != 4 or not features.is_floating_point():
        raise ValueError(f"features must be a floating (B, D, H, W) tensor, got "
                         f"{tuple(features.shape)} {features.dtype}")
    b, d, h, w = features.shape
    if tuple(mask.shape) != (b, h, w):
        raise ValueError(f"mask must have shape ({b}, {h}, {w}) to match features, "
                         f"got {tuple(mask.shape)}")
    if mask.is_floating_point() or mask.dtype == torch.bool:
        raise TypeError(f"mask must hold integer class ids, got {mask.dtype}")
    labels = mask.long().reshape(-1)
    flat = features.permute(0, 2, 3, 1).reshape(-1, d)  # (B H W, D), pixels row-major
    image = torch.arange(b, device=labels.device).repeat_interleave(h * w)
    is_bg = labels == background
    is_fg = ~is_bg & (labels != ignore_index)
    # group of every pixel: a foreground class (0..K-1) or an image's background (K + b)
    classes, fg_group = torch.unique(labels[is_fg], return_inverse=True)
    num_k = classes.numel()
    group = torch.full_like(labels, -1)
    group[is_fg] = fg_group
    group[is_bg] = num_k + image[is_bg]
    used = group >= 0
    sums = flat.new_zeros(num_k + b, d).index_add(0, group[used], flat[used])
    counts = torch.bincount(group[used], minlength=num_k + b)
    centres = sums / counts.clamp(min=1).unsqueeze(1).to(sums.dtype)  # Eq. 2.24-2.25
    fg_centres, bg_centres, has_bg = centres[:num_k], centres[num_k:], counts[num_k:] > 0

    total = features.sum() * 0
    if num_k:
        cos_ff = F.cosine_similarity(fg_centres[:, None], fg_centres[None], dim=-1)
        off_diagonal = ~torch.eye(num_k, dtype=torch.bool, device=cos_ff.device)
        total = total + _pair_mean(cos_ff, off_diagonal, 1.0)
        cos_fb = F.cosine_similarity(fg_centres[:, None], bg_centres[None], dim=-1)
        total = total + _pair_mean(cos_fb, has_bg[None].expand(num_k, b), 1.0)
    # every labelled pixel against its own centre: terms 3 (foreground) and 4 (background)
    cos_own = F.cosine_similarity(flat[used], centres[group[used]], dim=-1)
    total = total + _pair_mean(cos_own, is_fg[used], -1.0)
    total = total + _pair_mean(cos_own, is_bg[used], -1.0)
    return total
