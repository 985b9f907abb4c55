"""The losses of DFR (thesis chapter 4) against brute-force double loops over pixel pairs:
confident labels (Eq. 4.7), feature distance (Eq. 4.8-4.11), feature regularised (Eq. 4.12)
and dynamic feature regularised (Eq. 4.4-4.6) losses; values and gradients, masks, empty
pair sets, the three-way balancing, the stability of log(1 - D)."""
import math

import pytest
import torch

from graphseg.losses import (
    confident_labels,
    dfr_loss,
    feature_distance_loss,
    feature_regularized_loss,
    potts_energy,
    window_kernel,
)
from graphseg.losses.dfr import MIN_DISTANCE

# ---------------------------------------------------------------- brute force references


def window_pairs(b, h, w, radius, window="square"):
    """Ordered pairs (bi, (y, x), (yy, xx)), i != j, inside the window, by loops."""
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                for yy in range(h):
                    for xx in range(w):
                        dy, dx = yy - y, xx - x
                        if (dy, dx) == (0, 0):
                            continue
                        if window == "square" and max(abs(dy), abs(dx)) > radius:
                            continue
                        if window == "disk" and dy * dy + dx * dx > radius * radius:
                            continue
                        yield bi, (y, x), (yy, xx)


def brute_feature_distance(features, labels, radius, window="square", background=0,
                           ignore=255):
    """Eq. 4.8-4.11 literally: -log D, -log(1 - D) per ordered pair, three means."""
    b, d, h, w = features.shape
    sums = [features.new_zeros(()) for _ in range(3)]
    counts = [0, 0, 0]
    for bi, (y, x), (yy, xx) in window_pairs(b, h, w, radius, window):
        li, lj = int(labels[bi, y, x]), int(labels[bi, yy, xx])
        if li == ignore or lj == ignore:
            continue
        dist = (features[bi, :, y, x] - features[bi, :, yy, xx]).abs().sum() / d
        big_d = torch.exp(-dist)
        if li == lj:
            n = 0 if li == background else 1
            sums[n] = sums[n] - torch.log(big_d)
        else:
            n = 2
            sums[n] = sums[n] - torch.log(1 - big_d)
        counts[n] += 1
    means = [s / c if c else s for s, c in zip(sums, counts)]
    return means[0] + means[1] + 2 * means[2], counts


def brute_static_kernel(image, sigma_xy, sigma_rgb, pi, pj, bi, extra=None):
    (y, x), (yy, xx) = pi, pj
    e = ((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma_xy ** 2)
    e += float((image[bi, :, y, x] - image[bi, :, yy, xx]).square().sum()) / (2 * sigma_rgb ** 2)
    if extra is not None:
        feat, sigma = extra
        e += float((feat[bi, :, y, x] - feat[bi, :, yy, xx]).square().sum()) / (2 * sigma ** 2)
    return math.exp(-e)


def brute_feature_regularized(features, image, sigma_xy, sigma_rgb, radius, mask=None,
                              valid=None):
    """Eq. 4.12 literally: K_f(i, j) ||F_i - F_j||_1 / d over pairs with both ends in
    mask and valid, over B h w (the valid pixels when given)."""
    b, d, h, w = features.shape
    total = features.new_zeros(())
    for bi, pi, pj in window_pairs(b, h, w, radius):
        if any(m is not None and not (m[bi][pi] and m[bi][pj]) for m in (mask, valid)):
            continue
        g = brute_static_kernel(image, sigma_xy, sigma_rgb, pi, pj, bi)
        total = total + g * (features[bi, :, pi[0], pi[1]]
                             - features[bi, :, pj[0], pj[1]]).abs().sum() / d
    n = b * h * w if valid is None else int(valid.sum())
    return total / n


def brute_dfr(probs, image, features, sigma_xy, sigma_rgb, sigma_feat, radius, valid=None):
    """Eq. 4.4-4.6 literally: K(i, j) (1 - <P(i), P(j)>) over the window pairs."""
    b, _, h, w = probs.shape
    total = probs.new_zeros(())
    extra = None if features is None else (features.detach(), sigma_feat)
    for bi, pi, pj in window_pairs(b, h, w, radius):
        if valid is not None and not (valid[bi][pi] and valid[bi][pj]):
            continue
        g = brute_static_kernel(image, sigma_xy, sigma_rgb, pi, pj, bi, extra)
        agree = (probs[bi, :, pi[0], pi[1]] * probs[bi, :, pj[0], pj[1]]).sum()
        total = total + g * (1 - agree)
    n = b * h * w if valid is None else int(valid.sum())
    return total / n


def _inputs(seed=0, b=2, c=3, d=4, h=5, w=6):
    torch.manual_seed(seed)
    features = torch.randn(b, d, h, w, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, c, (b, h, w))
    labels[torch.rand(b, h, w) < 0.3] = 255
    image = torch.randn(b, 3, h, w, dtype=torch.float64)
    logits = torch.randn(b, c, h, w, dtype=torch.float64, requires_grad=True)
    valid = torch.ones(b, h, w, dtype=torch.bool)
    valid[0, :, -2:] = False
    valid[1, -1] = False
    return features, labels, image, logits, valid


def assert_value_and_grad(got, want, wrt):
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    (g_got,) = torch.autograd.grad(got, wrt, retain_graph=True)
    (g_want,) = torch.autograd.grad(want, wrt, retain_graph=True)
    torch.testing.assert_close(g_got, g_want, rtol=1e-10, atol=1e-12)
    assert g_got.abs().sum() > 0


# ---------------------------------------------------------------- confident_labels


def test_confident_labels_hand_values():
    probs = torch.tensor([[0.99, 0.98, 0.01, 0.5],
                          [0.01, 0.02, 0.99, 0.5]], dtype=torch.float64)[None, :, None]
    probs.requires_grad_(True)
    labels = confident_labels(probs)
    assert labels.dtype == torch.int64 and not labels.requires_grad
    assert labels.tolist() == [[[0, 255, 1, 255]]]  # 0.98 is not > 0.98
    assert confident_labels(probs, gamma=0.4).tolist() == [[[0, 0, 1, 0]]]
    valid = torch.tensor([[[True, True, False, True]]])
    assert confident_labels(probs, valid=valid, ignore_index=-1).tolist() == [[[0, -1, -1, -1]]]


def test_confident_labels_against_loop():
    _, _, _, logits, valid = _inputs(1)
    probs = (logits * 4).softmax(1)
    got = confident_labels(probs, gamma=0.9, valid=valid)
    b, _, h, w = probs.shape
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                p = probs[bi, :, y, x]
                want = int(p.argmax()) if p.max() > 0.9 and valid[bi, y, x] else 255
                assert int(got[bi, y, x]) == want
    assert (got != 255).any() and (got == 255).any()


@pytest.mark.parametrize("kwargs,error,match", [
    ({"gamma": 1.5}, ValueError, "gamma"),
    ({"valid": torch.ones(1, 1, 3, dtype=torch.bool)}, ValueError, "valid"),
    ({"valid": torch.ones(1, 1, 4)}, TypeError, "bool"),
])
def test_confident_labels_bad_inputs(kwargs, error, match):
    with pytest.raises(error, match=match):
        confident_labels(torch.rand(1, 2, 1, 4), **kwargs)
    with pytest.raises(ValueError, match=r"\(B, D, H, W\)"):
        confident_labels(torch.rand(2, 1, 4))


# ---------------------------------------------------------------- feature_distance_loss


@pytest.mark.parametrize("radius,window,background", [(2, "square", 0), (5, "square", 0),
                                                      (2, "disk", 1), (1, "square", 2)])
def test_feature_distance_against_loops(radius, window, background):
    features, labels, *_ = _inputs()
    got = feature_distance_loss(features, labels, radius=radius, window=window,
                                background=background)
    want, counts = brute_feature_distance(features, labels, radius, window, background)
    assert min(counts) > 0
    assert_value_and_grad(got, want, features)


def test_feature_distance_with_confident_labels():
    features, _, _, logits, valid = _inputs(2)
    labels = confident_labels((logits * 5).softmax(1), gamma=0.9, valid=valid)
    got = feature_distance_loss(features, labels, radius=2)
    want, counts = brute_feature_distance(features, labels, 2)
    assert min(counts) > 0
    assert_value_and_grad(got, want, features)


def test_feature_distance_three_way_balancing_by_hand():
    # one row, labels bg bg fg fg, d = 2 (second channel constant): distances / d
    features = torch.tensor([[[[0.0, 2.0, 6.0, 12.0]], [[5.0, 5.0, 5.0, 5.0]]]],
                            dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[[0, 0, 1, 1]]])
    # radius 3 covers the row: A_bg+ = {(0,1), (1,0)}, A_fg+ = {(2,3), (3,2)},
    # A- = the 8 ordered pairs across, at distances (6-0, 12-0, 6-2, 12-2) / 2 twice
    push = [-math.log(1 - math.exp(-x)) for x in (3.0, 6.0, 2.0, 5.0)]
    want = 1.0 + 3.0 + 2 * sum(push) * 2 / 8
    got = feature_distance_loss(features, labels, radius=3)
    assert got.item() == pytest.approx(want, rel=1e-12)
    ref, counts = brute_feature_distance(features, labels, 3)
    assert counts == [2, 2, 8]
    assert_value_and_grad(got, ref, features)
    # radius 1: one pair of each kind each way, the same weights
    got = feature_distance_loss(features, labels, radius=1)
    assert got.item() == pytest.approx(1.0 + 3.0 - 2 * math.log(1 - math.exp(-2.0)), rel=1e-12)
    # two foreground classes share A_fg+; 1 vs 2 is an A- pair
    labels = torch.tensor([[[1, 1, 2, 2]]])
    got = feature_distance_loss(features, labels, radius=3)
    assert got.item() == pytest.approx(0.0 + (1.0 + 3.0) / 2 + 2 * sum(push) * 2 / 8,
                                       rel=1e-12)


def test_feature_distance_empty_sets():
    features, *_ = _inputs(3)
    labels = torch.full((2, 5, 6), 255)
    loss = feature_distance_loss(features, labels)
    assert loss.item() == 0 and loss.requires_grad
    (grad,) = torch.autograd.grad(loss, features)
    assert (grad == 0).all()
    # only background labels: A_fg+ and A- are empty, the loss is the A_bg+ mean
    labels = torch.zeros(2, 5, 6, dtype=torch.long)
    labels[:, :2] = 255
    got = feature_distance_loss(features, labels, radius=2)
    want, counts = brute_feature_distance(features, labels, 2)
    assert counts[0] > 0 and counts[1:] == [0, 0]
    assert_value_and_grad(got, want, features)
    # a 1 x 1 grid has no pairs at all
    single = features[:1, :, :1, :1]
    loss = feature_distance_loss(single, torch.zeros(1, 1, 1, dtype=torch.long))
    assert loss.item() == 0 and loss.requires_grad


def test_feature_distance_identical_features_finite():
    features = torch.ones(1, 4, 1, 2, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[[0, 1]]])
    loss = feature_distance_loss(features, labels, radius=1)
    assert math.isfinite(loss.item())
    assert loss.item() == pytest.approx(2 * -math.log(-math.expm1(-MIN_DISTANCE)), rel=1e-9)
    (grad,) = torch.autograd.grad(loss, features)
    assert torch.isfinite(grad).all()
    # float32 too
    loss = feature_distance_loss(features.detach().float().requires_grad_(), labels, radius=1)
    assert math.isfinite(loss.item()) and loss.item() > 20


def test_feature_distance_bad_inputs():
    features, labels, *_ = _inputs()
    with pytest.raises(ValueError, match=r"\(B, D, H, W\)"):
        feature_distance_loss(features[0], labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        feature_distance_loss(features, labels[:, :4])
    with pytest.raises(TypeError, match="integer"):
        feature_distance_loss(features, labels.double())
    with pytest.raises(TypeError, match="floating"):
        feature_distance_loss(features.detach().long(), labels)
    with pytest.raises(ValueError, match="window"):
        feature_distance_loss(features, labels, window="ring")
    with pytest.raises(ValueError, match="radius"):
        feature_distance_loss(features, labels, radius=0)


# ---------------------------------------------------------------- feature_regularized_loss


def _static_kernel(image, radius, sigma_xy=1.5, sigma_rgb=0.8):
    return window_kernel([(image, sigma_rgb)], radius=radius, sigma_xy=sigma_xy)


@pytest.mark.parametrize("radius", [2, 5])
@pytest.mark.parametrize("use_mask,use_valid", [(False, False), (True, False), (False, True),
                                                (True, True)])
def test_feature_regularized_against_loops(radius, use_mask, use_valid):
    features, labels, image, _, valid = _inputs(4)
    mask = (labels != 255) if use_mask else None
    valid = valid if use_valid else None
    got = feature_regularized_loss(features, _static_kernel(image, radius), radius=radius,
                                   mask=mask, valid=valid)
    want = brute_feature_regularized(features, image, 1.5, 0.8, radius, mask, valid)
    assert_value_and_grad(got, want, features)


def test_feature_regularized_ignores_the_centre_plane():
    features, _, image, _, _ = _inputs(5)
    kernel = _static_kernel(image, 2)
    kernel[:, kernel.size(1) // 2] = 7.0  # the self pair never counts
    for mask in (None, torch.ones(2, 5, 6, dtype=torch.bool)):
        got = feature_regularized_loss(features, kernel, radius=2, mask=mask)
        want = brute_feature_regularized(features, image, 1.5, 0.8, 2)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_feature_regularized_empty_mask():
    features, _, image, _, _ = _inputs(6)
    empty = torch.zeros(2, 5, 6, dtype=torch.bool)
    for kwargs in ({"mask": empty}, {"valid": empty}):
        loss = feature_regularized_loss(features, _static_kernel(image, 2), radius=2, **kwargs)
        assert loss.item() == 0 and loss.requires_grad
        (grad,) = torch.autograd.grad(loss, features)
        assert (grad == 0).all()


def test_feature_regularized_bad_inputs():
    features, _, image, _, _ = _inputs()
    kernel = _static_kernel(image, 2)
    with pytest.raises(ValueError, match="kernel has 25 planes"):
        feature_regularized_loss(features, kernel, radius=1)
    with pytest.raises(ValueError, match="kernel must have shape"):
        feature_regularized_loss(features, kernel[:, :, :4], radius=2)
    with pytest.raises(ValueError, match=r"\(B, D, H, W\)"):
        feature_regularized_loss(features[0], kernel, radius=2)
    with pytest.raises(ValueError, match="mask must have shape"):
        feature_regularized_loss(features, kernel, radius=2,
                                 mask=torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        feature_regularized_loss(features, kernel, radius=2, valid=torch.ones(2, 5, 6))


# ---------------------------------------------------------------- dfr_loss


@pytest.mark.parametrize("radius", [2, 5])
@pytest.mark.parametrize("with_features,use_valid", [(False, False), (True, False),
                                                     (True, True)])
def test_dfr_against_loops(radius, with_features, use_valid):
    features, _, image, logits, valid = _inputs(7)
    features = features * 3  # distances comparable to sigma_feat below
    valid = valid if use_valid else None
    probs = logits.softmax(1)
    got = dfr_loss(probs, image, features if with_features else None, radius=radius,
                   sigma_xy=2.0, sigma_rgb=1.2, sigma_feat=4.0, valid=valid)
    want = brute_dfr(probs, image, features if with_features else None, 2.0, 1.2, 4.0, radius,
                     valid)
    assert_value_and_grad(got, want, logits)
    if with_features:
        # the kernel's features are constants: no gradient reaches them
        assert torch.autograd.grad(got, features, allow_unused=True) == (None,)
        without = dfr_loss(probs, image, radius=radius, sigma_xy=2.0, sigma_rgb=1.2,
                           valid=valid)
        assert without.item() > got.item()  # the feature term only lowers the kernel


def test_dfr_is_potts_energy_of_window_kernel():
    features, _, image, logits, _ = _inputs(8)
    probs = logits.softmax(1)
    got = dfr_loss(probs, image, features)  # the defaults: r 5, 6, 0.5, 50
    kernel = window_kernel([(image, 0.5), (features.detach(), 50.0)], radius=5, sigma_xy=6.0)
    torch.testing.assert_close(got, potts_energy(probs, kernel, radius=5), rtol=0, atol=0)


def test_dfr_bad_inputs():
    features, _, image, logits, valid = _inputs()
    probs = logits.softmax(1)
    with pytest.raises(ValueError, match="3 channels"):
        dfr_loss(probs, image[:, :2])
    with pytest.raises(ValueError, match="image has shape"):
        dfr_loss(probs, image[:, :, :4])
    with pytest.raises(ValueError, match="features has shape"):
        dfr_loss(probs, image, features[:1])
    with pytest.raises(ValueError, match="sigma_feat"):
        dfr_loss(probs, image, features, sigma_feat=0)
    with pytest.raises(ValueError, match="sigma_rgb"):
        dfr_loss(probs, image, sigma_rgb=-1)
    with pytest.raises(ValueError, match="valid must have shape"):
        dfr_loss(probs, image, valid=valid[:1])
    with pytest.raises(ValueError, match=r"\(B, D, H, W\)"):
        dfr_loss(probs[0], image)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_window_losses_agree_on_cuda():
    """The window losses are tensor shifts: the same values and gradients on CUDA."""
    from graphseg.losses import window_kernel

    torch.manual_seed(0)
    features = torch.rand(2, 8, 12, 14, dtype=torch.float64, requires_grad=True)
    probs = torch.rand(2, 3, 12, 14, dtype=torch.float64).softmax(dim=1).requires_grad_()
    image = torch.rand(2, 3, 12, 14, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 12, 14))
    labels[:, ::3] = 255

    def losses(device):
        f, p = features.to(device), probs.to(device)
        kernel = window_kernel([(image.to(device), 0.5)], radius=2, sigma_xy=6.0)
        out = torch.stack([
            feature_distance_loss(f, labels.to(device), radius=2),
            feature_regularized_loss(f, kernel, radius=2, mask=labels.to(device) != 255),
            dfr_loss(p, image.to(device), f, radius=2)])
        grads = torch.autograd.grad(out.sum(), (features, probs))
        return out.detach().cpu(), [g.cpu() for g in grads]

    (cpu, cpu_grads), (gpu, gpu_grads) = losses("cpu"), losses("cuda")
    assert torch.allclose(cpu, gpu, atol=1e-10)
    for a, b in zip(cpu_grads, gpu_grads):
        assert torch.allclose(a, b, atol=1e-10)
