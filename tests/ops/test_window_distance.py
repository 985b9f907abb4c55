"""window_l1_distance against a plain loop over pixels and offsets: values, gradients
(gradcheck and a naive autograd reference), mirror and non-mirror offsets, bad inputs."""
import pytest
import torch

from graphseg.graph import window_offsets
from graphseg.ops import window_l1_distance


def loop_distance(features, offsets):
    """out[b, k, y, x] = sum_c |F[b, c, y, x] - F[b, c, y + dy, x + dx]| by loops."""
    b, _, h, w = features.shape
    out = torch.zeros(b, len(offsets), h, w, dtype=features.dtype)
    for bi in range(b):
        for k, (dy, dx) in enumerate(offsets):
            for y in range(h):
                for x in range(w):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w:
                        out[bi, k, y, x] = (features[bi, :, y, x]
                                            - features[bi, :, yy, xx]).abs().sum()
    return out


def naive_distance(features, offsets):
    """The same with autograd and a stack of loop values (keeps the graph)."""
    b, _, h, w = features.shape
    planes = []
    for dy, dx in offsets:
        rows = []
        for y in range(h):
            row = []
            for x in range(w):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w:
                    row.append((features[:, :, y, x] - features[:, :, yy, xx]).abs().sum(1))
                else:
                    row.append(features.new_zeros(b))
            rows.append(torch.stack(row, -1))
        planes.append(torch.stack(rows, -2))
    return torch.stack(planes, 1)


def _features(seed=0, b=2, d=4, h=5, w=6):
    torch.manual_seed(seed)
    return torch.randn(b, d, h, w, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("radius,window", [(1, "square"), (2, "square"), (2, "disk"),
                                           (5, "square")])
def test_values_against_loops(radius, window):
    features = _features()
    offsets = window_offsets(radius, window)
    out = window_l1_distance(features, offsets)
    assert out.shape == (2, offsets.size(0), 5, 6)
    torch.testing.assert_close(out, loop_distance(features.detach(), offsets.tolist()),
                               rtol=0, atol=1e-12)
    assert (out[:, offsets.size(0) // 2] == 0).all()


@pytest.mark.parametrize("offsets", [[[0, 1], [2, -1], [0, 0], [-3, 4]],  # not mirrored
                                     [[-1, 2], [0, 0], [1, -2]],  # mirrored, not a window
                                     [[-7, 0], [7, 0]]])  # do not fit: zero planes
def test_arbitrary_offsets(offsets):
    features = _features(1)
    out = window_l1_distance(features, torch.tensor(offsets))
    torch.testing.assert_close(out, loop_distance(features.detach(), offsets),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("offsets", [window_offsets(2).tolist(), [[0, 1], [2, -1], [-1, -1]]])
def test_gradient_against_autograd_reference(offsets):
    features = _features(2)
    torch.manual_seed(3)
    upstream = torch.randn(2, len(offsets), 5, 6, dtype=torch.float64)
    (got,) = torch.autograd.grad((window_l1_distance(features, torch.tensor(offsets))
                                  * upstream).sum(), features)
    (want,) = torch.autograd.grad((naive_distance(features, offsets) * upstream).sum(),
                                  features)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_gradcheck():
    features = _features(4, b=2, d=3, h=4, w=5)
    for offsets in (window_offsets(1), window_offsets(2, "disk"), torch.tensor([[1, 2]])):
        assert torch.autograd.gradcheck(lambda f: window_l1_distance(f, offsets), (features,))


def test_equal_features_zero_subgradient():
    features = torch.ones(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    out = window_l1_distance(features, window_offsets(1))
    assert (out == 0).all()
    (grad,) = torch.autograd.grad(out.sum(), features)
    assert (grad == 0).all()


def test_float32_and_int32_offsets():
    features = _features(5).detach().float()
    offsets = window_offsets(2).int()
    out = window_l1_distance(features, offsets)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, loop_distance(features, offsets.tolist()))


@pytest.mark.parametrize("features,offsets,error,match", [
    (torch.zeros(2, 5, 6), window_offsets(1), ValueError, r"\(B, D, H, W\)"),
    (torch.zeros(2, 3, 5, 6, dtype=torch.long), window_offsets(1), TypeError, "floating"),
    ([[0.0]], window_offsets(1), TypeError, "torch.Tensor"),
    (torch.zeros(1, 3, 5, 6), torch.zeros(9, 3, dtype=torch.long), ValueError, r"\(K, 2\)"),
    (torch.zeros(1, 3, 5, 6), torch.zeros(9, dtype=torch.long), ValueError, r"\(K, 2\)"),
    (torch.zeros(1, 3, 5, 6), torch.zeros(9, 2), TypeError, "integer"),
    (torch.zeros(1, 3, 5, 6), [[0, 1]], TypeError, "torch.Tensor"),
])
def test_bad_inputs(features, offsets, error, match):
    with pytest.raises(error, match=match):
        window_l1_distance(features, offsets)
