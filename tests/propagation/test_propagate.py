"""graphseg.propagation.propagate: weak annotations of one photo to dense labels."""
import importlib

import cv2
import numpy as np
import pytest
import torch

from graphseg.data import GrabCutDataset, sample_root
from graphseg.metrics import object_iou
from graphseg.nn.backbones import ESPNetv2Encoder
from graphseg.nn.models import small_cam_classifier
from graphseg.propagation import (
    A2GNNConfig,
    backbone_features,
    box_instances,
    grabcut_fusion,
    node_features,
    propagate,
    walk_seeds,
)
from graphseg.seeds import box_seeds

FAST = dict(stage1_epochs=15, stage2_epochs=10, hidden_channels=16)


def small_sample(name="teddy", scale=0.4):
    """A bundled GrabCut photo shrunk to ``scale`` with its mask, box and scribbles."""
    dataset = GrabCutDataset(sample_root() / "grabcut")
    sample = dataset.load(name)
    h, w = sample.image.shape[:2]
    size = (round(w * scale), round(h * scale))
    image = cv2.resize(sample.image, size, interpolation=cv2.INTER_AREA)
    label = cv2.resize(sample.label, size, interpolation=cv2.INTER_NEAREST)
    scribbles = cv2.resize(dataset.scribbles(name, 1), size, interpolation=cv2.INTER_NEAREST)
    box = np.round(sample.boxes.astype(float) * [1, scale, scale, scale, scale]).astype(int)
    return image, label, box, scribbles


def test_box_instances_smaller_box_owns_overlap():
    labels = np.zeros((4, 10), np.uint8)
    labels[:, 2:9] = 1
    labels[0, 5] = 2
    out = box_instances(labels, [[1, 0, 0, 7, 4], [1, 5, 0, 10, 4], [2, 4, 0, 6, 2]])
    assert out.dtype == np.uint16
    assert out[1].tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2, 0]
    assert out[0, 5] == 3 and out[0, 4] == 1  # class 2 pixel only in box 3; box 1 keeps its own


def test_boxes_on_a_real_photo_beat_the_box():
    image, label, box, _ = small_sample()
    out = propagate(image, box, "boxes", 2, config=A2GNNConfig.release("boxes", **FAST),
                    features="colour", seed=0)
    filled = np.zeros_like(label)
    _, x1, y1, x2, y2 = box[0]
    filled[y1:y2, x1:x2] = 1
    assert out.labels.shape == label.shape and out.probs.shape == (2, *label.shape)
    assert np.allclose(out.probs.sum(axis=0), 1, atol=1e-3)
    assert object_iou(out.labels, label) > object_iou(filled, label) + 0.3
    assert set(np.unique(out.instances)) <= {0, 1}
    assert np.array_equal(out.instances == 1, (out.labels == 1) & (filled == 1))
    assert set(out.seconds) == {"seeds", "features", "propagation", "postprocess", "total"}


def test_seeded_runs_repeat():
    image, _, box, _ = small_sample(scale=0.25)
    config = A2GNNConfig.release("boxes", **FAST)
    a = propagate(image, box, "boxes", 2, config=config, features="colour", crf=None, seed=3)
    b = propagate(image, box, "boxes", 2, config=config, features="colour", crf=None, seed=3)
    assert np.array_equal(a.probs, b.probs)


@pytest.mark.parametrize("propagator, layer", [("gnn", "a2gnn"), ("gnn", "gcn"),
                                               ("random-walk", None)])
def test_scribbles_every_propagator(propagator, layer):
    image, label, _, scribbles = small_sample()
    out = propagate(image, scribbles, "scribbles", 2, propagator=propagator, layer=layer,
                    config=A2GNNConfig.release("scribbles", **FAST), features="colour")
    known = out.seeds != 255
    assert known.any() and (out.seeds[known] == label[known]).mean() > 0.95
    assert object_iou(out.labels, label) > 0.6


def test_random_walk_as_a_layer_is_deprecated_and_still_walks():
    image, _, _, scribbles = small_sample(scale=0.25)
    config = A2GNNConfig.release("scribbles", **FAST)
    walked = propagate(image, scribbles, "scribbles", 2, propagator="random-walk",
                       config=config, features="colour", crf=None)
    with pytest.warns(DeprecationWarning, match='propagator="random-walk"'):
        old = propagate(image, scribbles, "scribbles", 2, layer="random-walk", config=config,
                        features="colour", crf=None)
    assert np.array_equal(walked.probs, old.probs)
    with pytest.raises(ValueError, match="propagator must be one of"):
        propagate(image, scribbles, "scribbles", 2, propagator="walk", features="colour")
    with pytest.raises(ValueError, match="layer must be one of"):
        propagate(image, scribbles, "scribbles", 2, layer="random walk", features="colour")


def test_points_and_tags_with_a_cam():
    image, label, _, _ = small_sample(scale=0.25)
    points = np.full(label.shape, 255, np.uint8)
    ys, xs = np.nonzero(label == 1)
    points[ys[len(ys) // 2], xs[len(xs) // 2]] = 1
    points[2, 2] = 0
    cam = small_cam_classifier(classes=(1,), width=4)
    config = A2GNNConfig.release("points", **FAST)
    for kind, annotation in (("points", points), ("tags", [1])):
        plain, fused = (propagate(image, annotation, kind, 3, config=config, cam=cam,
                                  features="colour", crf=None, fusion=fusion)
                        for fusion in (0.0, 3.0))
        for out in (plain, fused):
            assert out.probs.shape == (3, *label.shape)
            assert out.probs[2].max() < 1e-6  # class 2 is neither tagged nor pointed at
            assert out.instances is None
        assert not np.allclose(plain.probs, fused.probs)


def test_walk_seeds_keeps_regions_apart():
    edge = torch.zeros(1, 6, 8)
    edge[:, :, 4:] = 5.0  # a strong edge between the halves
    labels = torch.full((48,), 255)
    labels[0], labels[47] = 0, 1
    probs = walk_seeds(labels, 2, edge, radius=2)
    assert torch.allclose(probs.sum(dim=1), torch.ones(48))
    side = probs.argmax(dim=1).view(6, 8)
    assert (side[:, :4] == 0).all() and (side[:, 4:] == 1).all()


def test_node_features():
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    assert node_features(image, "colour").shape == (10, 7, 9)
    features = backbone_features(ESPNetv2Encoder().eval(), image, (7, 9))
    assert features.shape == (128 + 256 + 512, 7, 9) and features.min() >= 0
    with pytest.raises(ValueError, match="levels = 5"):
        backbone_features(ESPNetv2Encoder().eval(), image, (7, 9), levels=5)
    with pytest.raises(ValueError, match="features must be one of"):
        node_features(image, "resnet")


def test_bundled_espnetv2_features_run():
    image, _, _, _ = small_sample(scale=0.25)
    features = node_features(image)
    assert features.shape == (896, -(-image.shape[0] // 8), -(-image.shape[1] // 8))
    assert torch.isfinite(features).all() and features.sum() > 0


def test_bad_input():
    image, label, box, scribbles = small_sample(scale=0.25)
    with pytest.raises(ValueError, match="CAM classifier"):
        propagate(image, [1], "tags", 2)
    with pytest.raises(ValueError, match="no scribbles seed"):
        propagate(image, np.full(label.shape, 255, np.uint8), "scribbles", 2, features="colour")
    with pytest.raises(ValueError, match="not below num_classes"):
        propagate(image, [[4, *box[0, 1:]]], "boxes", 3, features="colour")
    with pytest.raises(ValueError, match="kind"):
        propagate(image, box, "clicks", 2)
    with pytest.raises(ValueError, match="layer"):
        propagate(image, box, "boxes", 2, layer="mlp")
    with pytest.raises(ValueError, match="scribbles"):
        propagate(image, scribbles[:-1], "scribbles", 2)
    with pytest.raises(ValueError, match="outside"):
        propagate(image, [[1, 1000, 1000, 1100, 1100]], "boxes", 2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_labels():
    image, label, box, _ = small_sample(scale=0.25)
    config = A2GNNConfig.release("boxes", **FAST)
    cpu = propagate(image, box, "boxes", 2, config=config, features="colour", crf=None)
    gpu = propagate(image, box, "boxes", 2, config=config, features="colour", crf=None,
                    device="cuda")
    assert (cpu.labels == gpu.labels).mean() > 0.98


def test_affinity_network_gives_features_and_edges():
    from graphseg.nn.backbones import SmallCNN
    from graphseg.nn.models import AffinityNet

    image, label, box, _ = small_sample(scale=0.25)
    net = AffinityNet(SmallCNN(width=8, seed=0), affinity_channels=28, seed=0)
    out = propagate(image, box, "boxes", 2, affinity=net, crf=None,
                    config=A2GNNConfig.release("boxes", **FAST))
    assert out.labels.shape == label.shape and np.isfinite(out.probs).all()
    with pytest.raises(ValueError, match="affinity network's is 8"):
        propagate(image, box, "boxes", 2, affinity=net, stride=4)


def test_boxes_pixels_outside_every_box_are_background(monkeypatch):
    """Box supervision: whatever the propagation says outside the boxes (here: object
    everywhere), those pixels are background, so labels agree with the instances."""
    module = importlib.import_module("graphseg.propagation.propagate")

    def everywhere_object(image, seeds, num_classes, **kwargs):
        probs = np.zeros((num_classes, *image.shape[:2]), np.float32)
        probs[1] = 1.0
        return None, probs

    monkeypatch.setattr(module, "segment_image", everywhere_object)
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:30, 10:50] = 200
    boxes = [[1, 8, 6, 30, 34], [1, 26, 12, 52, 32]]
    out = propagate(image, boxes, "boxes", 3, features="colour", crf=None, background=2)
    inside = np.zeros((40, 60), bool)
    inside[6:34, 8:30] = inside[12:32, 26:52] = True
    assert (out.labels[~inside] == 2).all() and (out.labels[inside] == 1).all()
    assert (out.probs[2][~inside] == 1).all() and (out.probs[:2][:, ~inside] == 0).all()
    assert np.array_equal(out.instances > 0, out.labels == 1)


def test_max_side_works_small_and_writes_full_size():
    image, label, box, _ = small_sample(scale=0.5)
    h, w = label.shape
    out = propagate(image, box, "boxes", 2, config=A2GNNConfig.release("boxes", **FAST),
                    features="colour", max_side=120, crf=None)
    assert out.labels.shape == (h, w) and out.probs.shape == (2, h, w)
    assert out.seeds.shape == (h, w) and out.instances.shape == (h, w)
    filled = np.zeros_like(label)
    _, x1, y1, x2, y2 = box[0]
    filled[y1:y2, x1:x2] = 1
    assert not out.labels[filled == 0].any()  # outside the full-size box: background
    assert np.array_equal(out.instances == 1, (out.labels == 1) & (filled == 1))
    assert object_iou(out.labels, label) > object_iou(filled, label)
    # a photo within max_side is worked on as it is
    image, box = image[::2, ::2].copy(), box // [1, 2, 2, 2, 2]
    config = A2GNNConfig.release("boxes", stage1_epochs=2, stage2_epochs=2, hidden_channels=8)
    h, w = image.shape[:2]
    same = propagate(image, box, "boxes", 2, config=config, features="colour", crf=None)
    assert np.array_equal(same.labels, propagate(image, box, "boxes", 2, config=config,
                                                 features="colour", crf=None,
                                                 max_side=max(h, w)).labels)
    with pytest.raises(ValueError, match="max_side must be >= 16"):
        propagate(image, box, "boxes", 2, config=config, max_side=8)


def test_max_side_keeps_every_click():
    module = importlib.import_module("graphseg.propagation.propagate")
    points = np.full((300, 400), 255, np.uint8)
    points[7, 9], points[150, 200], points[299, 399] = 0, 1, 2
    points[100, 100], points[100, 101] = 1, 2  # one small pixel, two classes: unlabelled
    small, seeds = module._shrink(np.zeros((300, 400, 3), np.uint8), points, "points", 40)
    assert small.shape == (30, 40, 3) and seeds.shape == (30, 40)
    assert (seeds[0, 0], seeds[15, 20], seeds[29, 39], seeds[10, 10]) == (0, 1, 2, 255)
    assert (seeds != 255).sum() == 3
    _, boxes = module._shrink(np.zeros((300, 400, 3), np.uint8),
                              np.array([[1, 5, 5, 395, 298]]), "boxes", 40)
    assert boxes.tolist() == [[1, 0, 0, 40, 30]]  # rounded outward, clipped


def test_grabcut_fusion_against_the_odds_it_multiplies():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=(4, 5)).transpose(2, 0, 1).astype(np.float32)
    grabcut = np.stack([rng.choice([0.0, 0.5, 1.0], size=(4, 5))])
    fused = grabcut_fusion(probs, grabcut, [2], prior=0.8)
    factor = np.where(grabcut[0] == 1, 4.0, np.where(grabcut[0] == 0, 0.25, 1.0))
    expected = probs.astype(np.float64).copy()
    expected[2] *= factor
    expected /= expected.sum(axis=0)
    np.testing.assert_allclose(fused, expected, rtol=1e-5)
    np.testing.assert_allclose(grabcut_fusion(probs, grabcut, [2], prior=0.5), probs,
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"grabcut_prior must be in \(0, 1\)"):
        grabcut_fusion(probs, grabcut, [2], prior=1.0)
    with pytest.raises(ValueError, match=r"grabcut must have shape \(2, 4, 5\)"):
        grabcut_fusion(probs, grabcut, [1, 2])


def test_grabcut_prior_moves_box_results_towards_grabcut(data_kit):
    sample = GrabCutDataset(data_kit / "grabcut").load("memorial")
    config = A2GNNConfig.default("boxes", hidden_channels=16, stage1_epochs=5,
                                 stage2_epochs=5)
    off, on = (propagate(sample.image, sample.boxes, "boxes", 2, config=config,
                         features="colour", grabcut_prior=p, crf=None) for p in (0.5, 0.9))
    answer = box_seeds(sample.image, sample.boxes).scores[0] == 1
    agree = [float(((r.labels == 1) == answer).mean()) for r in (off, on)]
    assert agree[1] > agree[0], agree
