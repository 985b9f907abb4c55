import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphseg.data.torch_dataset import SegmentationSet
from graphseg.losses import (
    balanced_cross_entropy,
    confident_labels,
    dfr_loss,
    feature_distance_loss,
    feature_regularized_loss,
    window_kernel,
)
from graphseg.segmenters import DFRSegmenter, load_segmenter
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import read_image, read_label_map

CLASSES = ("background", "red", "blue")


@pytest.fixture
def small(tiny):
    return dict(tiny, channels=16, feature_dim=16)


def _batch(root, names, crop=40):
    data = SegmentationSet.from_folders(root / "images", labels=root / "scribbles", crop=crop)
    return data.batch(list(range(len(names))), epoch=0)


def test_the_loss_is_eq_4_1_term_by_term(squares_folder, small, one_thread):
    """The total is pce + l1 dfr + l2 (fd + fr), each term recomputed here from the
    network's output with the public losses (the dynamic kernel through ``dfr_loss``,
    which builds it in one go rather than as the static kernel times a feature one)."""
    root = squares_folder(count=4)
    batch = _batch(root, range(4))
    settings = dict(small, dfr_weight=0.3, feature_weight=0.2, fd_weight=1.5, fr_weight=0.5,
                    gamma=0.4, radius=2)
    segmenter = DFRSegmenter(CLASSES, **settings)
    net = segmenter.net.train()
    torch.manual_seed(0)  # dropout
    total, logs = segmenter.loss(net, batch, epoch=0)
    torch.manual_seed(0)
    out = net(batch["image"])
    grid = out.seg_logits.shape[-2:]
    logits = F.interpolate(out.seg_logits, size=batch["label"].shape[-2:], mode="bilinear",
                           align_corners=False)
    pce = F.cross_entropy(logits, batch["label"], ignore_index=IGNORE)
    probs = out.seg_logits.softmax(dim=1)
    image = F.interpolate(batch["image"], size=grid, mode="area")
    valid = F.interpolate(batch["valid"][:, None].float(), size=grid, mode="nearest")[:, 0] > 0
    dfr = dfr_loss(probs, image, out.features, radius=2, valid=valid)
    confident = confident_labels(probs, gamma=0.4, valid=valid)
    assert 0 < (confident != IGNORE).float().mean() < 1
    fd = feature_distance_loss(out.features, confident, radius=2)
    static = window_kernel([(image, 0.5)], radius=2, sigma_xy=6.0)
    fr = feature_regularized_loss(out.features, static, radius=2, mask=confident != IGNORE,
                                  valid=valid)
    expected = pce + 0.3 * dfr + 0.2 * (1.5 * fd + 0.5 * fr)
    assert fd > 0 and fr > 0 and dfr > 0
    assert torch.allclose(total, expected, rtol=1e-5), (total, expected)
    assert logs["dfr"] == pytest.approx(dfr.item(), rel=1e-5)
    # the kernel's features are constants: the consistency head's gradient is l2's only
    head = [p for n, p in net.named_parameters() if "consistency" in n]
    assert head
    grads = torch.autograd.grad(total, head, retain_graph=True)
    direct = torch.autograd.grad(0.2 * (1.5 * fd + 0.5 * fr), head)
    for a, b in zip(grads, direct):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_the_ablations_drop_their_terms(squares_folder, small, one_thread):
    root = squares_folder(count=2)
    batch = _batch(root, range(2))
    pce = DFRSegmenter(CLASSES, **small, dfr_weight=0.0, consistency_head=False,
                       kernel="static")
    assert not any("consistency" in n for n, _ in pce.net.named_parameters())
    torch.manual_seed(0)  # dropout
    total, logs = pce.loss(pce.net.train(), batch, 0)
    assert set(logs) == {"pce"}
    torch.manual_seed(0)
    logits = F.interpolate(pce.net(batch["image"]).seg_logits, size=(40, 40),
                           mode="bilinear", align_corners=False)
    assert torch.allclose(total, balanced_cross_entropy(logits, batch["label"],
                                                        balanced=False), rtol=1e-5)
    static = DFRSegmenter(CLASSES, **small, consistency_head=False, kernel="static")
    assert set(static.loss(static.net.train(), batch, 0)[1]) == {"pce", "dfr"}
    full = DFRSegmenter(CLASSES, **small)
    assert set(full.loss(full.net.train(), batch, 0)[1]) == {"pce", "dfr", "fd", "fr",
                                                              "confident"}
    # the static and dynamic kernels differ exactly by the features' factor
    torch.manual_seed(0)
    a = DFRSegmenter(CLASSES, **small, kernel="static", seed=3)
    b = DFRSegmenter(CLASSES, **small, kernel="dynamic", seed=3)
    torch.manual_seed(1)
    la = a.loss(a.net.train(), batch, 0)[1]["dfr"]
    torch.manual_seed(1)
    lb = b.loss(b.net.train(), batch, 0)[1]["dfr"]
    assert lb < la  # the feature factor is <= 1 everywhere and < 1 somewhere


@pytest.mark.parametrize("settings, message", [
    ({"consistency_head": False}, "kernel='dynamic' takes its features"),
    ({"gamma": 1.0}, "gamma must be in"),
    ({"dfr_weight": -1.0}, "dfr_weight must be"),
    ({"feature_weight": math.inf}, "feature_weight must be"),
    ({"kernel": "gaussian"}, "kernel"),
    ({"sigma_feat": 0}, "sigma_feat must be > 0"),
    ({"radius": 0}, "radius"),
])
def test_bad_settings_are_named(settings, message, small):
    with pytest.raises(ValueError, match=message):
        DFRSegmenter(CLASSES, **small, **settings)


def test_tags_only_data_is_refused(squares_folder, small):
    root = squares_folder(count=2)
    data = SegmentationSet.from_folders(root / "images", tags={"sq00": (1,), "sq01": (2,)})
    with pytest.raises(ValueError, match="DFR trains on scribbles"):
        DFRSegmenter(CLASSES, **small).fit(data, progress=False)


def test_save_and_load_predict_the_same(squares_folder, small, tmp_path, one_thread):
    root = squares_folder(count=3)
    data = SegmentationSet.from_folders(root / "images", labels=root / "scribbles")
    segmenter = DFRSegmenter(CLASSES, **small, epochs=1)
    segmenter.fit(data, progress=False)
    segmenter.save(tmp_path / "dfr.pt")
    loaded = load_segmenter(tmp_path / "dfr.pt")
    assert type(loaded) is DFRSegmenter and loaded.config == segmenter.config
    image = read_image(root / "images" / "sq00.png")
    a, pa = segmenter.predict(image)
    b, pb = loaded.predict(image)
    assert np.array_equal(a, b) and np.allclose(pa, pb)


def test_a_resumed_fit_ends_with_the_weights_of_an_uninterrupted_one(squares_folder, small,
                                                                     tmp_path, one_thread):
    root = squares_folder(count=4)

    def data():
        return SegmentationSet.from_folders(root / "images", labels=root / "scribbles")

    settings = dict(small, epochs=3, seed=1, gamma=0.5)
    whole = DFRSegmenter(CLASSES, **settings)
    whole.fit(data(), progress=False)

    def stop_after_first(epoch, loss):
        if epoch == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        DFRSegmenter(CLASSES, **settings).fit(data(), checkpoint=tmp_path / "ckpt.pt",
                                              progress=False, on_epoch_end=stop_after_first)
    resumed = DFRSegmenter(CLASSES, **settings)
    assert len(resumed.fit(data(), checkpoint=tmp_path / "ckpt.pt", progress=False)) == 3
    for (name, a), b in zip(whole.net.state_dict().items(),
                            resumed.net.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_a_tiny_fit_from_scribbles_learns_the_squares(squares_folder, small, one_thread):
    """About 5 % of the pixels scribbled; the full DFR loss."""
    root = squares_folder(count=12)
    data = SegmentationSet.from_folders(root / "images", labels=root / "scribbles")
    segmenter = DFRSegmenter(CLASSES, **small, epochs=40, seed=0)
    images = [read_image(root / "images" / f"{n}.png") for n in data.names]
    labels = [read_label_map(root / "labels" / f"{n}.png") for n in data.names]
    before = segmenter.evaluate(images, labels).miou()
    history = segmenter.fit(data, progress=False)
    after = segmenter.evaluate(images, labels).miou()
    assert len(history) == 40 and history[-1] < history[0] / 2
    assert before < 0.3 and after > 0.6, (before, after)
