"""The DFR network (thesis chapter 4, Fig. 4.2): shapes for both backbones over odd
sizes, the levels used, a batch of one in training, gradients, the architecture round
trip, the optional consistency head, segment, seeding and bad inputs."""
import pytest
import torch
import torch.nn.functional as F

from graphseg.nn.backbones import BACKBONES, ESPNetv2Encoder, SmallCNN, build_backbone
from graphseg.nn.models import DFRNet, DFROutput, build_dfr_net

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net(seed=0, **kwargs):
    kwargs = {"channels": 8, "feature_dim": 6, **kwargs}
    return DFRNet(SmallCNN(4, seed=seed), kwargs.pop("num_classes", 3), seed=seed, **kwargs)


def ceil_div(size, stride):
    return -(-size[0] // stride), -(-size[1] // stride)


@pytest.mark.parametrize("size", [(32, 40), (37, 53), (20, 30)])
def test_shapes_small_cnn(size):
    net = tiny_net()
    # strides (2, 4, 8, 8): the last two levels share a stride
    assert net.levels == (1, 2, 3) and net.stride == 4
    out = net(torch.randn(2, 3, *size))
    assert isinstance(out, DFROutput)
    assert out.seg_logits.shape == (2, 3, *ceil_div(size, 4))
    assert out.features.shape == (2, 6, *ceil_div(size, 4))
    assert (out.features >= 0).all()  # after the head's ReLU
    assert net.segment(torch.randn(1, 3, *size)).shape == (1, 3, *size)


def test_min_stride_selects_the_levels():
    assert tiny_net(min_stride=1).levels == (0, 1, 2, 3)
    net = tiny_net(min_stride=8)
    assert net.levels == (2, 3) and net.stride == 8
    assert net(torch.randn(1, 3, 21, 19)).seg_logits.shape == (1, 3, 3, 3)
    with pytest.raises(ValueError, match="no backbone level has a stride >= min_stride=16"):
        tiny_net(min_stride=16)


def test_espnetv2_via_the_registry():
    backbone = build_backbone({"name": "espnetv2"}, pretrained=False)
    assert isinstance(backbone, ESPNetv2Encoder)
    torch.manual_seed(0)
    net = DFRNet(backbone, 21, channels=8, feature_dim=4).eval()
    assert net.levels == (1, 2, 3) and net.stride == 4  # strides 4, 8, 16
    with torch.no_grad():
        out = net(torch.randn(1, 3, 50, 70))
    assert out.seg_logits.shape == (1, 21, 13, 18) and out.features.shape == (1, 4, 13, 18)
    assert net.architecture["backbone"] == {"name": "espnetv2"}
    copy = build_dfr_net(net.architecture)
    assert isinstance(copy.backbone, ESPNetv2Encoder)
    copy.load_state_dict(net.state_dict(), strict=True)


def test_unknown_backbone_name():
    with pytest.raises(ValueError, match="unknown backbone .*'resnet-38'.*must be one of "
                                         "'small-cnn', 'espnetv2', 'efficientnet-lite0'"):
        build_backbone({"name": "resnet-38"})
    with pytest.raises(ValueError, match="unknown backbone"):
        build_dfr_net({"backbone": {"name": "swin-b"}, "num_classes": 3})
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("espnetv2")
    assert set(BACKBONES) == {"small-cnn", "espnetv2", "efficientnet-lite0"}


def test_batch_of_one_in_training():
    net = tiny_net().train()
    out = net(torch.randn(1, 3, 24, 24))  # top level 3 x 3; the PPM's bin 1 is 1 x 1
    assert out.seg_logits.shape == (1, 3, 6, 6)
    out.seg_logits.sum().backward()


def test_gradient_reaches_every_parameter():
    net = tiny_net(seed=1).train()
    out = net(torch.randn(2, 3, 27, 33))
    (out.seg_logits.square().mean() + out.features.mean()).backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kwargs", [{}, {"consistency": False, "min_stride": 8,
                                         "dropout": 0.0, "bins": (1, 3),
                                         "num_classes": 5}])
def test_architecture_round_trip(kwargs):
    net = tiny_net(seed=4, **kwargs).eval()
    architecture = net.architecture
    assert set(architecture) == {"backbone", "num_classes", "channels", "feature_dim",
                                 "consistency", "min_stride", "dropout", "bins"}
    assert architecture["backbone"] == {"name": "small-cnn", "width": 4}
    assert all(type(v) in (int, float, bool, list, dict) for v in architecture.values())
    copy = build_dfr_net(architecture)
    assert copy.architecture == architecture
    copy.load_state_dict(net.state_dict(), strict=True)
    copy.eval()
    x = torch.randn(2, 3, 29, 23)
    with torch.no_grad():
        a, b = net(x), copy(x)
        torch.testing.assert_close(a.seg_logits, b.seg_logits, rtol=0, atol=0)
        if a.features is None:
            assert b.features is None
        else:
            torch.testing.assert_close(a.features, b.features, rtol=0, atol=0)
        torch.testing.assert_close(net.segment(x), copy.segment(x), rtol=0, atol=0)


def test_unregistered_backbone_needs_the_module():
    class Wrapped(SmallCNN):
        pass

    net = DFRNet(Wrapped(4), 3, channels=4, feature_dim=2)
    assert net.architecture["backbone"] is None
    with pytest.raises(ValueError, match="pass backbone="):
        build_dfr_net(net.architecture)
    copy = build_dfr_net(net.architecture, backbone=Wrapped(4))
    copy.load_state_dict(net.state_dict(), strict=True)
    with pytest.raises(TypeError, match="architecture must be a dict"):
        build_dfr_net([("num_classes", 3)])
    with pytest.raises(ValueError, match="no num_classes"):
        build_dfr_net({"backbone": {"name": "small-cnn", "width": 4}})


def test_without_consistency_head():
    net = tiny_net(consistency=False)
    assert net.consistency_head is None
    assert net(torch.randn(1, 3, 16, 16)).features is None
    assert not any(k.startswith("consistency_head") for k in net.state_dict())
    with_head = tiny_net(consistency=True)
    extra = {k for k in with_head.state_dict()} - set(net.state_dict())
    assert extra == {"consistency_head.0.weight", "consistency_head.0.bias"}


def test_forward_structure_and_segment():
    net = tiny_net(seed=7).eval()
    x = torch.randn(2, 3, 26, 34)
    with torch.no_grad():
        out = net(x)
        levels = net.backbone.forward_features(x)
        fused = net.fusion([levels[i] for i in net.levels])
        torch.testing.assert_close(out.seg_logits, net.classifier(fused))
        torch.testing.assert_close(out.features, F.relu(net.consistency_head[0](fused)))
        upsampled = F.interpolate(out.seg_logits, size=(26, 34), mode="bilinear",
                                  align_corners=False)
        torch.testing.assert_close(net.segment(x), upsampled)


def test_segment_does_not_run_the_consistency_head():
    net = tiny_net().eval()
    calls = []
    net.consistency_head.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        net.segment(torch.randn(1, 3, 16, 16))
        assert not calls
        net(torch.randn(1, 3, 16, 16))
    assert calls == [1]


def test_seeded_init_is_reproducible():
    a, b = tiny_net(seed=3), tiny_net(seed=3)
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), key
    c = tiny_net(seed=5)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    state = torch.random.get_rng_state()
    tiny_net(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched


def test_reset_parameters_keeps_the_backbone():
    net = tiny_net(seed=8)
    backbone = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    heads = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("backbone")}
    net.reset_parameters()
    for key, value in net.backbone.state_dict().items():
        assert torch.equal(value, backbone[key])
    changed = {k.split(".")[0] for k, v in net.state_dict().items()
               if k in heads and not torch.equal(v, heads[k])}
    assert changed == {"fusion", "classifier", "consistency_head"}


def test_bad_inputs():
    for kwargs in ({"num_classes": 1}, {"num_classes": 256}, {"channels": 0},
                   {"feature_dim": 0}, {"min_stride": 0}, {"dropout": 1.0},
                   {"dropout": -0.1}, {"dropout": True}, {"bins": ()}, {"bins": (0,)}):
        with pytest.raises((ValueError, TypeError)):
            tiny_net(**kwargs)
    with pytest.raises(ValueError, match="num_classes must be <= 255"):
        tiny_net(num_classes=256)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\)"):
        tiny_net(dropout=1.0)
    with pytest.raises(TypeError, match="backbone interface"):
        DFRNet(torch.nn.Conv2d(3, 3, 1), 3)

    class Reversed(SmallCNN):
        strides = (8, 8, 4, 2)

    with pytest.raises(ValueError, match="finest first"):
        DFRNet(Reversed(4), 3)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\)"):
        tiny_net()(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\)"):
        tiny_net().segment(torch.zeros(1, 1, 16, 16))


def test_registry_is_extensible(monkeypatch):
    class Custom(SmallCNN):
        def __init__(self, width):
            super().__init__(width)
            self.architecture = {"name": "custom", "width": width}

    monkeypatch.setitem(BACKBONES, "custom", lambda *, pretrained=False, width: Custom(width))
    net = DFRNet(Custom(4), 3, channels=4, feature_dim=2)
    assert net.architecture["backbone"] == {"name": "custom", "width": 4}
    copy = build_dfr_net(net.architecture)
    assert type(copy.backbone) is Custom
    copy.load_state_dict(net.state_dict(), strict=True)
