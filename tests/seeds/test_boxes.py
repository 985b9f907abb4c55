import warnings

import numpy as np
import pytest

from graphseg.seeds import box_seeds, confident_box_seeds, fuse_box_cam, grabcut_box
from graphseg.seeds.boxes import LOW_CONTEXT, MIN_BOX_AREA, context_ratio


def _two_squares():
    """Grey background, a bright square (class 3) and a dark one (class 5)."""
    image = np.full((60, 80, 3), 120, dtype=np.uint8)
    image[10:30, 10:30] = 250
    image[30:50, 45:70] = 10
    return image


@pytest.fixture
def flower_crop(grabcut):
    image, mask, _ = grabcut("flower")
    ys, xs = np.nonzero(mask)
    # a real crop around the object, downsampled 2x to keep GrabCut quick
    top, left = max(0, ys.min() - 40), max(0, xs.min() - 40)
    crop = (slice(top, ys.max() + 40, 2), slice(left, xs.max() + 40, 2))
    image, mask = np.ascontiguousarray(image[crop]), mask[crop]
    ys, xs = np.nonzero(mask)
    box = [[1, xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
    return image, mask, np.array(box)


def test_real_crop_is_precise(flower_crop):
    image, mask, box = flower_crop
    labels = box_seeds(image, box).labels
    x1, y1, x2, y2 = box[0, 1:]
    outside = np.ones(mask.shape, bool)
    outside[y1:y2, x1:x2] = False
    assert (labels[outside] == 0).all()
    foreground = labels == 1
    assert foreground.sum() > 0.3 * mask.sum()
    assert mask[foreground].mean() > 0.95
    plain = box_seeds(image, box, band=0).labels
    assert set(np.unique(plain)) <= {0, 1, 255}
    assert (plain[foreground] == 1).all() and (plain == 1).sum() > foreground.sum()


def test_squares_and_determinism():
    image = _two_squares()
    boxes = [[3, 8, 8, 32, 32], [5, 43, 28, 72, 52]]
    labels = box_seeds(image, boxes, band=0).labels
    assert (labels[12:28, 12:28] == 3).all() and (labels[32:48, 47:68] == 5).all()
    assert labels[0, 0] == 0 and labels[9, 9] == 255
    np.testing.assert_array_equal(labels, box_seeds(image, boxes, band=0).labels)


def test_overlap_smaller_box_owns_the_pixel():
    image = _two_squares()
    big = [7, 5, 5, 75, 55]       # both squares
    small = [3, 8, 8, 32, 32]     # the bright square only
    labels = box_seeds(image, [big, small], band=0, wide_band=0).labels
    assert (labels[12:28, 12:28] == 3).all()
    assert (labels == 7).any()    # the big box's GrabCut keeps what the small one leaves


def test_bad_boxes():
    image = _two_squares()
    with pytest.raises(ValueError, match="empty box"):
        box_seeds(image, [[1, 10, 10, 10, 20]])
    with pytest.raises(ValueError, match="lies outside"):
        box_seeds(image, [[1, 100, 10, 120, 20]])
    with pytest.raises(ValueError, match="background class"):
        box_seeds(image, [[0, 5, 5, 30, 30]])
    with pytest.raises(ValueError, match="band"):
        box_seeds(image, [[1, 5, 5, 30, 30]], band=0.5)
    with pytest.raises(ValueError, match="wide_band"):
        box_seeds(image, [[1, 5, 5, 30, 30]], wide_band=-0.1)
    with pytest.raises(ValueError, match="too small for GrabCut"):
        grabcut_box(image, (0, 0, 4, 4))
    with pytest.warns(UserWarning, match="clipped"):
        labels = box_seeds(image, [[3, 8, 8, 32, 32], [5, 43, 28, 90, 52]]).labels
    assert (labels == 5).any()


def test_tiny_whole_image_and_uniform_boxes():
    image = _two_squares()
    labels = box_seeds(image, [[2, 0, 0, 4, 4]]).labels       # under MIN_BOX_AREA pixels
    assert 16 < MIN_BOX_AREA and (labels[:4, :4] == 255).all() and labels[10, 10] == 0
    # no context outside the box: its outer ring seeds the background model instead
    whole = box_seeds(image, [[2, 0, 0, 80, 60]], band=0, wide_band=0).labels
    expected = np.full((60, 80), 255, dtype=np.uint8)
    expected[10:30, 10:30], expected[30:50, 45:70] = 2, 2    # GrabCut finds both squares
    np.testing.assert_array_equal(whole, expected)
    narrow = box_seeds(image, [[2, 0, 0, 80, 60]], wide_band=0).labels   # eroded by 3 pixels
    expected[:] = 255
    expected[13:27, 13:27], expected[33:47, 48:67] = 2, 2
    np.testing.assert_array_equal(narrow, expected)
    wide = box_seeds(image, [[2, 0, 0, 80, 60]]).labels     # by 15: both squares are too thin
    assert (wide == 255).all()
    flat = np.full((40, 40, 3), 77, dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = box_seeds(flat, [[1, 5, 5, 35, 35]]).labels
    assert labels[0, 0] == 0
    assert box_seeds(image, np.zeros((0, 5))).labels.max() == 0   # no box: all background


def test_fusion_equations():
    # one box of class 2 over columns 1..4; M_B says 2 on columns 2..3
    boxes = [[2, 1, 0, 5, 1]]
    m_b = np.array([[0, 255, 2, 2, 255, 0]], dtype=np.uint8)
    m_i = np.array([[0, 0, 2, 0, 2, 0]], dtype=np.uint8)
    fused = fuse_box_cam(m_b, boxes, m_i).labels
    np.testing.assert_array_equal(fused, [[0, 255, 2, 255, 255, 0]])
    # the CAM misses the box class: the box seeds are kept (third case of Eq. 3.4)
    missed = fuse_box_cam(m_b, boxes, np.zeros_like(m_i)).labels
    np.testing.assert_array_equal(missed, [[0, 255, 2, 2, 255, 0]])
    confident = np.array([[0, 255, 255, 255, 2, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(confident_box_seeds(fused, boxes, confident).labels,
                                  [[0, 255, 255, 255, 255, 0]])
    np.testing.assert_array_equal(confident_box_seeds(missed, boxes, np.zeros_like(m_i)).labels,
                                  missed)
    with pytest.raises(ValueError, match="cam_labels has shape"):
        fuse_box_cam(m_b, boxes, m_i[:, :3])


def _leaky_scene():
    """A red disc on a blue mat on green grass, the box the whole image: with no
    context outside the box GrabCut only sees grass as background and takes the
    mat too (the banana1 / cross failure of GrabCut-13)."""
    image = np.full((80, 100, 3), (40, 120, 40), dtype=np.uint8)
    image[20:68, 26:74] = (40, 40, 200)              # the mat, away from the box's edge
    yy, xx = np.mgrid[:80, :100]
    disc = (yy - 44) ** 2 + (xx - 50) ** 2 < 15 ** 2
    image[disc] = (230, 30, 30)
    rng = np.random.default_rng(0)
    image = np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)
    label = np.where(disc, 1, 0).astype(np.uint8)
    return image, label


def test_low_context_boxes_get_the_wide_band():
    assert context_ratio((0, 0, 100, 80), (80, 100)) == 0 < LOW_CONTEXT
    assert context_ratio((40, 30, 60, 50), (80, 100)) == 3
    image, label = _leaky_scene()
    box = [[1, 0, 0, 100, 80]]
    plain = box_seeds(image, box, band=0, wide_band=0).labels
    # GrabCut takes the floor too: Eq. 3.2 seeds are far from precise here
    assert (label[plain == 1] == 1).mean() < 0.8
    default = box_seeds(image, box).labels
    narrow = box_seeds(image, box, wide_band=0).labels          # band 0.05 only
    kept, kept_narrow = default == 1, narrow == 1
    assert kept.sum() < kept_narrow.sum()
    assert kept.any() and (label[kept] == 1).mean() > (label[kept_narrow] == 1).mean()
    assert (label[kept] == 1).mean() > 0.95
    # a box with its full context keeps the narrow band
    small = [[1, 30, 10, 70, 50]]
    assert context_ratio(small[0][1:], image.shape[:2]) >= LOW_CONTEXT
    np.testing.assert_array_equal(box_seeds(image, small).labels,
                                  box_seeds(image, small, wide_band=0).labels)


def test_opencv_grabcut_baseline_labels_every_pixel():
    from graphseg.seeds import opencv_grabcut

    rng = np.random.default_rng(0)
    image = rng.integers(0, 40, (60, 80, 3), dtype=np.uint8)
    image[20:40, 25:55] = rng.integers(200, 255, (20, 30, 3), dtype=np.uint8)
    labels = opencv_grabcut(image, [[3, 15, 10, 65, 50]])
    assert labels.shape == (60, 80) and set(np.unique(labels)) == {0, 3}
    assert (labels[22:38, 27:53] == 3).all() and (labels[:10] == 0).all()


def test_box_seeds_scores_are_grabcuts_answer_per_class():
    image = _two_squares()
    boxes = [[3, 5, 5, 35, 35], [5, 40, 25, 75, 55], [5, 0, 0, 6, 6]]  # the last one tiny
    seeds = box_seeds(image, boxes, band=0)
    assert seeds.classes == (3, 5) and seeds.scores.shape == (2, 60, 80)
    bright, dark = seeds.scores
    answer = grabcut_box(image, (5, 5, 35, 35))
    np.testing.assert_array_equal(bright[5:35, 5:35], answer.astype(np.float32))
    assert (bright[40:, :] == 0.5).all() and (dark[:5, :5] == 0.5).all()  # no answer there
    assert dark[35, 55] == 1 and dark[27, 42] == 0
    # the eroded foreground of the seeds lies inside GrabCut's answer
    assert (bright[seeds.labels == 3] == 1).all()
