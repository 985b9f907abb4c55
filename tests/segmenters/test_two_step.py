import numpy as np
import pytest
import torch

from graphseg.data.torch_dataset import SegmentationSet
from graphseg.segmenters import TwoStepSegmenter
from graphseg.utils.io import read_image, read_label_map

CLASSES = ("background", "red", "blue")


def _miou(segmenter, root, names):
    images = [read_image(root / "images" / f"{n}.png") for n in names]
    labels = [read_label_map(root / "labels" / f"{n}.png") for n in names]
    return segmenter.evaluate(images, labels).miou()


def test_a_tiny_fit_learns_the_squares(squares_folder, one_thread, tiny):
    root = squares_folder(count=12)
    data = SegmentationSet.from_folders(root / "images", labels=root / "labels")
    segmenter = TwoStepSegmenter(CLASSES, **tiny, epochs=20, seed=0)
    before = _miou(segmenter, root, data.names)
    history = segmenter.fit(data, progress=False)
    after = _miou(segmenter, root, data.names)
    assert len(history) == 20 and history[-1] < history[0] / 2
    assert before < 0.4 and after > 0.6, (before, after)


def test_a_resumed_fit_ends_with_the_weights_of_an_uninterrupted_one(squares_folder, tmp_path,
                                                                     one_thread, tiny):
    root = squares_folder(count=6)

    def data():
        return SegmentationSet.from_folders(root / "images", labels=root / "labels")

    settings = dict(tiny, epochs=3, seed=1)
    whole = TwoStepSegmenter(CLASSES, **settings)
    whole.fit(data(), progress=False)

    def stop_after_first(epoch, loss):
        if epoch == 0:
            raise KeyboardInterrupt

    first = TwoStepSegmenter(CLASSES, **settings)
    with pytest.raises(KeyboardInterrupt):
        first.fit(data(), checkpoint=tmp_path / "ckpt.pt", progress=False,
                  on_epoch_end=stop_after_first)
    resumed = TwoStepSegmenter(CLASSES, **settings)
    history = resumed.fit(data(), checkpoint=tmp_path / "ckpt.pt", progress=False)
    assert len(history) == 3
    for (name, a), b in zip(whole.net.state_dict().items(),
                            resumed.net.state_dict().values()):
        assert torch.equal(a, b), name
    changed = TwoStepSegmenter(CLASSES, **dict(settings, lr=0.01))
    with pytest.raises(ValueError, match="another configuration.*'lr'"):
        changed.fit(data(), checkpoint=tmp_path / "ckpt.pt", progress=False)


def test_pixels_labelled_255_do_not_train(squares_folder, one_thread, tiny):
    root = squares_folder(count=3)
    data = SegmentationSet.from_folders(root / "images", labels=root / "labels")
    data.lookup = np.full(256, 255, dtype=np.uint8)  # every label unknown
    segmenter = TwoStepSegmenter(CLASSES, **dict(tiny, weight_decay=0.0), epochs=1)
    start = {k: v.clone() for k, v in segmenter.net.named_parameters()}
    segmenter.fit(data, progress=False)
    assert all(torch.equal(v, start[k]) for k, v in segmenter.net.named_parameters())
    data = SegmentationSet.from_folders(root / "images", labels=root / "labels")
    segmenter = TwoStepSegmenter(CLASSES, **dict(tiny, weight_decay=0.0), epochs=1)
    segmenter.fit(data, progress=False)
    # with the labels, the same step moves them
    assert not all(torch.equal(v, start[k]) for k, v in segmenter.net.named_parameters())
