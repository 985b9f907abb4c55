import numpy as np
import pytest

from graphseg.data import (
    MSRC_STUFF,
    ClassPhotos,
    Episode,
    EpisodeSampler,
    MSRCDataset,
    fold_classes,
    sample_episodes,
    write_label_png,
)
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import write_png


def synthetic(classes=6, per_class=(2, 3, 4, 5, 6, 7), size=24, seed=0):
    """Photos of ``classes`` classes, photo counts ``per_class``; each photo holds its
    class in a square (>= 64 pixels), a 1-pixel void border, and every third photo a
    second class too small to count (10 pixels)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for cls in range(1, classes + 1):
        for _ in range(per_class[cls - 1]):
            label = np.zeros((size, size), np.uint8)
            y, x = rng.integers(1, size - 11, 2)
            label[y:y + 10, x:x + 10] = cls
            if len(labels) % 3 == 0:
                label[-3, 1:11] = cls % classes + 1  # 10 pixels < min_pixels
            label[0] = IGNORE
            images.append(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
            labels.append(label)
    return ClassPhotos(images, labels)


@pytest.mark.parametrize("count", [16, 10, 23, 20])
@pytest.mark.parametrize("folds", [4, 3])
def test_folds_are_disjoint_contiguous_and_cover_every_class(count, folds):
    ids = list(range(1, count + 1))[::-1]  # any order: the ids are sorted first
    tests = []
    for fold in range(folds):
        train, test = fold_classes(ids, fold, folds=folds)
        assert not set(train) & set(test)
        assert sorted(train + test) == sorted(ids)
        assert test == list(range(test[0], test[-1] + 1))  # contiguous
        tests.append(test)
    assert sorted(c for t in tests for c in t) == sorted(ids)  # each class tested once
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_fold_sizes_follow_the_documented_rule():
    assert [len(fold_classes(range(1, 17), f)[1]) for f in range(4)] == [4, 4, 4, 4]
    assert [fold_classes(range(1, 11), f)[1] for f in range(4)] == [
        [1, 2, 3], [4, 5, 6], [7, 8], [9, 10]]
    # Pascal-5i: fold i tests the VOC classes 5i+1 .. 5i+5
    assert fold_classes(range(1, 21), 2) == (
        list(range(1, 11)) + list(range(16, 21)), list(range(11, 16)))
    assert fold_classes([3, 7, 9], 1, folds=3) == ([3, 9], [7])


def test_fold_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"fold must be in 0\.\.3"):
        fold_classes(range(1, 17), 4)
    with pytest.raises(ValueError, match=r"fold must be in 0\.\.3"):
        fold_classes(range(1, 17), -1)
    with pytest.raises(ValueError, match="folds=5 is more than the 3 classes"):
        fold_classes([1, 2, 3], 0, folds=5)
    with pytest.raises(ValueError, match="duplicates"):
        fold_classes([1, 2, 2, 3], 0, folds=2)
    with pytest.raises(TypeError, match="fold must be an int"):
        fold_classes([1, 2, 3], 0.5, folds=2)


def test_class_index_counts_min_pixels_and_never_background_or_void():
    photos = synthetic()
    assert sorted(photos.classes) == [1, 2, 3, 4, 5, 6]
    assert [len(v) for v in photos.classes.values()] == [2, 3, 4, 5, 6, 7]
    for cls, indices in photos.classes.items():
        assert indices == sorted(indices)
        for i in indices:
            assert (photos.labels[i] == cls).sum() >= 64
    # the 10-pixel extras do not count; with min_pixels=10 they do
    loose = ClassPhotos(photos.images, photos.labels, min_pixels=10)
    assert sum(map(len, loose.classes.values())) > sum(map(len, photos.classes.values()))
    assert 0 not in loose.classes and IGNORE not in loose.classes


def test_mask_is_binary_with_void_kept():
    label = np.array([[0, 3, 3], [255, 2, 3]], np.uint8)
    photos = ClassPhotos([np.zeros((2, 3, 3), np.uint8)], [label], min_pixels=1)
    mask = photos.mask(0, 3)
    assert mask.dtype == np.uint8
    assert mask.tolist() == [[0, 1, 1], [255, 0, 1]]
    assert photos.classes == {2: [0], 3: [0]}


def test_shape_mismatch_names_the_photo():
    with pytest.raises(ValueError, match="cat: label map is 4x3 but the image is 5x3"):
        ClassPhotos([np.zeros((3, 5, 3), np.uint8)], [np.zeros((3, 4), np.uint8)],
                    names=["cat"])
    with pytest.raises(ValueError, match="photo 0: label map must be an .H, W. uint8"):
        ClassPhotos([np.zeros((3, 5, 3), np.uint8)], [np.zeros((3, 5), np.int64)])
    with pytest.raises(ValueError, match="photo 1: image must be"):
        ClassPhotos([np.zeros((3, 5, 3), np.uint8), np.zeros((3, 5), np.uint8)],
                    [np.zeros((3, 5), np.uint8)] * 2)


@pytest.mark.parametrize("shots", [1, 3, 5])
def test_episodes_keep_the_query_out_of_distinct_supports_that_hold_the_class(shots):
    photos = synthetic()
    classes = [1, 2, 3, 4, 5, 6]
    episodes = sample_episodes(photos, classes, shots=shots, count=600, seed=1)
    assert len(episodes) == 600 and all(isinstance(e, Episode) for e in episodes)
    eligible = {c for c in classes if len(photos.classes[c]) > shots}
    assert {e.cls for e in episodes} == eligible  # every eligible class drawn, no other
    for e in episodes:
        assert len(e.support) == shots and len(set(e.support)) == shots
        assert e.query not in e.support
        for photo in (*e.support, e.query):
            assert (photos.mask(photo, e.cls) == 1).sum() >= photos.min_pixels


def test_classes_are_drawn_uniformly():
    photos = synthetic()
    episodes = sample_episodes(photos, [2, 6], count=2000, seed=0)
    share = np.mean([e.cls == 2 for e in episodes])
    assert 0.45 < share < 0.55  # not by photo count (3 against 7)


def test_test_episodes_are_seeded():
    photos = synthetic()
    a = sample_episodes(photos, [1, 3, 5], shots=1, count=200, seed=7)
    assert a == sample_episodes(photos, [5, 3, 1], shots=1, count=200, seed=7)
    assert a != sample_episodes(photos, [1, 3, 5], shots=1, count=200, seed=8)
    assert a[:50] == sample_episodes(photos, [1, 3, 5], shots=1, count=50, seed=7)


def test_classes_with_too_few_photos_are_left_out_or_named():
    photos = synthetic()
    # class 1 has 2 photos: fine for 1-shot, not for 2-shot
    assert {e.cls for e in sample_episodes(photos, [1, 2], shots=2, count=100)} == {2}
    with pytest.raises(ValueError, match=r"6 photos a 5-shot episode.*class 1: 2 photos, "
                                         r"class 2: 3 photos, class 9: 0 photos"):
        sample_episodes(photos, [1, 2, 9], shots=5)
    with pytest.raises(ValueError, match="0 is background"):
        sample_episodes(photos, [0, 1])
    with pytest.raises(ValueError, match="classes is empty"):
        EpisodeSampler(photos, [])
    with pytest.raises(ValueError, match="shots must be >= 1"):
        sample_episodes(photos, [1], shots=0)


def test_sampler_is_reproducible_per_epoch_and_index():
    photos = synthetic()
    sampler = EpisodeSampler(photos, [3, 4, 5, 6], shots=2, episodes_per_epoch=50, seed=3)
    assert len(sampler) == 50 and sampler.classes == [3, 4, 5, 6]
    again = EpisodeSampler(photos, [3, 4, 5, 6], shots=2, episodes_per_epoch=50, seed=3)
    epoch0 = [sampler.episode(i, 0) for i in range(50)]
    # any order of access (a resumed run starts mid-epoch) gives the same episodes
    assert [again.episode(i, 0) for i in reversed(range(50))][::-1] == epoch0
    assert [sampler.episode(i, 1) for i in range(50)] != epoch0
    other = EpisodeSampler(photos, [3, 4, 5, 6], shots=2, episodes_per_epoch=50, seed=4)
    assert [other.episode(i, 0) for i in range(50)] != epoch0
    for e in epoch0 + [sampler.episode(i, 5) for i in range(50)]:
        assert e.cls in (3, 4, 5, 6) and e.query not in e.support and len(set(e.support)) == 2
        assert all((photos.mask(p, e.cls) == 1).any() for p in (*e.support, e.query))
    with pytest.raises(IndexError, match="an epoch has 50 episodes"):
        sampler.episode(50, 0)


def _write_class(folder, count, size=20, flat=True, seed=0):
    rng = np.random.default_rng(seed)
    for n in range(1, count + 1):
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        mask[2:14, 3:15] = 255
        write_png(folder / ("" if flat else "images") / f"{n}.jpg", image)
        write_label_png(folder / ("" if flat else "masks") / f"{n}.png", mask)


@pytest.mark.parametrize("flat", [True, False])
def test_class_folders_in_either_layout(tmp_path, flat):
    for i, name in enumerate(["zebra", "ant", "eiffel"]):
        _write_class(tmp_path / name, 2 + i, flat=flat, seed=i)
    photos = ClassPhotos.from_class_folders(tmp_path)
    assert photos.class_names == ("background", "ant", "eiffel", "zebra")
    assert {c: len(v) for c, v in photos.classes.items()} == {1: 3, 2: 4, 3: 2}
    assert photos.names[0] == "ant/1"
    for cls, indices in photos.classes.items():
        for i in indices:
            assert set(np.unique(photos.labels[i]).tolist()) == {0, cls}
            assert int((photos.labels[i] == cls).sum()) == 144
    # one class folder as the root: the only class
    single = ClassPhotos.from_class_folders(tmp_path / "eiffel")
    assert single.class_names == ("background", "eiffel") and single.classes == {1: [0, 1, 2, 3]}


def test_class_folder_errors_name_the_file(tmp_path):
    _write_class(tmp_path / "cat", 2)
    (tmp_path / "cat" / "2.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"cat[/\\]2\.jpg: no mask .*2\.png"):
        ClassPhotos.from_class_folders(tmp_path)
    write_label_png(tmp_path / "cat" / "2.png", np.zeros((10, 20), np.uint8))
    with pytest.raises(ValueError, match=r"2\.png: mask is 20x10 but 2\.jpg is 20x20"):
        ClassPhotos.from_class_folders(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    (tmp_path / "cat" / "2.png").unlink()
    with pytest.raises(ValueError, match="empty: no photos"):
        ClassPhotos.from_class_folders(tmp_path / "empty")
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(ValueError, match="nothing: no photos"):
        ClassPhotos.from_class_folders(nothing)


def test_kit_fss1000_eiffel_is_one_class_of_five(data_kit):
    photos = ClassPhotos.from_class_folders(data_kit / "fss1000_eiffel")
    assert len(photos) == 5 and photos.class_names == ("background", "fss1000_eiffel")
    assert photos.classes == {1: [0, 1, 2, 3, 4]}
    for i in range(5):
        assert photos.images[i].shape == (224, 224, 3)
        assert set(np.unique(photos.mask(i, 1)).tolist()) == {0, 1}
    episodes = sample_episodes(photos, [1], shots=1, count=20)
    assert all(e.query not in e.support for e in episodes)
    assert len({e.query for e in episodes}) > 1


def test_kit_msrc_val_with_stuff_merged_into_background(data_kit):
    dataset = MSRCDataset(data_kit / "msrc_v2", "val")
    table = np.arange(256, dtype=np.uint8)
    objects = [c for c, name in enumerate(dataset.class_names) if name not in MSRC_STUFF]
    assert len(objects) == 16
    table[list(dataset.background_classes)] = 0
    table[objects] = np.arange(1, 17)
    photos = ClassPhotos.from_dataset(dataset, lookup=table)
    assert len(photos) == len(dataset) == 59
    assert photos.class_names[0] == "background" and len(photos.class_names) == 17
    assert photos.class_names[1:] == tuple(dataset.class_names[c] for c in objects)
    assert set(photos.classes) <= set(range(1, 17)) and 0 not in photos.classes
    assert all(set(np.unique(lab).tolist()) <= set(range(17)) | {IGNORE}
               for lab in photos.labels)
    train, test = fold_classes(range(1, 17), 0)
    available = [c for c in test if len(photos.classes.get(c, ())) >= 2]
    assert available
    episodes = sample_episodes(photos, test, shots=1, count=200, seed=0)
    for e in episodes:
        assert e.cls in available and e.cls != 0
        assert all((photos.mask(p, e.cls) == 1).sum() >= 64 for p in (*e.support, e.query))
    # without the lookup the stuff classes (building = 0 aside) are classes of their own
    raw = ClassPhotos.from_dataset(dataset)
    assert set(raw.classes) & (set(dataset.background_classes) - {0})
