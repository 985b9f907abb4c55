"""graphseg: dense segmentation masks from cheap annotations by label propagation on graphs.

Subpackages: :mod:`graphseg.graph` (image to graph), :mod:`graphseg.nn`
(layers and models).
"""
__version__ = "0.1.0"
