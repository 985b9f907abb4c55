"""Multi-point (MP) loss and consistency checking for boxes (thesis Eq. 3.23-3.28).

A tight box has, in every row and every column, at least one pixel of its
object.  The node of highest box-class probability in each row and column
(Eq. 3.23-3.25) is taken as an extra label of the box's class; the MP loss
trains on those points and pulls their features together (Eq. 3.26), and their
mean feature, the box prototype (Eq. 3.27), removes seed labels of the box's
class that point away from it (Eq. 3.28).
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.utils.constants import IGNORE


def boxes_to_grid(boxes, image_size: Tuple[int, int], grid_size: Tuple[int, int]) -> Tensor:
    """Pixel boxes ``(class, x1, y1, x2, y2)`` (half-open) to node-grid boxes.

    A node is inside when its cell overlaps the box (``floor`` of the start,
    ``ceil`` of the end), so a box never shrinks to nothing on a coarse grid.

    Returns:
        Tensor: ``(M, 5)`` int64 boxes on the ``grid_size = (h, w)`` grid.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    big_h, big_w = image_size
    h, w = grid_size
    out = []
    for cls, x1, y1, x2, y2 in boxes:
        gx1 = min(int(math.floor(x1 * w / big_w)), w - 1)
        gy1 = min(int(math.floor(y1 * h / big_h)), h - 1)
        gx2 = max(min(int(math.ceil(x2 * w / big_w)), w), gx1 + 1)
        gy2 = max(min(int(math.ceil(y2 * h / big_h)), h), gy1 + 1)
        out.append((int(cls), gx1, gy1, gx2, gy2))
    return torch.tensor(out, dtype=torch.long).reshape(-1, 5)


@torch.no_grad()
def box_points(probs: Tensor, boxes: Tensor, grid_size: Tuple[int, int]) -> List[Tensor]:
    """Eq. 3.23-3.25: per box, the most probable node of its class in every row and column.

    Args:
        probs (Tensor): ``(h * w, C)`` node probabilities (or logits: only the
            argmax matters).
        boxes (Tensor): ``(M, 5)`` node-grid boxes from :func:`boxes_to_grid`.
        grid_size (tuple): ``(h, w)``.

    Returns:
        list of Tensor: for each box, the ``height + width`` selected node
        indices (rows first, then columns; a node can appear twice).
    """
    h, w = grid_size
    points = []
    for cls, x1, y1, x2, y2 in boxes.tolist():
        inside = probs[:, cls].reshape(h, w)[y1:y2, x1:x2]
        rows = torch.arange(y1, y2, device=probs.device)
        cols = torch.arange(x1, x2, device=probs.device)
        by_row = rows * w + x1 + inside.argmax(dim=1)
        by_col = (y1 + inside.argmax(dim=0)) * w + cols
        points.append(torch.cat([by_row, by_col]))
    return points


def mp_loss(logits: Tensor, features: Tensor, boxes: Tensor, points: Sequence[Tensor]) -> Tensor:
    """Eq. 3.26: cross-entropy of the box points to their box's class, plus the mean
    ``1 - cos`` between the features of every two different points of a box.

    Args:
        logits (Tensor): ``(N, C)`` class logits.
        features (Tensor): ``(N, F)`` features of the last attention layer.
        boxes (Tensor): ``(M, 5)`` node-grid boxes.
        points (list of Tensor): :func:`box_points` of the same boxes.
    """
    if len(points) == 0:
        return logits.new_zeros(())
    log_probs = F.log_softmax(logits, dim=-1)
    nll, distance, num_pairs = [], logits.new_zeros(()), 0
    for (cls, *_), nodes in zip(boxes.tolist(), points):
        nll.append(-log_probs[nodes, cls])
        unit = F.normalize(features[nodes], dim=-1)
        different = nodes[:, None] != nodes[None, :]
        distance = distance + (1 - unit @ unit.t())[different].sum()
        num_pairs += int(different.sum())
    loss = torch.cat(nll).mean()
    if num_pairs:
        loss = loss + distance / num_pairs
    return loss


@torch.no_grad()
def consistency_check(labels: Tensor, features: Tensor, boxes: Tensor,
                      points: Sequence[Tensor], grid_size: Tuple[int, int],
                      ignore_index: int = IGNORE) -> Tensor:
    """Eq. 3.27-3.28: unlabel box-class seeds whose feature points away from the box prototype.

    The prototype of a box is the mean feature of its points; a node inside
    the box labelled with the box's class whose cosine to the prototype is
    negative becomes ``ignore_index`` (the release's reading of Eq. 3.28).
    Returns a new label tensor; ``labels`` is not modified.

    Note:
        With non-negative features no cosine is negative, so nothing is removed.
        That is the case for A2GNN's (and AGNN's) last-layer features, a ReLU
        embedding followed by convex combinations, in the thesis and in the
        release alike; the rule can act with ``GCNConv`` or ``GATConv`` layers.
    """
    h, w = grid_size
    out = labels.clone()
    unit = F.normalize(features, dim=-1)
    grid = out.view(h, w)
    for (cls, x1, y1, x2, y2), nodes in zip(boxes.tolist(), points):
        prototype = F.normalize(features[nodes].mean(dim=0), dim=0)
        cos = (unit @ prototype).view(h, w)[y1:y2, x1:x2]
        region = grid[y1:y2, x1:x2]
        region[(region == cls) & (cos < 0)] = ignore_index
    return out
