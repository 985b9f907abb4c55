import numpy as np
import pytest
import torch

from graphseg.data.torch_dataset import SegmentationSet
from graphseg.segmenters import (
    FORMAT_VERSION,
    RRMSegmenter,
    TwoStepSegmenter,
    load_segmenter,
)

CLASSES = ("background", "red", "blue")


def test_save_load_round_trip_needs_no_training_arguments(tmp_path, tiny):
    segmenter = RRMSegmenter(CLASSES, background=0, attention="plain", **tiny, seed=3)
    segmenter.history = [1.5, 0.5]
    segmenter.save(tmp_path / "m.pt")
    loaded = load_segmenter(tmp_path / "m.pt")
    assert type(loaded) is RRMSegmenter and loaded.class_names == CLASSES
    assert loaded.config == segmenter.config and loaded.history == [1.5, 0.5]
    for (name, a), b in zip(segmenter.net.state_dict().items(),
                            loaded.net.state_dict().values()):
        assert torch.equal(a, b), name
    image = np.random.default_rng(0).integers(0, 256, (30, 44, 3), dtype=np.uint8)
    labels, probs = segmenter.predict(image)
    again, probs_again = loaded.predict(image)
    assert np.array_equal(labels, again) and np.allclose(probs, probs_again, atol=1e-6)
    # a run folder works in place of its model.pt
    segmenter.save(tmp_path / "run" / "model.pt")
    assert type(load_segmenter(tmp_path / "run")) is RRMSegmenter


def test_predict_shapes_scales_flip_crf_and_max_side(tiny):
    segmenter = TwoStepSegmenter(CLASSES, **tiny)
    image = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for options in ({}, {"scales": (0.5, 1.0, 1.5), "flip": True}, {"crf": "final"},
                    {"max_side": 20}):
        labels, probs = segmenter.predict(image, **options)
        assert labels.shape == (37, 53) and labels.dtype == np.uint8
        assert probs.shape == (3, 37, 53) and np.allclose(probs.sum(0), 1, atol=1e-4)
        assert np.array_equal(labels, probs.argmax(0))
    with pytest.raises(ValueError, match="scales must be positive"):
        segmenter.predict(image, scales=(0,))
    with pytest.raises(ValueError, match="crf"):
        segmenter.predict(image, crf="strong")


def test_flip_averages_the_mirrored_prediction(tiny):
    segmenter = TwoStepSegmenter(CLASSES, **tiny, seed=5)
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    plain = segmenter.predict(image)[1]
    mirrored = segmenter.predict(image[:, ::-1].copy())[1][:, :, ::-1]
    assert np.allclose(segmenter.predict(image, flip=True)[1], (plain + mirrored) / 2,
                       atol=1e-5)


def test_settings_are_checked_at_construction():
    with pytest.raises(TypeError, match="has no setting colour"):
        TwoStepSegmenter(CLASSES, colour=3)
    with pytest.raises(ValueError, match="backbone"):
        TwoStepSegmenter(CLASSES, backbone="resnet")
    with pytest.raises(ValueError, match="background must be a class id in 0..2"):
        TwoStepSegmenter(CLASSES, background=3)
    with pytest.raises(ValueError, match="at least two classes"):
        TwoStepSegmenter(("background",))
    with pytest.raises(ValueError, match="keep"):
        RRMSegmenter(CLASSES, keep=1.5)


def test_load_refuses_other_files_with_one_line(tmp_path, tiny):
    torch.save({"format": "graphseg-affinity-net", "model": {}}, tmp_path / "aff.pt")
    with pytest.raises(ValueError, match="aff.pt: not a graphseg model file "
                                         r"\(a graphseg-affinity-net file\)"):
        load_segmenter(tmp_path / "aff.pt")
    segmenter = TwoStepSegmenter(CLASSES, **tiny)
    state = segmenter.state()
    torch.save({**state, "format_version": FORMAT_VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(ValueError, match="model format version 2; .* upgrade graphseg"):
        load_segmenter(tmp_path / "new.pt")
    torch.save({**state, "method": "dfr9"}, tmp_path / "method.pt")
    with pytest.raises(ValueError, match="method 'dfr9' is unknown"):
        load_segmenter(tmp_path / "method.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a graphseg model file"):
        load_segmenter(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="no model.pt in this folder"):
        load_segmenter(tmp_path)


def test_model_files_never_unpickle_code(tmp_path):
    """A file with a pickled object is refused (weights_only), not executed."""
    class Evil:
        def __reduce__(self):
            return (print, ("executed!",))

    torch.save({"format": "graphseg-segmenter", "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt: not a graphseg model file"):
        load_segmenter(tmp_path / "evil.pt")


def test_fit_checks_the_data_carries_the_supervision(squares_folder, tiny):
    root = squares_folder(count=3)
    tags_only = SegmentationSet.from_folders(root / "images", tags={"sq00": (1,)})
    with pytest.raises(ValueError, match="two-step trains on label maps"):
        TwoStepSegmenter(CLASSES, **tiny).fit(tags_only, progress=False)
    masks = SegmentationSet.from_folders(root / "images", labels=root / "labels")
    with pytest.raises(ValueError, match="RRM trains on image-level tags"):
        RRMSegmenter(CLASSES, **tiny).fit(masks, progress=False)
