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
"""
from __future__ import annotations

from torch import Tensor

from graphseg.graph.affinity import check_feature_map
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


def regularized_loss(probs: Tensor, kernel: Tensor, radius: int = 5,
                     window: str = "square") -> Tensor:
    """Relaxed Potts energy of the node probabilities under the kernel planes.

    Args:
        probs (Tensor): ``(H * W, C)`` class probabilities, nodes row-major.
        kernel (Tensor): ``(K, H, W)`` planes from :func:`gaussian_kernel`.
        radius (int, optional): radius of the window the kernel was built for.
            (default: ``5``)
        window (str, optional): shape of the window the kernel was built for.
            (default: ``"square"``)

    Returns:
        Tensor: scalar, ``sum G(a, b) (1 - <O(a), O(b)>) / N`` over ``b != a``.
    """
    if kernel.dim() != 3:
        raise ValueError(f"kernel must have shape (K, H, W), got {tuple(kernel.shape)}")
    _, h, w = kernel.shape
    if probs.dim() != 2 or probs.shape[0] != h * w:
        raise ValueError(f"probs has {probs.shape[0]} nodes but the kernel grid is {h} x {w}")
    grid = probs.t().reshape(1, -1, h, w)
    return potts_energy(grid, kernel[None], radius=radius, window=window)
