"""The RRM network (thesis chapter 2, Fig. 2.1): shapes for both backbones, the CAM of
Eq. 2.1, the architecture round trip, plain vs R-FAM attention and a tiny overfit."""
import pytest
import torch
import torch.nn.functional as F

from graphseg.nn.backbones import BACKBONES, ESPNetv2Encoder, SmallCNN, build_backbone
from graphseg.nn.backbones.pretrained import BUNDLED_WEIGHTS
from graphseg.nn.models import RRMNet, build_rrm_net

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net(seed=0, **kwargs):
    kwargs = {"local_channels": 12, "global_channels": 6, **kwargs}
    return RRMNet(SmallCNN(8, seed=seed), kwargs.pop("num_classes", 3), seed=seed, **kwargs)


@pytest.mark.parametrize("size", [(32, 40), (37, 53)])
def test_shapes_small_cnn(size):
    net = tiny_net()
    out = net(torch.randn(2, 3, *size))
    grid = (-(-size[0] // 8), -(-size[1] // 8))
    assert net.stride == 8 and net.dilation == 12
    assert out.class_logits.shape == (2, 2)
    assert out.cam.shape == (2, 2, *grid)
    assert out.seg_logits.shape == (2, 3, *grid)
    assert out.features.shape == (2, 12 + 2 * 6, *grid) and net.feature_channels == 24
    assert net.segment(torch.randn(1, 3, *size)).shape == (1, 3, *size)


def test_shapes_espnetv2():
    torch.manual_seed(0)
    net = RRMNet(ESPNetv2Encoder(), 21, local_channels=16, global_channels=8).eval()
    assert net.stride == 16 and net.dilation == 6
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 96))
    assert out.class_logits.shape == (1, 20) and out.cam.shape == (1, 20, 4, 6)
    assert out.seg_logits.shape == (1, 21, 4, 6) and out.features.shape == (1, 32, 4, 6)
    assert net.architecture["backbone"] == {"name": "espnetv2"}


def test_pretrained_espnetv2_backbone():
    assert BUNDLED_WEIGHTS.is_file()
    net = build_rrm_net({"backbone": {"name": "espnetv2"}, "num_classes": 21,
                         "local_channels": 8, "global_channels": 4}, pretrained=True)
    from graphseg.nn.backbones import load_espnetv2_voc
    reference = load_espnetv2_voc().base_net.state_dict()
    for key, value in net.backbone.state_dict().items():
        assert torch.equal(value, reference[key]), key
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_backbone({"name": "small-cnn", "width": 4}, pretrained=True)


def test_foreground_classes_with_nonzero_background():
    net = tiny_net(num_classes=5, background=3)
    assert net.foreground_classes == (0, 1, 2, 4)
    out = net(torch.randn(1, 3, 16, 16))
    assert out.class_logits.shape == (1, 4) and out.seg_logits.shape == (1, 5, 2, 2)
    for kwargs in ({"background": 5}, {"background": -1}, {"background": True},
                   {"num_classes": 1}, {"attention": "dot"}, {"dilation": 0},
                   {"local_channels": 0}):
        with pytest.raises(ValueError):
            tiny_net(**{"num_classes": 5, **kwargs})
    with pytest.raises(TypeError, match="backbone interface"):
        RRMNet(torch.nn.Conv2d(3, 3, 1), 3)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\)"):
        tiny_net()(torch.zeros(3, 16, 16))


@pytest.mark.parametrize("kwargs", [{}, {"attention": "plain", "classify": False,
                                         "background": 2, "dilation": 2,
                                         "max_positions": None}])
def test_architecture_round_trip(kwargs):
    net = tiny_net(seed=4, **kwargs).eval()
    architecture = net.architecture
    assert set(architecture) == {"backbone", "num_classes", "background", "attention",
                                 "local_channels", "global_channels", "dilation", "classify",
                                 "max_positions"}
    assert architecture["backbone"] == {"name": "small-cnn", "width": 8}
    copy = build_rrm_net(architecture)
    assert copy.architecture == architecture
    copy.load_state_dict(net.state_dict(), strict=True)
    copy.eval()
    x = torch.randn(2, 3, 24, 24)
    with torch.no_grad():
        a, b = net(x), copy(x)
    for field in a._fields:
        if getattr(a, field) is None:
            assert getattr(b, field) is None
        else:
            torch.testing.assert_close(getattr(a, field), getattr(b, field))


def test_unregistered_backbone_needs_the_module():
    class Wrapped(SmallCNN):
        pass

    net = RRMNet(Wrapped(4), 3, local_channels=4, global_channels=2)
    assert net.architecture["backbone"] is None
    with pytest.raises(ValueError, match="pass backbone="):
        build_rrm_net(net.architecture)
    copy = build_rrm_net(net.architecture, backbone=Wrapped(4))
    copy.load_state_dict(net.state_dict(), strict=True)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone({"name": "resnet-38"})


def test_registry_is_extensible(monkeypatch):
    class Custom(SmallCNN):
        def __init__(self, width):
            super().__init__(width)
            self.architecture = {"name": "custom", "width": width}

    monkeypatch.setitem(BACKBONES, "custom",
                        lambda *, pretrained=False, width: Custom(width))
    net = RRMNet(Custom(4), 3, local_channels=4, global_channels=2)
    assert net.architecture["backbone"] == {"name": "custom", "width": 4}
    copy = build_rrm_net(net.architecture)
    assert type(copy.backbone) is Custom
    copy.load_state_dict(net.state_dict(), strict=True)


def test_plain_and_rfam_differ_only_in_the_reweighting():
    rfam, plain = tiny_net(seed=5).eval(), tiny_net(seed=5, attention="plain").eval()
    assert rfam.global_attention.reweight and not plain.global_attention.reweight
    plain.load_state_dict(rfam.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = rfam(x), plain(x)
        torch.testing.assert_close(a.cam, b.cam)
        assert not torch.allclose(a.seg_logits, b.seg_logits)
        plain.global_attention.reweight = True
        torch.testing.assert_close(plain(x).seg_logits, a.seg_logits)


def test_cam_is_the_fc_layer_on_the_features():
    net = tiny_net(seed=6).eval()
    x = torch.randn(2, 3, 32, 24)
    with torch.no_grad():
        out = net(x)
        features = net.backbone.forward_features(x)[-1]
    weight = net.classifier.weight[:, :, 0, 0]  # (C_fg, D)
    cam = torch.einsum("cd,bdhw->bchw", weight, features)  # Eq. 2.1
    torch.testing.assert_close(out.cam, cam)
    pooled = features.mean(dim=(2, 3)) @ weight.T  # GAP then FC
    torch.testing.assert_close(out.class_logits, pooled)


def test_segmentation_parts():
    net = tiny_net(seed=7).eval()
    x = torch.randn(1, 3, 24, 32)
    with torch.no_grad():
        out = net(x)
        feature = net.backbone(x)
        local = F.relu(net.local_conv(feature))
        glob = net.global_attention(feature)
        p_l = net.local_out(local)
        p_g = net.global_out(F.relu(net.global_conv(glob)))
        torch.testing.assert_close(out.seg_logits, (p_l + p_g) / 2)  # Eq. 2.13
        torch.testing.assert_close(out.features, torch.cat([local, glob], 1))  # Eq. 2.22
        upsampled = F.interpolate(out.seg_logits, size=(24, 32), mode="bilinear",
                                  align_corners=False)
        torch.testing.assert_close(net.segment(x), upsampled)


def test_two_step_network_has_no_classifier():
    net = tiny_net(classify=False)
    assert net.classifier is None
    out = net(torch.randn(1, 3, 16, 16))
    assert out.class_logits is None and out.cam is None
    assert not any(k.startswith("classifier") for k in net.state_dict())


def test_reset_parameters_keeps_the_backbone():
    net = tiny_net(seed=8)
    backbone = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    heads = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("backbone")}
    net.reset_parameters()
    for key, value in net.backbone.state_dict().items():
        assert torch.equal(value, backbone[key])
    changed = [k for k, v in net.state_dict().items() if k in heads
               and not torch.equal(v, heads[k])]
    assert {k.split(".")[0] for k in changed} == {"classifier", "local_conv", "local_out",
                                                  "global_attention", "global_conv",
                                                  "global_out"}


def squares(size=32):
    """Two grey images with a red square (class 1) and a blue one (class 2), and their
    label maps."""
    images = torch.full((2, 3, size, size), 0.5)
    labels = torch.zeros(2, size, size, dtype=torch.long)
    for i, (y, x, cls, colour) in enumerate([(4, 6, 1, (0.9, 0.1, 0.1)),
                                             (14, 12, 2, (0.1, 0.1, 0.9))]):
        images[i, :, y:y + 14, x:x + 14] = torch.tensor(colour)[:, None, None]
        labels[i, y:y + 14, x:x + 14] = cls
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return (images - mean) / std, labels


@pytest.mark.parametrize("attention", ["rfam", "plain"])
def test_tiny_overfit(attention):
    torch.manual_seed(0)
    images, labels = squares()
    net = tiny_net(seed=9, attention=attention)
    target = labels[:, 4::8, 4::8]  # the label at the centre of each stride-8 cell
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(net(images).seg_logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses
