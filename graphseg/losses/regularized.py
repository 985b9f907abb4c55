"""The regularised loss on the graph (thesis Eq. 3.13 and 3.22).

Eq. 3.22 as printed sums ``G(a, b) O^i(a) O^j(b)`` over all class pairs, which
is constant because probabilities sum to one; the loss it cites (Tang et al.,
ECCV 2018, and the Gated CRF loss of the authors' release) is the relaxed Potts
model, which sums over *different* classes:

.. math::
    \\mathcal{L}_{reg} = \\frac{1}{N} \\sum_a \\sum_{b \\ne a} G(a, b)
    \\sum_{i \\ne j} O^i(a) O^j(b)
    = \\frac{1}{N} \\sum_a \\sum_{b \\ne a} G(a, b) (1 - \\langle O(a), O(b) \\rangle).

That is what is implemented, over the pairs inside a window of the node grid:
both functions are the one-image case of the window energy shared with RRM and
DFR (:func:`graphseg.losses.window_kernel` with the colour as the one guide, and
:func:`graphseg.losses.potts_energy` without weight), so there is one copy of it.

Per-image training evaluates the loss hundreds of times under one fixed kernel, so
:func:`kernel_matrix` turns the planes into a sparse ``N x N`` matrix once, and
:func:`regularized_loss` then costs one sparse product per call
(``sum G - <O, G O>``) instead of a shift per window offset (about 10x faster on
a 47 x 65 grid, radius 5).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from graphseg.graph.affinity import check_feature_map
from graphseg.graph.grid import window_offsets
from graphseg.losses.energy import potts_energy, window_kernel


def gaussian_kernel(colour: Tensor, radius: int = 5, sigma_xy: float = 6.0,
                    sigma_rgb: float = 0.1, window: str = "square") -> Tensor:
    """Eq. 3.13 between every node and its window neighbours, one plane per offset.

    .. math::
        G(a, b) = \\exp\\left(-\\frac{\\lVert p_a - p_b \\rVert^2}{2 \\sigma_{xy}^2}
        - \\frac{\\lVert c_a - c_b \\rVert^2}{2 \\sigma_{rgb}^2}\\right) [a \\ne b]

    Args:
        colour (Tensor): ``(3, H, W)`` colour of every node in ``[0, 1]`` (the
            image average-pooled to the node grid, as in the release).
        radius (int, optional): window radius in nodes. (default: ``5``)
        sigma_xy (float, optional): in nodes. (default: ``6.0``)
        sigma_rgb (float, optional): in colour units of ``[0, 1]``. (default: ``0.1``)
        window (str, optional): ``"square"`` or ``"disk"``. (default: ``"square"``)

    Returns:
        Tensor: ``(K, H, W)`` kernel planes for :func:`window_offsets`
        ``(radius, window)``; 0 on the self offset and outside the grid.
    """
    check_feature_map(colour, "colour")
    return window_kernel([(colour[None], sigma_rgb)], radius=radius, sigma_xy=sigma_xy,
                         window=window)[0]


def kernel_matrix(kernel: Tensor, radius: int = 5, window: str = "square") -> Tensor:
    """The kernel planes as a sparse matrix: ``G[a, b] = G(a, b)`` for the pairs
    with a non-zero kernel (the self pair never).

    Args:
        kernel (Tensor): ``(K, H, W)`` planes from :func:`gaussian_kernel`.
        radius (int, optional): radius of the window the kernel was built for.
            (default: ``5``)
        window (str, optional): its shape. (default: ``"square"``)

    Returns:
        Tensor: ``(H * W, H * W)`` sparse CSR matrix, nodes row-major, for
        :func:`regularized_loss`.

    Raises:
        ValueError: if the planes are not symmetric (``G(a, b) != G(b, a)``);
            :func:`gaussian_kernel`'s always are, and the loss's gradient relies
            on it.

    >>> import torch
    >>> from graphseg.losses import gaussian_kernel, kernel_matrix
    >>> matrix = kernel_matrix(gaussian_kernel(torch.rand(3, 4, 5), radius=1), radius=1)
    >>> matrix.shape, matrix.layout
    (torch.Size([20, 20]), torch.sparse_csr)
    """
    offsets = window_offsets(radius, window).to(kernel.device)
    if kernel.dim() != 3 or kernel.size(0) != offsets.size(0):
        raise ValueError(f"kernel must have shape ({offsets.size(0)}, H, W) for a "
                         f"radius-{radius} {window} window, got {tuple(kernel.shape)}")
    _, h, w = kernel.shape
    centre = offsets.size(0) // 2
    planes = kernel.clone()
    planes[centre] = 0
    # nonzero over (H, W, K): sorted by node, then offset, i.e. by row then column
    y, x, k = planes.permute(1, 2, 0).nonzero(as_tuple=True)
    row, col, values = y * w + x, (y + offsets[k, 0]) * w + x + offsets[k, 1], planes[k, y, x]
    mirror = torch.argsort(col * (h * w) + row)
    if not (torch.equal(row, col[mirror]) and torch.equal(col, row[mirror])
            and torch.allclose(values, values[mirror])):
        raise ValueError("kernel is not symmetric: G(a, b) must equal G(b, a)")
    counts = torch.bincount(row, minlength=h * w)
    rowptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(rowptr, col, values, (h * w, h * w))


class _SymmetricQuadratic(torch.autograd.Function):
    """``<P, G P>`` for a symmetric sparse ``G``: its gradient ``2 G P`` is the
    forward's product, so backward needs no second sparse product."""

    @staticmethod
    def forward(ctx, probs: Tensor, matrix: Tensor) -> Tensor:
        product = matrix @ probs
        ctx.save_for_backward(product)
        return (probs * product).sum()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        product, = ctx.saved_tensors
        return 2 * grad * product, None


def regularized_loss(probs: Tensor, kernel: Tensor, radius: int = 5,
                     window: str = "square") -> Tensor:
    """Relaxed Potts energy of the node probabilities under the kernel.

    Args:
        probs (Tensor): ``(H * W, C)`` class probabilities, nodes row-major.
        kernel (Tensor): ``(K, H, W)`` planes from :func:`gaussian_kernel`, or
            their :func:`kernel_matrix` (the same value, faster when the kernel
            is used many times).
        radius (int, optional): radius of the window the kernel was built for.
            (default: ``5``)
        window (str, optional): shape of the window the kernel was built for.
            (default: ``"square"``)

    Returns:
        Tensor: scalar, ``sum G(a, b) (1 - <O(a), O(b)>) / N`` over ``b != a``.
    """
    if kernel.layout == torch.sparse_csr:
        if probs.dim() != 2 or probs.shape[0] != kernel.shape[0]:
            raise ValueError(f"probs must have shape ({kernel.shape[0]}, C) to match the "
                             f"kernel matrix, got {tuple(probs.shape)}")
        quadratic = _SymmetricQuadratic.apply(probs, kernel.to(probs.dtype))
        return (kernel.values().sum() - quadratic) / probs.shape[0]
    if kernel.dim() != 3:
        raise ValueError(f"kernel must have shape (K, H, W), got {tuple(kernel.shape)}")
    _, h, w = kernel.shape
    if probs.dim() != 2 or probs.shape[0] != h * w:
        raise ValueError(f"probs has {probs.shape[0]} nodes but the kernel grid is {h} x {w}")
    grid = probs.t().reshape(1, -1, h, w)
    return potts_energy(grid, kernel[None], radius=radius, window=window)
