"""The side-by-side picture."""
import numpy as np
import pytest

from graphseg.data import open_dataset, sample_root, scribbles_from_labels, voc_colormap
from graphseg.utils.io import read_image
from graphseg.viz import overlay, render_panels, save_panels


def test_panels_on_a_grabcut_sample(tmp_path):
    dataset = open_dataset(sample_root() / "grabcut")
    sample = dataset.load("teddy")
    seeds = scribbles_from_labels(sample.label)
    h, w = sample.shape
    save_panels(tmp_path / "teddy.png", sample.image, seeds=seeds, boxes=sample.boxes,
                prediction=sample.label, ground_truth=sample.label,
                class_names=dataset.class_names)
    picture = read_image(tmp_path / "teddy.png")
    assert picture.shape[1] == 4 * w + 3 * 6 and picture.shape[0] > h
    # the first panel is the photo itself, below the title bar
    np.testing.assert_array_equal(picture[22:22 + h, :w], sample.image)
    # the box outline is drawn in the object's colour in the weak-label panel
    _, x1, y1, x2, y2 = sample.boxes[0]
    left = w + 6
    assert tuple(picture[22 + y1 + 1, left + x1 + 1]) == tuple(voc_colormap()[1])


def test_overlay_leaves_ignored_pixels_and_checks_sizes():
    image = np.full((2, 2, 3), 100, np.uint8)
    label = np.array([[1, 255], [0, 255]], np.uint8)
    out = overlay(image, label, alpha=1.0)
    assert out[0, 0].tolist() == [128, 0, 0] and out[0, 1].tolist() == [100, 100, 100]
    with pytest.raises(ValueError, match=r"label is \(3, 2\) \(W x H\) but the image is"):
        overlay(image, np.zeros((2, 3), np.uint8))
    assert render_panels(image).shape[1] == 2  # the image alone
