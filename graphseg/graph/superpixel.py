"""Superpixel graphs: the GraphNet-style baseline (thesis Table 3.6).

Nodes are SLIC superpixels of an RGB image and edges are unweighted: two
superpixels are joined when they touch, i.e. some pixel of one is a horizontal
or vertical neighbour (4-connectivity) of some pixel of the other.  Node ``s``
is the superpixel with id ``s`` in the ``segments`` map, so per-node
predictions go back to pixels with :func:`superpixels_to_pixels` and pixel
labels come to nodes with :func:`pixels_to_superpixels`.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from skimage.segmentation import slic
from torch import Tensor
from torch_geometric.data import Data

from graphseg.graph.affinity import check_feature_map
from graphseg.graph.voting import majority_vote
from graphseg.utils.checks import as_index_map, check_positive_int, check_tensor
from graphseg.utils.constants import IGNORE


def _check_image(image) -> np.ndarray:
    """Return ``image`` as an ``(H, W, 3)`` uint8 numpy array, or raise."""
    if isinstance(image, Tensor):
        if image.dtype != torch.uint8:
            raise TypeError(f"image must have dtype uint8, got {image.dtype}")
        image = image.detach().cpu().numpy()
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f"image must have dtype uint8, got {image.dtype}")
    else:
        raise TypeError(
            f"image must be a numpy.ndarray or torch.Tensor, got {type(image).__name__}"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be an RGB image of shape (H, W, 3), got {tuple(image.shape)}"
        )
    if image.size == 0:
        raise ValueError(f"image is empty: shape {tuple(image.shape)}")
    return image


def _touching_pairs(segments: Tensor, self_loops: bool = False) -> Tensor:
    """Edges between superpixels that share a horizontal or vertical pixel border.

    Args:
        segments (Tensor): ``(H, W)`` int64 superpixel ids in ``[0, S)``.
        self_loops (bool, optional): add ``s -> s`` for every ``s`` in
            ``[0, S)``. (default: ``False``)

    Returns:
        Tensor: ``(2, E)`` int64 edge index, both directions of every pair, no
        duplicates, sorted by target (row 1), then by source (row 0).
    """
    num_nodes = int(segments.max()) + 1
    # Diagonal neighbours are not compared: touching means 4-connectivity.
    horizontal = (segments[:, :-1].reshape(-1), segments[:, 1:].reshape(-1))
    vertical = (segments[:-1, :].reshape(-1), segments[1:, :].reshape(-1))
    a = torch.cat([horizontal[0], vertical[0]])
    b = torch.cat([horizontal[1], vertical[1]])
    border = a != b
    a, b = a[border], b[border]
    source = torch.cat([a, b])
    target = torch.cat([b, a])
    # One key per (target, source): a sorted unique pass both removes the
    # duplicates (every border pixel pair repeats the edge) and gives the order.
    keys = target * num_nodes + source
    if self_loops:
        nodes = torch.arange(num_nodes, device=segments.device)
        keys = torch.cat([keys, nodes * (num_nodes + 1)])
    keys = torch.unique(keys, sorted=True)
    return torch.stack([keys % num_nodes, keys // num_nodes])


def _relabel_consecutive(segments: np.ndarray) -> np.ndarray:
    """Map the ids present in ``segments`` to ``0..S-1``, keeping their order."""
    present = np.bincount(segments.ravel()) > 0
    lookup = np.cumsum(present) - 1
    return lookup[segments]


def superpixel_graph(image: Union[np.ndarray, Tensor], n_segments: int = 400,
                     compactness: float = 10.0, features: Optional[Tensor] = None,
                     self_loops: bool = False) -> Data:
    """Build the unweighted superpixel adjacency graph of an RGB image.

    The image is cut into SLIC superpixels
    (:func:`skimage.segmentation.slic`, k-means in CIELAB colour and position)
    whose ids are then made consecutive, ``0..S-1``; superpixel ``s`` is node
    ``s``.  Two nodes are joined, in both directions, when their superpixels
    touch (a pixel of one is the left, right, upper or lower neighbour of a
    pixel of the other).  SLIC has no random initialisation, so the same image
    and arguments always give the same graph.

    Args:
        image (numpy.ndarray or Tensor): ``(H, W, 3)`` uint8 RGB image, values in
            ``[0, 255]``.
        n_segments (int, optional): approximate number of superpixels wanted,
            ``>= 1``; SLIC may return fewer or more. (default: ``400``)
        compactness (float, optional): SLIC's trade-off between colour and
            position, ``> 0``; larger values give squarer superpixels.
            (default: ``10.0``)
        features (Tensor, optional): ``(C, h, w)`` floating feature map (e.g. a
            CNN output) at any resolution.  It is resized bilinearly
            (``align_corners=False``) to ``H x W`` and averaged over each
            superpixel to give ``C`` node features.  ``None`` uses colour and
            position, see Returns. (default: ``None``)
        self_loops (bool, optional): add an ``s -> s`` edge for every node.
            (default: ``False``)

    Returns:
        Data: with

        * ``x``: ``(S, D)`` float32 node features.  Without ``features``,
          ``D = 5`` columns ``(r, g, b, x, y)``: the mean colour scaled to
          ``[0, 1]`` and the mean position as ``column / W`` and ``row / H``,
          in ``[0, 1)``.  With ``features``, ``D = C``, the mean feature.
        * ``edge_index``: ``(2, E)`` int64, row 0 the source, row 1 the target,
          sorted by target, then by source; no duplicates, no weights.
        * ``pos``: ``(S, 2)`` float32 centroids ``(x, y)`` = (column, row), in
          pixels, in ``[0, W - 1] x [0, H - 1]``.
        * ``segments``: ``(H, W)`` int64 superpixel id of every pixel, in
          ``[0, S)``.  It is not offset when graphs are batched.
        * ``num_nodes``: ``S``.

        All tensors are on ``features``' device when it is given, else on the CPU.

    Example:
        >>> import numpy as np
        >>> from graphseg.graph import superpixel_graph
        >>> image = np.zeros((32, 32, 3), dtype=np.uint8)
        >>> image[:, 16:] = 255
        >>> data = superpixel_graph(image, n_segments=4)
        >>> data.x.shape, data.segments.shape
        (torch.Size([4, 5]), torch.Size([32, 32]))
    """
    image = _check_image(image)
    check_positive_int(n_segments, "n_segments")
    compactness = float(compactness)
    if not math.isfinite(compactness) or compactness <= 0:
        raise ValueError(f"compactness must be a finite number > 0, got {compactness}")
    if features is not None:
        check_feature_map(features, "features")
    height, width = image.shape[:2]
    device = features.device if features is not None else torch.device("cpu")

    labels = slic(image, n_segments=n_segments, compactness=compactness,
                  start_label=0, channel_axis=-1)
    segments = torch.from_numpy(_relabel_consecutive(labels.astype(np.int64)))
    segments = segments.to(device)
    num_nodes = int(segments.max()) + 1
    flat = segments.reshape(-1)
    counts = torch.bincount(flat, minlength=num_nodes).to(torch.float64)

    rows = torch.arange(height, dtype=torch.float64, device=device)
    cols = torch.arange(width, dtype=torch.float64, device=device)
    coords = torch.stack([cols.expand(height, width).reshape(-1),
                          rows[:, None].expand(height, width).reshape(-1)], dim=1)
    pos = torch.zeros(num_nodes, 2, dtype=torch.float64, device=device)
    pos = pos.index_add_(0, flat, coords) / counts[:, None]

    if features is None:
        # Sums over many pixels: accumulate in float64, store float32.
        colour = torch.from_numpy(image.reshape(-1, 3).astype(np.float64)).to(device) / 255.0
        mean_colour = torch.zeros(num_nodes, 3, dtype=torch.float64, device=device)
        mean_colour = mean_colour.index_add_(0, flat, colour) / counts[:, None]
        scale = torch.tensor([width, height], dtype=torch.float64, device=device)
        x = torch.cat([mean_colour, pos / scale], dim=1).float()
    else:
        feats = features.float()
        if feats.shape[1:] != (height, width):
            feats = F.interpolate(feats[None], size=(height, width), mode="bilinear",
                                  align_corners=False)[0]
        feats = feats.reshape(feats.size(0), -1)
        sums = torch.zeros(feats.size(0), num_nodes, dtype=torch.float32, device=device)
        sums = sums.index_add_(1, flat, feats)
        x = (sums / counts.float()).t().contiguous()

    edge_index = _touching_pairs(segments, self_loops=self_loops)
    return Data(x=x, edge_index=edge_index, pos=pos.float(), segments=segments,
                num_nodes=num_nodes)


def superpixels_to_pixels(values: Tensor, segments: Union[np.ndarray, Tensor]) -> Tensor:
    """Paint per-superpixel values back onto the pixels.

    Args:
        values (Tensor): ``(S,)`` or ``(S, C)`` values, one row per superpixel
            (e.g. node labels or class scores), any dtype.
        segments (numpy.ndarray or Tensor): ``(H, W)`` integer superpixel ids in
            ``[0, S)`` (``data.segments`` of :func:`superpixel_graph`).

    Returns:
        Tensor: ``(H, W)`` for 1-D ``values``, ``(C, H, W)`` (channel first)
        for 2-D ``values``, with the dtype and device of ``values``.
    """
    check_tensor(values, "values")
    if values.dim() not in (1, 2):
        raise ValueError(f"values must have shape (S,) or (S, C), got {tuple(values.shape)}")
    segments = as_index_map(segments, "segments").to(values.device)
    num_nodes = values.size(0)
    top = int(segments.max())
    if top >= num_nodes:
        raise ValueError(
            f"segments refers to superpixel {top}, but values has only {num_nodes} "
            f"rows (valid ids are 0..{num_nodes - 1})"
        )
    pixels = values[segments]
    if values.dim() == 2:
        pixels = pixels.permute(2, 0, 1).contiguous()
    return pixels


def pixels_to_superpixels(label_map: Union[np.ndarray, Tensor],
                          segments: Union[np.ndarray, Tensor],
                          ignore_index: int = IGNORE) -> Tensor:
    """Give every superpixel the majority label of its pixels.

    ``ignore_index`` pixels do not vote, so a superpixel touched by a scribble
    takes the scribble's label; a superpixel with no labelled pixel gets
    ``ignore_index``.  Ties go to the smallest label.

    Args:
        label_map (numpy.ndarray or Tensor): ``(H, W)`` integer labels, ``>= 0``
            except for ``ignore_index``.
        segments (numpy.ndarray or Tensor): ``(H, W)`` integer superpixel ids in
            ``[0, S)``, ``S = segments.max() + 1``.
        ignore_index (int, optional): the unknown label. (default: ``255``)

    Returns:
        Tensor: ``(S,)`` int64 labels, on the device of ``segments``.
    """
    labels = as_index_map(label_map, "label_map")
    segments = as_index_map(segments, "segments")
    if labels.shape != segments.shape:
        raise ValueError(
            f"label_map has shape {tuple(labels.shape)} but segments has shape "
            f"{tuple(segments.shape)}; they must match"
        )
    num_nodes = int(segments.max()) + 1
    return majority_vote(segments.reshape(-1), labels.to(segments.device).reshape(-1),
                         num_nodes, ignore_index)
