"""The side-by-side picture."""
import numpy as np
import pytest
from scipy import ndimage

from graphseg.data import open_dataset, sample_root, scribbles_from_labels
from graphseg.utils.io import read_image
from graphseg.viz import display_colours, overlay, render_panels, save_panels


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
    assert tuple(picture[22 + y1 + 1, left + x1 + 1]) == tuple(display_colours()[1])
    # ... edged in black outside
    assert tuple(picture[22 + y1 - 1, left + x1 + 20]) == (0, 0, 0)


def test_objects_are_outlined_black_outside_white_inside_on_the_teddy():
    sample = open_dataset(sample_root() / "grabcut").load("teddy")
    h, w = sample.shape
    picture = render_panels(sample.image, prediction=sample.label)
    panel = picture[22:22 + h, w + 6:2 * w + 6].astype(int)
    region = sample.label == 1
    inside = region & ~ndimage.binary_erosion(region, iterations=2, border_value=1)
    outside = ndimage.binary_dilation(region) & ~region
    assert inside.sum() > 500 and outside.sum() > 250
    assert (panel[inside] == 255).all() and (panel[outside] == 0).all()
    # the outline is not the photo: on the red carpet and the bright fur alike
    photo = sample.image.astype(int)
    assert (np.abs(panel[inside] - photo[inside]).sum(axis=1) > 30).mean() > 0.9
    assert (np.abs(panel[outside] - photo[outside]).sum(axis=1) > 30).mean() > 0.9
    # the background is dimmed, not tinted: the object stands out of a red carpet
    far = ~ndimage.binary_dilation(region, iterations=4) & (sample.label == 0)
    np.testing.assert_allclose(panel[far], photo[far] * 0.5, atol=1)


def test_the_prediction_title_shows_its_iou():
    sample = open_dataset(sample_root() / "grabcut").load("teddy")
    h, w = sample.shape
    plain = render_panels(sample.image, prediction=sample.label, ground_truth=sample.label)
    scored = render_panels(sample.image, prediction=sample.label, ground_truth=sample.label,
                           iou=0.95)
    changed = (plain != scored).any(axis=2)
    title = changed[:22, w + 6:2 * w + 6]
    assert title[:, 80:].sum() > 20  # "IoU 0.950" after "prediction"
    assert changed.sum() == title.sum()  # nothing else moved


def test_overlay_leaves_ignored_pixels_and_checks_sizes():
    image = np.full((2, 2, 3), 100, np.uint8)
    label = np.array([[1, 255], [0, 255]], np.uint8)
    out = overlay(image, label, alpha=1.0, outline=False)
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [100, 100, 100]
    assert out[1, 0].tolist() == [50, 50, 50]  # the background, dimmed
    assert overlay(image, label)[0, 0].tolist() == [255, 255, 255]  # the outline
    with pytest.raises(ValueError, match=r"label is \(3, 2\) \(W x H\) but the image is"):
        overlay(image, np.zeros((2, 3), np.uint8))
    assert render_panels(image).shape[1] == 2  # the image alone
