"""R-FAM (thesis Eq. 2.8-2.12): the re-weighting coefficients against a by-hand loop,
the module against a direct per-pixel computation, the plain attention, gradients."""
import math

import pytest
import torch

from graphseg.nn.heads import RFAM, rfam_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def weights_by_hand(row):
    """Eq. 2.9-2.10 for one row (a list of floats), sorting by hand (stable: ties keep
    their column order); N_k+ = 0 uses 1 in the denominators."""
    n = len(row)
    order = sorted(range(n), key=lambda m: -row[m])  # sorted() is stable
    rank = [0] * n
    for position, m in enumerate(order, start=1):
        rank[m] = position
    positive = sum(1 for v in row if v > 0)
    denominator = max(positive, 1)
    return [rank[m] / denominator if row[m] > 0
            else math.sqrt(abs(positive + 1 - rank[m]) / denominator) for m in range(n)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_match_a_loop_over_rows(dtype):
    torch.manual_seed(0)
    a = torch.randn(2, 3, 17, dtype=dtype)
    a[0, 0] = a[0, 0].abs()  # all positive
    a[0, 1] = -a[0, 1].abs()  # none positive
    a[1, 2, 3:9] = 0.5  # ties
    a[1, 1, :4] = 0.0  # zeros are not positive
    out = rfam_weights(a)
    assert out.dtype == dtype and out.shape == a.shape
    expected = torch.tensor([[weights_by_hand(row) for row in block] for block in a.tolist()],
                            dtype=dtype)
    torch.testing.assert_close(out, expected)
    assert torch.isfinite(out).all()


def test_weights_special_rows():
    # ranks of 3, -1, 2, -2, 1 are 1, 4, 2, 5, 3 and N_k+ = 3
    out = rfam_weights(torch.tensor([3.0, -1.0, 2.0, -2.0, 1.0]))
    torch.testing.assert_close(out, torch.tensor([1 / 3, 0.0, 2 / 3, math.sqrt(1 / 3), 1.0]))
    # no positive entry: sqrt(e - 1), no NaN
    out = rfam_weights(torch.tensor([-1.0, -3.0, -2.0]))
    torch.testing.assert_close(out, torch.tensor([0.0, math.sqrt(2), 1.0]))
    # ties: the left-most equal value is ranked first
    torch.testing.assert_close(rfam_weights(torch.tensor([1.0, 1.0, 1.0])),
                               torch.tensor([1 / 3, 2 / 3, 1.0]))
    with pytest.raises(TypeError, match="floating"):
        rfam_weights(torch.tensor([1, 2]))


def test_weights_carry_no_gradient():
    a = torch.randn(4, 6, requires_grad=True)
    assert not rfam_weights(a).requires_grad


def direct(module, x, reweight=True):
    """F_a and F_3 pixel by pixel (Eq. 2.8-2.12), for one image at a time."""
    b, _, h, w = x.shape
    out = torch.empty(b, 2 * module.channels, h, w, dtype=x.dtype)
    for i in range(b):
        f1 = module.query(x[i:i + 1])[0].reshape(module.channels, -1)
        f2 = module.key(x[i:i + 1])[0].reshape(module.channels, -1)
        f3 = module.value(x[i:i + 1])[0].reshape(module.channels, -1)
        for k in range(h * w):
            row = f1[:, k] @ f2  # A(.|k)
            p = row.softmax(0)
            if reweight:
                p = p * torch.tensor(weights_by_hand(row.tolist()), dtype=x.dtype)
            out[i, :module.channels].view(module.channels, -1)[:, k] = f3 @ p
        out[i, module.channels:] = f3.reshape(module.channels, h, w)
    return out


@pytest.mark.parametrize("reweight", [True, False])
def test_module_matches_direct_computation(reweight):
    torch.manual_seed(1)
    module = RFAM(6, channels=4, reweight=reweight).double()
    x = torch.randn(2, 6, 3, 5, dtype=torch.float64)
    with torch.no_grad():
        out = module(x)
        torch.testing.assert_close(out, direct(module, x, reweight))
    assert out.shape == (2, module.out_channels, 3, 5)


def test_plain_attention_is_softmax_times_value():
    torch.manual_seed(2)
    module = RFAM(5, channels=3, reweight=False)
    x = torch.randn(2, 5, 4, 4)
    with torch.no_grad():
        f1 = module.query(x).flatten(2).transpose(1, 2)
        f2 = module.key(x).flatten(2)
        f3 = module.value(x).flatten(2).transpose(1, 2)
        attention = (f1 @ f2).softmax(-1)
        expected = (attention @ f3).transpose(1, 2).reshape(2, 3, 4, 4)
        torch.testing.assert_close(module.attention(x), attention)
        torch.testing.assert_close(module(x)[:, :3], expected)
        torch.testing.assert_close(module(x)[:, 3:], module.value(x))
        # R-FAM differs from it only by the coefficients
        module.reweight = True
        weights = rfam_weights(f1 @ f2)
        torch.testing.assert_close(module.attention(x), attention * weights)


def test_gradcheck():
    torch.manual_seed(3)
    module = RFAM(3, channels=2).double()
    x = torch.randn(1, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,), eps=1e-6, atol=1e-5)
    module(x).sum().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_reset_parameters():
    module = RFAM(4, channels=3)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.fill_(7.0)
    module.reset_parameters()
    for key, value in module.state_dict().items():
        assert value.shape == before[key].shape
        assert not (value == 7.0).all(), key


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="channels"):
        RFAM(4, channels=0)
    with pytest.raises(ValueError, match="max_positions"):
        RFAM(4, max_positions=0)
    module = RFAM(4, channels=2, max_positions=20)
    with pytest.raises(ValueError, match=r"shape \(B, 4, H, W\)"):
        module(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="max_positions=20"):
        module(torch.zeros(1, 4, 5, 5))
    module.max_positions = None
    assert module(torch.zeros(1, 4, 5, 5)).shape == (1, 4, 5, 5)
