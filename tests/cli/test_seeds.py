import json

import numpy as np
import pytest
import torch

from graphseg.cli import main
from graphseg.data import read_boxes_json, write_boxes_json, write_label_png
from graphseg.seeds import box_seeds
from graphseg.utils.io import read_image, read_label_map, write_png

pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture
def folders(data_kit, grabcut, tmp_path):
    """Two GrabCut photos downsampled 4x, their scribbles, boxes and masks, and a broken image."""
    for name in ("teddy", "sheep"):
        image, mask, scribbles = grabcut(name)
        image, mask, scribbles = image[::4, ::4].copy(), mask[::4, ::4], scribbles[::4, ::4]
        write_png(tmp_path / "images" / f"{name}.png", image)
        write_label_png(tmp_path / "gt" / f"{name}.png", mask.astype(np.uint8))
        write_label_png(tmp_path / "scribbles" / f"{name}.png",
                        np.array([255, 1, 0], dtype=np.uint8)[scribbles])
        ys, xs = np.nonzero(mask)
        write_boxes_json(tmp_path / "boxes" / f"{name}.json",
                         [[1, xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]])
    (tmp_path / "images" / "broken.png").write_bytes(b"not an image")
    return tmp_path


def test_scribbles_and_resume(folders, capsys):
    out = folders / "out"
    argv = ["seeds", "--images", str(folders / "images"), "--scribbles",
            str(folders / "scribbles"), "--out", str(out), "--gt", str(folders / "gt"),
            "--threads", "1"]
    assert main(argv) == 1                      # the broken image fails, the others are written
    captured = capsys.readouterr()
    assert "error: broken:" in captured.err and "coverage" in captured.out
    for name in ("teddy", "sheep"):
        seeds = read_label_map(out / f"{name}.png")
        assert seeds.dtype == np.uint8 and set(np.unique(seeds)) <= {0, 1, 255}
    precision = float(captured.out.split("precision ")[1].split("%")[0])
    assert precision > 95
    assert main(argv) == 1
    assert "2 already there" in capsys.readouterr().out


def test_boxes(folders, capsys):
    (folders / "images" / "broken.png").unlink()
    out = folders / "out"
    assert main(["seeds", "--images", str(folders / "images"), "--boxes",
                 str(folders / "boxes"), "--out", str(out), "--gt", str(folders / "gt")]) == 0
    seeds = read_label_map(out / "teddy.png")
    assert seeds[0, 0] == 0 and (seeds == 1).any()
    assert "wrote 2 seed maps" in capsys.readouterr().out
    plain = folders / "plain"
    assert main(["seeds", "--images", str(folders / "images"), "--boxes", str(folders / "boxes"),
                 "--out", str(plain), "--band", "0", "--wide-band", "0"]) == 0
    # the CLI's maps are box_seeds' with the bands it was given (teddy's box is not
    # low-context: --band decides, and band 0 keeps more foreground)
    teddy = read_image(folders / "images" / "teddy.png")
    box = read_boxes_json(folders / "boxes" / "teddy.json")
    np.testing.assert_array_equal(seeds, box_seeds(teddy, box).labels)
    np.testing.assert_array_equal(read_label_map(plain / "teddy.png"),
                                  box_seeds(teddy, box, band=0, wide_band=0).labels)
    assert (read_label_map(plain / "teddy.png") == 1).sum() > (seeds == 1).sum()


def test_tags_train_a_classifier(folders, capsys):
    (folders / "images" / "broken.png").unlink()
    tags = folders / "tags.json"
    tags.write_text(json.dumps({"teddy": [1], "sheep": [1]}))
    out = folders / "out"
    argv = ["seeds", "--images", str(folders / "images"), "--tags", str(tags), "--out", str(out),
            "--epochs", "1", "--threads", "1"]
    assert main(argv) == 0
    assert (out / "cam.pt").is_file() and (out / "sheep.png").is_file()
    assert torch.load(out / "cam.pt")["architecture"]["name"] == "espnetv2"   # the default
    assert main(argv + ["--cam", str(out / "cam.pt"), "--overwrite"]) == 0
    small = folders / "small"
    assert main(["seeds", "--images", str(folders / "images"), "--tags", str(tags), "--out",
                 str(small), "--epochs", "1", "--threads", "1", "--backbone", "small"]) == 0
    assert torch.load(small / "cam.pt")["architecture"]["name"] == "small"


def test_missing_input_folder(tmp_path, capsys):
    assert main(["seeds", "--images", str(tmp_path / "nope"), "--points", str(tmp_path),
                 "--out", str(tmp_path / "out")]) == 2
    assert "no such folder" in capsys.readouterr().err
