"""graphseg: dense segmentation masks from cheap annotations by label propagation on graphs.

Subpackages in layer order (each imports only the ones listed before it):

* :mod:`graphseg.utils`: input checks, constants (255 = unknown), ``Seeds``, file I/O.
* :mod:`graphseg.data`: datasets, weak labels, annotation files, the bundled sample.
* :mod:`graphseg.metrics`: IoU and confusion matrices, seed quality, instance AP.
* :mod:`graphseg.graph`: images and feature maps to graphs (pixel grids, superpixels).
* :mod:`graphseg.ops`: the attention kernels behind the graph layers (grid, CSR, dense).
* :mod:`graphseg.refine`: dense CRF and random walk on per-pixel class scores.
* :mod:`graphseg.losses`: cross-entropy, regularised and affinity losses.
* :mod:`graphseg.nn`: layers, backbones and models (A2GNN, affinity net, CAM classifiers).
* :mod:`graphseg.seeds`: seed maps from tags (CAM), boxes, scribbles and points.
* :mod:`graphseg.propagation`: one photo's dense labels from its seeds (per-image A2GNN).
* :mod:`graphseg.training`: training loops over datasets (affinity net, CAM classifier).
* :mod:`graphseg.segmenters`: dataset-level segmenters (empty for now).
* :mod:`graphseg.viz`: side-by-side pictures of images, labels and predictions.
* :mod:`graphseg.cli`: the ``graphseg`` command line.

This module imports nothing, so reading ``graphseg.__version__`` is cheap; it is
the package's only version number (``pyproject.toml`` reads it).
"""
__version__ = "0.1.0"
