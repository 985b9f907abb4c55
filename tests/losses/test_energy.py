"""The dense energy loss of RRM (thesis Eq. 2.17-2.21) against brute-force double loops over
pixel pairs: kernel, energy, soft filter, values and gradients; window == all pairs when the
window covers the grid.  ``python tests/losses/test_energy.py`` prints the window-vs-dense
numbers of the ``graphseg.losses.energy`` docstring."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from graphseg.graph import window_offsets
from graphseg.losses import (
    dense_energy_loss,
    dense_potts_energy_reference,
    potts_energy,
    soft_filter,
    window_kernel,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "grabcut"

# ---------------------------------------------------------------- brute force references


def brute_kernel(guides, sigma_xy, radius=None):
    """{(b, i, j): G(i, j)} over ordered pairs i != j (within Chebyshev ``radius``)."""
    b, _, h, w = guides[0][0].shape
    out = {}
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                for yy in range(h):
                    for xx in range(w):
                        dy, dx = yy - y, xx - x
                        if (dy, dx) == (0, 0):
                            continue
                        if radius is not None and max(abs(dy), abs(dx)) > radius:
                            continue
                        e = (dy * dy + dx * dx) / (2 * sigma_xy ** 2)
                        for g, s in guides:
                            e += float((g[bi, :, y, x] - g[bi, :, yy, xx]).square().sum()) \
                                / (2 * s ** 2)
                        out[(bi, y * w + x, yy * w + xx)] = math.exp(-e)
    return out


def brute_energy(probs, pairs, weight=None, mask=None):
    """Eq. 2.17 literally (sum over c_a != c_b) and Eq. 2.20, per pixel."""
    b, c, h, w = probs.shape
    p = probs.reshape(b, c, -1)
    total = probs.new_zeros(())
    for (bi, i, j), g in pairs.items():
        if mask is not None and not (mask[bi].reshape(-1)[i] and mask[bi].reshape(-1)[j]):
            continue
        e = sum(g * p[bi, ca, i] * p[bi, cb, j] for ca in range(c) for cb in range(c)
                if ca != cb)
        s = 1.0 if weight is None else weight[bi].reshape(-1)[i]
        total = total + s * e
    n = b * h * w if mask is None else int(mask.sum())
    return total / n


def _inputs(seed=0, b=2, c=3, h=4, w=5):
    torch.manual_seed(seed)
    logits = torch.randn(b, c, h, w, dtype=torch.float64, requires_grad=True)
    rgb = torch.rand(b, 3, h, w, dtype=torch.float64) * 255
    feat = torch.randn(b, 2, h, w, dtype=torch.float64)
    return logits, rgb, feat


# ---------------------------------------------------------------- window_kernel


@pytest.mark.parametrize("window", ["square", "disk"])
def test_window_kernel_against_loops_two_guides(window):
    _, rgb, feat = _inputs()
    guides = [(rgb, 40.0), (feat, 0.7)]
    kernel = window_kernel(guides, radius=2, sigma_xy=1.5, window=window)
    offsets = window_offsets(2, window).tolist()
    pairs = brute_kernel(guides, 1.5)
    b, _, h, w = rgb.shape
    assert kernel.shape == (b, len(offsets), h, w)
    for bi in range(b):
        for k, (dy, dx) in enumerate(offsets):
            for y in range(h):
                for x in range(w):
                    yy, xx = y + dy, x + dx
                    inside = 0 <= yy < h and 0 <= xx < w and (dy, dx) != (0, 0)
                    expected = pairs[(bi, y * w + x, yy * w + xx)] if inside else 0.0
                    assert math.isclose(float(kernel[bi, k, y, x]), expected, rel_tol=1e-12,
                                        abs_tol=1e-300)
    # the second guide matters
    alone = window_kernel(guides[:1], radius=2, sigma_xy=1.5, window=window)
    assert not torch.allclose(alone, kernel)


def test_window_kernel_errors():
    _, rgb, feat = _inputs()
    with pytest.raises(ValueError, match="guides is empty"):
        window_kernel([], radius=1, sigma_xy=1.0)
    with pytest.raises(ValueError, match=r"guides\[1\] has shape"):
        window_kernel([(rgb, 1.0), (feat[:, :, :3], 1.0)], radius=1, sigma_xy=1.0)
    with pytest.raises(ValueError, match="sigma_xy must be > 0"):
        window_kernel([(rgb, 1.0)], radius=1, sigma_xy=0.0)
    with pytest.raises(ValueError, match=r"guides\[0\] sigma must be > 0"):
        window_kernel([(rgb, -1.0)], radius=1, sigma_xy=1.0)
    with pytest.raises(ValueError, match="window must be one of"):
        window_kernel([(rgb, 1.0)], radius=1, sigma_xy=1.0, window="round")


# ---------------------------------------------------------------- potts_energy


def test_potts_energy_weighted_masked_against_loops_values_and_gradients():
    logits, rgb, feat = _inputs(1)
    probs = logits.softmax(1)
    guides = [(rgb, 60.0), (feat, 1.0)]
    kernel = window_kernel(guides, radius=2, sigma_xy=2.0)
    weight = torch.rand(2, 4, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, 4, 5) > 0.25
    assert not bool(mask.all())
    loss = potts_energy(probs, kernel, radius=2, weight=weight, mask=mask)
    expected = brute_energy(probs, brute_kernel(guides, 2.0, radius=2), weight, mask)
    assert torch.allclose(loss, expected, rtol=1e-12)
    ours = torch.autograd.grad(loss, (logits, weight), retain_graph=True)
    theirs = torch.autograd.grad(expected, (logits, weight))
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)
    # the weight multiplies, the mask removes pixels at either end of a pair
    assert not torch.allclose(loss, potts_energy(probs, kernel, radius=2, mask=mask))
    assert not torch.allclose(loss, potts_energy(probs, kernel, radius=2, weight=weight))


def test_potts_energy_gradcheck_and_self_pair_ignored():
    torch.manual_seed(2)
    logits = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    rgb = torch.rand(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(1, 3, 3, dtype=torch.float64, requires_grad=True)

    def f(lg, im, wt):
        kernel = window_kernel([(im, 0.5)], radius=1, sigma_xy=1.0)
        return potts_energy(lg.softmax(1), kernel, radius=1, weight=wt)

    assert torch.autograd.gradcheck(f, (logits, rgb, weight))
    # a kernel with mass on the self offset: that plane is not used
    kernel = window_kernel([(rgb.detach(), 0.5)], radius=1, sigma_xy=1.0)
    poisoned = kernel.clone()
    poisoned[:, 4] = 7.0
    probs = logits.detach().softmax(1)
    assert torch.equal(potts_energy(probs, kernel, radius=1),
                       potts_energy(probs, poisoned, radius=1))


def test_potts_energy_constant_labelling_is_free_and_errors():
    _, rgb, _ = _inputs()
    kernel = window_kernel([(rgb, 30.0)], radius=1, sigma_xy=1.0)
    constant = F.one_hot(torch.ones(2, 4, 5, dtype=torch.long), 3).permute(0, 3, 1, 2).double()
    assert float(potts_energy(constant, kernel, radius=1)) == 0.0
    with pytest.raises(ValueError, match="kernel has 9 planes but a radius-2 square window"):
        potts_energy(constant, kernel, radius=2)
    with pytest.raises(ValueError, match="kernel must have shape"):
        potts_energy(constant[:1], kernel, radius=1)
    with pytest.raises(ValueError, match="weight must have shape"):
        potts_energy(constant, kernel, radius=1, weight=torch.ones(2, 4, 4, dtype=torch.double))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        potts_energy(constant, kernel, radius=1, mask=torch.ones(2, 4, 5))


@pytest.mark.parametrize("window", ["square", "disk"])
def test_window_covering_the_grid_equals_all_pairs(window):
    logits, rgb, feat = _inputs(3, h=5, w=6)
    probs = logits.softmax(1)
    guides = [(rgb, 50.0), (feat, 1.5)]
    weight = torch.rand(2, 5, 6, dtype=torch.float64)
    mask = torch.rand(2, 5, 6) > 0.2
    # a disk must reach the far corner: radius >= the grid's diagonal
    radius = 5 if window == "square" else 8
    kernel = window_kernel(guides, radius=radius, sigma_xy=3.0, window=window)
    window_e = potts_energy(probs, kernel, radius=radius, window=window, weight=weight,
                            mask=mask)
    dense_e = dense_potts_energy_reference(probs, guides, sigma_xy=3.0, weight=weight,
                                           mask=mask)
    assert torch.allclose(window_e, dense_e, rtol=1e-12)
    ours, = torch.autograd.grad(window_e, logits, retain_graph=True)
    theirs, = torch.autograd.grad(dense_e, logits, retain_graph=True)
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-14)
    # a smaller window sees a subset of the (non-negative) pair terms
    small = window_kernel(guides, radius=1, sigma_xy=3.0, window=window)
    local = potts_energy(probs, small, radius=1, window=window, weight=weight, mask=mask)
    assert 0 < float(local.detach()) < float(dense_e.detach())
    # and the reference equals the brute-force loops
    assert torch.allclose(dense_e, brute_energy(probs, brute_kernel(guides, 3.0), weight, mask))


# ---------------------------------------------------------------- soft filter


def test_soft_filter_eq_2_21():
    logits, _, _ = _inputs(4)
    probs = logits.softmax(1)
    values = probs.detach()
    labels = torch.full((2, 4, 5), 255)
    labels[0, 1, 2], labels[1, 3, 4], labels[1, 0, 0] = 0, 2, 1
    gate = soft_filter(probs, labels)
    for b in range(2):
        for y in range(4):
            for x in range(5):
                expected = 1.0 if labels[b, y, x] == 255 else 1 - float(values[b, :, y, x].max())
                assert math.isclose(float(gate[b, y, x]), expected, rel_tol=1e-12)
    assert not gate.requires_grad
    live = soft_filter(probs, labels, detach=False)
    assert live.requires_grad and torch.equal(live.detach(), gate)
    with pytest.raises(TypeError, match="labels must hold integer"):
        soft_filter(probs, labels.float())


# ---------------------------------------------------------------- dense_energy_loss


def test_dense_energy_loss_is_the_composition_at_the_working_resolution():
    torch.manual_seed(5)
    logits = torch.randn(2, 3, 16, 24, dtype=torch.float64, requires_grad=True)
    probs = logits.softmax(1)
    image = torch.rand(2, 3, 16, 24, dtype=torch.float64) * 255
    labels = torch.full((2, 16, 24), 255)
    labels[:, :4, :8] = 0
    labels[1, 10:, 12:] = 2
    valid = torch.ones(2, 16, 24, dtype=torch.bool)
    valid[1, :, 20:] = False
    loss = dense_energy_loss(probs, image, labels=labels, valid=valid, sigma_xy=20.0,
                             sigma_rgb=30.0, scale=0.25, radius=2, normalize=False)
    # by hand: 4 x 6 grid, sigma_xy 20 * 1/4 = 5 grid pixels, cells averaged
    p4 = F.avg_pool2d(probs, 4)
    im4 = F.avg_pool2d(image, 4)
    lab4 = labels[:, ::4, ::4]
    val4 = valid[:, ::4, ::4]
    gate = torch.where(lab4 != 255, 1 - p4.amax(1), torch.ones_like(p4[:, 0])).detach()
    pairs = brute_kernel([(im4, 30.0)], 5.0, radius=2)
    expected = brute_energy(p4, pairs, gate, val4)
    assert torch.allclose(loss, expected, rtol=1e-12)
    ours, = torch.autograd.grad(loss, logits, retain_graph=True)
    theirs, = torch.autograd.grad(expected, logits)
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-14)
    # labels and valid both change the loss
    raw = dict(sigma_xy=20.0, sigma_rgb=30.0, scale=0.25, radius=2, normalize=False)
    assert not torch.allclose(loss, dense_energy_loss(probs, image, valid=valid, **raw))
    assert not torch.allclose(loss, dense_energy_loss(probs, image, labels=labels, **raw))
    # normalize: every pixel's kernel divided by its sum over the window (1/W of Eq. 2.18)
    mass = {}
    for (b, i, _), g in pairs.items():
        mass[b, i] = mass.get((b, i), 0.0) + g
    normalised = {(b, i, j): g / mass[b, i] for (b, i, j), g in pairs.items()}
    loss = dense_energy_loss(probs, image, labels=labels, valid=valid, sigma_xy=20.0,
                             sigma_rgb=30.0, scale=0.25, radius=2)
    assert torch.allclose(loss, brute_energy(p4, normalised, gate, val4), rtol=1e-12)


def test_dense_energy_loss_defaults_and_errors():
    torch.manual_seed(6)
    probs = torch.randn(1, 2, 64, 48).softmax(1)
    image = torch.rand(1, 3, 64, 48) * 255
    loss = dense_energy_loss(probs, image, normalize=False)
    # defaults: 1/8 -> 8 x 6 grid, sigma_xy 100 / 8, radius 10 covers it: all pairs
    p8, im8 = F.avg_pool2d(probs, 8), F.avg_pool2d(image, 8)
    exact = dense_potts_energy_reference(p8.double(), [(im8.double(), 15.0)], sigma_xy=12.5)
    assert math.isclose(float(loss), float(exact), rel_tol=1e-5)
    # normalised (the default), a per-pixel disagreement: below the worst case of 1
    assert 0 < float(dense_energy_loss(probs, image)) < 1 < float(loss)
    with pytest.raises(ValueError, match="image must have 3 channels"):
        dense_energy_loss(probs, image[:, :2])
    with pytest.raises(ValueError, match="scale must be in"):
        dense_energy_loss(probs, image, scale=2.0)
    with pytest.raises(ValueError, match="image has shape"):
        dense_energy_loss(probs, image[:, :, :32])
    with pytest.raises(ValueError, match="valid must have shape"):
        dense_energy_loss(probs, image, valid=torch.ones(1, 64, 47, dtype=torch.bool))


# ---------------------------------------------------------------- the docstring's numbers


def measure_window_error(path=DATA / "images" / "llama.jpg", crop=321, sigma_xy=100.0,
                         sigma_rgb=15.0, settings=((4, 5), (4, 10), (4, 20), (4, 40),
                                                   (8, 5), (8, 10), (8, 20))):
    """Rows (scale, grid, radius, kernel mass ratio, energy ratio, gradient cosine) of the
    square-window energy against the all-pairs energy on a centre crop of a GrabCut photo,
    for the ground-truth mask softened to 0.9 / 0.1; gradients with respect to the logits."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    mask = np.asarray(Image.open(path.parents[1] / "masks" / (path.stem + ".png"))) > 127
    h, w = mask.shape
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    image = torch.from_numpy(rgb[y0:y0 + crop, x0:x0 + crop]).permute(2, 0, 1)[None]
    fg = torch.from_numpy(mask[y0:y0 + crop, x0:x0 + crop]).double()[None, None]
    probs_full = torch.cat([0.9 - 0.8 * fg, 0.1 + 0.8 * fg], 1)
    rows = []
    for factor, radius in settings:
        size = crop // factor
        im = F.interpolate(image, size=(size, size), mode="area")
        # gradients with respect to the logits: what the network receives
        logits = F.interpolate(probs_full, size=(size, size), mode="area").log().requires_grad_()
        probs = logits.softmax(1)
        flat = torch.full_like(probs, 0.5)
        s_xy = sigma_xy * size / crop
        dense = dense_potts_energy_reference(probs, [(im, sigma_rgb)], sigma_xy=s_xy)
        g_dense, = torch.autograd.grad(dense, logits, retain_graph=True)
        kernel = window_kernel([(im, sigma_rgb)], radius=radius, sigma_xy=s_xy)
        local = potts_energy(probs, kernel, radius=radius)
        g_local, = torch.autograd.grad(local, logits)
        mass = potts_energy(flat, kernel, radius=radius) / dense_potts_energy_reference(
            flat, [(im, sigma_rgb)], sigma_xy=s_xy)
        cos = F.cosine_similarity(g_local.reshape(-1), g_dense.reshape(-1), dim=0)
        ratio = float(local.detach() / dense.detach())
        rows.append((f"1/{factor}", size, radius, float(mass), ratio, float(cos)))
    return rows


if __name__ == "__main__":
    print("scale grid radius kernel E_ratio grad_cos")
    for row in measure_window_error():
        print("{} {} {} {:.3f} {:.3f} {:.3f}".format(*row))
