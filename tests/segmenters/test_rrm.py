import json

import numpy as np
import pytest
import torch

from graphseg.data.torch_dataset import SegmentationSet
from graphseg.segmenters import RRMSegmenter
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import read_image, read_label_map

CLASSES = ("background", "red", "blue")


def test_reliable_labels_follow_the_cam_inside_the_photo_only(tiny):
    segmenter = RRMSegmenter(CLASSES, **tiny)
    size = 24
    rgb = torch.full((2, size, size, 3), 120, dtype=torch.uint8)
    rgb[0, 4:12, 4:12] = torch.tensor([220, 30, 30], dtype=torch.uint8)
    valid = torch.zeros(2, size, size, dtype=torch.bool)
    valid[0, :20, :18] = True  # padded right and below, as SegmentationSet pads
    valid[1] = True
    cam = torch.zeros(2, 2, size, size)
    cam[0, 0, 4:12, 4:12] = 5.0  # class 1 (red) responds on its square
    batch = {"image": torch.zeros(2, 3, size, size), "rgb": rgb, "valid": valid,
             "label": torch.full((2, size, size), IGNORE), "tags": [(1,), ()]}
    labels = segmenter.reliable_labels(cam, batch)
    assert (labels[0][~valid[0]] == IGNORE).all()
    inside = labels[0, 4:12, 4:12]
    assert (inside[inside != IGNORE] == 1).any() and not (inside == 2).any()
    assert (labels[0, 14:20, :] != 1).all()
    assert (labels[1] == 0).all()  # no tag: all background


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["rfam", "plain"])
def test_a_tiny_fit_from_tags_learns_the_squares(squares_folder, one_thread, attention):
    """Tags only: the CAMs of the bundled ESPNetv2 encoder find the squares (a CNN from
    scratch answers "is there red?" from anywhere in the photo, so its CAMs do not
    localise), the reliable regions teach the segmentation branch."""
    root = squares_folder(count=24, size=96)
    tags = {n: tuple(t) for n, t in json.loads((root / "tags.json").read_text()).items()}
    data = SegmentationSet.from_folders(root / "images", tags=tags)
    segmenter = RRMSegmenter(CLASSES, backbone="espnetv2", crop=96, batch_size=4, lr=1e-4,
                             head_lr=100.0, attention=attention, epochs=16, warmup_epochs=8,
                             seed=0)
    history = segmenter.fit(data, progress=False)
    images = [read_image(root / "images" / f"{n}.png") for n in data.names]
    labels = [read_label_map(root / "labels" / f"{n}.png") for n in data.names]
    before = RRMSegmenter(CLASSES, backbone="espnetv2", seed=0).evaluate(images, labels)
    miou = segmenter.evaluate(images, labels).miou()
    assert len(history) == 16
    assert before.miou() < 0.3 and miou > 0.55, (before.miou(), miou)


def test_unknown_tags_are_refused_before_training(squares_folder, tiny):
    root = squares_folder(count=3)
    data = SegmentationSet.from_folders(root / "images", tags={"sq00": (1, 7)})
    with pytest.raises(ValueError, match=r"sq00: tags \[7\] are not foreground classes"):
        RRMSegmenter(CLASSES, **tiny).fit(data, progress=False)


def test_a_zero_weight_removes_its_loss(squares_folder, one_thread, tiny):
    """With every segmentation loss weighted 0 the segmentation heads get no gradient
    (their weights stay as initialised); any one of them switched on moves them."""
    root = squares_folder(count=4)
    data = SegmentationSet.from_folders(root / "images", tags={
        "sq00": (1,), "sq01": (2,), "sq02": (1, 2), "sq03": (1,)})
    off = {"ce_weight": 0.0, "energy_weight": 0.0, "bcd_weight": 0.0}
    heads = ("local_conv", "local_out", "global_attention", "global_conv", "global_out")

    def moved(**weights):
        settings = dict(tiny, epochs=1, warmup_epochs=0, weight_decay=0.0, **weights)
        segmenter = RRMSegmenter(CLASSES, **settings)
        start = {k: v.clone() for k, v in segmenter.net.state_dict().items()}
        segmenter.fit(data, progress=False)
        assert np.isfinite(segmenter.history[0])
        return {k.split(".")[0] for k, v in segmenter.net.state_dict().items()
                if not torch.equal(v, start[k])}

    assert not moved(**off) & set(heads)
    assert "classifier" not in moved(**off, class_weight=0.0)
    # CE and energy act on the logits; BCD on the features before the output convs
    for name, reached in (("ce_weight", {"local_out", "global_out"}),
                          ("energy_weight", {"local_out", "global_out"}),
                          ("bcd_weight", {"local_conv", "global_attention"})):
        assert reached <= moved(**{**off, name: 1.0}), name
