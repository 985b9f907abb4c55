import numpy as np
import pytest
import torch

from graphseg.propagation import A2GNNConfig
from graphseg.propagation.pipeline import colour_position_features, segment_image

SMALL = A2GNNConfig(hidden_channels=16, stage1_epochs=20, stage2_epochs=20)


def square_photo(seed=0):
    rng = np.random.default_rng(seed)
    image = (rng.normal(60, 8, (64, 80, 3))).clip(0, 255).astype(np.uint8)
    image[16:48, 24:56] = (rng.normal(200, 8, (32, 32, 3))).clip(0, 255).astype(np.uint8)
    truth = np.zeros((64, 80), np.uint8)
    truth[16:48, 24:56] = 1
    return image, truth


def test_colour_position_features_values():
    image = np.zeros((16, 8, 3), np.uint8)
    image[:8, :, 0] = 255
    feats = colour_position_features(image, stride=8)
    assert feats.shape == (10, 2, 1)
    assert torch.allclose(feats[:3, :, 0], torch.tensor([[1.0, 0.0], [0, 0], [0, 0]]))
    assert torch.allclose(feats[3:6], 1 - feats[:3])
    assert feats[6].flatten().tolist() == [0.0, 1.0] and feats[8].flatten().tolist() == [1.0, 0.0]
    assert torch.allclose(feats.sum(0), torch.full((2, 1), 5.0))


@pytest.mark.parametrize("crf", [None, "final"])
def test_box_and_seeds_give_the_object(crf):
    image, truth = square_photo()
    seeds = np.zeros(truth.shape, np.uint8)  # box seeds: background outside the box
    seeds[14:50, 22:58] = 255
    seeds[28:36, 36:44] = 1  # and a click-sized object seed
    labels, probs = segment_image(image, seeds, 2, boxes=[[1, 22, 14, 58, 50]], stride=4,
                                  radius=3, config=SMALL, crf=crf)
    assert labels.shape == truth.shape and labels.dtype == np.uint8
    assert probs.shape == (2, 64, 80) and np.allclose(probs.sum(0), 1, atol=1e-3)
    iou = ((labels == 1) & (truth == 1)).sum() / ((labels == 1) | (truth == 1)).sum()
    assert iou > 0.8


def test_bad_input():
    image, truth = square_photo()
    seeds = np.full(truth.shape, 255, np.uint8)
    seeds[0, 0] = 0
    with pytest.raises(ValueError, match="seeds has shape"):
        segment_image(image, seeds[:10], 2)
    with pytest.raises(ValueError, match="features has grid size"):
        segment_image(image, seeds, 2, features=torch.rand(5, 3, 3), config=SMALL)
    with pytest.raises(ValueError, match="no labelled node"):
        segment_image(image, np.full(truth.shape, 255, np.uint8), 2, config=SMALL)
