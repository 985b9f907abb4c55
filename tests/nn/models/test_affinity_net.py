"""The affinity CNN of thesis section 3.3.3: the model and its graph (its loss:
tests/losses/test_affinity.py; its training: tests/training/test_affinity.py)."""
import math

import numpy as np
import pytest
import torch

from graphseg.graph import image_to_graph
from graphseg.nn.backbones import SmallCNN, preprocess
from graphseg.nn.models import AffinityNet, affinity_graph
from graphseg.propagation import colour_position_features

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net(seed=0, width=4, channels=14):
    return AffinityNet(SmallCNN(width, seed=seed), affinity_channels=channels, seed=seed)


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (65, 17)])
def test_model_grid_matches_colour_features(size):
    net = tiny_net().eval()
    h, w = size
    out = net(torch.zeros(2, 3, h, w))
    grid = tuple(colour_position_features(np.zeros((h, w, 3), np.uint8), 8).shape[1:])
    assert grid == (math.ceil(h / 8), math.ceil(w / 8))
    assert out.features.shape == (2, 4 * 2 + 4 * 4 + 4 * 4, *grid)
    assert out.affinity.shape == (2, 14, *grid)


def test_affinity_graph_matches_image_to_graph():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)
    net = tiny_net(seed=3)
    net.train()  # affinity_graph must switch to eval and back
    data = affinity_graph(net, image, radius=2, threshold=0.3)
    assert net.training
    with torch.no_grad():
        out = net.eval()(preprocess(image)[None])
    ref = image_to_graph(out.features[0], 2, "square", edge_features=out.affinity[0],
                         threshold=0.3)
    assert data.grid_size == ref.grid_size == (6, 9)
    assert torch.equal(data.edge_index, ref.edge_index)
    assert torch.allclose(data.edge_weight, ref.edge_weight)
    assert torch.allclose(data.x, ref.x) and torch.allclose(data.x.abs().sum(1),
                                                            torch.ones(54))
    assert data.stride == 8 and (data.edge_weight > 0.3).all()


def test_model_rejects_bad_arguments():
    with pytest.raises(TypeError, match="backbone interface"):
        AffinityNet(torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="levels"):
        AffinityNet(SmallCNN(4), levels=5)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\)"):
        tiny_net()(torch.zeros(3, 8, 8))
