"""Heads on backbone feature maps: :class:`RFAM`, the re-weighting feature attention of
RRM (thesis Eq. 2.8-2.12), and its coefficients :func:`rfam_weights`."""
from graphseg.nn.heads.rfam import RFAM, rfam_weights

__all__ = ["RFAM", "rfam_weights"]
