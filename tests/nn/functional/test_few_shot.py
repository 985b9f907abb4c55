"""The few-shot rules of SCL (thesis Eq. 5.1, 5.5-5.6, 5.16-5.17) and the training-free
baselines (PFENet's prior, PANet's prototype matching) against loops and hand-computed
numbers, their documented edge cases and bad inputs."""
import math

import pytest
import torch
import torch.nn.functional as F

from graphseg.nn.functional import (
    cgm_fuse,
    cgm_weights,
    masked_average_pooling,
    prior_mask,
    prototype_segmentation,
    resize_mask,
    sgm_prototypes,
)


def loop_pool(features, region):
    """sum_i F(i) [region(i)] / sum_i [region(i)] by a loop over pixels, None if empty."""
    d, h, w = features.shape
    total, count = torch.zeros(d, dtype=torch.float64), 0
    for y in range(h):
        for x in range(w):
            if region[y, x]:
                total += features[:, y, x].double()
                count += 1
    return None if count == 0 else total / count


# ------------------------------------------------------------ masked average pooling
def test_masked_average_pooling_by_hand():
    features = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
                             [[0.0, 10.0, 0.0], [10.0, 0.0, 10.0]]])[None]
    mask = torch.tensor([[[1, 255, 1], [0, 1, 255]]], dtype=torch.uint8)
    # foreground pixels (0,0), (0,2), (1,1): channel 0 (1 + 3 + 5) / 3, channel 1 0
    torch.testing.assert_close(masked_average_pooling(features, mask),
                               torch.tensor([[3.0, 0.0]]))


def test_masked_average_pooling_matches_a_loop_with_ignore_pixels():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(3, 5, 6, 7, generator=g)
    mask = torch.randint(0, 3, (3, 6, 7), generator=g)
    mask[mask == 2] = 255
    mask[2] = 0  # no foreground: the zero vector
    out = masked_average_pooling(features, mask)
    for b in range(3):
        expected = loop_pool(features[b], mask[b] == 1)
        expected = torch.zeros(5, dtype=torch.float64) if expected is None else expected
        torch.testing.assert_close(out[b].double(), expected)
    assert torch.equal(out[2], torch.zeros(5))


def test_masked_average_pooling_resizes_the_mask_by_nearest():
    features = torch.arange(6.0).view(1, 1, 2, 3)
    mask = torch.zeros(1, 4, 6, dtype=torch.long)
    mask[0, 0:2, 0:2] = 1        # -> feature pixel (0, 0)
    mask[0, 2:4, 4:6] = 1        # -> feature pixel (1, 2)
    mask[0, 0:2, 2:4] = 255      # -> (0, 1): ignored
    assert torch.equal(resize_mask(mask, (2, 3)),
                       torch.tensor([[[1, 255, 0], [0, 0, 1]]]))
    torch.testing.assert_close(masked_average_pooling(features, mask),
                               torch.tensor([[(0.0 + 5.0) / 2]]))
    # an odd size: the nearest rule floor(y * H / h)
    mask = torch.randint(0, 2, (2, 13, 11))
    small = resize_mask(mask, (4, 3))
    for y in range(4):
        for x in range(3):
            assert torch.equal(small[:, y, x], mask[:, (y * 13) // 4, (x * 11) // 3])
    features = torch.randn(2, 4, 4, 3)
    out = masked_average_pooling(features, mask)
    for b in range(2):
        expected = loop_pool(features[b], small[b] == 1)
        if expected is not None:
            torch.testing.assert_close(out[b].double(), expected)


def test_masked_average_pooling_bool_mask_and_gradient():
    features = torch.randn(1, 3, 2, 2, requires_grad=True)
    mask = torch.tensor([[[True, False], [False, True]]])
    out = masked_average_pooling(features, mask)
    out.sum().backward()
    expected = torch.tensor([[0.5, 0.0], [0.0, 0.5]]).expand(3, 2, 2)
    torch.testing.assert_close(features.grad[0], expected)


def test_masked_average_pooling_bad_inputs():
    features = torch.randn(2, 3, 4, 4)
    with pytest.raises(TypeError, match="features must be a torch.Tensor"):
        masked_average_pooling([1.0], torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"features must have shape \(B, D, h, w\)"):
        masked_average_pooling(torch.randn(3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="features must be a floating tensor"):
        masked_average_pooling(features.long(), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, H, W\)"):
        masked_average_pooling(features, torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="mask has batch size 1 but the features have 2"):
        masked_average_pooling(features, torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="mask must hold integer labels"):
        masked_average_pooling(features, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="mask must hold 0, 1 or 255, got 2"):
        masked_average_pooling(features, torch.full((2, 4, 4), 2))
    with pytest.raises(ValueError, match="size must be"):
        resize_mask(torch.zeros(1, 4, 4, dtype=torch.long), (0, 3))


# -------------------------------------------------------------------- SGM prototypes
def test_sgm_prototypes_match_a_loop():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(2, 4, 5, 6, generator=g)
    mask = torch.randint(0, 2, (2, 5, 6), generator=g)
    mask[:, 0, 0], mask[:, 0, 1], mask[:, 4, 5] = 1, 1, 255
    predicted = torch.randint(0, 2, (2, 5, 6), generator=g)
    predicted[:, 0, 0], predicted[:, 0, 1] = 1, 0   # both sets non-empty
    v_pri, v_aux = sgm_prototypes(features, mask, predicted)
    for b in range(2):
        fg = mask[b] == 1
        torch.testing.assert_close(v_pri[b].double(),
                                   loop_pool(features[b], fg & (predicted[b] == 1)))
        torch.testing.assert_close(v_aux[b].double(),
                                   loop_pool(features[b], fg & (predicted[b] != 1)))


def test_sgm_prototypes_fall_back_to_the_initial_prototype():
    features = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]],
                             [[[1.0, 2.0], [3.0, 5.0]]]])
    mask = torch.tensor([[[1, 1], [1, 0]], [[1, 1], [255, 0]]])
    predicted = torch.tensor([[[1, 1], [1, 1]],    # all foreground found: no missed set
                              [[0, 0], [0, 1]]])   # none found: no primary set
    v_pri, v_aux = sgm_prototypes(features, mask, predicted)
    v_s = masked_average_pooling(features, mask)
    torch.testing.assert_close(v_s, torch.tensor([[2.0], [1.5]]))
    torch.testing.assert_close(v_pri, torch.tensor([[2.0], [1.5]]))   # 0: real, 1: v_s
    torch.testing.assert_close(v_aux, torch.tensor([[2.0], [1.5]]))   # 0: v_s, 1: real
    # make the "real" sets differ from v_s to see which is which
    predicted = torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 1]]])
    v_pri, v_aux = sgm_prototypes(features, mask, predicted)
    torch.testing.assert_close(v_pri, torch.tensor([[1.0], [1.5]]))   # 1: fallback
    torch.testing.assert_close(v_aux, torch.tensor([[2.5], [1.5]]))   # 1: {1, 2}
    # no foreground at all: both are v_s, the zero vector
    v_pri, v_aux = sgm_prototypes(features[:1], torch.zeros(1, 2, 2, dtype=torch.long),
                                  predicted[:1])
    assert torch.equal(v_pri, torch.zeros(1, 1)) and torch.equal(v_aux, torch.zeros(1, 1))


def test_sgm_prototypes_resize_the_mask_and_check_predicted():
    features = torch.randn(1, 2, 3, 3)
    mask = torch.ones(1, 6, 6, dtype=torch.long)
    predicted = torch.zeros(1, 3, 3, dtype=torch.long)
    predicted[0, 0, 0] = 1
    v_pri, v_aux = sgm_prototypes(features, mask, predicted)
    torch.testing.assert_close(v_pri[0], features[0, :, 0, 0])
    torch.testing.assert_close(v_aux[0], (features[0].sum((1, 2)) - features[0, :, 0, 0]) / 8)
    with pytest.raises(ValueError, match="predicted must have the features' size"):
        sgm_prototypes(features, mask, torch.zeros(1, 6, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="predicted must hold 0 or 1, got 255"):
        sgm_prototypes(features, mask, torch.full((1, 3, 3), 255))


# ----------------------------------------------------------------------------- CGM
def test_cgm_weights_on_hand_made_masks():
    gt = torch.tensor([[[1, 1, 0, 0]],
                       [[0, 0, 1, 255]],
                       [[0, 0, 0, 0]]])
    predicted = torch.tensor([
        [[[1, 1, 0, 0]], [[0, 0, 1, 1]], [[0, 0, 0, 0]]],   # 1, 1 (255 ignored), 1 (empty)
        [[[1, 0, 0, 0]], [[0, 1, 1, 0]], [[1, 0, 0, 0]]],   # 1/2, 1/2, 0
        [[[0, 0, 0, 0]], [[0, 0, 0, 1]], [[0, 0, 0, 0]]],   # 0, 0 (only 255 predicted), 1
    ])
    weights = cgm_weights(predicted, gt)
    torch.testing.assert_close(weights, torch.tensor([1.0, 1.0 / 3, 1.0 / 3]))
    assert weights.dtype == torch.float32


def test_cgm_weights_match_a_loop():
    g = torch.Generator().manual_seed(2)
    k, h, w = 3, 5, 4
    predicted = torch.randint(0, 2, (k, k, h, w), generator=g)
    gt = torch.randint(0, 3, (k, h, w), generator=g)
    gt[gt == 2] = 255
    expected = []
    for a in range(k):
        ious = []
        for i in range(k):
            inter = union = 0
            for y in range(h):
                for x in range(w):
                    if gt[i, y, x] == 255:
                        continue
                    p, t = bool(predicted[a, i, y, x] == 1), bool(gt[i, y, x] == 1)
                    inter += p and t
                    union += p or t
            ious.append(1.0 if union == 0 else inter / union)
        expected.append(sum(ious) / k)
    torch.testing.assert_close(cgm_weights(predicted, gt), torch.tensor(expected))
    # the ground truth at another size is nearest-resized
    big = gt.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    torch.testing.assert_close(cgm_weights(predicted, big), torch.tensor(expected))


def test_cgm_weights_bad_inputs():
    with pytest.raises(ValueError, match=r"predicted_masks must have shape \(K, K, h, w\)"):
        cgm_weights(torch.zeros(2, 3, 4, 4, dtype=torch.long),
                    torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="gt_masks has batch size 3"):
        cgm_weights(torch.zeros(2, 2, 4, 4, dtype=torch.long),
                    torch.zeros(3, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="predicted_masks must hold 0 or 1"):
        cgm_weights(torch.full((1, 1, 2, 2), 3), torch.zeros(1, 2, 2, dtype=torch.long))


def test_cgm_fuse_is_the_weighted_mean_of_logits():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 2, 2, 4, 5, generator=g)
    weights = torch.tensor([0.9, 0.1, 0.5])
    fused = cgm_fuse(logits, weights)
    mean = (0.9 * logits[0] + 0.1 * logits[1] + 0.5 * logits[2]) / 3
    # softmax over the two classes by hand
    expected = torch.stack([1 / (1 + torch.exp(mean[:, 1] - mean[:, 0])),
                            1 / (1 + torch.exp(mean[:, 0] - mean[:, 1]))], dim=1)
    torch.testing.assert_close(fused, expected)
    torch.testing.assert_close(fused.sum(1), torch.ones(2, 4, 5))
    # equal weights of 1 K: the softmax of the mean logits
    torch.testing.assert_close(cgm_fuse(logits, torch.ones(3)),
                               torch.softmax(logits.mean(0), dim=1))
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\)"):
        cgm_fuse(logits, torch.ones(2))
    with pytest.raises(ValueError, match=r"logits must have shape \(K, B, C, h, w\)"):
        cgm_fuse(logits[0], torch.ones(2))


# ---------------------------------------------------------------------- prior mask
def test_prior_mask_range_and_a_known_maximum():
    g = torch.Generator().manual_seed(4)
    query = torch.randn(2, 6, 5, 7, generator=g)
    support = torch.randn(2, 6, 4, 3, generator=g)
    mask = torch.zeros(2, 4, 3, dtype=torch.long)
    mask[:, 1:3, 1:] = 1
    mask[:, 0, 0] = 255
    query[:, :, 2, 3] = 3.0 * support[:, :, 1, 2]   # the same direction as a fg pixel
    prior = prior_mask(query, support, mask)
    assert prior.shape == (2, 1, 5, 7)
    assert float(prior.min()) == 0.0 and prior.max() <= 1.0
    torch.testing.assert_close(prior[:, 0, 2, 3], torch.ones(2))   # its cosine is 1: max
    # against a loop over the foreground pixels
    for b in range(2):
        best = torch.empty(5, 7)
        for y in range(5):
            for x in range(7):
                sims = [F.cosine_similarity(query[b, :, y, x], support[b, :, sy, sx], dim=0)
                        for sy in range(4) for sx in range(3) if mask[b, sy, sx] == 1]
                best[y, x] = max(sims)
        expected = (best - best.min()) / (best.max() - best.min())
        torch.testing.assert_close(prior[b, 0], expected, atol=1e-5, rtol=1e-5)


def test_prior_mask_edge_cases_and_bad_inputs():
    query, support = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2)
    empty = prior_mask(query, support, torch.zeros(1, 2, 2, dtype=torch.long))
    assert torch.equal(empty, torch.zeros(1, 1, 2, 2))
    ignored = prior_mask(query, support, torch.full((1, 2, 2), 255))
    assert torch.equal(ignored, torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="support_high must have the query's batch and "
                                         "channels"):
        prior_mask(query, torch.randn(1, 4, 2, 2), torch.ones(1, 2, 2, dtype=torch.long))


# ---------------------------------------------------------- prototype segmentation
def test_prototype_segmentation_picks_the_nearer_prototype():
    support = torch.zeros(1, 2, 2, 2)
    support[0, 0, 0, :] = 1.0           # top row: direction (1, 0), background
    support[0, 1, 1, :] = 1.0           # bottom row: direction (0, 1), foreground
    mask = torch.tensor([[[0, 0], [1, 1]]])
    query = torch.tensor([[[[2.0, 0.1, 1.0]], [[0.3, 5.0, 1.0]]]])
    logits = prototype_segmentation(query, support, mask, scale=10.0)
    assert logits.shape == (1, 2, 1, 3)
    assert logits.argmax(1).tolist() == [[[0, 1, 0]]]   # the tie goes to background
    q = query[0, :, 0]
    cos_bg, cos_fg = q[0] / q.norm(dim=0), q[1] / q.norm(dim=0)
    torch.testing.assert_close(logits[0, 0, 0], 10.0 * cos_bg)
    torch.testing.assert_close(logits[0, 1, 0], 10.0 * cos_fg)
    assert math.isclose(float(logits[0, 1, 0, 2]), 10.0 / math.sqrt(2), rel_tol=1e-6)


def test_prototype_segmentation_ignore_and_empty_class():
    g = torch.Generator().manual_seed(5)
    support, query = torch.randn(1, 4, 3, 3, generator=g), torch.randn(1, 4, 2, 5, generator=g)
    mask = torch.full((1, 3, 3), 255)
    mask[0, 0, 0], mask[0, 2, 2] = 1, 0
    logits = prototype_segmentation(query, support, mask)
    for c, (y, x) in enumerate([(2, 2), (0, 0)]):
        expected = 20.0 * F.cosine_similarity(query[0], support[0, :, y, x, None, None], dim=0)
        torch.testing.assert_close(logits[0, c], expected)
    only_bg = prototype_segmentation(query, support, torch.zeros(1, 3, 3, dtype=torch.long))
    assert torch.equal(only_bg[0, 1], torch.zeros(2, 5))   # zero prototype: cosine 0
    with pytest.raises(ValueError, match="scale must be a positive number"):
        prototype_segmentation(query, support, mask, scale=0)
