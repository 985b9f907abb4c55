r"""The Re-weighting Feature Attention Module (R-FAM) of RRM (thesis section 2.2.3,
Eq. 2.8-2.12, Fig. 2.4): the global sub-branch of the segmentation head.

Example:
    >>> import torch
    >>> from graphseg.nn.heads import rfam_weights
    >>> rfam_weights(torch.tensor([[3.0, -1.0, 2.0, -2.0, 1.0]]))
    tensor([[0.3333, 0.0000, 0.6667, 0.5774, 1.0000]])
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from graphseg.utils.checks import check_positive_int, check_tensor

__all__ = ["RFAM", "rfam_weights"]


@torch.no_grad()
def rfam_weights(attention: Tensor) -> Tensor:
    r"""The re-weighting coefficients :math:`A_w` of R-FAM (thesis Eq. 2.9-2.10), row by row.

    For row :math:`k` (pixel :math:`k`), :math:`e(m|k)` is the 1-based rank of
    :math:`A(m|k)` when the row is sorted in descending order and
    :math:`N_{k+}` the number of positive entries of the row:

    .. math::
        A_w(m|k) = \begin{cases}
        \dfrac{e(m|k)}{N_{k+}}, & A(m|k) > 0 \\[1ex]
        \sqrt{\dfrac{|N_{k+} + 1 - e(m|k)|}{N_{k+}}}, & \text{else}
        \end{cases}
        \qquad
        N_{k+} = \sum_m [A(m|k) > 0]

    implemented exactly as printed: the strongest positive attention gets
    :math:`1 / N_{k+}`, the weakest positive one 1, the largest non-positive one
    0 and the weights of more negative entries grow again (they can exceed 1 when
    a row has more non-positive than positive entries).

    * **Ties** get distinct ranks by a stable sort: equal values keep their
      column order (the left-most is ranked first, i.e. gets the smaller rank).
    * **No positive entry** (:math:`N_{k+} = 0`, where the printed formula
      divides by zero): the denominators use :math:`\max(N_{k+}, 1)`, so such a
      row gets :math:`\sqrt{e(m|k) - 1}`, the continuation of the rows with one
      positive entry; never NaN or infinity.
    * **No gradient**: :math:`A_w` depends on :math:`A` only through ranks and
      signs, which are piecewise constant, so its derivative is zero wherever
      it exists; it is computed without autograd (a constant in backward).

    Args:
        attention (Tensor): the affinities :math:`A`, any floating shape
            ``(..., N)``; every slice along the last dimension is one row.

    Returns:
        Tensor: :math:`A_w`, the shape and dtype of ``attention``.
    """
    check_tensor(attention, "attention")
    if not attention.is_floating_point():
        raise TypeError(f"attention must be a floating tensor, got {attention.dtype}")
    if attention.dim() == 0:
        raise ValueError("attention must have at least one dimension (the rows' entries)")
    a = attention.detach()
    n = a.size(-1)
    order = torch.sort(a, dim=-1, descending=True, stable=True).indices
    positions = torch.arange(1, n + 1, dtype=a.dtype, device=a.device).expand_as(a)
    rank = torch.empty_like(a).scatter_(-1, order, positions)  # e(m|k), 1-based
    positive = a > 0
    count = positive.sum(dim=-1, keepdim=True).to(a.dtype)  # N_k+
    denominator = count.clamp(min=1)  # N_k+ = 0: see above
    return torch.where(positive, rank / denominator,
                       ((count + 1 - rank).abs() / denominator).sqrt())


class RFAM(nn.Module):
    r"""The Re-weighting Feature Attention Module from `"Reliability Does Matter: An
    End-to-End Weakly Supervised Semantic Segmentation Approach"
    <https://arxiv.org/abs/1911.08039>`_ (Zhang et al., AAAI 2020; thesis Eq. 2.8-2.12).

    Three parallel 1x1 convolutions map the ``(B, C, H, W)`` feature map to
    :math:`F_1, F_2, F_3 \in \mathbb{R}^{HW \times C_1}` per image; then

    .. math::
        A = F_1 F_2^{\top}, \qquad
        F_a = \left(\operatorname{softmax}(A) \odot A_w\right) F_3, \qquad
        F_g = \operatorname{concat}([F_a, F_3])

    with the row softmax, :math:`A_w` of :func:`rfam_weights` (Eq. 2.9-2.10) and
    :math:`F_a, F_3` reshaped back to ``(C_1, H, W)`` (the :math:`\mathbf{RS}` of
    Eq. 2.11-2.12).  As printed, :math:`A` is not scaled by :math:`1/\sqrt{C_1}`
    and the re-weighted rows are not renormalised.  :math:`A_w` is a constant in
    backward (see :func:`rfam_weights`); gradients reach all three convolutions
    through the softmax and :math:`F_3`.

    With ``reweight=False`` it is the plain non-local attention
    :math:`F_a = \operatorname{softmax}(A) F_3` ("FAM", the ablation of Table 2.5,
    and what the authors' release computes).

    **Memory.**  :math:`A`, its softmax, :math:`A_w` and the sort indices are
    dense ``HW x HW`` per image (about 28 bytes per entry in float32 while
    re-weighting, and autograd keeps some of them for backward).  At stride 8
    on the thesis' 321 px crops ``HW = 41 * 41 = 1681``: some 80 MB per image.
    ``HW`` above ``max_positions`` raises a ``ValueError`` instead of exhausting
    memory; raise the limit (or pass ``None``) for larger maps.

    Args:
        in_channels (int): channels :math:`C` of the input map.
        channels (int, optional): :math:`C_1`, the width of the three 1x1
            convolutions; the output has :math:`2 C_1`. (default: ``256``, the
            thesis)
        reweight (bool, optional): apply :math:`A_w` (R-FAM); ``False`` gives
            the plain attention. (default: ``True``)
        max_positions (int, optional): the largest ``H * W`` accepted; ``None``
            for no limit. (default: ``4096``, e.g. 64 x 64, about 0.5 GB per image)

    Shapes:
        - **input:** ``(B, C, H, W)``
        - **output:** ``(B, 2 C_1, H, W)``: :math:`F_a` in the first :math:`C_1`
          channels, :math:`F_3` in the last :math:`C_1`

    Example:
        >>> import torch
        >>> from graphseg.nn.heads import RFAM
        >>> module = RFAM(32, channels=16)
        >>> module(torch.randn(2, 32, 5, 7)).shape
        torch.Size([2, 32, 5, 7])
        >>> module.attention(torch.randn(2, 32, 5, 7)).shape
        torch.Size([2, 35, 35])
    """

    def __init__(self, in_channels: int, channels: int = 256, *, reweight: bool = True,
                 max_positions: Optional[int] = 4096):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(channels, "channels")
        if max_positions is not None:
            check_positive_int(max_positions, "max_positions")
        self.in_channels, self.channels = in_channels, channels
        self.reweight = bool(reweight)
        self.max_positions = max_positions
        self.query = nn.Conv2d(in_channels, channels, 1)  # F_1
        self.key = nn.Conv2d(in_channels, channels, 1)  # F_2
        self.value = nn.Conv2d(in_channels, channels, 1)  # F_3
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        """:math:`2 C_1`."""
        return 2 * self.channels

    def reset_parameters(self) -> None:
        for conv in (self.query, self.key, self.value):
            conv.reset_parameters()

    def _check(self, x: Tensor) -> None:
        check_tensor(x, "x")
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got "
                             f"{tuple(x.shape)}")
        positions = x.size(2) * x.size(3)
        if self.max_positions is not None and positions > self.max_positions:
            raise ValueError(f"the {x.size(2)} x {x.size(3)} map has {positions} positions, "
                             f"more than max_positions={self.max_positions}: the HW x HW "
                             "attention would need "
                             f"{28 * positions ** 2 * x.size(0) / 2 ** 30:.1f} GiB; use "
                             "smaller inputs or raise max_positions (None: no limit)")

    def _weights(self, x: Tensor) -> Tensor:
        """``softmax(A) ⊙ A_w`` (or ``softmax(A)``), ``(B, HW, HW)``."""
        f1 = self.query(x).flatten(2).transpose(1, 2)  # (B, HW, C_1)
        f2 = self.key(x).flatten(2)  # (B, C_1, HW)
        affinity = torch.bmm(f1, f2)  # A, Eq. 2.8
        weights = affinity.softmax(dim=-1)
        if self.reweight:
            weights = weights * rfam_weights(affinity)
        return weights

    def attention(self, x: Tensor) -> Tensor:
        r"""The attention matrix :math:`\operatorname{softmax}(A) \odot A_w`
        (or :math:`\operatorname{softmax}(A)` with ``reweight=False``),
        ``(B, HW, HW)``, row :math:`k` for pixel :math:`k` in row-major order."""
        self._check(x)
        return self._weights(x)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        b, _, h, w = x.shape
        f3 = self.value(x)
        fa = torch.bmm(self._weights(x), f3.flatten(2).transpose(1, 2))  # Eq. 2.11
        fa = fa.transpose(1, 2).reshape(b, self.channels, h, w)
        return torch.cat([fa, f3], dim=1)  # Eq. 2.12

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.channels}, reweight={self.reweight}, "
                f"max_positions={self.max_positions}")
