import numpy as np
import pytest

from graphseg.propagation.refinement import refine_probabilities


def _photo():
    image = np.full((40, 40, 3), 60, np.uint8)
    image[:, 20:] = 200  # the object is the bright right half
    probs = np.full((2, 40, 40), 0.5, np.float32)
    probs[1, :, 28:], probs[0, :, 28:] = 0.97, 0.03  # confident object part
    probs[0, :, :8], probs[1, :, :8] = 0.97, 0.03  # confident background part
    return image, probs


@pytest.mark.parametrize("method", ["walk", "crf"])
def test_refinement_spreads_the_confident_labels_along_the_photo(method):
    image, probs = _photo()
    refined = refine_probabilities(image, probs, method)
    assert refined.shape == probs.shape and refined.dtype == np.float32
    assert np.allclose(refined.sum(axis=0), 1, atol=1e-4)
    labels = refined.argmax(axis=0)
    # the undecided middle (0.5 / 0.5) takes its side's colour
    assert (labels[:, 21:28] == 1).mean() > 0.9 and (labels[:, 8:19] == 0).mean() > 0.9


@pytest.mark.slow
def test_a2gnn_refinement_learns_from_the_confident_pixels(one_thread):
    image, probs = _photo()
    refined = refine_probabilities(image, probs, "a2gnn", confidence=0.9, seed=0)
    labels = refined.argmax(axis=0)
    assert (labels[:, 21:28] == 1).mean() > 0.9 and (labels[:, 8:19] == 0).mean() > 0.9


def test_a2gnn_with_one_seeded_class_returns_the_prediction():
    image, probs = _photo()
    probs[1, :, 28:], probs[0, :, 28:] = 0.5, 0.5  # only background is confident
    assert np.array_equal(refine_probabilities(image, probs, "a2gnn"), probs)


def test_bad_arguments_are_named():
    image, probs = _photo()
    with pytest.raises(ValueError, match="method"):
        refine_probabilities(image, probs, "grabcut")
    with pytest.raises(ValueError, match="probs must be a \\(C, H, W\\) array"):
        refine_probabilities(image, probs[:, :10], "walk")
    with pytest.raises(ValueError, match="confidence"):
        refine_probabilities(image, probs, "a2gnn", confidence=1.5)
