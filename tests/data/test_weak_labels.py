"""Weak label synthesis: hand-made maps, and the data kit / bundled sample."""
import numpy as np
import pytest

from graphseg.data import (
    boxes_from_labels,
    boxes_to_seeds,
    labelled_fraction,
    open_dataset,
    points_from_labels,
    sample_root,
    scribbles_from_labels,
    tags_from_labels,
)
from graphseg.metrics import SeedQuality


def two_objects():
    label = np.zeros((40, 60), np.uint8)
    label[5:15, 5:25] = 1
    label[20:35, 30:55] = 2
    label[36:38, 0:3] = 2  # a 6-pixel sliver
    label[0, :] = 255
    return label


def test_boxes_per_component_skip_small_ones():
    boxes = boxes_from_labels(two_objects(), min_area=10)
    assert boxes.tolist() == [[1, 5, 5, 25, 15], [2, 30, 20, 55, 35]]
    assert len(boxes_from_labels(two_objects(), min_area=1)) == 3


def test_boxes_per_instance_when_an_instance_map_exists():
    label = np.zeros((10, 10), np.uint8)
    label[2:8, 1:9] = 4  # two touching instances of one class: one component
    instances = np.zeros_like(label)
    instances[2:8, 1:5], instances[2:8, 5:9] = 1, 2
    assert len(boxes_from_labels(label, min_area=1)) == 1
    assert boxes_from_labels(label, instances, min_area=1).tolist() == \
        [[4, 1, 2, 5, 8], [4, 5, 2, 9, 8]]


def test_points_interior_and_random_are_inside_and_seeded():
    label = two_objects()
    points = points_from_labels(label, min_area=10)
    ys, xs = np.nonzero(points != 255)
    assert len(ys) == 3  # two objects and the background
    # 5 pixels from the rectangle's edges at best; the first such pixel in raster order
    assert np.argwhere(points == 1).tolist() == [[9, 9]]
    assert (points[points != 255] == label[points != 255]).all()
    a = points_from_labels(label, mode="random", seed=3, radius=2)
    b = points_from_labels(label, mode="random", seed=3, radius=2)
    c = points_from_labels(label, mode="random", seed=4, radius=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a[a != 255] == label[a != 255]).all()


def test_scribbles_precision_one_and_length_ratio_shortens():
    label = two_objects()
    full = scribbles_from_labels(label, length_ratio=1.0, width=1)
    short = scribbles_from_labels(label, length_ratio=0.3, width=1, seed=1)
    for seeds in (full, short):
        assert (seeds[seeds != 255] == label[seeds != 255]).all()
        assert set(np.unique(seeds)) == {0, 1, 2, 255}
    for cls in (0, 1, 2):
        n_full, n_short = (full == cls).sum(), (short == cls).sum()
        assert n_short == pytest.approx(0.3 * n_full, abs=1)
    wide = scribbles_from_labels(label, width=5)
    assert labelled_fraction(wide) > labelled_fraction(full)
    with pytest.raises(ValueError, match="length_ratio"):
        scribbles_from_labels(label, length_ratio=0)
    with pytest.raises(ValueError, match="width must be odd"):
        scribbles_from_labels(label, width=4)


def test_tags_and_box_fill():
    assert tags_from_labels(two_objects()) == (1, 2)
    assert tags_from_labels(two_objects(), background_classes=(0, 2)) == (1,)
    seeds = boxes_to_seeds([[1, 0, 0, 10, 10], [2, 2, 2, 4, 4]], (12, 12))
    assert seeds[3, 3] == 2 and seeds[0, 0] == 1 and seeds[11, 11] == 0


def test_msrc_sample_weak_labels_are_exact(recwarn):
    dataset = open_dataset(sample_root() / "msrc_v2", "val")
    quality = SeedQuality(len(dataset.class_names))
    for sample in dataset:
        boxes = boxes_from_labels(sample.label, background_classes=dataset.background_classes)
        assert set(boxes[:, 0].tolist()) <= set(sample.tags)
        for cls, x1, y1, x2, y2 in boxes:  # tight: the class touches every box edge
            inside = sample.label[y1:y2, x1:x2] == cls
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and \
                inside[:, -1].any()
        quality.update(scribbles_from_labels(sample.label, length_ratio=0.5, seed=0),
                       sample.label)
    assert quality.total_precision() == 1.0
    assert 0.005 < quality.total_coverage() < 0.1


def test_grabcut_kit_human_scribbles_are_nearly_exact(data_kit):
    dataset = open_dataset(data_kit / "grabcut")
    quality = SeedQuality(2)
    for name in dataset.names[:4]:
        quality.update(dataset.scribbles(name), dataset.load(name).label)
    assert quality.total_precision() > 0.95 and 0 < quality.total_coverage() < 0.2
