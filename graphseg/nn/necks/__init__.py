"""Necks between a backbone and its heads: :class:`UperFusion`, UperNet's pyramid
pooling + FPN fusion of the backbone levels into one map (the feature fusion of the
DFR network, thesis chapter 4, Fig. 4.2)."""
from graphseg.nn.necks.uper import UperFusion

__all__ = ["UperFusion"]
