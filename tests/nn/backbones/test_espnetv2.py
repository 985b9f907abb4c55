"""ESPNetv2 backbone: shapes, the kit's weights, real-photo predictions, CAM fine-tuning."""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from graphseg.data.classes import VOC_CLASSES
from graphseg.graph import image_to_graph
from graphseg.nn.backbones import (
    ESPNetv2Encoder,
    ESPNetv2Segmentation,
    load_espnetv2_voc,
    preprocess,
)
from graphseg.nn.models import CAMClassifier

WEIGHTS = "weights/espnetv2_s_2.0_pascal_384x384.pth"


@functools.lru_cache(maxsize=1)
def _load(path):
    return load_espnetv2_voc(path)


@pytest.fixture
def voc_model(data_kit):
    path = data_kit / WEIGHTS
    if not path.is_file():
        pytest.skip(f"ESPNetv2 weights not found at {path}")
    return _load(path)


@pytest.mark.parametrize("size", [(64, 96), (50, 75)])
def test_shapes_random_init(size):
    torch.manual_seed(0)
    model = ESPNetv2Segmentation().eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
    assert logits.shape == (2, 21, *size)
    assert len(features) == len(model.strides) == len(model.channels) == 4
    for f, stride, channels in zip(features, model.strides, model.channels):
        assert f.shape == (2, channels, -(-size[0] // stride), -(-size[1] // stride))
    assert model.base_net(x).shape == features[-1].shape


def test_cams_and_graph_features_shapes():
    torch.manual_seed(0)
    encoder = ESPNetv2Encoder()
    model = CAMClassifier(encoder, encoder.channels[-1], classes=range(1, 21)).eval()
    x = torch.rand(1, 3, 64, 64)  # RGB in [0, 1]: the classifier normalises
    with torch.no_grad():
        logits, cams = model(x), model.cam(x)
        features = encoder.forward_features(x)
    assert logits.shape == (1, 20)
    assert cams.shape == (1, 20, 4, 4)
    # Logits are the spatial mean of the CAMs (bias-free classifier).
    torch.testing.assert_close(logits, cams.mean(dim=(2, 3)), rtol=1e-4, atol=1e-5)
    # Graph node features: levels resized to stride 8 and concatenated.
    target = features[2].shape[-2:]
    stacked = torch.cat([F.interpolate(f, size=target, mode="bilinear", align_corners=False)
                         for f in features], dim=1)[0]
    data = image_to_graph(stacked, radius=2)
    assert data.x.shape == (8 * 8, sum(encoder.channels))
    assert encoder.strides == (2, 4, 8, 16)


def test_cam_finetuning_reduces_loss():
    torch.manual_seed(0)
    model = CAMClassifier(ESPNetv2Encoder(), 512, classes=(1, 2, 3))
    images = torch.rand(4, 3, 48, 48)
    tags = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=torch.float)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.MultiLabelSoftMarginLoss()
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = loss_fn(model(images), tags)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_strict_load(data_kit, voc_model):
    listed = {}
    for line in (data_kit / "weights" / "espnetv2_s_2.0_pascal_384x384.keys.txt").read_text(
            ).splitlines():
        name, shape = line.split(" ", 1)
        listed[name] = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
    state = voc_model.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == listed
    assert not voc_model.training


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_espnetv2_voc(path)


def test_wrong_files(tmp_path):
    state = ESPNetv2Segmentation(num_classes=5).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["bu_br_l4.1.weight"]
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as info:
        load_espnetv2_voc(path)
    message = str(info.value)
    assert "missing keys: bu_br_l4.1.weight" in message
    assert "unexpected keys: extra.weight" in message
    assert "bu_dec_l4.merge_layer.3.weight (5, 10, 1, 1) (expected (21, 10, 1, 1))" in message

    text = tmp_path / "notes.pth"
    text.write_text("not weights")
    with pytest.raises(ValueError, match="not a PyTorch state dict"):
        load_espnetv2_voc(text)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="state dict of tensors"):
        load_espnetv2_voc(path)


def test_preprocess():
    image = np.full((2, 3, 3), 255, dtype=np.uint8)
    x = preprocess(image)
    assert x.shape == (3, 2, 3) and x.dtype == torch.float32
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([(1 - 0.485) / 0.229,
                                                         (1 - 0.456) / 0.224,
                                                         (1 - 0.406) / 0.225]))
    with pytest.raises(ValueError, match="uint8"):
        preprocess(image.astype(np.float32))


# MSRC-v2 photos where a cow, a sheep, a car covers over 60% of the pixels.
PHOTOS = [("1_22_s", "cow"), ("9_30_s", "sheep"), ("7_25_s", "car")]


@pytest.mark.parametrize("name,expected", PHOTOS)
def test_real_photo_dominant_class(data_kit, voc_model, name, expected):
    image = np.asarray(Image.open(data_kit / "msrc_v2" / "images" / f"{name}.jpg").convert("RGB"))
    x = F.interpolate(preprocess(image)[None], size=(384, 384), mode="bilinear",
                      align_corners=False)
    with torch.inference_mode():
        pred = voc_model(x).argmax(1)
    counts = torch.bincount(pred.flatten(), minlength=21)
    counts[0] = 0  # background
    assert VOC_CLASSES[int(counts.argmax())] == expected
