"""UperFusion (UperNet's PPM + FPN fusion): shapes over ceil-divided and equal-size
levels, a batch of one in training, gradients, the structure of the forward pass and
bad inputs."""
import pytest
import torch
import torch.nn.functional as F

from graphseg.nn.necks import UperFusion

pytestmark = pytest.mark.usefixtures("one_thread")

# SmallCNN levels of a 20 x 30 image: strides 2, 4, 8, 8 (the last two equal)
SIZES = [(10, 15), (5, 8), (3, 4), (3, 4)]
CHANNELS = (4, 8, 16, 16)


def levels(batch=2, sizes=SIZES, channels=CHANNELS, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, *s, generator=generator) for c, s in zip(channels, sizes)]


@pytest.mark.parametrize("sizes", [SIZES, [(19, 27), (10, 14), (5, 7), (3, 4)],
                                   [(7, 5), (4, 3), (2, 2), (1, 1)]])
def test_shapes(sizes):
    neck = UperFusion(CHANNELS, channels=6)
    out = neck(levels(sizes=sizes))
    assert out.shape == (2, 6, *sizes[0])


def test_single_level_and_custom_bins():
    neck = UperFusion((5,), channels=3, bins=(1, 4))
    assert len(neck.laterals) == 0 and len(neck.pooled) == 2
    assert neck(levels(sizes=[(6, 9)], channels=(5,))).shape == (2, 3, 6, 9)


def test_batch_of_one_in_training():
    neck = UperFusion(CHANNELS, channels=6).train()
    out = neck(levels(batch=1))
    assert out.shape == (1, 6, 10, 15) and torch.isfinite(out).all()


def test_gradient_reaches_every_parameter():
    neck = UperFusion(CHANNELS, channels=6).train()
    inputs = [x.requires_grad_() for x in levels()]
    (neck(inputs) ** 2).mean().backward()
    for name, parameter in neck.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for x in inputs:
        assert x.grad.abs().sum() > 0


def test_forward_is_ppm_fpn_fusion():
    torch.manual_seed(1)
    neck = UperFusion(CHANNELS, channels=6, bins=(1, 2)).eval()
    xs = levels()

    def up(x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    with torch.no_grad():
        top = xs[-1]
        pooled = [up(branch(top), top.shape[-2:]) for branch in neck.pooled]
        pyramid = [lat(x) for lat, x in zip(neck.laterals, xs)]
        pyramid.append(neck.bottleneck(torch.cat([top, *pooled], 1)))
        for level in (2, 1, 0):
            pyramid[level] = pyramid[level] + up(pyramid[level + 1],
                                                 pyramid[level].shape[-2:])
        outs = [conv(t) for conv, t in zip(neck.outputs, pyramid)] + [pyramid[-1]]
        expected = neck.fuse(torch.cat([up(o, (10, 15)) for o in outs], 1))
        torch.testing.assert_close(neck(xs), expected)
    # the pooled branches have no batch norm (a 1x1 map of a batch of one)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in neck.pooled.modules())


def test_reset_parameters():
    torch.manual_seed(2)
    neck = UperFusion(CHANNELS, channels=6)
    with torch.no_grad():
        for p in neck.parameters():
            p.add_(1.0)
    neck.train()
    neck(levels())  # the running statistics move
    shifted = neck.fuse[0].weight.clone()
    neck.reset_parameters()
    for module in neck.modules():  # batch norms back at their initial state
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.running_mean, torch.zeros_like(module.running_mean))
            assert module.num_batches_tracked.item() == 0
    assert not torch.equal(neck.fuse[0].weight, shifted)  # convolutions re-drawn
    assert neck.fuse[0].weight.abs().max() < 1.0


def test_bad_inputs():
    neck = UperFusion(CHANNELS, channels=6)
    with pytest.raises(ValueError, match="list of 4 maps"):
        neck(levels()[:3])
    with pytest.raises(ValueError, match="list of 4 maps"):
        neck(levels()[0])
    xs = levels()
    xs[2] = torch.randn(2, 5, 3, 4)
    with pytest.raises(ValueError, match=r"features\[2\] must have shape \(B, 16, h, w\)"):
        neck(xs)
    xs = levels()
    xs[1] = xs[1][:1]
    with pytest.raises(ValueError, match="different batch sizes"):
        neck(xs)
    with pytest.raises(TypeError):
        neck([x.numpy() for x in levels()])
    for kwargs in ({"in_channels": ()}, {"in_channels": (4, 0)}, {"channels": 0},
                   {"bins": ()}, {"bins": (1, 0)}, {"in_channels": "abc"}):
        with pytest.raises((ValueError, TypeError)):
            UperFusion(**{"in_channels": CHANNELS, **kwargs})
