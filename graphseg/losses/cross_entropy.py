r"""Cross-entropy on the labelled nodes or pixels (thesis Eq. 2.16 and 3.21).

One function for both layouts: ``(N, C)`` logits of graph nodes (A2GNN, Eq. 3.21)
and ``(B, C, H, W)`` score maps of a segmentation network (RRM, Eq. 2.16, on the
reliable regions), background and foreground averaged separately by default
("the cross-entropy loss is computed for background and foreground
individually", section 2.3.1; the A2GNN release does the same):

.. math::
    \mathcal{L}_{ce} = \frac{1}{|\Phi_{bg}|} \sum_{i \in \Phi_{bg}} -\log P^{y_i}(i)
    + \frac{1}{|\Phi_{fg}|} \sum_{i \in \Phi_{fg}} -\log P^{y_i}(i)

with :math:`\Phi = \{i \mid y_i \ne 255\}` split into background and foreground;
an empty part contributes 0.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.utils.checks import check_tensor
from graphseg.utils.constants import IGNORE


def balanced_cross_entropy(logits: Tensor, labels: Tensor, background: int = 0,
                           ignore_index: int = IGNORE, balanced: bool = True, *,
                           allow_empty: Optional[bool] = None) -> Tensor:
    """Cross-entropy over the nodes / pixels whose label is not ``ignore_index``.

    With ``balanced=True`` (the authors' releases, and RRM's thesis text) background
    and foreground are averaged separately and the two means summed, so a few
    foreground seeds are not drowned by many background ones; with
    ``balanced=False`` it is the plain mean of Eq. 2.16 / 3.21.

    **Nothing labelled.** A graph without a single seed is a caller's mistake
    (there is nothing to propagate), so for ``(N, C)`` logits it raises by
    default.  A batch of training crops may well have no reliable pixel (RRM's
    CAMs mark none on an image early in training, or a crop misses them): for
    score maps the default returns a zero that is still connected to ``logits``
    (zero gradients), so a training step neither crashes nor needs a special case.

    Args:
        logits (Tensor): ``(N, C)`` class logits, or ``(B, C, H, W)`` (any number
            of trailing dimensions) score maps.
        labels (Tensor): ``(N,)`` or ``(B, H, W)`` int64 labels in ``[0, C)`` or
            ``ignore_index``.
        background (int, optional): the background class. (default: ``0``)
        ignore_index (int, optional): the unknown label. (default: ``255``)
        balanced (bool, optional): see above. (default: ``True``)
        allow_empty (bool, optional): return 0 instead of raising when nothing is
            labelled. (default: ``None``: ``False`` for ``(N, C)``, ``True`` for maps)

    Raises:
        ValueError: if shapes do not match, or nothing is labelled and
            ``allow_empty`` is false.

    Example:
        >>> import torch
        >>> from graphseg.losses import balanced_cross_entropy
        >>> logits = torch.zeros(2, 3, 4, 4, requires_grad=True)
        >>> labels = torch.full((2, 4, 4), 255)
        >>> loss = balanced_cross_entropy(logits, labels)  # nothing labelled
        >>> loss.item(), loss.requires_grad
        (0.0, True)
    """
    check_tensor(logits, "logits")
    check_tensor(labels, "labels")
    if logits.dim() < 2:
        raise ValueError(f"logits must have shape (N, C) or (B, C, H, W), "
                         f"got {tuple(logits.shape)}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(labels.shape) != expected:
        what = "(N,)" if logits.dim() == 2 else "(B, H, W)"
        raise ValueError(f"labels must have shape {expected} to match logits {what}, "
                         f"got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must hold integer class ids, got {labels.dtype}")
    labels = labels.long()
    if allow_empty is None:
        allow_empty = logits.dim() > 2
    known = labels != ignore_index
    if not allow_empty and not bool(known.any()):
        raise ValueError("labels has no labelled node: every node is ignore_index "
                         f"({ignore_index}); there is nothing to train on")
    # 0 on ignored entries; means as masked sums over clamped counts: no boolean
    # indexing (a copy of the logits) and no host sync, and an empty part gives 0 / 1
    losses = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")
    if not balanced:
        return losses.sum() / known.sum().clamp(min=1)
    is_background = known & (labels == background)
    total = losses.sum() * 0
    for part in (is_background, known & ~is_background):
        total = total + (losses * part).sum() / part.sum().clamp(min=1)
    return total
