"""Majority vote of pixel labels inside groups of pixels (grid cells, superpixels)."""
from __future__ import annotations

import torch
from torch import Tensor


def majority_vote(group: Tensor, labels: Tensor, num_groups: int, ignore_index: int) -> Tensor:
    """The most frequent label of every group, ignoring ``ignore_index``.

    Args:
        group (Tensor): ``(P,)`` int64 group of every pixel, in ``[0, num_groups)``.
        labels (Tensor): ``(P,)`` int64 non-negative labels.
        num_groups (int): number of groups.
        ignore_index (int): the label that does not vote.

    Returns:
        Tensor: ``(num_groups,)`` int64; ``ignore_index`` for a group without
        a labelled pixel.  Ties go to the smaller label (``argmax`` returns the
        first maximum).
    """
    out = torch.full((num_groups,), ignore_index, dtype=torch.long, device=labels.device)
    known = labels != ignore_index
    if not bool(known.any()):
        return out
    group, labels = group[known], labels[known]
    num_classes = int(labels.max()) + 1
    votes = torch.bincount(group * num_classes + labels, minlength=num_groups * num_classes)
    votes = votes.view(num_groups, num_classes)
    labelled = votes.sum(dim=1) > 0
    out[labelled] = votes[labelled].argmax(dim=1)
    return out
