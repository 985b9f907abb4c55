import numpy as np
import pytest
import torch

from graphseg.data.episodes import ClassPhotos, sample_episodes
from graphseg.segmenters import PrototypeSegmenter, SCLSegmenter, load_few_shot
from graphseg.utils.io import read_image, read_label_map

TINY = {"encoder": "small-cnn", "width": 8, "size": 48, "channels": 8, "episodes": 8,
        "batch_size": 4, "epochs": 2}


@pytest.fixture
def squares(squares_folder):
    root = squares_folder(count=9)
    names = [f"sq{i:02d}" for i in range(9)]
    return ClassPhotos([read_image(root / "images" / f"{n}.png") for n in names],
                       [read_label_map(root / "labels" / f"{n}.png") for n in names],
                       names=names, class_names=("background", "red", "blue"), min_pixels=4)


def _support(photos, i, cls):
    return photos.images[i], photos.mask(i, cls)


def _two_square_photos(count=24, size=96, seed=0):
    """Every photo: grey noise with two squares of two of three colours (classes 1-3)."""
    rng = np.random.default_rng(seed)
    colours = {1: (220, 30, 30), 2: (30, 30, 220), 3: (30, 200, 30)}
    images, labels = [], []
    for i in range(count):
        image = rng.normal(128, 12, (size, size, 3)).clip(0, 255).astype(np.uint8)
        label = np.zeros((size, size), np.uint8)
        pair = [(1, 2), (2, 3), (1, 3)][i % 3]
        half = size // 2
        for cls, x0 in zip(pair if i % 2 else pair[::-1], (0, half)):
            side = int(rng.integers(size // 5, size // 3))
            y, x = rng.integers(0, size - side), x0 + rng.integers(0, half - side)
            image[y:y + side, x:x + side] = colours[cls]
            label[y:y + side, x:x + side] = cls
        images.append(image)
        labels.append(label)
    return ClassPhotos(images, labels, min_pixels=16)


def test_prototype_baseline_shapes_and_k_shot_mean(squares):
    segmenter = PrototypeSegmenter(encoder="small-cnn", size=48)
    one = segmenter.predict([_support(squares, 0, 1)], squares.images[2])
    assert one[0].shape == (48, 48) and one[0].dtype == np.uint8
    assert one[1].shape == (2, 48, 48) and np.allclose(one[1].sum(axis=0), 1, atol=1e-5)
    other = segmenter.predict([_support(squares, 3, 1)], squares.images[2])[1]
    two = segmenter.predict([_support(squares, 0, 1), _support(squares, 3, 1)],
                            squares.images[2])[1]
    assert np.allclose(two, (one[1] + other) / 2, atol=1e-5)


def test_prototype_baseline_on_msrc_episodes(data_kit):
    """Real photos: MSRC-v2 val, 1-shot episodes of four object classes (cow, sheep,
    aeroplane, face: the bundled encoder's features)."""
    from graphseg.data import MSRCDataset, background_lookup

    dataset = MSRCDataset(data_kit / "msrc_v2", "val")
    photos = ClassPhotos.from_dataset(dataset, lookup=background_lookup(
        dataset.background_classes))
    classes = [c for c in (3, 5, 8, 10) if len(photos.classes.get(c, [])) >= 2]
    episodes = sample_episodes(photos, classes, shots=1, count=20, seed=0)
    scores = PrototypeSegmenter(size=224).evaluate(photos, episodes)
    assert scores.episodes == 20 and scores.miou() > 0.5, scores.class_iou()


@pytest.mark.parametrize("mask, message", [
    (np.full((48, 48), 2, np.uint8), "the mask must hold 0 \\(background\\), 1 \\(object\\)"),
    (np.zeros((48, 48), np.uint8), "the mask marks no object pixel"),
    (np.ones((40, 48), np.uint8), "the mask is \\(40, 48\\) but the photo is \\(48, 48\\)"),
])
def test_bad_supports_are_named(squares, mask, message):
    segmenter = PrototypeSegmenter(encoder="small-cnn", size=48)
    with pytest.raises(ValueError, match=f"supports\\[0\\]: {message}"):
        segmenter.predict([(squares.images[0], mask)], squares.images[1])
    with pytest.raises(ValueError, match="supports is empty"):
        segmenter.predict([], squares.images[1])


def test_fit_resume_save_load_and_evaluate(squares, tmp_path, one_thread):
    whole = SCLSegmenter(**TINY, seed=1)
    history = whole.fit(squares, [1, 2], progress=False)
    assert len(history) == 2 and all(np.isfinite(history))
    assert whole.classes == ["red", "blue"]

    def stop_after_first(epoch, loss):
        if epoch == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SCLSegmenter(**TINY, seed=1).fit(squares, [1, 2], checkpoint=tmp_path / "ckpt.pt",
                                         progress=False, on_epoch_end=stop_after_first)
    resumed = SCLSegmenter(**TINY, seed=1)
    resumed.fit(squares, [1, 2], checkpoint=tmp_path / "ckpt.pt", progress=False)
    for (name, a), b in zip(whole.net.state_dict().items(),
                            resumed.net.state_dict().values()):
        assert torch.equal(a, b), name

    whole.save(tmp_path / "scl.pt")
    loaded = load_few_shot(tmp_path / "scl.pt")
    assert loaded.config == whole.config and loaded.classes == ["red", "blue"]
    supports = [_support(squares, 0, 1), _support(squares, 3, 1)]
    for cgm in (True, False):
        a = whole.predict(supports, squares.images[2], cgm=cgm)[1]
        assert np.allclose(a, loaded.predict(supports, squares.images[2], cgm=cgm)[1])
    episodes = sample_episodes(squares, [1, 2], shots=1, count=5, seed=0)
    scores = loaded.evaluate(squares, episodes)
    assert scores.episodes == 5 and 0 <= scores.miou() <= 1 and 0 <= scores.fb_iou() <= 1
    # evaluate is predict on every episode, each photo encoded once
    first = episodes[0]
    pred, _ = loaded.predict([_support(squares, first.support[0], first.cls)],
                             squares.images[first.query])
    single = loaded.evaluate(squares, episodes[:1])
    truth = squares.mask(first.query, first.cls)
    inter, union = ((pred == 1) & (truth == 1)).sum(), ((pred == 1) | (truth == 1)).sum()
    assert single.miou() == pytest.approx(inter / union if union else 1.0)


def test_files_that_are_not_few_shot_models_are_refused(tmp_path):
    torch.save({"format": "graphseg-segmenter"}, tmp_path / "other.pt")
    with pytest.raises(ValueError,
                       match="not a graphseg few-shot model file \\(a graphseg-segmenter"):
        load_few_shot(tmp_path / "other.pt")
    torch.save({"format": "graphseg-few-shot", "format_version": 99}, tmp_path / "new.pt")
    with pytest.raises(ValueError, match="format version 99"):
        load_few_shot(tmp_path / "new.pt")
    with pytest.raises(FileNotFoundError, match="no model.pt"):
        load_few_shot(tmp_path)


@pytest.mark.parametrize("settings, message", [
    ({"encoder": "resnet"}, "encoder"), ({"size": 8}, "size"), ({"lr": 0}, "lr must be"),
    ({"shots": 5}, "has no setting shots"),
])
def test_bad_settings(settings, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SCLSegmenter(**{**TINY, **settings})


@pytest.mark.slow
def test_a_tiny_fit_learns_to_follow_the_support(one_thread):
    """Every query holds two squares of different colours: the support says which one
    is the object: segmenting both (a colour from memory) scores about 0.5."""
    photos = _two_square_photos()
    episodes = sample_episodes(photos, [1, 2], shots=1, count=40, seed=0)
    segmenter = SCLSegmenter(size=96, channels=32, episodes=64, epochs=30, seed=0)
    before = segmenter.evaluate(photos, episodes).miou()
    segmenter.fit(photos, [1, 2], progress=False)
    after = segmenter.evaluate(photos, episodes).miou()
    assert before < 0.3 and after > 0.6, (before, after)


def test_evaluate_scores_what_predict_returns():
    """The episode evaluation (photos encoded once) scores exactly :meth:`predict`'s
    masks, at the photos' size."""
    from graphseg.metrics import FewShotScores

    photos = _two_square_photos(count=6)
    segmenter = PrototypeSegmenter(size=96)
    episodes = sample_episodes(photos, [1, 2, 3], shots=1, count=6, seed=3)
    expected = FewShotScores()
    for episode in episodes:
        support = [_support(photos, i, episode.cls) for i in episode.support]
        mask, _ = segmenter.predict(support, photos.images[episode.query])
        expected.update(mask, photos.mask(episode.query, episode.cls), episode.cls)
    scores = segmenter.evaluate(photos, episodes)
    assert 0 < expected.miou() < 1
    assert scores.class_iou() == pytest.approx(expected.class_iou())
    assert scores.fb_iou() == pytest.approx(expected.fb_iou())
