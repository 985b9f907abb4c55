"""``graphseg train`` and ``graphseg predict`` on a synthetic folder (squares)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from graphseg.cli import main
from graphseg.data import write_label_png
from graphseg.utils.io import read_label_map

SMALL = ["--backbone", "small-cnn", "--crop", "40", "--batch-size", "4", "--lr", "0.05",
         "--threads", "1"]


def _two_step(root, out, *extra):
    return ["train", "two-step", "--images", str(root / "images"), "--labels",
            str(root / "labels"), "--classes", str(root / "classes.txt"), "--out", str(out),
            *SMALL, *extra]


def test_train_predict_evaluate_and_resume(squares_folder, tmp_path, capsys, restore_threads):
    root = squares_folder(count=6)
    run = tmp_path / "run"
    assert main(_two_step(root, run, "--epochs", "2", "--val-images", str(root / "images"),
                          "--val-labels", str(root / "labels"))) == 0
    log = json.loads((run / "train.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2] and "val_miou" in log["epochs"][0]
    assert (run / "model.pt").is_file() and (run / "checkpoint.pt").is_file()
    err = capsys.readouterr().err
    assert "epoch 2/2: loss" in err and "val mIoU" in err
    # the same command again: nothing left to train, the model is rewritten as it was
    assert main(_two_step(root, run, "--epochs", "2", "--val-images", str(root / "images"),
                          "--val-labels", str(root / "labels"))) == 0
    assert len(json.loads((run / "train.json").read_text())["epochs"]) == 2
    # other settings: refused with the difference, before training
    assert main(_two_step(root, run, "--epochs", "2", "--crop", "32")) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "'crop'" in err and "--restart" in err

    out = tmp_path / "masks"
    predict = ["predict", "--model", str(run), "--images", str(root / "images"), "--out",
               str(out), "--gt", str(root / "labels"), "--threads", "1"]
    assert main(predict) == 0
    printed = capsys.readouterr().out
    assert "wrote 6 label maps" in printed and "mIoU" in printed
    assert read_label_map(out / "sq00.png").shape == (48, 48)
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(r["status"] == "ok" for r in manifest["images"].values())
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert main(predict) == 0 and "6 already done" in capsys.readouterr().out
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert main([*predict, "--flip"]) == 2
    assert "made by another model or other options" in capsys.readouterr().err
    assert main([*predict, "--flip", "--overwrite"]) == 0


def test_predict_reports_a_bad_photo_and_writes_the_rest(squares_folder, tmp_path, capsys,
                                                         restore_threads):
    root = squares_folder(count=3)
    run = tmp_path / "run"
    assert main(_two_step(root, run, "--epochs", "1")) == 0
    (root / "images" / "sq01.png").write_bytes(b"not a png")
    out = tmp_path / "masks"
    assert main(["predict", "--model", str(run), "--images", str(root / "images"), "--out",
                 str(out), "--threads", "1"]) == 1
    assert "sq01" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == ["sq00.png", "sq02.png"]


def test_train_rrm_from_tags(squares_folder, tmp_path, capsys, restore_threads):
    root = squares_folder(count=6)
    run = tmp_path / "rrm"
    assert main(["train", "rrm", "--images", str(root / "images"), "--tags",
                 str(root / "tags.json"), "--classes", str(root / "classes.txt"), "--out",
                 str(run), *SMALL, "--epochs", "2", "--warmup-epochs", "1"]) == 0
    log = json.loads((run / "train.json").read_text())
    assert log["method"] == "rrm" and log["config"]["warmup_epochs"] == 1
    assert main(["predict", "--model", str(run / "model.pt"), "--images",
                 str(root / "images"), "--out", str(tmp_path / "m"), "--threads", "1"]) == 0


def _dfr(root, out, *extra):
    return ["train", "dfr", "--images", str(root / "images"), "--scribbles",
            str(root / "scribbles"), "--classes", str(root / "classes.txt"), "--out", str(out),
            *SMALL, "--set", "channels=8", "--set", "feature_dim=8", *extra]


def test_train_dfr_from_scribbles_resumes_and_predicts(squares_folder, tmp_path, capsys,
                                                       restore_threads):
    root = squares_folder(count=4)
    run = tmp_path / "dfr"
    assert main(_dfr(root, run, "--epochs", "1", "--set", "gamma=0.9", "--set",
                     "radius=3")) == 0
    log = json.loads((run / "train.json").read_text())
    assert log["method"] == "dfr" and len(log["epochs"]) == 1
    config = log["config"]
    assert (config["gamma"], config["radius"], config["channels"]) == (0.9, 3, 8)
    assert (config["kernel"], config["consistency_head"], config["optimizer"]) == (
        "dynamic", True, "adamw")
    # the same command again continues (here: nothing is left); other settings are refused
    assert main(_dfr(root, run, "--epochs", "1", "--set", "gamma=0.9", "--set",
                     "radius=3")) == 0
    assert len(json.loads((run / "train.json").read_text())["epochs"]) == 1
    assert main(_dfr(root, run, "--epochs", "1", "--set", "gamma=0.8", "--set",
                     "radius=3")) == 2
    assert "'gamma'" in capsys.readouterr().err
    out = tmp_path / "masks"
    assert main(["predict", "--model", str(run), "--images", str(root / "images"), "--out",
                 str(out), "--gt", str(root / "labels"), "--threads", "1"]) == 0
    assert "wrote 4 label maps" in capsys.readouterr().out
    # the ablation flags are settings of the model file
    static = tmp_path / "static"
    assert main(_dfr(root, static, "--epochs", "1", "--no-consistency-head")) == 0
    config = json.loads((static / "train.json").read_text())["config"]
    assert (config["kernel"], config["consistency_head"]) == ("static", False)
    pce = tmp_path / "pce"
    assert main(_dfr(root, pce, "--epochs", "1", "--no-dfr")) == 0
    assert json.loads((pce / "train.json").read_text())["config"]["dfr_weight"] == 0.0


@pytest.mark.parametrize("extra, message", [
    (["--set", "gamma"], "--set 'gamma': expected NAME=VALUE, e.g. --set gamma=0.95"),
    (["--set", "lambda=1"], "--set lambda: not a setting of dfr (settings: "),
    (["--set", "radius=two"], "--set radius=two: invalid literal for int()"),
    (["--set", "consistency_head=maybe"], "--set consistency_head=maybe: expected true or "
                                          "false"),
    (["--set", "gamma=2"], "gamma must be in (0, 1), got 2.0"),
    (["--set", "consistency_head=false"], "kernel='dynamic' takes its features from the "
                                          "consistency head"),
])
def test_train_dfr_refuses_bad_settings_before_reading_photos(extra, message, squares_folder,
                                                              tmp_path, capsys):
    root = squares_folder(count=2)
    (root / "images" / "sq01.png").write_bytes(b"broken")  # never reached
    assert main(_dfr(root, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "sq01" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case, message", [
    ("out_is_a_file", "--out {tmp}/out.txt: exists and is not a folder"),
    ("unknown_tag", "--tags {tmp}/tags.json 'sq00': class index 9 outside 0..2"),
    ("unknown_tag_name",
     "--tags {tmp}/tags.json 'sq00': unknown class 'dog'; known: background, red, blue"),
    ("no_cuda", "--device cuda but torch sees no CUDA device"),
    ("val_alone", "--val-images and --val-labels go together"),
    ("background_name",
     "--background sky: not a class id or name (classes: background, red, blue)"),
])
def test_train_refuses_bad_arguments_before_any_work(case, message, squares_folder, tmp_path,
                                                     capsys):
    root = squares_folder(count=3, root=tmp_path)
    tags = {"sq00": [1], "sq01": [2], "sq02": [1, 2]}
    out, extra = tmp_path / "run", []
    if case == "out_is_a_file":
        out = tmp_path / "out.txt"
        out.write_text("x")
    elif case == "unknown_tag":
        tags["sq00"] = [9]
    elif case == "unknown_tag_name":
        tags["sq00"] = ["dog"]
    elif case == "no_cuda":
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
        extra = ["--device", "cuda"]
    elif case == "val_alone":
        extra = ["--val-images", str(root / "images")]
    elif case == "background_name":
        extra = ["--background", "sky"]
    (tmp_path / "tags.json").write_text(json.dumps(tags))
    code = main(["train", "rrm", "--images", str(root / "images"), "--tags",
                 str(tmp_path / "tags.json"), "--classes", str(root / "classes.txt"),
                 "--out", str(out), *SMALL, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: {message.format(tmp=tmp_path)}"]
    assert not (tmp_path / "run").exists()


def test_training_data_problems_are_skipped_with_their_names(squares_folder, tmp_path, capsys,
                                                             restore_threads):
    root = squares_folder(count=5)
    (root / "images" / "sq01.png").write_bytes(b"broken")
    write_label_png(root / "labels" / "sq02.png", np.zeros((10, 10), np.uint8))
    write_label_png(root / "labels" / "sq03.png", np.full((48, 48), 255, np.uint8))
    run = tmp_path / "run"
    assert main(_two_step(root, run, "--epochs", "1")) == 1
    err = capsys.readouterr().err
    assert "left out 1 label maps with no labelled pixel: sq03" in err
    assert "error: sq01:" in err and "error: sq02:" in err and "label map is 10x10" in err
    assert json.loads((run / "train.json").read_text())["images"] == ["sq00", "sq04"]


def test_predict_refuses_what_is_not_a_model(tmp_path, squares_folder, capsys):
    root = squares_folder(count=1)
    (tmp_path / "m.pt").write_bytes(b"junk")
    assert main(["predict", "--model", str(tmp_path / "m.pt"), "--images",
                 str(root / "images"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "m.pt: not a graphseg model file" in err[0]
    assert main(["predict", "--model", str(tmp_path), "--images", str(root / "images"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "no model.pt in this folder" in capsys.readouterr().err


def test_palette_and_grayscale_label_pngs_train_the_same(squares_folder, tmp_path,
                                                         restore_threads):
    """A palette PNG stores the class index (its colours are for display): a labels folder
    of palette PNGs and one of grayscale PNGs with the same indices are the same data."""
    root = squares_folder(count=3)
    gray = tmp_path / "gray"
    gray.mkdir()
    for path in (root / "labels").glob("*.png"):
        Image.fromarray(np.asarray(Image.open(path))).save(gray / path.name)  # indices, no palette
        assert Image.open(path).mode == "P" and Image.open(gray / path.name).mode == "L"
    runs = []
    for labels in (root / "labels", gray):
        run = tmp_path / f"run-{labels.name}"
        args = _two_step(root, run, "--epochs", "1")
        args[args.index("--labels") + 1] = str(labels)
        assert main(args) == 0
        runs.append(torch.load(run / "checkpoint.pt", weights_only=True)["model"])
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
