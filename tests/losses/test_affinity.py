"""The affinity loss of thesis section 3.3.3 (Eq. 3.6-3.9) against brute-force loops over
pixel pairs: labels, values and gradients."""
import math

import numpy as np
import pytest
import torch

from graphseg.graph import window_offsets
from graphseg.losses import affinity_labels, affinity_loss, affinity_pairs, pair_distances

# ---------------------------------------------------------------- brute force references


def brute_pairs(seeds, radius, window):
    """Ordered labelled pairs (b, i, j, label) within the window, i != j."""
    b, h, w = seeds.shape
    out = {}
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                for k, (dy, dx) in enumerate(window_offsets(radius, window).tolist()):
                    yy, xx = y + dy, x + dx
                    if (dy, dx) == (0, 0) or not (0 <= yy < h and 0 <= xx < w):
                        continue
                    a, c = int(seeds[bi, y, x]), int(seeds[bi, yy, xx])
                    if a == 255 or c == 255:
                        continue
                    kind = "neg" if a != c else ("bg_pos" if a == 0 else "fg_pos")
                    out[(bi, k, y, x)] = kind
    return out


def brute_loss(aff, seeds, colour, radius, window, weighting, reg_weight=3.0, sigma_xy=6.0,
               sigma_rgb=0.1, eps=1e-5, reg_norm="nodes"):
    b, d, h, w = aff.shape
    sums = {"bg_pos": [], "fg_pos": [], "neg": []}
    ar, mass = aff.new_zeros(()), 0.0
    offsets = window_offsets(radius, window).tolist()
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                for dy, dx in offsets:
                    yy, xx = y + dy, x + dx
                    if (dy, dx) == (0, 0) or not (0 <= yy < h and 0 <= xx < w):
                        continue
                    dist = (aff[bi, :, y, x] - aff[bi, :, yy, xx]).abs().sum() / d
                    g = math.exp(-(dy * dy + dx * dx) / (2 * sigma_xy ** 2)
                                 - float((colour[bi, :, y, x] - colour[bi, :, yy, xx]).square()
                                         .sum()) / (2 * sigma_rgb ** 2))
                    ar, mass = ar + g * dist, mass + g
                    a, c = int(seeds[bi, y, x]), int(seeds[bi, yy, xx])
                    if a == 255 or c == 255:
                        continue
                    if a != c:
                        sums["neg"].append(-torch.log(1 - torch.exp(-dist) + eps))
                    else:
                        sums["bg_pos" if a == 0 else "fg_pos"].append(dist)
    mean = {k: torch.stack(v).mean() if v else aff.new_zeros(()) for k, v in sums.items()}
    if weighting == "release":
        ac = mean["bg_pos"] / 4 + mean["fg_pos"] / 4 + mean["neg"] / 2
    else:
        pos = sums["bg_pos"] + sums["fg_pos"]
        ac = (torch.stack(pos).mean() if pos else 0) + mean["neg"]
    ar = ar / (b * h * w) if reg_norm == "nodes" else ar / mass
    return ac + reg_weight * ar, mean


def random_case(seed=0, b=2, d=5, h=5, w=6, double=True):
    g = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    aff = torch.randn(b, d, h, w, generator=g, dtype=dtype)
    seeds = torch.randint(0, 4, (b, h, w), generator=g)
    seeds[seeds == 3] = 255
    seeds[1, 1] = 2  # a second foreground class
    colour = torch.rand(b, 3, h, w, generator=g, dtype=dtype) * 0.3
    return aff, seeds, colour


# ---------------------------------------------------------------- labels and loss


@pytest.mark.parametrize("window", ["disk", "square"])
def test_affinity_labels_match_brute_force(window):
    _, seeds, _ = random_case()
    labels = affinity_labels(seeds, radius=2, window=window)
    pairs = affinity_pairs(seeds, radius=2, window=window)
    assert labels.shape == (2, len(window_offsets(2, window)), 5, 6)
    expected = brute_pairs(seeds, 2, window)
    for index in np.ndindex(*labels.shape):
        kind = expected.get(index)
        assert int(labels[index]) == {None: 255, "neg": 0}.get(kind, 1), index
        for name in ("bg_pos", "fg_pos", "neg"):
            assert bool(getattr(pairs, name)[index]) == (kind == name), (index, name)
    assert len(expected) > 20 and {"bg_pos", "fg_pos", "neg"} <= set(expected.values())


@pytest.mark.parametrize("weighting,window,reg_norm", [
    ("release", "disk", "nodes"), ("thesis", "disk", "nodes"), ("release", "square", "nodes"),
    ("thesis", "square", "kernel"), ("release", "disk", "kernel")])
def test_affinity_loss_and_gradient_match_brute_force(weighting, window, reg_norm):
    aff, seeds, colour = random_case(seed=1)
    aff_a = aff.clone().requires_grad_(True)
    loss, parts = affinity_loss(aff_a, seeds, colour, radius=2, window=window,
                                weighting=weighting, reg_norm=reg_norm)
    loss.backward()
    aff_b = aff.clone().requires_grad_(True)
    ref, means = brute_loss(aff_b, seeds, colour, 2, window, weighting, reg_norm=reg_norm)
    ref.backward()
    assert torch.allclose(loss, ref, rtol=1e-9, atol=1e-12)
    assert torch.allclose(aff_a.grad, aff_b.grad, rtol=1e-7, atol=1e-10)
    for name in ("bg_pos", "fg_pos", "neg"):
        assert parts[name] == pytest.approx(float(means[name].detach()), rel=1e-9)


def test_regularised_term_alone_and_pair_distances():
    aff, seeds, colour = random_case(seed=2)
    _, parts = affinity_loss(aff, seeds, colour, radius=2, reg_weight=0.0)
    ref, _ = brute_loss(aff, seeds, colour, 2, "disk", "release", reg_weight=1.0)
    ac, _ = brute_loss(aff, seeds, colour, 2, "disk", "release", reg_weight=0.0)
    assert parts["ar"] == pytest.approx(float(ref - ac), rel=1e-9)
    assert parts["loss"] == pytest.approx(parts["ac"], rel=1e-12)
    dist = pair_distances(aff, radius=1, window="square")
    planes = torch.stack([torch.exp(-dist[b]) for b in range(2)])
    from graphseg.graph import grid_affinity
    for b in range(2):  # exp(-distance) is Eq. 3.8, as the graph code computes it
        assert torch.allclose(planes[b] * (grid_affinity(aff[b], 1) > 0),
                              grid_affinity(aff[b], 1), atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: pair_distances(x, 1), (aff[:1, :2, :3, :4]
                                                                     .clone().requires_grad_(),))


def test_affinity_loss_rejects_bad_inputs():
    aff, seeds, colour = random_case(double=False)
    with pytest.raises(ValueError, match="labels has shape"):
        affinity_loss(aff, seeds[:, :4], colour)
    with pytest.raises(ValueError, match="colour must have shape"):
        affinity_loss(aff, seeds, colour[:, :, :4])
    with pytest.raises(ValueError, match="no labelled node"):
        affinity_loss(aff, torch.full_like(seeds, 255), colour)
    bad = aff.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="affinity contains 1 non-finite"):
        affinity_loss(bad, seeds, colour)
    with pytest.raises(TypeError, match="labels must hold integer"):
        affinity_loss(aff, seeds.float(), colour)
    with pytest.raises(ValueError, match="weighting"):
        affinity_loss(aff, seeds, colour, weighting="paper")


# ---------------------------------------------------------------- model and graph
