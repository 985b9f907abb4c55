"""graphseg.propagation.progress: the stages of one photo, reported as they run."""
import numpy as np
import pytest
import torch

from graphseg.propagation import STAGES, A2GNNConfig, StageBar, propagate, train_a2gnn

CONFIG = A2GNNConfig.release("boxes", stage1_epochs=3, stage2_epochs=2, hidden_channels=8)


def photo():
    image = np.zeros((48, 64, 3), np.uint8)
    image[12:36, 16:48] = 220
    return image, [[1, 10, 6, 54, 42]]


def test_the_callback_sees_every_stage_in_order_and_every_epoch():
    image, boxes = photo()
    calls = []
    propagate(image, boxes, "boxes", 2, config=CONFIG, features="colour",
              progress=lambda *call: calls.append(call))
    stages = [stage for i, (stage, _, _) in enumerate(calls) if i == 0 or calls[i - 1][0] != stage]
    assert tuple(stages) == STAGES == ("seeds", "features", "graph", "training", "crf")
    for stage in STAGES:  # each starts at 0 and ends at its total
        mine = [(done, total) for s, done, total in calls if s == stage]
        assert mine[0][0] == 0 and mine[-1][0] == mine[-1][1]
    assert [done for s, done, total in calls if s == "training"] == [0, 1, 2, 3, 4, 5]
    assert {total for s, _, total in calls if s == "training"} == {5}


def test_random_walk_and_no_crf_report_what_runs():
    image, boxes = photo()
    calls = []
    propagate(image, boxes, "boxes", 2, propagator="random-walk", crf=None, features="colour",
              progress=lambda stage, done, total: calls.append(stage))
    assert list(dict.fromkeys(calls)) == ["seeds", "features", "graph", "random walk"]


def test_quiet_by_default_and_a_bar_on_stderr_with_true(capsys):
    image, boxes = photo()
    propagate(image, boxes, "boxes", 2, config=CONFIG, features="colour")
    assert capsys.readouterr().err == ""
    propagate(image, boxes, "boxes", 2, config=CONFIG, features="colour", progress=True)
    err = capsys.readouterr().err
    for stage in STAGES:
        assert f"{stage}:" in err
    assert "5/5" in err and "epoch" in err
    with pytest.raises(TypeError, match="progress must be a bool or progress"):
        propagate(image, boxes, "boxes", 2, config=CONFIG, features="colour", progress="yes")


def test_train_a2gnn_calls_on_epoch_after_every_epoch():
    x = torch.rand(12, 4)
    labels = torch.full((12,), 255)
    labels[0], labels[11] = 0, 1
    edge_index = torch.tensor([[i for i in range(11)] + [i + 1 for i in range(11)],
                               [i + 1 for i in range(11)] + [i for i in range(11)]])
    seen = []
    train_a2gnn(x, edge_index, labels, 2, (3, 4), config=CONFIG,
                on_epoch=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 5) for i in range(1, 6)]


def test_stage_bar_labels_the_photo(capsys):
    bar = StageBar("teddy boxes")
    bar("training", 0, 4)
    bar("training", 4, 4)
    bar.describe("llama")
    bar("seeds", 0, 1)
    bar.close()
    err = capsys.readouterr().err
    assert "teddy boxes: training" in err and "4/4" in err and "llama: seeds" in err
