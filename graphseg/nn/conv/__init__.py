"""Graph convolution layers, one per file."""
from graphseg.nn.conv.affinity_attention_conv import AffinityAttentionConv

__all__ = ["AffinityAttentionConv"]
