"""Cross-entropy on the labelled nodes (thesis Eq. 3.21)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from graphseg.utils.constants import IGNORE


def balanced_cross_entropy(logits: Tensor, labels: Tensor, background: int = 0,
                           ignore_index: int = IGNORE, balanced: bool = True) -> Tensor:
    """Cross-entropy over the nodes whose label is not ``ignore_index``.

    With ``balanced=True`` (the authors' release) background nodes and
    foreground nodes are averaged separately and the two means summed, so a
    few foreground seeds are not drowned by many background ones; with
    ``balanced=False`` it is the plain mean of Eq. 3.21.

    Args:
        logits (Tensor): ``(N, C)`` class logits.
        labels (Tensor): ``(N,)`` int64 labels in ``[0, C)`` or ``ignore_index``.
        background (int, optional): the background class. (default: ``0``)
        ignore_index (int, optional): the unknown label. (default: ``255``)
        balanced (bool, optional): see above. (default: ``True``)

    Raises:
        ValueError: if no node is labelled, or shapes do not match.
    """
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must have shape ({logits.size(0)},) to match logits, "
                         f"got {tuple(labels.shape)}")
    known = labels != ignore_index
    if not bool(known.any()):
        raise ValueError("labels has no labelled node: every node is ignore_index "
                         f"({ignore_index}); there is nothing to train on")
    losses = F.cross_entropy(logits[known], labels[known], reduction="none")
    if not balanced:
        return losses.mean()
    is_background = labels[known] == background
    total = logits.new_zeros(())
    for part in (is_background, ~is_background):
        if bool(part.any()):
            total = total + losses[part].mean()
    return total
