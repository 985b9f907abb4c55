r"""The dense energy loss of RRM (thesis Eq. 2.17-2.21) as a window graph regulariser.

Eq. 2.17 sums, over every ordered pair of pixels :math:`i \ne j`, a Gaussian
bilateral kernel (Eq. 2.18) times the probability that the two ends take
*different* classes; on the probability simplex that is the relaxed Potts model
of Eq. 2.19:

.. math::
    E(i, j) = \sum_{c_a \ne c_b} G(i, j) P^{c_a}(i) P^{c_b}(j)
    = G(i, j) \sum_c P^c(i) (1 - P^c(j)) = G(i, j) (1 - \langle P(i), P(j) \rangle),

    \mathcal{L}_{energy} = \frac{1}{N} \sum_i S(i) \sum_{j \ne i} E(i, j)

with the soft filter :math:`S` of Eq. 2.21.  Here the pairs are those inside a
radius-``r`` window of the pixel grid, computed with the grid shifts of
:mod:`graphseg.ops.grid_shifts`: memory about ``K x B x H x W`` (``K`` window
offsets), never ``N x N`` or ``K x N x C``, on any device, no compiled
extension (the release's permutohedral filter is its most reported build failure).

The pieces are shared: :func:`window_kernel` builds :math:`G` from any number of
guides (RGB for RRM; RGB and network features for DFR, thesis Eq. 4.6;
:func:`graphseg.losses.gaussian_kernel` of A2GNN is its one-guide case) and
:func:`potts_energy` is the weighted energy (:func:`graphseg.losses.regularized_loss`
is its unweighted one-image case).  :func:`dense_energy_loss` is RRM's loss in one
call; :func:`dense_potts_energy_reference` is the exact all-pairs energy the tests
compare against.

**Normalisation.** Eq. 2.20 is a bare sum over pixels and Eq. 2.18 has an
unspecified constant :math:`1/W`; the release (after Tang et al., ECCV 2018)
multiplies the raw all-pairs energy at half resolution, averaged over the
images, by ``1e-7``.  Here the sum is divided by the number of pixels ``B * H * W``
of the working grid (the valid ones when a ``mask`` is given), so the loss is a
per-pixel energy that does not depend on the crop size, the batch size or the
working resolution's pixel count.  Its size is about :math:`\sum_{j} G(i, j)`
times the disagreement, i.e. up to the kernel mass of a window: with the
defaults of :func:`dense_energy_loss` on the ``llama.jpg`` crop below, 53 for a
uniform 21-class prediction and 14 for the softened ground truth, against a
cross-entropy of a few units, so :math:`\lambda_1 = 1` (the thesis') is far
stronger here than the release's weight.  The per-pixel energy at scale ``s``
grows as ``s^2`` (more neighbours within the same physical reach), so a weight
``1e-7`` on the release's raw half-resolution energy per image corresponds to
:math:`\lambda_1 \approx 10^{-7} H W / (16 s^2) / \kappa` here (``H x W`` the
input crop, :math:`\kappa` the share of the all-pairs energy the window keeps,
``E ratio`` below): ``2.6e-3`` for a 321 x 321 crop at ``s = 1/2`` with all
pairs, about ``0.04 / 0.55 = 0.075`` with the defaults (``s = 1/8``, radius 10).
:func:`dense_energy_loss` therefore normalises by default (``normalize=True``):
each pixel's kernel is divided by its sum over the window, Eq. 2.18's :math:`1/W`
read as a per-pixel constant, which makes the loss a mean disagreement in
``[0, 1]`` that :math:`\lambda_1 = 1` weighs like the cross-entropy, whatever the
window, scale and bandwidths.

**What the window costs.** The window drops the pairs farther apart than ``r``.
With the thesis' ``sigma_xy = 100`` px most of the kernel mass of a 321 x 321
crop lies outside any affordable window, so the window energy is a *local*
version of Eq. 2.20.  Measured on GrabCut ``llama.jpg`` (centre 321 x 321 crop,
area-averaged to the grid, ``sigma_rgb = 15``, square window): ``kernel`` is
``E_window / E_dense`` for any spatially constant prediction (the kernel mass the
window keeps), ``E ratio`` the same for the ground-truth mask softened to
0.9 / 0.1, ``grad cos`` the cosine between the two energies' gradients with
respect to that prediction's logits:

======== ====== ====== ====== ======= ========
scale    grid   radius kernel E ratio grad cos
======== ====== ====== ====== ======= ========
1/4      80     5      0.109  0.074   0.864
1/4      80     10     0.280  0.207   0.906
1/4      80     20     0.618  0.532   0.969
1/4      80     40     0.930  0.911   0.998
1/8      40     5      0.299  0.222   0.909
1/8      40     10     0.634  0.550   0.971
1/8      40     20     0.933  0.914   0.998
======== ====== ====== ====== ======= ========

(``python tests/losses/test_energy.py`` prints this table, from its
``measure_window_error``; about a minute on 2 CPU cores, the all-pairs side
dominating.)  What matters is the window's reach in full-resolution pixels
against ``sigma_xy``: 1/8 with radius ``r`` is about 1/4 with ``2 r``, at a
quarter of the pixels.  Hence the defaults of :func:`dense_energy_loss`:
``scale=1/8``, ``radius=10`` (21 x 21 offsets, 80 full-resolution pixels each
way): about half the energy, a gradient within 14 degrees of the all-pairs one,
441 shifts per call; ``radius=20`` there gets within 4 degrees for 4x the time.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from graphseg.graph.grid import WINDOWS, window_offsets
from graphseg.ops.grid_shifts import shifts
from graphseg.utils.checks import check_choice, check_finite, check_positive_int, check_tensor
from graphseg.utils.constants import IGNORE

__all__ = ["dense_energy_loss", "dense_potts_energy_reference", "potts_energy", "soft_filter",
           "window_kernel"]

Guides = Sequence[Tuple[Tensor, float]]


def _check_maps(value: Tensor, name: str, batch_shape: Optional[tuple] = None,
                finite: bool = True) -> Tensor:
    """A non-empty floating ``(B, D, H, W)`` map, of ``(B, H, W)`` ``batch_shape`` if given,
    finite if ``finite`` (not for a network's output: a scan and a sync per step, and a NaN
    there should reach the caller's loss as it would without this module)."""
    check_tensor(value, name)
    if value.dim() != 4:
        raise ValueError(f"{name} must have shape (B, D, H, W), got {tuple(value.shape)}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {value.dtype}")
    if value.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(value.shape)}")
    if batch_shape is not None and (value.shape[0], *value.shape[2:]) != batch_shape:
        b, h, w = batch_shape
        raise ValueError(f"{name} has shape {tuple(value.shape)}; expected ({b}, D, {h}, {w})")
    if finite:
        check_finite(value, name)
    return value


def _check_plane(value: Optional[Tensor], name: str, shape: tuple,
                 dtype_kind: str) -> Optional[Tensor]:
    """``None``, or a ``(B, H, W)`` tensor: ``"float"``, ``"bool"`` or ``"int"``."""
    if value is None:
        return None
    check_tensor(value, name)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    if dtype_kind == "float" and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {value.dtype}")
    if dtype_kind == "bool" and value.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor, got {value.dtype}")
    if dtype_kind == "int" and (value.is_floating_point() or value.dtype == torch.bool):
        raise TypeError(f"{name} must hold integer class ids, got {value.dtype}")
    return value


def _check_sigma(value, name: str) -> float:
    value = float(value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _check_guides(guides: Guides) -> Tuple[list, tuple]:
    """The guides as ``[(tensor, sigma)]`` and their common ``(B, H, W)``."""
    guides = list(guides)
    if not guides:
        raise ValueError("guides is empty: give at least one (tensor, sigma) pair, e.g. "
                         "[(rgb, 15.0)]")
    out, shape = [], None
    for n, pair in enumerate(guides):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"guides[{n}] must be a (tensor, sigma) pair, got {pair!r:.60}")
        tensor, sigma = pair
        _check_maps(tensor, f"guides[{n}]", shape)
        shape = (tensor.shape[0], *tensor.shape[2:])
        out.append((tensor, _check_sigma(sigma, f"guides[{n}] sigma")))
    return out, shape


def window_kernel(guides: Guides, *, radius: int, sigma_xy: float,
                  window: str = "square") -> Tensor:
    r"""The bilateral kernel between every pixel and its window neighbours (Eq. 2.18).

    .. math::
        G(i, j) = \exp\left(-\frac{\lVert p_i - p_j \rVert^2}{2 \sigma_{xy}^2}
        - \sum_g \frac{\lVert f_g(i) - f_g(j) \rVert^2}{2 \sigma_g^2}\right) [i \ne j]

    Positions :math:`p` are in pixels of the grid the guides are on: for a grid
    of stride ``s`` pass ``sigma_xy`` in that grid's pixels (``sigma / s``).  Only
    half of the offsets are computed; the mirror half is the same value seen from
    the other end of the pair.  Guides are normally constants (the image; DFR's
    deep features are "non-gradient values", section 4.2.2); if one requires
    grad, autograd keeps one ``(B, D_g, H, W)`` difference per offset pair.

    Args:
        guides (sequence): ``(tensor, sigma)`` pairs, ``tensor`` a ``(B, D_g, H, W)``
            floating map (RGB is one guide, network features another), ``sigma``
            its bandwidth in the tensor's units.
        radius (int): window radius in pixels of the grid.
        sigma_xy (float): spatial bandwidth in pixels of the grid (``inf`` drops
            the spatial term).
        window (str, optional): ``"square"`` or ``"disk"``. (default: ``"square"``)

    Returns:
        Tensor: ``(B, K, H, W)`` planes for :func:`~graphseg.graph.window_offsets`
        ``(radius, window)``: ``out[b, k, y, x]`` joins ``(y, x)`` to
        ``(y + dy, x + dx)``; 0 on the self offset and outside the grid.

    Example:
        >>> import torch
        >>> from graphseg.losses import window_kernel
        >>> rgb = torch.zeros(1, 3, 4, 5)
        >>> window_kernel([(rgb, 15.0)], radius=1, sigma_xy=1.0).shape
        torch.Size([1, 9, 4, 5])
    """
    guides, (b, h, w) = _check_guides(guides)
    check_positive_int(radius, "radius")
    check_choice(window, "window", WINDOWS)
    sigma_xy = _check_sigma(sigma_xy, "sigma_xy")
    offsets = window_offsets(radius, window)
    num_k = offsets.size(0)
    dtype = guides[0][0].dtype
    for tensor, _ in guides[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    out = guides[0][0].new_zeros(b, num_k, h, w, dtype=dtype)
    for k, t, s in shifts(offsets.tolist(), h, w):
        if k >= num_k // 2:  # the centre (self) and the mirror half
            break
        dy, dx = offsets[k].tolist()
        exponent = (dy * dy + dx * dx) / (2 * sigma_xy ** 2)
        for tensor, sigma in guides:
            diff = tensor[:, :, t[0], t[1]] - tensor[:, :, s[0], s[1]]
            exponent = exponent + diff.square().sum(dim=1) / (2 * sigma ** 2)
        value = torch.exp(-exponent)
        out[:, k, t[0], t[1]] = value
        # offset K - 1 - k is -offsets[k]: the same pair seen from j
        out[:, num_k - 1 - k, s[0], s[1]] = value
    return out


def _check_kernel(kernel: Tensor, probs: Tensor, radius: int, window: str) -> Tensor:
    check_positive_int(radius, "radius")
    check_choice(window, "window", WINDOWS)
    b, _, h, w = probs.shape
    offsets = window_offsets(radius, window)
    check_tensor(kernel, "kernel")
    if kernel.dim() != 4 or kernel.shape[0] != b or kernel.shape[2:] != probs.shape[2:]:
        raise ValueError(f"kernel must have shape ({b}, K, {h}, {w}) to match probs, "
                         f"got {tuple(kernel.shape)}")
    if kernel.size(1) != offsets.size(0):
        raise ValueError(f"kernel has {kernel.size(1)} planes but a radius-{radius} {window} "
                         f"window has {offsets.size(0)} offsets")
    return offsets


def potts_energy(probs: Tensor, kernel: Tensor, *, radius: int, window: str = "square",
                 weight: Optional[Tensor] = None, mask: Optional[Tensor] = None) -> Tensor:
    r"""The weighted relaxed Potts energy over the window pairs (Eq. 2.19-2.20).

    .. math::
        \frac{1}{N} \sum_i S(i) \sum_{j \in W(i), j \ne i} G(i, j)
        \left(1 - \langle P(i), P(j) \rangle\right)

    :math:`N = B H W`, the pixels of the grid (the pixels in ``mask`` when given;
    see the module notes for the normalisation).  ``1 - <P(i), P(j)>`` equals
    :math:`\sum_c P^c(i) (1 - P^c(j))` and the sum over :math:`c_a \ne c_b` of
    Eq. 2.17 because ``probs`` sums to one over the classes (not checked: a scan
    per step).  The self pair is never counted, whatever the kernel holds there.
    Memory: two ``(B, H, W)`` planes per offset kept for backward.

    Args:
        probs (Tensor): ``(B, C, H, W)`` class probabilities.
        kernel (Tensor): ``(B, K, H, W)`` planes from :func:`window_kernel`.
        radius (int): radius of the window the kernel was built for.
        window (str, optional): its shape. (default: ``"square"``)
        weight (Tensor, optional): ``(B, H, W)`` weight :math:`S(i)` of each pixel's
            pairs, e.g. :func:`soft_filter`; it multiplies as given (gradient and
            all). (default: ``None``: 1)
        mask (Tensor, optional): ``(B, H, W)`` bool, the pixels that take part
            (e.g. not padding): a pair counts when both ends are in it.
            (default: ``None``: all)

    Returns:
        Tensor: the scalar energy; 0 (with a graph) when no pair exists.
    """
    _check_maps(probs, "probs", finite=False)
    offsets = _check_kernel(kernel, probs, radius, window)
    b, _, h, w = probs.shape
    weight = _check_plane(weight, "weight", (b, h, w), "float")
    mask = _check_plane(mask, "mask", (b, h, w), "bool")
    count = b * h * w
    if mask is not None:
        # sync-free: an empty mask gives 0 / 1
        count = mask.sum().clamp(min=1)
        weight = mask.to(kernel.dtype) if weight is None else weight * mask
    centre = offsets.size(0) // 2
    terms = [probs.sum() * 0]
    for k, t, s in shifts(offsets.tolist(), h, w):
        if k == centre:
            continue
        g = kernel[:, k, t[0], t[1]]
        if weight is not None:
            g = g * weight[:, t[0], t[1]]
        if mask is not None:
            g = g * mask[:, s[0], s[1]]
        agreement = (probs[:, :, t[0], t[1]] * probs[:, :, s[0], s[1]]).sum(dim=1)
        terms.append((g * (1 - agreement)).sum())
    return torch.stack(terms).sum() / count


def soft_filter(probs: Tensor, labels: Tensor, ignore_index: int = IGNORE, *,
                detach: bool = True) -> Tensor:
    r"""The soft filter of Eq. 2.21.

    .. math::
        S(i) = 1 - \max_c P^c(i) \text{ if } i \in \Phi, \quad 1 \text{ otherwise}

    (:math:`\Phi` the labelled pixels): a confidently labelled pixel, already held
    by the cross-entropy, is almost left out of the energy.  **Detached** by
    default, as in the release, whose energy backward treats the gate as a
    constant: with a gradient, the energy could be lowered by making labelled
    pixels more confident (in whatever class is their maximum) instead of
    smoother, a second, unlabelled cross-entropy the thesis does not describe.

    Args:
        probs (Tensor): ``(B, C, H, W)`` class probabilities.
        labels (Tensor): ``(B, H, W)`` integer labels, ``ignore_index`` = unlabelled.
        ignore_index (int, optional): the unlabelled value. (default: ``255``)
        detach (bool, optional): return a constant. (default: ``True``)

    Returns:
        Tensor: ``(B, H, W)``, in the dtype of ``probs``.
    """
    _check_maps(probs, "probs", finite=False)
    b, _, h, w = probs.shape
    _check_plane(labels, "labels", (b, h, w), "int")
    gate = torch.where(labels != ignore_index, 1 - probs.amax(dim=1),
                       torch.ones((), dtype=probs.dtype, device=probs.device))
    return gate.detach() if detach else gate


def dense_energy_loss(probs: Tensor, image: Tensor, *, labels: Optional[Tensor] = None,
                      valid: Optional[Tensor] = None, sigma_xy: float = 100.0,
                      sigma_rgb: float = 15.0, scale: float = 0.125, radius: int = 10,
                      window: str = "square", ignore_index: int = IGNORE,
                      normalize: bool = True) -> Tensor:
    r"""RRM's dense energy loss (Eq. 2.17-2.21) in one call.

    Works at ``scale`` times the input resolution: ``probs`` and ``image`` are
    area-averaged to it (a prediction stays a probability; colours are the mean
    of each cell, as the node colours of A2GNN), ``labels`` and ``valid`` taken
    by nearest neighbour.  Then :func:`window_kernel` on position and RGB,
    :func:`soft_filter` (detached) and :func:`potts_energy`, normalised per
    valid pixel of the working grid.

    Defaults: the thesis' ``sigma_xy = 100`` and ``sigma_rgb = 15`` (section 2.3.1),
    both in the units of the input (pixels of ``probs``/``image``, RGB 0-255:
    ``15`` on a ``[0, 1]`` image would make every colour pair equal).  The release
    works at 1/2 resolution over all pairs; here ``scale = 1/8`` with a radius-10
    window, 80 input pixels each way (see the module notes for what this keeps
    of the all-pairs energy and why).

    Args:
        probs (Tensor): ``(B, C, H, W)`` softmax output (Eq. 2.13).
        image (Tensor): ``(B, 3, H, W)`` RGB in 0-255, floating.
        labels (Tensor, optional): ``(B, H, W)`` integer reliable-region labels
            (Eq. 2.7), ``ignore_index`` = unreliable; ``None``: :math:`S = 1`.
            (default: ``None``)
        valid (Tensor, optional): ``(B, H, W)`` bool, the pixels of the photos
            (``False`` on padding): pairs with an end outside do not count.
            (default: ``None``: all)
        sigma_xy (float, optional): spatial bandwidth in input pixels.
            (default: ``100.0``)
        sigma_rgb (float, optional): colour bandwidth in 0-255 units. (default: ``15.0``)
        scale (float, optional): working resolution, in ``(0, 1]``. (default: ``0.125``)
        radius (int, optional): window radius in working-grid pixels. (default: ``10``)
        window (str, optional): ``"square"`` or ``"disk"``. (default: ``"square"``)
        ignore_index (int, optional): the unlabelled value of ``labels``.
            (default: ``255``)
        normalize (bool, optional): divide every pixel's kernel by its sum over the
            window (reading Eq. 2.18's :math:`1/W` as that per-pixel constant), so
            the loss is a per-pixel disagreement in ``[0, 1]`` whatever the window,
            scale and bandwidths, and the thesis' :math:`\lambda_1 = 1` weighs it
            like the cross-entropy; ``False`` keeps the raw window energy (see the
            module notes for its size). (default: ``True``)

    Returns:
        Tensor: the scalar loss, before the weight :math:`\lambda_1` of Eq. 2.15.

    Example:
        >>> import torch
        >>> from graphseg.losses import dense_energy_loss
        >>> probs = torch.rand(2, 3, 64, 64).softmax(dim=1)
        >>> image = torch.rand(2, 3, 64, 64) * 255
        >>> dense_energy_loss(probs, image).dim()
        0
    """
    _check_maps(probs, "probs", finite=False)
    b, _, h, w = probs.shape
    _check_maps(image, "image", (b, h, w))
    if image.shape[1] != 3:
        raise ValueError(f"image must have 3 channels (RGB), got {image.shape[1]}")
    _check_plane(labels, "labels", (b, h, w), "int")
    _check_plane(valid, "valid", (b, h, w), "bool")
    scale = float(scale)
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    sigma_xy = _check_sigma(sigma_xy, "sigma_xy")
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size != (h, w):
        probs = F.interpolate(probs, size=size, mode="area")
        image = F.interpolate(image, size=size, mode="area")
        if labels is not None:
            labels = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0]
            labels = labels.long()
        if valid is not None:
            valid = F.interpolate(valid[:, None].float(), size=size, mode="nearest")[:, 0] > 0
    with torch.no_grad():
        kernel = window_kernel([(image.to(probs.dtype), sigma_rgb)], radius=radius,
                               sigma_xy=sigma_xy * size[0] / h, window=window)
        if normalize:
            kernel = kernel / kernel.sum(dim=1, keepdim=True).clamp_min(1e-12)
    weight = None if labels is None else soft_filter(probs, labels, ignore_index)
    return potts_energy(probs, kernel, radius=radius, window=window, weight=weight, mask=valid)


def dense_potts_energy_reference(probs: Tensor, guides: Guides, *, sigma_xy: float,
                                 weight: Optional[Tensor] = None,
                                 mask: Optional[Tensor] = None) -> Tensor:
    r"""The exact energy of :func:`potts_energy` over *all* pairs ``i != j``.

    The all-pairs kernel of :func:`window_kernel`'s formula, an ``N x N`` matrix
    per image (:math:`N = H W`): for tests and measurements at low resolution only
    (``O(N^2)`` time and, with gradients, memory).  :func:`potts_energy` with a
    window whose radius reaches across the grid equals it.

    Args:
        probs (Tensor): ``(B, C, H, W)`` class probabilities.
        guides (sequence): as for :func:`window_kernel`.
        sigma_xy (float): spatial bandwidth in grid pixels.
        weight (Tensor, optional): as for :func:`potts_energy`. (default: ``None``)
        mask (Tensor, optional): as for :func:`potts_energy`. (default: ``None``)

    Returns:
        Tensor: the scalar energy, normalised as :func:`potts_energy`.
    """
    _check_maps(probs, "probs", finite=False)
    guides, shape = _check_guides(guides)
    b, c, h, w = probs.shape
    if shape != (b, h, w):
        raise ValueError(f"guides are {shape} (B, H, W) but probs is {(b, h, w)}")
    sigma_xy = _check_sigma(sigma_xy, "sigma_xy")
    weight = _check_plane(weight, "weight", (b, h, w), "float")
    mask = _check_plane(mask, "mask", (b, h, w), "bool")
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([ys.reshape(-1), xs.reshape(-1)], 1).to(probs)
    scaled_pos = pos / (math.sqrt(2) * sigma_xy)
    total, count = probs.sum() * 0, b * h * w
    for i in range(b):
        # every guide scaled by 1 / (sqrt(2) sigma): the exponent is a squared distance
        points = torch.cat([scaled_pos] + [g[i].reshape(g.shape[1], -1).t().to(probs)
                                           / (math.sqrt(2) * sigma) for g, sigma in guides], 1)
        # one coordinate at a time: N x N memory, not N x N x D
        exponent = sum((col[:, None] - col[None, :]).square() for col in points.unbind(1))
        kernel = torch.exp(-exponent)
        kernel = kernel * (1 - torch.eye(h * w, dtype=kernel.dtype, device=kernel.device))
        p = probs[i].reshape(c, -1)
        left = torch.ones(h * w, dtype=probs.dtype, device=probs.device)
        if weight is not None:
            left = left * weight[i].reshape(-1)
        if mask is not None:
            m = mask[i].reshape(-1).to(probs.dtype)
            left = left * m
            kernel = kernel * m[None, :]
        total = total + (left[:, None] * kernel * (1 - p.t() @ p)).sum()
    if mask is not None:
        count = mask.sum().clamp(min=1)
    return total / count
