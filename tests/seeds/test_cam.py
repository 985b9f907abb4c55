import numpy as np
import pytest
import torch
from torch import nn

from graphseg.nn.models import (
    CAMClassifier,
    load_classifier,
    save_classifier,
    small_cam_classifier,
)
from graphseg.seeds import (
    METHODS,
    cam_probabilities,
    cam_seeds,
    confident_labels,
    multiscale_cam,
    reliable_regions,
)
from graphseg.training import train_cam_classifier

pytestmark = pytest.mark.usefixtures("one_thread")


def test_logits_are_the_pooled_cam():
    model = small_cam_classifier((1, 2, 5), width=4).eval()
    x = torch.rand(2, 3, 40, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.cam(x).mean(dim=(2, 3)))


def test_any_backbone_plugs_in(tmp_path):
    backbone = nn.Sequential(nn.Conv2d(3, 6, 3, stride=4, padding=1), nn.ReLU())
    model = CAMClassifier(backbone, 6, classes=(3, 9))
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert multiscale_cam(model, image, scales=(1.0,)).shape == (2, 30, 40)
    save_classifier(model, tmp_path / "custom.pt")
    with pytest.raises(ValueError, match="custom backbone; pass backbone="):
        load_classifier(tmp_path / "custom.pt")
    fresh = nn.Sequential(nn.Conv2d(3, 6, 3, stride=4, padding=1), nn.ReLU())
    loaded = load_classifier(tmp_path / "custom.pt", backbone=fresh)
    torch.testing.assert_close(loaded.classifier.weight, model.classifier.weight)
    with pytest.raises(ValueError, match=r"feature map, got shape \(1, 6\)"):
        CAMClassifier(nn.Sequential(backbone, nn.Flatten(2), nn.AdaptiveAvgPool1d(1),
                                    nn.Flatten()), 6, (1,))(torch.rand(1, 3, 16, 16))


def test_bad_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_classifier(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a graphseg CAM checkpoint"):
        load_classifier(tmp_path / "junk.pt")


def test_multiscale_cam_is_flip_equivariant():
    model = small_cam_classifier((1, 2), width=4)
    image = np.random.default_rng(1).integers(0, 256, (24, 36, 3), dtype=np.uint8)
    cam = multiscale_cam(model, image, scales=(0.5, 1.0))
    assert cam.shape == (2, 24, 36) and cam.min() >= 0
    mirrored = multiscale_cam(model, np.ascontiguousarray(image[:, ::-1]), scales=(0.5, 1.0))
    np.testing.assert_allclose(mirrored, cam[:, :, ::-1], rtol=1e-4, atol=1e-5)


def test_probabilities_follow_eq_2_3_and_2_4():
    cam = np.zeros((3, 2, 2), dtype=np.float32)
    cam[0] = [[2, 1], [0, 0]]     # class 4
    cam[2] = [[0, 0], [3, 1.5]]   # class 8
    probs, ids = cam_probabilities(cam, tags=[8, 4], classes=(4, 6, 8), gamma=2)
    assert ids == (0, 4, 8)
    np.testing.assert_allclose(probs[1], [[1, 0.5], [0, 0]])
    np.testing.assert_allclose(probs[2], [[0, 0], [1, 0.5]])
    np.testing.assert_allclose(probs[0], [[0, 0.25], [0, 0.25]])
    with pytest.warns(UserWarning, match="tag 6 has no CAM response"):
        probs, _ = cam_probabilities(cam, tags=[6], classes=(4, 6, 8))
    assert (probs[1] == 0).all() and (probs[0] == 1).all()
    with pytest.raises(ValueError, match=r"tags \[5\] are not foreground"):
        cam_probabilities(cam, tags=[5], classes=(4, 6, 8))
    with pytest.raises(ValueError, match=r"tags \[0\] are not foreground"):
        cam_probabilities(cam, tags=[0], classes=(4, 6, 8))


def test_confident_labels_keep_the_fraction_per_class():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (50, 40)).astype(np.uint8)
    labels[0, :5] = 255
    kept = confident_labels(labels, rng.random((50, 40)), keep=0.4)
    for c in range(3):
        assert abs((kept == c).sum() / (labels == c).sum() - 0.4) < 0.01
    assert (kept[0, :5] == 255).all()
    with pytest.raises(ValueError, match="keep"):
        confident_labels(labels, rng.random((50, 40)), keep=0)


def test_reliable_regions_are_where_cam_and_crf_agree():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    probs = rng.random((3, 30, 30)).astype(np.float32)
    seeds = reliable_regions(image, probs, (0, 2, 5))
    known = seeds.labels != 255
    crf = np.array([0, 2, 5])[seeds.scores.argmax(axis=0)]
    assert known.any() and (seeds.labels[known] == crf[known]).all()
    cam = np.array([0, 2, 5])[probs.argmax(axis=0)]
    assert (seeds.labels[known] == cam[known]).all() and known.mean() <= 0.41


def test_cam_seeds_on_a_real_image(data_kit):
    from PIL import Image
    path = sorted((data_kit / "msrc_v2" / "images").glob("*.jpg"))[0]
    image = np.asarray(Image.open(path).convert("RGB"))[::2, ::2]
    model = small_cam_classifier(tuple(range(7, 23)), width=4)
    sizes = {}
    for method in ("reliable", "confident", "crf", "argmax"):
        seeds = cam_seeds(model, image, tags=[9, 12], method=method, scales=(0.5, 1.0))
        assert seeds.labels.shape == image.shape[:2] and seeds.classes == (0, 9, 12)
        assert set(np.unique(seeds.labels)) <= {0, 9, 12, 255}
        sizes[method] = (seeds.labels != 255).sum()
    assert sizes["reliable"] <= sizes["confident"] < sizes["crf"] == sizes["argmax"]
    for method in METHODS:      # no object tag: the whole image is background
        for background in (0, 5):
            none = cam_seeds(model, image, tags=[], method=method, background=background)
            np.testing.assert_array_equal(none.labels, np.full(image.shape[:2], background))
            assert none.classes == (background,) and none.scores.shape == (1, *image.shape[:2])
            assert (none.scores == 1).all()
    with pytest.raises(ValueError, match="method"):
        cam_seeds(model, image, tags=[9], method="best")


def test_espnetv2_cam_classifier_shape_training_and_round_trip(tagged_squares, tmp_path):
    from graphseg.nn.models import ESPNetv2Features, espnetv2_cam_classifier
    model = espnetv2_cam_classifier((1, 2))          # the bundled VOC weights
    assert model.classifier.in_channels == 768 and model.backbone.stride == 8
    assert not any(p.requires_grad for p in model.backbone.parameters())
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert model.cam(x).shape == (1, 2, 8, 12)   # stride 8
    model.train()
    assert not model.backbone.encoder.training       # frozen batch norm
    encoder = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    images, tags = tagged_squares(count=6)
    history = train_cam_classifier(model, images, tags, epochs=3, size=32, batch_size=4,
                                   lr=1e-2, progress=False)
    assert len(history) == 3 and history[-1] < history[0] and model.input_size == 32
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, encoder[key])   # only the classifier trained
    assert multiscale_cam(model, images[0], scales=(1.0,)).shape == (2, 32, 32)
    save_classifier(model, tmp_path / "esp.pt")
    loaded = load_classifier(tmp_path / "esp.pt")    # rebuilt without the .pth file
    assert isinstance(loaded.backbone, ESPNetv2Features) and loaded.backbone.levels == (3, 4)
    assert loaded.input_size == 32 and loaded.classes == (1, 2)
    np.testing.assert_allclose(multiscale_cam(loaded, images[0], scales=(1.0,)),
                               multiscale_cam(model, images[0], scales=(1.0,)),
                               rtol=1e-4, atol=1e-5)
    coarse = espnetv2_cam_classifier((1,), weights=None, levels=(4,))
    assert coarse.classifier.in_channels == 512 and coarse.backbone.stride == 16
    with pytest.raises(ValueError, match="levels"):
        espnetv2_cam_classifier((1,), weights=None, levels=(5,))
    with pytest.raises(FileNotFoundError):
        espnetv2_cam_classifier((1,), weights=tmp_path / "missing.pth")


def test_release_regions():
    from graphseg.seeds import release_regions
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    cam = np.zeros((2, 30, 30), dtype=np.float32)
    cam[0, 5:15, 5:15] = 1.0
    cam[1, 18:28, 15:28] = 2.0
    probs, ids = cam_probabilities(cam, tags=[4, 7], classes=(4, 7))
    seeds = release_regions(image, probs, ids)
    assert seeds.classes == (0, 4, 7) and seeds.scores.shape == (3, 30, 30)
    assert set(np.unique(seeds.labels)) <= {0, 4, 7, 255}
    # flat CAMs: the top-40% cut keeps each whole square (all tie), and both CRFs agree
    expected = np.zeros((30, 30), dtype=np.uint8)
    expected[5:15, 5:15], expected[18:28, 15:28] = 4, 7
    np.testing.assert_array_equal(seeds.labels, expected)
    assert cam_seeds(small_cam_classifier((4, 7), width=4), image, [4], method="release",
                     scales=(1.0,)).labels.shape == (30, 30)
    with pytest.raises(ValueError, match="threshold"):
        release_regions(image, probs, ids, threshold=2)
