import math

import pytest
import torch
import torch.nn.functional as F

from graphseg.losses import (
    balanced_cross_entropy,
    box_points,
    boxes_to_grid,
    consistency_check,
    gaussian_kernel,
    kernel_matrix,
    mp_loss,
    regularized_loss,
)


def test_balanced_cross_entropy_values_and_errors():
    logits = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 0, 1, 2, 255])
    nll = -logits.log_softmax(-1)
    expected = (nll[0, 0] + nll[1, 0] + nll[2, 0]) / 3 + (nll[3, 1] + nll[4, 2]) / 2
    assert torch.allclose(balanced_cross_entropy(logits, labels), expected)
    plain = (nll[0, 0] + nll[1, 0] + nll[2, 0] + nll[3, 1] + nll[4, 2]) / 5
    assert torch.allclose(balanced_cross_entropy(logits, labels, balanced=False), plain)
    only_fg = torch.tensor([255, 255, 1, 1, 2, 255])
    assert torch.allclose(balanced_cross_entropy(logits, only_fg),
                          (nll[2, 1] + nll[3, 1] + nll[4, 2]) / 3)
    with pytest.raises(ValueError, match="no labelled node"):
        balanced_cross_entropy(logits, torch.full((6,), 255))
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\)"):
        balanced_cross_entropy(logits, labels[:5])


def brute_force_kernel(colour, radius, sigma_xy, sigma_rgb):
    _, h, w = colour.shape
    pairs = {}
    for y in range(h):
        for x in range(w):
            for yy in range(h):
                for xx in range(w):
                    dy, dx = yy - y, xx - x
                    if (dy, dx) == (0, 0) or max(abs(dy), abs(dx)) > radius:
                        continue
                    c = (colour[:, y, x] - colour[:, yy, xx]).square().sum()
                    pairs[(y * w + x, yy * w + xx)] = math.exp(
                        -(dy * dy + dx * dx) / (2 * sigma_xy ** 2) - c / (2 * sigma_rgb ** 2))
    return pairs


def test_gaussian_kernel_and_regularized_loss_against_all_pairs():
    torch.manual_seed(0)
    colour = torch.rand(3, 4, 5, dtype=torch.float64)
    kernel = gaussian_kernel(colour, radius=2, sigma_xy=1.5, sigma_rgb=0.3)
    pairs = brute_force_kernel(colour, 2, 1.5, 0.3)
    assert math.isclose(float(kernel.sum()), sum(pairs.values()), rel_tol=1e-12)

    logits = torch.randn(20, 3, dtype=torch.float64, requires_grad=True)
    probs = logits.softmax(-1)
    loss = regularized_loss(probs, kernel, radius=2)
    # different classes at the two ends: sum over i != j of O^i(a) O^j(b)
    expected = sum(g * (probs[a].sum() * probs[b].sum() - (probs[a] * probs[b]).sum())
                   for (a, b), g in pairs.items()) / 20
    assert torch.allclose(loss, expected)
    grad, = torch.autograd.grad(loss, logits, retain_graph=True)
    grad_expected, = torch.autograd.grad(expected, logits)
    assert torch.allclose(grad, grad_expected)
    # a labelling that is constant over the image costs nothing
    constant = F.one_hot(torch.zeros(20, dtype=torch.long), 3).double()
    assert float(regularized_loss(constant, kernel, radius=2)) == 0.0
    with pytest.raises(ValueError, match="kernel has 25 planes"):
        regularized_loss(probs, kernel, radius=1)


def test_box_points_mp_loss_and_consistency_against_loops():
    torch.manual_seed(1)
    h, w = 5, 6
    logits = torch.randn(h * w, 3, dtype=torch.float64, requires_grad=True)
    features = torch.randn(h * w, 4, dtype=torch.float64, requires_grad=True)
    boxes = boxes_to_grid([[1, 10, 0, 40, 30], [2, 0, 20, 20, 50]], (50, 60), (h, w))
    assert boxes.tolist() == [[1, 1, 0, 4, 3], [2, 0, 2, 2, 5]]
    points = box_points(logits.softmax(-1), boxes, (h, w))
    probs = logits.softmax(-1).view(h, w, 3)
    nll, dist, pairs = [], 0.0, 0
    for (cls, x1, y1, x2, y2), got in zip(boxes.tolist(), points):
        expected = [y * w + max(range(x1, x2), key=lambda x: probs[y, x, cls])
                    for y in range(y1, y2)]
        expected += [max(range(y1, y2), key=lambda y: probs[y, x, cls]) * w + x
                     for x in range(x1, x2)]
        assert got.tolist() == expected
        nll += [-logits.log_softmax(-1)[k, cls] for k in expected]
        for m in expected:
            for n in expected:
                if m != n:
                    dist = dist + 1 - F.cosine_similarity(features[m], features[n], dim=0)
                    pairs += 1
    reference = torch.stack(nll).mean() + dist / pairs
    loss = mp_loss(logits, features, boxes, points)
    assert torch.allclose(loss, reference)
    for ours, theirs in zip(torch.autograd.grad(loss, (logits, features)),
                            torch.autograd.grad(reference, (logits, features))):
        assert torch.allclose(ours, theirs)

    labels = torch.full((h * w,), 255)
    labels[: h * w // 2] = 1
    labels[-4:] = 2
    checked = consistency_check(labels, features.detach(), boxes, points, (h, w))
    expected = labels.clone()
    for (cls, x1, y1, x2, y2), nodes in zip(boxes.tolist(), points):
        prototype = features.detach()[nodes].mean(0)
        for y in range(y1, y2):
            for x in range(x1, x2):
                i = y * w + x
                cos = F.cosine_similarity(features.detach()[i], prototype, dim=0)
                if labels[i] == cls and cos < 0:
                    expected[i] = 255
    assert torch.equal(checked, expected)
    assert not torch.equal(checked, labels)  # the case exercises a removal
    assert mp_loss(logits, features, boxes[:0], []) == 0


def test_kernel_matrix_gives_the_same_regularized_loss_and_gradient():
    torch.manual_seed(1)
    colour = torch.rand(3, 6, 7, dtype=torch.float64)
    planes = gaussian_kernel(colour, radius=2, sigma_xy=1.5, sigma_rgb=0.3)
    matrix = kernel_matrix(planes, radius=2)
    pairs = brute_force_kernel(colour, 2, 1.5, 0.3)
    dense = matrix.to_dense()
    assert matrix.shape == (42, 42) and dense.diagonal().abs().sum() == 0
    for (a, b), g in pairs.items():
        assert math.isclose(float(dense[a, b]), g, rel_tol=1e-12)
    logits = torch.randn(42, 3, dtype=torch.float64, requires_grad=True)
    for probs in (logits.softmax(-1), logits.sigmoid()):  # the gradient needs no sum to 1
        by_planes = regularized_loss(probs, planes, radius=2)
        by_matrix = regularized_loss(probs, matrix, radius=2)
        assert torch.allclose(by_planes, by_matrix)
        grads = [torch.autograd.grad(v, logits, retain_graph=True)[0]
                 for v in (by_planes, by_matrix)]
        assert torch.allclose(*grads)
    lopsided = planes.clone()
    lopsided[0, 3, 3] += 0.5
    with pytest.raises(ValueError, match="not symmetric"):
        kernel_matrix(lopsided, radius=2)
    with pytest.raises(ValueError, match=r"kernel must have shape \(9, H, W\)"):
        kernel_matrix(planes, radius=1)
    with pytest.raises(ValueError, match=r"probs must have shape \(42, C\)"):
        regularized_loss(logits[:5], matrix)
