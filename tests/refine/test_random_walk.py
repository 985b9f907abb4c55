import numpy as np
import pytest
import torch

from graphseg.graph import grid_affinity, window_offsets
from graphseg.refine import colour_affinity, fuse_probabilities, random_walk, walk_probabilities


def dense_transition(affinity, radius, window, beta):
    """The release's form: a dense N x N affinity matrix, ** beta, divided by column sums."""
    k, h, w = affinity.shape
    matrix = torch.zeros(h * w, h * w, dtype=torch.float64)
    for index, (dy, dx) in enumerate(window_offsets(radius, window).tolist()):
        for y in range(h):
            for x in range(w):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    matrix[(y + dy) * w + x + dx, y * w + x] = affinity[index, y, x]
    matrix = matrix ** beta
    return matrix / matrix.sum(dim=0, keepdim=True)


@pytest.mark.parametrize("radius, window, steps", [(1, "square", 3), (2, "disk", 64),
                                                   (2, "square", 64)])
def test_matches_dense_matrix_power(radius, window, steps):
    torch.manual_seed(0)
    features = torch.rand(4, 5, 6, dtype=torch.float64)
    affinity = grid_affinity(features, radius, window)
    values = torch.rand(3, 5, 6, dtype=torch.float64)
    transition = dense_transition(affinity, radius, window, 8.0)
    expected = values.reshape(3, -1) @ torch.linalg.matrix_power(transition, steps)
    out = random_walk(values, affinity, radius, window, beta=8.0, steps=steps)
    torch.testing.assert_close(out.reshape(3, -1), expected)


def test_zero_steps_and_constant_values():
    affinity = grid_affinity(torch.rand(3, 7, 8), 2)
    values = torch.rand(2, 7, 8)
    torch.testing.assert_close(random_walk(values, affinity, 2, steps=0), values)
    ones = torch.ones(1, 7, 8)
    torch.testing.assert_close(random_walk(ones, affinity, 2, steps=5), ones)


def test_bad_input():
    affinity = grid_affinity(torch.rand(3, 7, 8), 1)
    with pytest.raises(ValueError, match=r"affinity must have shape \(25, H, W\)"):
        random_walk(torch.rand(2, 7, 8), affinity, radius=2)
    with pytest.raises(ValueError, match="values must be a floating"):
        random_walk(torch.ones(2, 7, 8, dtype=torch.long), affinity, radius=1)
    with pytest.raises(ValueError, match="non-negative"):
        random_walk(torch.rand(2, 7, 8), -affinity, radius=1)
    with pytest.raises(ValueError, match="beta"):
        random_walk(torch.rand(2, 7, 8), affinity, radius=1, beta=0)


def test_walk_follows_colour_edges():
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, 16:] = 220
    probs = np.full((2, 32, 32), 0.5, dtype=np.float32)
    probs[0, 10:22, 4], probs[1, 10:22, 4] = 0.9, 0.1  # class 0 on the left, 5 on the right
    probs[0, 10:22, 28], probs[1, 10:22, 28] = 0.1, 0.9
    seeds = walk_probabilities(image, probs, classes=(0, 5), stride=2, radius=3, steps=32)
    assert seeds.labels.shape == (32, 32) and seeds.classes == (0, 5)
    assert (seeds.labels[:, :14] == 0).all() and (seeds.labels[:, 18:] == 5).all()
    np.testing.assert_allclose(seeds.scores.sum(axis=0), 1, atol=1e-5)
    assert colour_affinity(image, radius=1).shape == (9, 32, 32)


def test_fusion_is_the_weighted_mean_then_crf():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    ours = rng.dirichlet([1, 1, 1], (12, 10)).transpose(2, 0, 1).astype(np.float32)
    walked = rng.dirichlet([1, 1, 1], (12, 10)).transpose(2, 0, 1).astype(np.float32)
    plain = fuse_probabilities(image, ours, walked, ratio=3.0, preset=None)
    np.testing.assert_allclose(plain.scores, (ours + 3 * walked) / 4, rtol=1e-6)
    assert (plain.labels == plain.scores.argmax(axis=0)).all()
    refined = fuse_probabilities(image, ours, walked, classes=(0, 3, 7))
    assert set(np.unique(refined.labels)) <= {0, 3, 7}
    with pytest.raises(ValueError, match="walked must sum to 1"):
        fuse_probabilities(image, ours, walked * 2)
