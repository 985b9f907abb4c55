import numpy as np
import pytest

from graphseg.seeds import expand_seeds, merge_seeds


def test_real_scribbles_expand_precisely(grabcut):
    image, mask, scribbles = grabcut("teddy")
    image, mask, scribbles = image[::2, ::2].copy(), mask[::2, ::2], scribbles[::2, ::2]
    seeds = np.array([255, 1, 0], dtype=np.uint8)[scribbles]  # kit: 1 object, 2 background
    expanded = expand_seeds(image, seeds, num_classes=2).labels
    known = expanded != 255
    assert known.sum() > 2 * (seeds != 255).sum()
    assert (expanded[known] == mask[known]).mean() > 0.95
    assert (expanded[seeds != 255] == seeds[seeds != 255]).all()


def test_points_and_conflicting_superpixels():
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    image[:, 10:] = 255
    points = np.full((20, 20), 255, dtype=np.uint8)
    points[5, 15] = 4
    points[12, 3], points[12, 4] = 1, 2          # two classes in one superpixel
    out = expand_seeds(image, points, superpixel_area=40).labels
    assert (out[:, 10:] != 1).all() and (out == 4).sum() > 1
    assert out[12, 3] == 1 and out[12, 4] == 2 and not np.isin(out[:, :10], [4]).any()
    assert ((out[:, :10] == 1).sum(), (out[:, :10] == 2).sum()) == (1, 1)


def test_bad_and_empty_seeds():
    image = np.zeros((10, 12, 3), dtype=np.uint8)
    seeds = np.full((10, 12), 255, dtype=np.uint8)
    np.testing.assert_array_equal(expand_seeds(image, seeds).labels, seeds)  # all unknown
    seeds[2, 2] = 7
    with pytest.raises(ValueError, match=r"seeds holds class ids \[7\]"):
        expand_seeds(image, seeds, num_classes=3)
    with pytest.raises(ValueError, match="seeds has shape"):
        expand_seeds(image, seeds[:5])
    with pytest.raises(TypeError, match="seeds must have dtype uint8"):
        expand_seeds(image, seeds.astype(np.int64))


def test_merge():
    primary = np.array([[1, 255], [255, 0]], dtype=np.uint8)
    fallback = np.array([[2, 2], [255, 3]], dtype=np.uint8)
    np.testing.assert_array_equal(merge_seeds(primary, fallback).labels, [[1, 2], [255, 0]])
    with pytest.raises(ValueError, match="fallback has shape"):
        merge_seeds(primary, fallback[:1])
