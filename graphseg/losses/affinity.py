r"""The training loss of the affinity CNN (thesis Eq. 3.6-3.13).

Pairs are the window offsets of :func:`graphseg.graph.window_offsets`: node
``(y, x)`` and node ``(y + dy, x + dx)``.  The thesis' pair sets are
Euclidean (``||Pos(i) - Pos(j)||_2 <= r``, Eq. 3.7 and 3.11), so the default
window is ``"disk"``; ``"square"`` is offered too.  The self pair ``i = i`` is
never used: its affinity is 1 by construction, so it only dilutes the means.

* :func:`affinity_labels` (Eq. 3.6-3.7): 1 / 0 / 255 per pair;
  :func:`affinity_pairs` splits the positive pairs into background-background
  and foreground-foreground ones, as the authors' release does.
* :func:`affinity_loss` (Eq. 3.9): :math:`L_{Ac} + \lambda L_{Ar}`.

Everything is computed with shifts over the offsets: memory
``O(K * h * w)`` plus one ``(d, h, w)`` map, never an ``N x N`` matrix; the
L1 distances have their own backward that recomputes the differences
instead of storing ``K`` copies of the feature map.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Sequence, Tuple

import torch
from torch import Tensor

from graphseg.graph.grid import window_offsets
from graphseg.losses.regularized import gaussian_kernel
from graphseg.ops.grid_shifts import shifts
from graphseg.utils.checks import check_choice, check_finite, check_positive_int, check_tensor
from graphseg.utils.constants import IGNORE

__all__ = ["AffinityPairs", "affinity_labels", "affinity_loss", "affinity_pairs",
           "pair_distances"]

WEIGHTINGS = ("release", "thesis")
REG_NORMS = ("nodes", "kernel")


class AffinityPairs(NamedTuple):
    """Boolean ``(B, K, h, w)`` masks of the labelled pairs, one plane per offset."""

    bg_pos: Tensor
    """Both ends labelled ``background``."""
    fg_pos: Tensor
    """Both ends labelled with the same non-background class."""
    neg: Tensor
    """Both ends labelled, with different classes."""


def _check_seeds(seeds: Tensor, name: str = "labels") -> Tensor:
    check_tensor(seeds, name)
    if seeds.dim() != 3:
        raise ValueError(f"{name} must have shape (B, h, w), got {tuple(seeds.shape)}")
    if seeds.is_floating_point() or seeds.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class ids (255 = unknown), got {seeds.dtype}")
    if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) > IGNORE):
        raise ValueError(f"{name} must be in 0..255 (255 = unknown), got values in "
                         f"[{int(seeds.min())}, {int(seeds.max())}]")
    return seeds.long()


def _half_offsets(radius: int, window: str) -> List[Tuple[int, int]]:
    """The offsets after ``(0, 0)`` in lexicographic order: one of each mirrored pair."""
    return [(dy, dx) for dy, dx in window_offsets(radius, window).tolist() if (dy, dx) > (0, 0)]


def _pairs(seeds: Tensor, offsets: Sequence[Tuple[int, int]], background: int) -> AffinityPairs:
    b, h, w = seeds.shape
    planes = [seeds.new_zeros(b, len(offsets), h, w, dtype=torch.bool) for _ in range(3)]
    labelled = seeds != IGNORE
    for k, t, s in shifts(offsets, h, w):
        if offsets[k] == (0, 0):
            continue
        a, c = seeds[:, t[0], t[1]], seeds[:, s[0], s[1]]
        both = labelled[:, t[0], t[1]] & labelled[:, s[0], s[1]]
        same = both & (a == c)
        planes[0][:, k, t[0], t[1]] = same & (a == background)
        planes[1][:, k, t[0], t[1]] = same & (a != background)
        planes[2][:, k, t[0], t[1]] = both & (a != c)
    return AffinityPairs(*planes)


def affinity_pairs(seeds: Tensor, radius: int = 5, window: str = "disk",
                   background: int = 0) -> AffinityPairs:
    """The labelled pairs of Eq. 3.7, split by kind, for every window offset.

    Args:
        seeds (Tensor): ``(B, h, w)`` integer seed labels on the node grid
            (:math:`M'_g`, e.g. from :func:`graphseg.graph.label_map_to_nodes`),
            255 = unknown.
        radius (int, optional): :math:`r` in nodes. (default: ``5``, the release)
        window (str, optional): ``"disk"`` (Eq. 3.7) or ``"square"``. (default: ``"disk"``)
        background (int, optional): the background label. (default: ``0``)

    Returns:
        AffinityPairs: ``(B, K, h, w)`` masks, ``K = len(window_offsets(radius,
        window))``; ``[b, k, y, x]`` is the pair ``(y, x)``,
        ``(y + dy, x + dx)``.  The self offset and pairs leaving the grid are
        False everywhere.
    """
    seeds = _check_seeds(seeds, "seeds")
    check_positive_int(radius, "radius")
    check_choice(window, "window", ("square", "disk"))
    offsets = [tuple(o) for o in window_offsets(radius, window).tolist()]
    return _pairs(seeds, offsets, int(background))


def affinity_labels(seeds: Tensor, radius: int = 5, window: str = "disk") -> Tensor:
    """Class-agnostic affinity labels :math:`L_A` (Eq. 3.6-3.7) for every window offset.

    Args:
        seeds (Tensor): ``(B, h, w)`` integer seed labels on the node grid, 255 = unknown.
        radius (int, optional): :math:`r` in nodes. (default: ``5``)
        window (str, optional): ``"disk"`` (Eq. 3.7) or ``"square"``. (default: ``"disk"``)

    Returns:
        Tensor: ``(B, K, h, w)`` uint8: 1 where both ends are labelled with the
        same class, 0 where with different classes, 255 where a pair is not
        used (an unknown end, outside the grid, or the self pair).

    Example:
        >>> import torch
        >>> from graphseg.losses import affinity_labels
        >>> seeds = torch.tensor([[[0, 1, 255]]])
        >>> # offsets (-1, 0), (0, -1), (0, 0), (0, 1), (1, 0); one row per offset
        >>> affinity_labels(seeds, radius=1)[0, :, 0].tolist()
        [[255, 255, 255], [255, 0, 255], [255, 255, 255], [0, 255, 255], [255, 255, 255]]
    """
    pairs = affinity_pairs(seeds, radius, window)
    out = torch.full(pairs.neg.shape, IGNORE, dtype=torch.uint8, device=pairs.neg.device)
    out[pairs.bg_pos | pairs.fg_pos] = 1
    out[pairs.neg] = 0
    return out


class _PairL1(torch.autograd.Function):
    """``mean_c |f[:, c, y, x] - f[:, c, y + dy, x + dx]|`` for every offset; the
    backward recomputes the sign of the differences, one offset at a time."""

    @staticmethod
    def forward(ctx, features: Tensor, offsets: Tuple[Tuple[int, int], ...]) -> Tensor:
        b, d, h, w = features.shape
        out = features.new_zeros(b, len(offsets), h, w)
        for k, t, s in shifts(offsets, h, w):
            out[:, k, t[0], t[1]] = (features[:, :, t[0], t[1]]
                                     - features[:, :, s[0], s[1]]).abs().mean(dim=1)
        ctx.save_for_backward(features)
        ctx.offsets = offsets
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (features,) = ctx.saved_tensors
        b, d, h, w = features.shape
        out = torch.zeros_like(features)
        for k, t, s in shifts(ctx.offsets, h, w):
            g = grad[:, k, t[0], t[1]].unsqueeze(1) / d
            part = torch.sign(features[:, :, t[0], t[1]] - features[:, :, s[0], s[1]]) * g
            out[:, :, t[0], t[1]] += part
            out[:, :, s[0], s[1]] -= part
        return out, None


def pair_distances(features: Tensor, radius: int = 5, window: str = "disk") -> Tensor:
    r"""Mean absolute differences :math:`\lVert F(i) - F(j) \rVert_1 / d` for every
    window offset (differentiable); ``exp(-out)`` is :math:`D(i, j)` of Eq. 3.8.

    Args:
        features (Tensor): ``(B, d, h, w)`` affinity features :math:`F_A`.
        radius (int, optional): the window's radius. (default: ``5``)
        window (str, optional): the window's shape. (default: ``"disk"``)

    Returns:
        Tensor: ``(B, K, h, w)``, 0 on the self offset and outside the grid.
    """
    _check_maps(features, "features")
    check_positive_int(radius, "radius")
    check_choice(window, "window", ("square", "disk"))
    offsets = tuple(tuple(o) for o in window_offsets(radius, window).tolist())
    return _PairL1.apply(features, offsets)


def _check_maps(x: Tensor, name: str) -> None:
    check_tensor(x, name)
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, h, w), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")
    check_finite(x, name)


def _mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask``; 0 (still in the graph) for an empty mask."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def affinity_loss(affinity: Tensor, labels: Tensor, colour: Tensor, radius: int = 5,
                  reg_weight: float = 3.0, sigma_xy: float = 6.0, sigma_rgb: float = 0.1,
                  window: str = "disk", weighting: str = "release", background: int = 0,
                  reg_norm: str = "nodes",
                  eps: float = 1e-5) -> Tuple[Tensor, Dict[str, float]]:
    r"""The affinity CNN loss :math:`L_{Aff} = L_{Ac} + \lambda L_{Ar}` (Eq. 3.9).

    With :math:`d(i, j) = \lVert F_A(i) - F_A(j) \rVert_1 / d_A` and
    :math:`D = e^{-d}` (Eq. 3.8), over the labelled pairs of Eq. 3.7:

    * ``weighting="release"`` (default, the authors' release):
      :math:`L_{Ac} = \frac14 \overline{d}_{bg+} + \frac14 \overline{d}_{fg+}
      + \frac12 \overline{-\log(1 - D + \epsilon)}_{-}`, each bar a mean over
      its pair set (background-background, foreground-foreground, different
      labels), so a scarce foreground still counts;
    * ``weighting="thesis"`` (Eq. 3.10): :math:`\overline{d}_{+}
      + \overline{-\log(1 - D + \epsilon)}_{-}`, means over :math:`A^+` and :math:`A^-`.

    :math:`-\log D = d` exactly; ``eps`` keeps :math:`\log(1 - D)` finite when
    two features coincide.  An empty pair set contributes 0.

    :math:`L_{Ar}` (Eq. 3.12) is computed over every pair of the window
    (Eq. 3.11), labelled or not, with :math:`G` of Eq. 3.13
    (:func:`graphseg.losses.gaussian_kernel`, squared distances as in the
    Gated CRF loss).  **Normalisation:** Eq. 3.12 is a bare sum over pixels.
    ``reg_norm="nodes"`` divides it by the number of nodes ``B * h * w`` (each
    node's kernel-weighted sum over its window, averaged over nodes), as the
    Gated CRF loss and :func:`graphseg.losses.regularized_loss` do, so
    :math:`\lambda` does not depend on the crop size; but then :math:`L_{Ar}`
    is the sum of about ``sum_j G(i, j)`` distances per node (up to ~50 with
    ``sigma_xy = 6`` nodes, radius 5), which outweighs :math:`L_{Ac}` by far.
    ``reg_norm="kernel"`` divides by the kernel mass :math:`\sum G(i, j)`
    instead: a kernel-weighted *mean* pair distance, on the scale of the
    positive-pair term of :math:`L_{Ac}`.  On GrabCut-13 with box seeds
    (``benchmarks/affinity_net.py``) ``"nodes"`` squeezes all affinities into
    about ``[0.97, 0.99]`` but ranks pairs slightly better with a pretrained
    backbone; ``"kernel"`` keeps a wide range (same-label 0.84-0.90,
    different-label 0.73-0.77).

    Args:
        affinity (Tensor): ``(B, d_A, h, w)`` affinity features :math:`F_A`.
        labels (Tensor): ``(B, h, w)`` integer seed labels on the same grid,
            255 = unknown; at least one labelled node.
        colour (Tensor): ``(B, 3, h, w)`` node colours in ``[0, 1]`` (the
            image average-pooled to the grid).
        radius (int, optional): window radius in nodes, for both terms. (default: ``5``)
        reg_weight (float, optional): :math:`\lambda`. (default: ``3.0``, the release)
        sigma_xy (float, optional): in nodes. (default: ``6.0``)
        sigma_rgb (float, optional): in colour units. (default: ``0.1``)
        window (str, optional): ``"disk"`` (Eq. 3.7 / 3.11) or ``"square"``.
            (default: ``"disk"``)
        weighting (str, optional): ``"release"`` or ``"thesis"``. (default: ``"release"``)
        background (int, optional): background label, for the release's split.
            (default: ``0``)
        reg_norm (str, optional): ``"nodes"`` or ``"kernel"``, see above.
            (default: ``"nodes"``)
        eps (float, optional): inside :math:`\log(1 - D + \epsilon)`. (default: ``1e-5``)

    Returns:
        tuple: the scalar loss, and a dict of floats: ``bg_pos``, ``fg_pos``,
        ``pos``, ``neg`` (the mean pair losses), ``ac``, ``ar``, ``loss``, and the
        pair counts ``n_bg_pos``, ``n_fg_pos``, ``n_neg`` (unordered pairs).

    Example:
        >>> import torch
        >>> from graphseg.losses import affinity_loss
        >>> labels = torch.tensor([[[0, 0, 1], [0, 255, 1]]])
        >>> loss, parts = affinity_loss(torch.rand(1, 4, 2, 3), labels, torch.rand(1, 3, 2, 3),
        ...                             radius=1)
        >>> loss.dim(), parts["n_bg_pos"], parts["n_fg_pos"], parts["n_neg"]
        (0, 2, 1, 1)
    """
    _check_maps(affinity, "affinity")
    labels = _check_seeds(labels, "labels")
    _check_maps(colour, "colour")
    b, _, h, w = affinity.shape
    if tuple(labels.shape) != (b, h, w):
        raise ValueError(f"labels has shape {tuple(labels.shape)} but affinity is "
                         f"{tuple(affinity.shape)}; expected ({b}, {h}, {w})")
    if colour.shape[0] != b or colour.shape[1] != 3 or colour.shape[2:] != affinity.shape[2:]:
        raise ValueError(f"colour must have shape ({b}, 3, {h}, {w}) like affinity, "
                         f"got {tuple(colour.shape)}")
    check_positive_int(radius, "radius")
    check_choice(window, "window", ("square", "disk"))
    check_choice(weighting, "weighting", WEIGHTINGS)
    check_choice(reg_norm, "reg_norm", REG_NORMS)
    if not float(reg_weight) >= 0:
        raise ValueError(f"reg_weight must be >= 0, got {reg_weight}")
    if not bool((labels != IGNORE).any()):
        raise ValueError("labels has no labelled node (all 255): nothing to learn affinities from")

    # One offset of each mirrored pair: D is symmetric, so the means over unordered
    # pairs equal those over ordered pairs, at half the cost.
    offsets = tuple(_half_offsets(radius, window))
    dist = _PairL1.apply(affinity, offsets)  # (B, K/2, h, w)
    pairs = _pairs(labels, offsets, int(background))
    neg_loss = -torch.log(-torch.expm1(-dist) + eps)
    parts_t = {"bg_pos": _mean(dist, pairs.bg_pos), "fg_pos": _mean(dist, pairs.fg_pos),
               "pos": _mean(dist, pairs.bg_pos | pairs.fg_pos), "neg": _mean(neg_loss, pairs.neg)}
    if weighting == "release":
        ac = parts_t["bg_pos"] / 4 + parts_t["fg_pos"] / 4 + parts_t["neg"] / 2
    else:
        ac = parts_t["pos"] + parts_t["neg"]

    full = window_offsets(radius, window).tolist()
    index = [full.index(list(o)) for o in offsets]
    with torch.no_grad():
        kernel = torch.stack([gaussian_kernel(colour[i].to(affinity.dtype), radius, sigma_xy,
                                              sigma_rgb, window)[index] for i in range(b)])
    if reg_norm == "nodes":
        # x2: every unordered pair stands for (i, j) and (j, i) of Eq. 3.12
        ar = 2 * (kernel * dist).sum() / (b * h * w)
    else:
        ar = (kernel * dist).sum() / kernel.sum().clamp(min=torch.finfo(kernel.dtype).tiny)
    loss = ac + float(reg_weight) * ar
    parts = {name: float(value.detach()) for name, value in parts_t.items()}
    parts.update(ac=float(ac.detach()), ar=float(ar.detach()), loss=float(loss.detach()),
                 n_bg_pos=int(pairs.bg_pos.sum()), n_fg_pos=int(pairs.fg_pos.sum()),
                 n_neg=int(pairs.neg.sum()))
    return loss, parts
