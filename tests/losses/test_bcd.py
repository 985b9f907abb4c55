"""The BCD loss (thesis Eq. 2.22-2.26) and the dense balanced cross-entropy against direct
computation: loops over pixels, centres and pairs; values and gradients; empty terms."""
import pytest
import torch
import torch.nn.functional as F

from graphseg.losses import balanced_cross_entropy, bcd_loss


def cos(a, b):
    return F.cosine_similarity(a, b, dim=0)


def brute_bcd(features, mask, background=0, ignore=255):
    """Eq. 2.24-2.26 with Python loops, ordered pairs in the first term as printed."""
    b, d, h, w = features.shape
    pixels = [(bi, y, x) for bi in range(b) for y in range(h) for x in range(w)]
    fg_classes = sorted({int(mask[p]) for p in pixels} - {background, ignore})
    fg_ctr = {}
    for c in fg_classes:
        members = [features[bi, :, y, x] for bi, y, x in pixels if mask[bi, y, x] == c]
        fg_ctr[c] = sum(members) / len(members)
    bg_ctr = {}
    for bi in range(b):
        members = [features[bi, :, y, x] for y in range(h) for x in range(w)
                   if mask[bi, y, x] == background]
        if members:
            bg_ctr[bi] = sum(members) / len(members)
    terms = []
    ff = [1 + cos(fg_ctr[c], fg_ctr[e]) for c in fg_classes for e in fg_classes if c != e]
    fb = [1 + cos(fg_ctr[c], bg_ctr[bi]) for c in fg_classes for bi in bg_ctr]
    fg = [1 - cos(features[bi, :, y, x], fg_ctr[int(mask[bi, y, x])]) for bi, y, x in pixels
          if int(mask[bi, y, x]) in fg_ctr]
    bg = [1 - cos(features[bi, :, y, x], bg_ctr[bi]) for bi, y, x in pixels
          if mask[bi, y, x] == background]
    for part in (ff, fb, fg, bg):
        terms.append(sum(part) / len(part) if part else features.new_zeros(()))
    return sum(terms), [len(p) for p in (ff, fb, fg, bg)]


def test_bcd_loss_against_loops_values_and_gradients():
    torch.manual_seed(0)
    features = torch.randn(3, 5, 4, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.randint(0, 4, (3, 4, 4))
    mask[2] = torch.where(mask[2] == 0, 1, mask[2])  # image 2 has no background
    mask[0, 0, :2] = 255  # padding
    loss = bcd_loss(features, mask)
    expected, counts = brute_bcd(features, mask)
    assert counts[0] == 3 * 2 and counts[1] == 3 * 2  # 3 fg classes, 2 background centres
    assert torch.allclose(loss, expected, rtol=1e-12)
    ours, = torch.autograd.grad(loss, features)
    theirs, = torch.autograd.grad(expected, features)
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-14)
    assert torch.autograd.gradcheck(lambda f: bcd_loss(f, mask[:, :2, :3]),
                                    (features[:, :, :2, :3].detach().requires_grad_(),))


def test_bcd_loss_foreground_centres_span_the_batch_background_centres_do_not():
    # two images: class 1 looks the same in both, the backgrounds differ
    features = torch.zeros(2, 2, 1, 2, dtype=torch.float64)
    features[0, :, 0, 0] = torch.tensor([1.0, 0.0])  # bg of image 0
    features[1, :, 0, 0] = torch.tensor([0.0, 1.0])  # bg of image 1
    features[:, :, 0, 1] = torch.tensor([1.0, 1.0])  # class 1 in both
    mask = torch.tensor([[[0, 1]], [[0, 1]]])
    # every feature is its centre (terms 3, 4 = 0); one fg class (term 1 empty);
    # fb: cos((1,1), (1,0)) = cos((1,1), (0,1)) = 1/sqrt(2)
    assert torch.allclose(bcd_loss(features, mask),
                          torch.tensor(1 + 2 ** -0.5, dtype=torch.float64))


def test_bcd_loss_empty_terms():
    torch.manual_seed(1)
    features = torch.randn(2, 3, 3, 3, requires_grad=True)
    # background only: terms 1-3 empty, term 4 alone
    only_bg = torch.zeros(2, 3, 3, dtype=torch.long)
    loss = bcd_loss(features, only_bg)
    expected, counts = brute_bcd(features, only_bg)
    assert counts[:3] == [0, 0, 0] and torch.allclose(loss, expected)
    # one foreground class, no background: term 3 alone
    only_fg = torch.full((2, 3, 3), 4)
    loss = bcd_loss(features, only_fg)
    expected, counts = brute_bcd(features, only_fg)
    assert counts == [0, 0, 18, 0] and torch.allclose(loss, expected)
    # everything ignored: 0, still on the graph
    nothing = bcd_loss(features, torch.full((2, 3, 3), 255))
    assert nothing.item() == 0.0 and nothing.requires_grad
    nothing.backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


def test_bcd_loss_background_argument_and_errors():
    torch.manual_seed(2)
    features = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    mask = torch.randint(0, 3, (2, 3, 3))
    assert torch.allclose(bcd_loss(features, mask, background=2),
                          brute_bcd(features, mask, background=2)[0])
    assert not torch.allclose(bcd_loss(features, mask, background=2), bcd_loss(features, mask))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3, 3\)"):
        bcd_loss(features, mask[:, :2])
    with pytest.raises(TypeError, match="mask must hold integer"):
        bcd_loss(features, mask.float())
    with pytest.raises(ValueError, match="features must be a floating"):
        bcd_loss(features[0], mask)


# ---------------------------------------------------------------- dense cross-entropy


def test_dense_balanced_cross_entropy_against_manual():
    torch.manual_seed(3)
    logits = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (2, 3, 5))
    labels[torch.rand(2, 3, 5) < 0.3] = 255
    nll = -logits.log_softmax(1)
    bg, fg = [], []
    for b in range(2):
        for y in range(3):
            for x in range(5):
                c = int(labels[b, y, x])
                if c != 255:
                    (bg if c == 0 else fg).append(nll[b, c, y, x])
    assert bg and fg and len(bg) != len(fg)
    expected = sum(bg) / len(bg) + sum(fg) / len(fg)
    loss = balanced_cross_entropy(logits, labels)
    assert torch.allclose(loss, expected)
    ours, = torch.autograd.grad(loss, logits, retain_graph=True)
    theirs, = torch.autograd.grad(expected, logits, retain_graph=True)
    assert torch.allclose(ours, theirs)
    plain = (sum(bg) + sum(fg)) / (len(bg) + len(fg))
    assert torch.allclose(balanced_cross_entropy(logits, labels, balanced=False), plain)
    # the same numbers as the node layout
    nodes = balanced_cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, 4), labels.reshape(-1))
    assert torch.allclose(loss, nodes)
    only_fg = torch.where(labels == 0, 255, labels)
    fg_only = [v for v in fg]
    assert torch.allclose(balanced_cross_entropy(logits, only_fg), sum(fg_only) / len(fg_only))


def test_dense_cross_entropy_with_nothing_labelled_is_a_connected_zero():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    empty = torch.full((2, 4, 4), 255)
    for balanced in (True, False):
        loss = balanced_cross_entropy(logits, empty, balanced=balanced)
        assert loss.item() == 0.0 and loss.requires_grad
        grad, = torch.autograd.grad(loss, logits)
        assert torch.equal(grad, torch.zeros_like(logits))
    with pytest.raises(ValueError, match="no labelled node"):
        balanced_cross_entropy(logits, empty, allow_empty=False)
    # the node layout keeps its error, and can opt in
    with pytest.raises(ValueError, match="no labelled node"):
        balanced_cross_entropy(logits[:, :, 0, 0], empty[:, 0, 0])
    assert balanced_cross_entropy(logits[:, :, 0, 0], empty[:, 0, 0],
                                  allow_empty=True).item() == 0.0
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 4, 4\)"):
        balanced_cross_entropy(logits, empty[:, :3])
    with pytest.raises(TypeError, match="labels must hold integer"):
        balanced_cross_entropy(logits, empty.float())
