import numpy as np
import pytest
import torch

from graphseg.data import write_label_png
from graphseg.data.torch_dataset import SegmentationSet, collate, multi_hot
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import write_png


@pytest.fixture
def halves(tmp_path):
    """Two photos, red left half (label 1) and blue right half (label 2)."""
    for name, (h, w) in (("a", (40, 60)), ("b", (30, 50))):
        image = np.zeros((h, w, 3), np.uint8)
        image[:, : w // 2, 0] = 255
        image[:, w // 2:, 2] = 255
        label = np.full((h, w), 1, np.uint8)
        label[:, w // 2:] = 2
        label[0] = IGNORE
        write_png(tmp_path / "images" / f"{name}.png", image)
        write_label_png(tmp_path / "labels" / f"{name}.png", label)
    return tmp_path


@pytest.mark.parametrize("crop", [48, 100])
def test_labels_follow_the_pixels_through_scale_flip_and_crop(halves, crop):
    data = SegmentationSet.from_folders(halves / "images", labels=halves / "labels", crop=crop,
                                        scale=(0.7, 1.3), seed=3)
    flips = set()
    for epoch in range(6):
        for index in range(len(data)):
            item = data.sample(index, epoch)
            label, rgb = item["label"], item["rgb"].long()
            red = (rgb[..., 0] > 200) & (rgb[..., 2] < 50)
            blue = (rgb[..., 2] > 200) & (rgb[..., 0] < 50)
            assert (label[red & (label != IGNORE)] == 1).all()
            assert (label[blue & (label != IGNORE)] == 2).all()
            assert (label[~item["valid"]] == IGNORE).all()
            assert (item["image"][:, ~item["valid"]] == 0).all()  # padding at the mean
            if crop == 100:  # the whole photo in the crop: is its left half blue?
                flips.add(bool(blue[:, 0].any()))
    if crop == 100:
        assert flips == {True, False}  # both orientations were drawn


def test_draws_are_a_function_of_seed_epoch_and_index(halves):
    def items(seed, epoch):
        data = SegmentationSet.from_folders(halves / "images", labels=halves / "labels",
                                            crop=32, seed=seed)
        return data.batch([1, 0], epoch)

    a, b = items(0, 2), items(0, 2)
    assert all(torch.equal(a[k], b[k]) for k in ("image", "label", "valid"))
    assert not torch.equal(items(0, 3)["image"], a["image"])
    assert not torch.equal(items(1, 2)["image"], a["image"])
    assert a["index"] == [1, 0] and a["image"].shape == (2, 3, 32, 32)


def test_lookup_and_binary_masks(halves, tmp_path):
    lookup = np.arange(256, dtype=np.uint8)
    lookup[2] = 0
    data = SegmentationSet.from_folders(halves / "images", labels=halves / "labels",
                                        lookup=lookup)
    assert set(np.unique(data.read(0)[1])) == {0, 1, IGNORE}
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 10:30] = 255
    write_label_png(tmp_path / "masks" / "a.png", mask)
    binary = SegmentationSet([halves / "images" / "a.png"], labels=[tmp_path / "masks" / "a.png"],
                             binary=True)
    assert np.array_equal(binary.read(0)[1], (mask > 127).astype(np.uint8))


def test_tags_only_and_errors(halves, tmp_path):
    data = SegmentationSet.from_folders(halves / "images", tags={"b": (2,)}, crop=16)
    assert data.names == ["b"] and (data.sample(0, 0)["label"] == IGNORE).all()
    assert data.sample(0, 0)["tags"] == (2,)
    with pytest.raises(ValueError, match="give labels, tags or both"):
        SegmentationSet([halves / "images" / "a.png"])
    with pytest.raises(ValueError, match="labels has 1 entries for 2 images"):
        SegmentationSet([halves / "images" / "a.png"] * 2, labels=[halves / "labels" / "a.png"])
    with pytest.raises(ValueError, match="scale must be a range"):
        SegmentationSet([halves / "images" / "a.png"], tags=[()], scale=(1.2, 0.8))
    with pytest.raises(FileNotFoundError, match="nope"):
        SegmentationSet.from_folders(halves / "images", labels=tmp_path / "nope")
    wrong = tmp_path / "wrong"
    write_label_png(wrong / "a.png", np.zeros((5, 5), np.uint8))
    bad = SegmentationSet([halves / "images" / "a.png"], labels=[wrong / "a.png"])
    with pytest.raises(ValueError, match=r"wrong/a.png: label map is 5x5 but a.png is 60x40"):
        bad.read(0)


def test_multi_hot_and_collate(halves):
    assert multi_hot([(1,), (), (1, 3)], classes=(1, 3)).tolist() == [[1, 0], [0, 0], [1, 1]]
    with pytest.raises(ValueError, match="tag 2 is not one of the classes"):
        multi_hot([(2,)], classes=(1, 3))
    data = SegmentationSet.from_folders(halves / "images", labels=halves / "labels", crop=8)
    batch = collate([data.sample(0, 0), data.sample(1, 0)])
    assert batch["rgb"].dtype == torch.uint8 and batch["label"].dtype == torch.int64
    assert batch["valid"].shape == (2, 8, 8) and batch["tags"] == [(), ()]


@pytest.mark.parametrize("supervision", ["masks", "tags", "boxes", "points", "scribbles"])
def test_from_a_dataset_reader_with_each_kind_of_weak_label(supervision):
    from graphseg.data import MSRCDataset, background_lookup, sample_root

    msrc = MSRCDataset(sample_root() / "msrc_v2")
    lookup = background_lookup(msrc.background_classes)
    data = SegmentationSet.from_dataset(msrc, supervision=supervision, lookup=lookup,
                                        crop=64)
    assert len(data) == len(msrc) and data.names == msrc.names
    image, label = data.read(0)
    truth = lookup[msrc[0].label]
    assert np.array_equal(image, msrc[0].image)
    if supervision == "tags":
        assert label is None and data.tags[0] == msrc[0].tags
        assert data.tags[0] and 0 not in data.tags[0]
    else:
        known = label != IGNORE
        assert known.any()
        if supervision == "masks":
            assert np.array_equal(label, truth)
        elif supervision in ("points", "scribbles"):
            assert known.mean() < 0.2 and (label[known] == truth[known]).all()
        else:  # boxes: every object pixel lies in a box of its class or a smaller one
            assert set(np.unique(label[known])) <= set(np.unique(truth)) | {0}
    item = data.sample(0, epoch=1)
    assert item["image"].shape == (3, 64, 64)
