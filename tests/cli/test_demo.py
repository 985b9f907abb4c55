"""What ``graphseg demo`` and ``graphseg propagate`` show while a photo runs, and the
demo's pictures (issue 19)."""
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import graphseg.cli.demo
from graphseg.cli import main
from graphseg.data import GrabCutDataset, sample_root, write_boxes_json
from graphseg.utils.io import read_image
from graphseg.viz import render_panels

FAST = ["--features", "colour", "--epochs", "3", "2", "--hidden", "8", "--threads", "1"]


@pytest.fixture
def small_grabcut(tmp_path) -> Path:
    """The bundled teddy at half its size, in the GrabCut folder layout, plus its box
    as a JSON box file for ``graphseg propagate``."""
    source = sample_root() / "grabcut"
    root = tmp_path / "sample" / "grabcut"
    for sub in ("images", "masks", "boxes", "scribbles1", "json"):
        (root / sub).mkdir(parents=True)
    image = cv2.imread(str(source / "images" / "teddy.jpg"))
    h, w = image.shape[:2]
    size = (w // 2, h // 2)
    cv2.imwrite(str(root / "images" / "teddy.jpg"),
                cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    for sub in ("masks", "scribbles1"):
        raw = cv2.imread(str(source / sub / "teddy.png"), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(root / sub / "teddy.png"),
                    cv2.resize(raw, size, interpolation=cv2.INTER_NEAREST))
    box = [int(v) // 2 for v in (source / "boxes" / "teddy.txt").read_text().split()]
    (root / "boxes" / "teddy.txt").write_text(" ".join(map(str, box)) + "\n")
    write_boxes_json(root / "json" / "teddy.json", np.array([[1, *box]]))
    shutil.copytree(root / "images", tmp_path / "photos")
    return root


def test_demo_shows_each_stage_on_stderr_and_the_iou_in_the_pictures(small_grabcut, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.setattr(graphseg.cli.demo, "sample_root", lambda: small_grabcut.parent)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr()
    assert "teddy" in printed.out and "mean" in printed.out
    for kind in ("boxes", "scribbles"):
        for stage in ("seeds", "features", "graph", "training", "crf"):
            assert f"teddy {kind}: {stage}" in printed.err, (kind, stage)
    assert "5/5" in printed.err  # the training epochs, both stages
    assert "teddy: GrabCut" in printed.err
    # the stage bar is gone from stdout: the table stays a table
    assert "training" not in printed.out
    # the prediction's title carries its IoU: it differs from a title without one
    sample = GrabCutDataset(small_grabcut).load("teddy")
    h, w = sample.shape
    plain = render_panels(sample.image, boxes=sample.boxes, prediction=sample.label,
                          ground_truth=sample.label)
    picture = read_image(out / "teddy_boxes.png")
    panel = slice(2 * (w + 6), 3 * w + 2 * 6)
    assert (picture[:22, panel] != plain[:22, panel]).any(axis=2).sum() > 20
    np.testing.assert_array_equal(picture[:22, :w], plain[:22, :w])  # "image" unchanged


def test_propagate_shows_the_stages_of_each_photo_on_stderr(small_grabcut, tmp_path, capsys):
    assert main(["propagate", "--images", str(tmp_path / "photos"),
                 "--boxes", str(small_grabcut / "json"), "--out", str(tmp_path / "masks"),
                 *FAST]) == 0
    err = capsys.readouterr().err
    assert "propagate" in err  # the bar over images stays
    for stage in ("seeds", "features", "graph", "training", "crf"):
        assert f"teddy: {stage}" in err, stage
