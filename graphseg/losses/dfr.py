r"""The losses of DFR (thesis chapter 4) as window graph losses over the pixel grid.

DFR, the Dynamic Feature Regularized loss (Zhang et al., "Dynamic Feature
Regularized Loss for Weakly Supervised Semantic Segmentation",
https://arxiv.org/abs/2108.01296), adds a consistency head with features
:math:`F` to the segmentation network and three losses on the pixel pairs
:math:`(i, j)` of a window :math:`R` (:math:`|i_x - j_x| \le r`,
:math:`|i_y - j_y| \le r`, ``r = 5``) of the loss grid (``h x w`` pixels):

* the **dynamic feature regularised loss** (Eq. 4.4-4.6), the relaxed Potts
  energy of :func:`~graphseg.losses.potts_energy` under a kernel on position,
  RGB and the *detached* features,

  .. math::
      \mathcal{L}_{dfr} = \frac{1}{hw} \sum_i \sum_{(i, j) \in R, j \ne i}
      K(i, j) \left(1 - \langle P(i), P(j) \rangle\right),
      \quad K(i, j) = \exp\Big(-\frac{\lVert S_i - S_j \rVert^2}{2 \sigma_1^2}
      - \frac{\lVert I_i - I_j \rVert^2}{2 \sigma_2^2}
      - \frac{\lVert F_i - F_j \rVert^2}{2 \sigma_3^2}\Big);

  :func:`dfr_loss` composes :func:`~graphseg.losses.window_kernel` and
  :func:`~graphseg.losses.potts_energy` (shared with RRM's dense energy loss,
  :mod:`graphseg.losses.energy`), nothing is re-implemented;
* the **feature distance loss** (Eq. 4.7-4.11): confident labels
  :math:`M(i) = \arg\max_c P^c(i)` where :math:`\max_c P^c(i) > \gamma`, 255
  elsewhere (:func:`confident_labels`); the window pairs with both ends confident,
  :math:`R_A`, split into same-label background pairs :math:`A^+_{bg}`,
  same-label foreground pairs :math:`A^+_{fg}` and different-label pairs
  :math:`A^-`; with :math:`D(i, j) = \exp(-\lVert F_i - F_j \rVert_1 / d)`,

  .. math::
      \mathcal{L}_{fd} = -\frac{1}{|A^+_{bg}|} \sum_{A^+_{bg}} \log D
      - \frac{1}{|A^+_{fg}|} \sum_{A^+_{fg}} \log D
      - \frac{2}{|A^-|} \sum_{A^-} \log (1 - D)

  (:func:`feature_distance_loss`): same-label features pulled together,
  different-label ones pushed apart, each set averaged on its own;
* the **feature regularised loss** (Eq. 4.12-4.13), the L1 feature distance
  under the static kernel :math:`K_f` (position and RGB),

  .. math::
      \mathcal{L}_{fr} = \frac{1}{hw} \sum_i \sum_{(i, j) \in R_A, j \ne i}
      K_f(i, j) \frac{\lVert F_i - F_j \rVert_1}{d}

  (:func:`feature_regularized_loss`, :math:`K_f` from
  :func:`~graphseg.losses.window_kernel`).

**Readings.** :math:`-\log D = \lVert F_i - F_j \rVert_1 / d` exactly; the
distance :math:`x` inside :math:`-\log(1 - D) = -\log(-\mathrm{expm1}(-x))` is
clamped to at least :data:`MIN_DISTANCE` (``1e-6``), so two identical features
of different classes cost :math:`-\log(10^{-6}) \approx 13.8` (finite; no
gradient below the clamp) instead of infinity.  The pair sets are sets of
*ordered* pairs, as :math:`R` is; every term is symmetric in ``(i, j)``, so each
mean equals the mean over unordered pairs (which is what is computed, half the
offsets).  An empty set contributes 0, with a graph.  Eq. 4.12 prints
:math:`R_A` (both ends confident): :func:`feature_regularized_loss` takes it as
a ``mask`` (pass the confident pixels; ``None`` keeps all window pairs,
:math:`R`), normalised as :func:`~graphseg.losses.potts_energy` is: by the
``B h w`` pixels of the grid, the valid ones when ``valid`` is given.

**Memory.** About ``K x B x H x W`` (``K = (2 r + 1)^2 = 121`` window offsets),
never ``K x B x D x H x W``: the distances come from
:func:`~graphseg.ops.window_l1_distance`, which recomputes each offset's
difference in backward instead of keeping it; pure tensor shifts, any device.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from graphseg.graph.grid import WINDOWS, window_offsets
from graphseg.losses.energy import (
    _check_kernel,
    _check_maps,
    _check_plane,
    _check_sigma,
    potts_energy,
    window_kernel,
)
from graphseg.ops.grid_shifts import shifts
from graphseg.ops.window_distance import window_l1_distance
from graphseg.utils.checks import check_choice, check_positive_int
from graphseg.utils.constants import IGNORE

__all__ = ["MIN_DISTANCE", "confident_labels", "dfr_loss", "feature_distance_loss",
           "feature_regularized_loss"]

#: the smallest feature distance inside ``-log(1 - D)`` (Eq. 4.11): ``-log(1e-6)`` at most
MIN_DISTANCE = 1e-6


def confident_labels(probs: Tensor, *, gamma: float = 0.98, valid: Optional[Tensor] = None,
                     ignore_index: int = IGNORE) -> Tensor:
    r"""The confident labels of Eq. 4.7.

    .. math::
        M(i) = \arg\max_c P^c(i) \text{ if } \max_c P^c(i) > \gamma,
        \quad 255 \text{ otherwise}

    Args:
        probs (Tensor): ``(B, C, H, W)`` class probabilities (softmax output).
        gamma (float, optional): the confidence threshold, in ``[0, 1]``.
            (default: ``0.98``)
        valid (Tensor, optional): ``(B, H, W)`` bool, the pixels of the photos;
            the others get ``ignore_index``. (default: ``None``: all)
        ignore_index (int, optional): the label of unconfident pixels.
            (default: ``255``)

    Returns:
        Tensor: ``(B, H, W)`` int64 labels, a constant (no gradient).

    Example:
        >>> import torch
        >>> from graphseg.losses import confident_labels
        >>> probs = torch.tensor([[0.99, 0.5, 0.01], [0.01, 0.5, 0.99]])[None, :, None]
        >>> confident_labels(probs).tolist()
        [[[0, 255, 1]]]
    """
    _check_maps(probs, "probs", finite=False)
    b, _, h, w = probs.shape
    _check_plane(valid, "valid", (b, h, w), "bool")
    gamma = float(gamma)
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    with torch.no_grad():
        top, labels = probs.max(dim=1)
        keep = top > gamma
        if valid is not None:
            keep &= valid
        return torch.where(keep, labels, torch.full_like(labels, ignore_index))


def _check_features(features: Tensor, radius: int, window: str):
    _check_maps(features, "features", finite=False)
    check_positive_int(radius, "radius")
    check_choice(window, "window", WINDOWS)
    return window_offsets(radius, window)


def feature_distance_loss(features: Tensor, labels: Tensor, *, radius: int = 5,
                          window: str = "square", background: int = 0,
                          ignore_index: int = IGNORE) -> Tensor:
    r"""DFR's feature distance loss (Eq. 4.8-4.11) over the window pairs.

    .. math::
        -\frac{1}{|A^+_{bg}|} \sum_{A^+_{bg}} \log D
        - \frac{1}{|A^+_{fg}|} \sum_{A^+_{fg}} \log D
        - \frac{2}{|A^-|} \sum_{A^-} \log (1 - D),
        \quad D(i, j) = e^{-\lVert F_i - F_j \rVert_1 / d}

    over the pairs :math:`i \ne j` of the window with both labels known: same
    label, the background class (:math:`A^+_{bg}`); same label, a foreground class
    (:math:`A^+_{fg}`, all foreground classes together); different labels
    (:math:`A^-`).  An empty set adds 0; see the module notes for the clamp
    inside :math:`\log(1 - D)`.

    Args:
        features (Tensor): ``(B, D, H, W)`` features of the consistency head
            (with their gradient).
        labels (Tensor): ``(B, H, W)`` integer labels on the same grid, e.g.
            :func:`confident_labels`; ``ignore_index`` = no pairs.
        radius (int, optional): window radius in grid pixels. (default: ``5``)
        window (str, optional): ``"square"`` or ``"disk"``. (default: ``"square"``)
        background (int, optional): the background class. (default: ``0``)
        ignore_index (int, optional): the unlabelled value. (default: ``255``)

    Returns:
        Tensor: the scalar loss; 0 (with a graph) when no pair is labelled.

    Example:
        >>> import torch
        >>> from graphseg.losses import feature_distance_loss
        >>> features = torch.tensor([[[[0.0, 1.0, 3.0, 6.0]]]])  # (1, 1, 1, 4)
        >>> labels = torch.tensor([[[0, 0, 1, 1]]])
        >>> loss = feature_distance_loss(features, labels, radius=1)  # 1 + 3 - 2 log(1 - e^-2)
        >>> round(loss.item(), 4)
        4.2908
    """
    offsets = _check_features(features, radius, window)
    b, d, h, w = features.shape
    _check_plane(labels, "labels", (b, h, w), "int")
    dist = window_l1_distance(features, offsets) / d  # -log D
    num_k = offsets.size(0)
    zero = features.sum() * 0
    sums, counts = [[zero], [zero], [zero]], [[], [], []]  # bg+, fg+, -
    for k, t, s in shifts(offsets.tolist(), h, w):
        if k >= num_k // 2:  # the centre and the mirror half: the same unordered pairs
            break
        lt, ls = labels[:, t[0], t[1]], labels[:, s[0], s[1]]
        known = (lt != ignore_index) & (ls != ignore_index)
        same = known & (lt == ls)
        sets = (same & (lt == background), same & (lt != background), known & (lt != ls))
        x = dist[:, k, t[0], t[1]]
        # -log(1 - D) = -log(-expm1(-x)), finite for identical features
        push = -torch.log(-torch.expm1(-x.clamp(min=MIN_DISTANCE)))
        for n, (keep, value) in enumerate(zip(sets, (x, x, push))):
            sums[n].append(torch.where(keep, value, torch.zeros_like(value)).sum())
            counts[n].append(keep.sum())

    def mean(n: int) -> Tensor:
        total = torch.stack(sums[n]).sum()
        if not counts[n]:
            return total
        return total / torch.stack(counts[n]).sum().clamp(min=1)  # sync-free

    return mean(0) + mean(1) + 2 * mean(2)


def feature_regularized_loss(features: Tensor, kernel: Tensor, *, radius: int = 5,
                             window: str = "square", mask: Optional[Tensor] = None,
                             valid: Optional[Tensor] = None) -> Tensor:
    r"""DFR's feature regularised loss (Eq. 4.12-4.13) over the window pairs.

    .. math::
        \frac{1}{N} \sum_i \sum_{j \in W(i), j \ne i} K_f(i, j)
        \frac{\lVert F_i - F_j \rVert_1}{d}

    over the pairs with both ends in ``mask`` and in ``valid``; :math:`N = B H W`,
    the pixels of the grid (the ``valid`` ones when given), as in
    :func:`~graphseg.losses.potts_energy`.  The thesis' :math:`R_A` is
    ``mask=confident_labels(probs) != 255``; ``mask=None`` keeps every window pair.

    Args:
        features (Tensor): ``(B, D, H, W)`` features of the consistency head.
        kernel (Tensor): ``(B, K, H, W)`` planes of
            :func:`~graphseg.losses.window_kernel` (position and RGB, the static
            :math:`K_f`); it multiplies as given.
        radius (int, optional): radius of the window the kernel was built for.
            (default: ``5``)
        window (str, optional): its shape. (default: ``"square"``)
        mask (Tensor, optional): ``(B, H, W)`` bool, the pixels whose pairs count
            (both ends). (default: ``None``: all)
        valid (Tensor, optional): ``(B, H, W)`` bool, the pixels of the photos
            (``False`` on padding): pairs need both ends valid, and the loss is
            normalised by their number. (default: ``None``: all)

    Returns:
        Tensor: the scalar loss; 0 (with a graph) when no pair counts.

    Example:
        >>> import torch
        >>> from graphseg.losses import feature_regularized_loss, window_kernel
        >>> image = torch.zeros(1, 3, 1, 2)
        >>> features = torch.tensor([[[[0.0, 2.0]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
        >>> kernel = window_kernel([(image, 0.5)], radius=1, sigma_xy=float("inf"))
        >>> feature_regularized_loss(features, kernel, radius=1).item()  # 2 pairs x 1 / 2 px
        1.0
    """
    offsets = _check_features(features, radius, window)
    _check_kernel(kernel, features, radius, window)
    b, d, h, w = features.shape
    mask = _check_plane(mask, "mask", (b, h, w), "bool")
    valid = _check_plane(valid, "valid", (b, h, w), "bool")
    count = b * h * w
    if valid is not None:
        count = valid.sum().clamp(min=1)  # sync-free: no valid pixel gives 0 / 1
        mask = valid if mask is None else mask & valid
    dist = window_l1_distance(features, offsets) / d
    if mask is None:  # the distance is 0 on the centre and outside the grid
        return (kernel * dist).sum() / count
    centre = offsets.size(0) // 2
    terms = [features.sum() * 0]
    for k, t, s in shifts(offsets.tolist(), h, w):
        if k == centre:
            continue
        keep = mask[:, t[0], t[1]] & mask[:, s[0], s[1]]
        terms.append((kernel[:, k, t[0], t[1]] * dist[:, k, t[0], t[1]] * keep).sum())
    return torch.stack(terms).sum() / count


def dfr_loss(probs: Tensor, image: Tensor, features: Optional[Tensor] = None, *,
             radius: int = 5, sigma_xy: float = 6.0, sigma_rgb: float = 0.5,
             sigma_feat: float = 50.0, valid: Optional[Tensor] = None,
             window: str = "square") -> Tensor:
    r"""DFR's dynamic feature regularised loss (Eq. 4.4-4.6) in one call.

    :func:`~graphseg.losses.window_kernel` on position, RGB and the **detached**
    ``features`` (the kernel's "non-gradient values", section 4.2.2), then
    :func:`~graphseg.losses.potts_energy`: pairs with both ends in ``valid``,
    normalised by the valid pixels.  ``features=None`` drops the feature term: the
    static position and RGB kernel, the Gated-CRF-style baseline of the thesis.
    Everything on the grid of ``probs`` (resize the image and features to it).

    Args:
        probs (Tensor): ``(B, C, H, W)`` softmax output.
        image (Tensor): ``(B, 3, H, W)`` ImageNet-normalised RGB on the same grid.
        features (Tensor, optional): ``(B, D, H, W)`` consistency-head features;
            detached here. (default: ``None``: no feature term)
        radius (int, optional): window radius in grid pixels. (default: ``5``)
        sigma_xy (float, optional): :math:`\sigma_1`, in grid pixels.
            (default: ``6.0``)
        sigma_rgb (float, optional): :math:`\sigma_2`, in units of the normalised
            image. (default: ``0.5``)
        sigma_feat (float, optional): :math:`\sigma_3`, in feature units.
            (default: ``50.0``)
        valid (Tensor, optional): ``(B, H, W)`` bool, the pixels of the photos.
            (default: ``None``: all)
        window (str, optional): ``"square"`` or ``"disk"``. (default: ``"square"``)

    Returns:
        Tensor: the scalar loss.

    Example:
        >>> import torch
        >>> from graphseg.losses import dfr_loss
        >>> probs = torch.rand(2, 3, 16, 16).softmax(dim=1)
        >>> image, features = torch.randn(2, 3, 16, 16), torch.randn(2, 8, 16, 16)
        >>> dfr_loss(probs, image, features).dim()
        0
    """
    _check_maps(probs, "probs", finite=False)
    b, _, h, w = probs.shape
    _check_maps(image, "image", (b, h, w))
    if image.shape[1] != 3:
        raise ValueError(f"image must have 3 channels (RGB), got {image.shape[1]}")
    if features is not None:
        _check_maps(features, "features", (b, h, w), finite=False)
    _check_plane(valid, "valid", (b, h, w), "bool")
    check_positive_int(radius, "radius")
    check_choice(window, "window", WINDOWS)
    guides = [(image.detach().to(probs.dtype), _check_sigma(sigma_rgb, "sigma_rgb"))]
    if features is not None:
        guides.append((features.detach().to(probs.dtype),
                       _check_sigma(sigma_feat, "sigma_feat")))
    with torch.no_grad():
        kernel = window_kernel(guides, radius=radius, sigma_xy=sigma_xy, window=window)
    return potts_energy(probs, kernel, radius=radius, window=window, mask=valid)

