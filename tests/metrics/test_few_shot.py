import numpy as np
import pytest

from graphseg.metrics import FewShotScores


def test_class_iou_sums_over_episodes_and_fb_iou_over_all():
    rng = np.random.default_rng(0)
    scores = FewShotScores()
    episodes = []
    for n in range(12):
        gt = (rng.random((6, 7)) > 0.6).astype(np.uint8)
        gt[rng.random((6, 7)) > 0.9] = 255
        pred = (rng.random((6, 7)) > 0.5).astype(np.uint8)
        cls = [3, 5, 9][n % 3]
        scores.update(pred, gt, cls)
        episodes.append((pred, gt, cls))
    # direct: per class, intersections and unions summed over its episodes
    expected = []
    for cls in (3, 5, 9):
        inter = sum(((p == 1) & (g == 1)).sum() for p, g, c in episodes if c == cls)
        union = sum((((p == 1) & (g != 255)) | (g == 1)).sum() for p, g, c in episodes
                    if c == cls)
        expected.append(inter / union)
    assert scores.miou() == pytest.approx(np.mean(expected))
    assert scores.class_iou() == pytest.approx(dict(zip((3, 5, 9), expected)))
    fb = []
    for value in (1, 0):
        inter = sum(((p == value) & (g == value)).sum() for p, g, _ in episodes)
        union = sum((((p == value) & (g != 255)) | (g == value)).sum() for p, g, _ in episodes)
        fb.append(inter / union)
    assert scores.fb_iou() == pytest.approx(np.mean(fb)) and scores.episodes == 12


def test_empty_scores_are_nan_and_shapes_are_checked():
    scores = FewShotScores()
    assert np.isnan(scores.miou()) and np.isnan(scores.fb_iou())
    with pytest.raises(ValueError):
        scores.update(np.zeros((3, 3), np.uint8), np.zeros((3, 4), np.uint8), cls=1)
