import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphseg.graph import (
    image_to_graph,
    label_map_to_nodes,
    nodes_to_label_map,
    nodes_to_pixels,
)


def test_image_to_graph_fields_and_weights():
    torch.manual_seed(0)
    feats = torch.rand(6, 5, 4)
    aff = torch.rand(3, 5, 4)
    data = image_to_graph(feats, radius=2, window="disk", edge_features=aff, threshold=0)
    assert data.num_nodes == 20 and data.grid_size == (5, 4)
    assert torch.allclose(data.x.sum(dim=1), torch.ones(20))  # Eq. 3.15
    assert torch.allclose(data.x * feats.reshape(6, -1).t().sum(1, keepdim=True),
                          feats.reshape(6, -1).t())
    src, dst = data.edge_index
    flat = aff.reshape(3, -1)
    expected = torch.exp(-(flat[:, src] - flat[:, dst]).abs().mean(dim=0))
    assert torch.allclose(data.edge_weight, expected)
    assert data.pos[7].tolist() == [3.0, 1.0]  # node 7 = row 1, column 3


def test_threshold_drops_weak_edges_but_not_self_loops():
    feats = torch.zeros(1, 1, 6)
    feats[0, 0, 3:] = 100.0  # two flat regions, affinity exp(-100) across
    data = image_to_graph(feats, radius=2, threshold=1e-3)
    src, dst = data.edge_index
    assert torch.all((src < 3) == (dst < 3))
    assert int((src == dst).sum()) == 6
    full = image_to_graph(feats, radius=2, threshold=0)
    assert full.num_edges > data.num_edges
    assert float(full.edge_weight.min()) == pytest.approx(math.exp(-100), rel=1e-3)


def test_image_to_graph_bad_input():
    with pytest.raises(ValueError, match="edge_features has grid size"):
        image_to_graph(torch.rand(2, 4, 4), edge_features=torch.rand(2, 4, 5))
    with pytest.raises(ValueError, match="features contains"):
        image_to_graph(torch.full((2, 3, 3), float("inf")))
    with pytest.raises(ValueError, match="features is empty"):
        image_to_graph(torch.rand(2, 0, 3))
    with pytest.raises(ValueError, match="radius must be >= 1"):
        image_to_graph(torch.rand(2, 3, 3), radius=0)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\)"):
        image_to_graph(torch.rand(2, 3, 3), threshold=1.5)
    with pytest.raises(TypeError, match="features must be a torch.Tensor"):
        image_to_graph(np.zeros((2, 3, 3)))


def test_nodes_to_pixels_is_bilinear_on_probabilities():
    torch.manual_seed(0)
    logits = torch.randn(12, 3)
    probs = nodes_to_pixels(logits, (3, 4), size=(9, 8))
    expected = F.interpolate(logits.softmax(-1).t().reshape(1, 3, 3, 4), size=(9, 8),
                             mode="bilinear", align_corners=False)[0]
    assert torch.allclose(probs, expected)
    labels = nodes_to_label_map(logits, (3, 4), size=(9, 8))
    assert labels.shape == (9, 8) and torch.equal(labels, expected.argmax(0))
    # at the grid's own size, the label map is the per-node argmax
    assert torch.equal(nodes_to_label_map(logits, (3, 4)).reshape(-1), logits.argmax(1))
    with pytest.raises(ValueError, match=r"scores must have shape \(12, C\)"):
        nodes_to_pixels(torch.randn(11, 3), (3, 4))
    with pytest.raises(TypeError, match="grid_size must be a pair"):
        nodes_to_pixels(logits, 12)


def test_label_map_to_nodes_majority_and_nearest():
    labels = torch.full((4, 6), 255)
    labels[0, 0] = 2                  # a single labelled pixel labels its cell
    labels[2:4, 0:3] = torch.tensor([[1, 1, 0], [0, 3, 3]])  # tie 1/0/3 (2 each) -> 0
    labels[0:2, 3:6] = 4
    nodes = label_map_to_nodes(labels, (2, 2))
    assert nodes.tolist() == [2, 4, 0, 255]
    nearest = label_map_to_nodes(labels, (2, 2), mode="nearest")
    # cell centres are pixels (1, 1), (1, 4), (3, 1), (3, 4)
    assert nearest.tolist() == [255, 4, 3, 255]
    assert label_map_to_nodes(np.full((4, 4), 255, np.uint8), (2, 2)).tolist() == [255] * 4


def test_label_map_to_nodes_bad_input():
    with pytest.raises(ValueError, match="label_map is empty"):
        label_map_to_nodes(np.zeros((0, 5), np.uint8), (2, 2))
    with pytest.raises(ValueError, match=r"label_map must have shape \(H, W\)"):
        label_map_to_nodes(np.zeros((4, 4, 3), np.uint8), (2, 2))
    with pytest.raises(TypeError, match="label_map must hold integer labels"):
        label_map_to_nodes(torch.zeros(4, 4), (2, 2))
    with pytest.raises(ValueError, match="mode must be one of"):
        label_map_to_nodes(torch.zeros(4, 4, dtype=torch.long), (2, 2), mode="mean")


@pytest.mark.parametrize("name", ["flower", "sheep", "llama"])
def test_real_image_graph_round_trip_and_boundary_affinities(grabcut, colour_position_features,
                                                              name):
    image, mask, _ = grabcut(name)
    feats = colour_position_features(image, stride=4)
    data = image_to_graph(feats[:3], radius=4, threshold=0)
    # ground truth down to nodes and back to full resolution keeps the object
    nodes = label_map_to_nodes(mask, data.grid_size)
    back = nodes_to_label_map(F.one_hot(nodes, 2).float(), data.grid_size,
                              size=mask.shape, logits=False).numpy()
    iou = ((back == 1) & (mask == 1)).sum() / ((back == 1) | (mask == 1)).sum()
    assert iou > 0.9
    # colour affinities are weaker across the object boundary than inside regions
    src, dst = data.edge_index
    across = nodes[src] != nodes[dst]
    assert data.edge_weight[across].mean() < data.edge_weight[~across].mean() - 0.02


def test_nan_in_node_features_is_named_before_any_work():
    """Bad-input suite (issue 18): NaN in the features is an error naming them, not a
    graph of NaN weights that trains into NaN probabilities."""
    import pytest
    import torch

    from graphseg.graph.image import image_to_graph

    features = torch.rand(4, 6, 7)
    features[2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match=r"features contains 1 non-finite value\(s\)"):
        image_to_graph(features)
    edges = torch.rand(4, 6, 7)
    edges[0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        image_to_graph(torch.rand(4, 6, 7), edge_features=edges)
