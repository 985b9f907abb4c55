"""Metrics against hand-computed cases and an independent brute-force computation."""
import itertools

import numpy as np
import pytest

from graphseg.metrics import (
    ConfusionMatrix,
    MaskAP,
    SeedQuality,
    average_precision,
    confusion_matrix,
    instances_from_maps,
)


def brute_force_iou(pairs, k):
    """Per-class IoU by counting pixel by pixel over all (pred, gt) images."""
    inter, union = [0] * k, [0] * k
    correct = valid = 0
    for pred, gt in pairs:
        for p, g in zip(pred.ravel().tolist(), gt.ravel().tolist()):
            if g == 255:
                continue
            valid += 1
            correct += p == g
            for c in range(k):
                inter[c] += p == c and g == c
                union[c] += p == c or g == c
    iou = [inter[c] / union[c] if union[c] else float("nan") for c in range(k)]
    return np.array(iou), correct / valid


def test_hand_computed_two_by_three():
    gt = np.array([[0, 0, 1], [1, 1, 255]])
    pred = np.array([[0, 1, 1], [1, 0, 0]])
    # class 0: TP 1 (0,0); FP 1 (1,1); FN 1 (0,1) -> 1/3.  class 1: TP 2, FP 1, FN 1 -> 2/4
    cm = ConfusionMatrix(2).update(pred, gt)
    assert cm.counts.tolist() == [[1, 1, 0], [1, 2, 0]]
    np.testing.assert_allclose(cm.iou(), [1 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert cm.pixel_accuracy() == pytest.approx(3 / 5)
    # FB-IoU with 0 = background equals the two-class mIoU here
    assert cm.fb_iou((0,)) == pytest.approx(cm.miou())


def test_unpredicted_pixels_are_misses_and_absent_classes_are_nan():
    gt = np.array([[0, 1, 1, 2]])
    pred = np.array([[0, 1, 255, 2]])
    cm = ConfusionMatrix(4).update(pred, gt)
    iou = cm.iou()
    np.testing.assert_allclose(iou[:3], [1.0, 0.5, 1.0])
    assert np.isnan(iou[3])  # class 3 absent from both: left out of the mean
    assert cm.miou() == pytest.approx(2.5 / 3)
    assert cm.pixel_accuracy() == pytest.approx(3 / 4)
    # FB: background {0}: IoU 1; foreground {1, 2}: TP 2 of union 3
    assert cm.fb_iou((0,)) == pytest.approx((1 + 2 / 3) / 2)


def test_accumulation_equals_brute_force_on_random_maps():
    rng = np.random.default_rng(0)
    k, pairs, cm = 5, [], ConfusionMatrix(5)
    for size in [(7, 9), (4, 4), (11, 3)]:
        gt = rng.integers(0, k, size)
        gt[rng.random(size) < 0.2] = 255
        pred = np.where(rng.random(size) < 0.6, gt, rng.integers(0, k, size))
        pred[pred == 255] = 0
        pairs.append((pred, gt))
        cm.update(pred, gt)
    iou, accuracy = brute_force_iou(pairs, k)
    np.testing.assert_allclose(cm.iou(), iou)
    assert cm.pixel_accuracy() == pytest.approx(accuracy)
    # summing per-image matrices gives the same as one update per image
    total = sum(confusion_matrix(p, g, k) for p, g in pairs)
    np.testing.assert_array_equal(total, cm.counts)


def test_growing_class_count_matches_fixed():
    rng = np.random.default_rng(1)
    grow, fixed = ConfusionMatrix(), ConfusionMatrix(6)
    for top in (2, 6, 4):
        gt, pred = rng.integers(0, top, (5, 5)), rng.integers(0, top, (5, 5))
        pred[0, 0] = 255
        grow.update(pred, gt)
        fixed.update(pred, gt)
    np.testing.assert_array_equal(grow.counts, fixed.counts)


def test_bad_inputs_name_the_problem():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"img7: prediction is 3x2 but ground truth is 2x2"):
        cm.update(np.zeros((2, 3), int), np.zeros((2, 2), int), "img7")
    with pytest.raises(ValueError, match=r"class ids \[3, 7\] >= num_classes \(3\)"):
        cm.update(np.array([[3, 7, 255]]), np.zeros((1, 3), int))
    with pytest.raises(ValueError, match="ground truth holds class ids"):
        cm.update(np.zeros((1, 2), int), np.array([[0, 4]]))
    with pytest.raises(TypeError, match="integer labels"):
        cm.update(np.zeros((2, 2)), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="background classes"):
        ConfusionMatrix(2).fb_iou((5,))


def test_seed_quality_hand_computed():
    gt = np.array([[0, 0, 0, 1], [1, 1, 255, 255]])
    seeds = np.array([[0, 255, 1, 1], [255, 255, 1, 255]])
    q = SeedQuality(2).update(seeds, gt)
    # class 0: 3 gt pixels, 2 seeded -> 2/3; class 1: 3 pixels, 1 seeded -> 1/3
    np.testing.assert_allclose(q.coverage(), [2 / 3, 1 / 3])
    # seeds 0 on valid gt: 1 pixel, correct; seeds 1 on valid gt: 2 pixels, 1 correct
    np.testing.assert_allclose(q.precision(), [1.0, 0.5])
    assert q.total_coverage() == pytest.approx(3 / 6)
    assert q.total_precision() == pytest.approx(2 / 3)
    assert q.labelled_fraction() == pytest.approx(4 / 8)  # void pixels count here
    summary = q.summary(["bg", "fg"])
    assert summary["per_class"]["fg"]["precision"] == pytest.approx(0.5)


def brute_force_ap(scores, hits, num_gt):
    """AP as the sum over true positives of the best precision at or beyond their recall."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    precision, recall, tp = [], [], 0
    for rank, i in enumerate(order, 1):
        tp += hits[i]
        precision.append(tp / rank)
        recall.append(tp / num_gt)
    total = 0.0
    for rank, i in enumerate(order):
        if hits[i]:
            total += max(precision[rank:]) / num_gt
    return total


def test_average_precision_hand_computed_and_brute_force():
    # ranks: TP, FP, TP with 3 ground truths: precisions 1, 1/2, 2/3 -> (1 + 2/3) / 3
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1], bool), 3) == \
        pytest.approx((1 + 2 / 3) / 3)
    rng = np.random.default_rng(2)
    for _ in range(20):
        n = int(rng.integers(1, 12))
        scores, hits = rng.random(n), rng.random(n) < 0.5
        num_gt = int(hits.sum() + rng.integers(0, 3)) or 1
        assert average_precision(scores, hits, num_gt) == pytest.approx(
            brute_force_ap(scores.tolist(), hits.tolist(), num_gt))


def square(shape, y, x, size):
    mask = np.zeros(shape, bool)
    mask[y:y + size, x:x + size] = True
    return mask


def test_mask_ap_hand_computed():
    shape = (20, 20)
    gt = np.stack([square(shape, 0, 0, 10), square(shape, 10, 10, 10)])
    # pred 0 is 80 pixels of gt 0 (IoU 0.8), pred 1 is 60 pixels of gt 1 (IoU 0.6),
    # pred 2 duplicates gt 0 and is ranked last
    p0 = square(shape, 0, 0, 10)
    p0[8:] = False
    p1 = np.zeros(shape, bool)
    p1[10:20, 10:16] = True
    preds = np.stack([p0, p1, square(shape, 0, 0, 10)])
    ap = MaskAP(2, (0.5, 0.7, 0.75))
    ap.update(preds, [1, 1, 1], [0.9, 0.8, 0.7], gt, [1, 1])
    result = ap.compute()
    # t = 0.5: TP, TP, FP (duplicate) -> AP 1.  t = 0.7: TP, FP, FP -> AP 0.5
    assert result[0.5] == pytest.approx(1.0)
    assert result[0.7] == pytest.approx(0.5)
    assert result[0.75] == pytest.approx(0.5)
    assert np.isnan(ap.per_class()[0, 0])  # class 0 has no instance: not averaged


def test_mask_ap_ignore_region_and_brute_force_matching():
    shape = (10, 10)
    gt = square(shape, 0, 0, 5)[None]
    pred = square(shape, 0, 0, 6)[None]  # 25 / 36 = 0.69 without ignore
    ignore = ~square(shape, 0, 0, 5)
    ignore[5, :] = False
    plain = MaskAP(1, (0.7,)).update(pred, [0], [1.0], gt, [0]).compute()[0.7]
    ignored = MaskAP(1, (0.7,)).update(pred, [0], [1.0], gt, [0], ignore=ignore).compute()[0.7]
    assert plain == 0.0 and ignored == 1.0  # 25 / 30 once the ignore pixels go


def test_mask_ap_equals_exhaustive_greedy_on_random_instances():
    rng = np.random.default_rng(3)
    shape, thresholds = (12, 12), (0.5, 0.75)
    ap = MaskAP(2, thresholds)
    records = {t: ([], []) for t in thresholds}
    num_gt = 0
    for _ in range(6):
        gts = [square(shape, *rng.integers(0, 8, 2), int(rng.integers(3, 6))) for _ in range(2)]
        preds = [g ^ (rng.random(shape) < 0.08) for g in gts] + \
                [square(shape, *rng.integers(0, 8, 2), 4)]
        scores = rng.random(len(preds))
        ap.update(np.stack(preds), [1] * len(preds), scores, np.stack(gts), [1, 1])
        num_gt += 2
        for t in thresholds:
            taken = set()
            for i in sorted(range(len(preds)), key=lambda i: -scores[i]):
                ious = {j: (preds[i] & g).sum() / (preds[i] | g).sum()
                        for j, g in enumerate(gts) if j not in taken}
                j = max(ious, key=ious.get) if ious else None
                hit = j is not None and ious[j] >= t
                if hit:
                    taken.add(j)
                records[t][0].append(scores[i])
                records[t][1].append(hit)
    result = ap.compute()
    for t in thresholds:
        assert result[t] == pytest.approx(brute_force_ap(*records[t], num_gt))


def test_instances_from_voc_maps():
    label = np.array([[0, 3, 3], [5, 5, 255]], dtype=np.uint8)
    instances = np.array([[0, 1, 1], [2, 2, 255]], dtype=np.uint8)
    masks, classes = instances_from_maps(instances, label)
    assert classes.tolist() == [3, 5] and masks.sum(axis=(1, 2)).tolist() == [2, 2]


def test_mask_ap_rejects_bad_classes():
    with pytest.raises(ValueError, match=r"img: gt_classes holds \[4\]"):
        MaskAP(2).update(np.zeros((0, 2, 2)), [], [], np.ones((1, 2, 2)), [4], source="img")


@pytest.mark.parametrize("k", [1, 3])
def test_perfect_prediction_scores_one(k):
    gt = np.array(list(itertools.islice(itertools.cycle(range(k)), 12))).reshape(3, 4)
    cm = ConfusionMatrix(k).update(gt, gt)
    assert cm.miou() == 1.0 and cm.pixel_accuracy() == 1.0
