"""``graphseg few-shot`` and ``graphseg train scl``."""
import json
import shutil

import numpy as np
import pytest

from graphseg.cli import main
from graphseg.utils.io import read_label_map, write_png


@pytest.fixture
def eiffel(data_kit, tmp_path):
    """The kit's FSS-1000 Eiffel class: two annotated photos as the support, the other
    three to segment (with their masks as ground truth)."""
    source = data_kit / "fss1000_eiffel"
    support, query = tmp_path / "support", tmp_path / "query"
    for i, name in enumerate(sorted(p.stem for p in (source / "images").glob("*.jpg"))):
        target = support if i < 2 else query
        (target / "images").mkdir(parents=True, exist_ok=True)
        (target / "masks").mkdir(parents=True, exist_ok=True)
        shutil.copy(source / "images" / f"{name}.jpg", target / "images")
        shutil.copy(source / "masks" / f"{name}.png", target / "masks")
    return support, query


def test_few_shot_without_a_model_uses_the_prototype_baseline_and_resumes(
        eiffel, tmp_path, capsys, restore_threads):
    support, query = eiffel
    out = tmp_path / "out"
    command = ["few-shot", "--support", str(support), "--images", str(query / "images"),
               "--out", str(out), "--gt", str(query / "masks"), "--threads", "1"]
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "2 support photo(s)" in printed and "training-free prototype baseline" in printed
    assert "wrote 3 masks" in printed and "mean IoU" in printed
    names = sorted(p.stem for p in (query / "images").glob("*.jpg"))
    mask = read_label_map(out / f"{names[0]}.png")
    assert set(np.unique(mask)) <= {0, 255} and (mask == 255).any()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["model"] == "prototype baseline"
    assert all(r["status"] == "ok" for r in manifest["images"].values())
    # the same command: nothing to do; another support mask: refused unless --overwrite
    assert main(command) == 0 and "3 already done" in capsys.readouterr().out
    first = sorted((support / "masks").glob("*.png"))[0]
    write_png(first, np.where(read_label_map(first) > 127, 0, 255).astype(np.uint8))
    assert main(command) == 2
    assert "made by another model or other options" in capsys.readouterr().err
    assert main([*command, "--overwrite", "--refine", "crf"]) == 0


def test_train_scl_then_few_shot_with_the_model(squares_folder, tmp_path, capsys,
                                                restore_threads):
    root = squares_folder(count=6)
    run = tmp_path / "scl"
    train = ["train", "scl", "--images", str(root / "images"), "--labels",
             str(root / "labels"), "--classes", str(root / "classes.txt"), "--train-classes",
             "red", "--out", str(run), "--encoder", "small-cnn", "--size", "48", "--epochs",
             "1", "--episodes", "4", "--threads", "1", "--set", "channels=8"]
    assert main(train) == 0
    log = json.loads((run / "train.json").read_text())
    assert log["train_classes"] == [1] and log["config"]["channels"] == 8
    assert (run / "model.pt").is_file()
    assert main([*train[:-2], "--set", "channels=16"]) == 2  # other settings: refused
    assert "'channels'" in capsys.readouterr().err
    # the blue squares as the support: photos 1 (blue) and 2 (red and blue)
    support = tmp_path / "support"
    for name in ("sq01", "sq02"):
        (support / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "images" / f"{name}.png", support / "images" / f"{name}.png")
        label = read_label_map(root / "labels" / f"{name}.png")
        write_png(support / "masks" / f"{name}.png", np.where(label == 2, 255, 0).astype(
            np.uint8))
    out = tmp_path / "out"
    assert main(["few-shot", "--support", str(support), "--images", str(root / "images"),
                 "--out", str(out), "--model", str(run), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "model: SCL (SGM, small-cnn encoder), trained on 1 classes (red)" in printed
    assert len(list(out.glob("*.png"))) == 6


@pytest.mark.parametrize("case, message", [
    ("no_mask", "no mask"),
    ("empty_masks", "no mask marks an object pixel"),
    ("not_a_model", "not a graphseg few-shot model"),
])
def test_few_shot_refuses_bad_input_before_any_work(case, message, squares_folder, tmp_path,
                                                    capsys):
    root = squares_folder(count=2)
    support = tmp_path / "support"
    (support / "images").mkdir(parents=True)
    (support / "masks").mkdir(parents=True)
    shutil.copy(root / "images" / "sq00.png", support / "images" / "sq00.png")
    extra = []
    if case == "empty_masks":
        write_png(support / "masks" / "sq00.png", np.zeros((48, 48), np.uint8))
    elif case == "not_a_model":
        write_png(support / "masks" / "sq00.png", np.full((48, 48), 255, np.uint8))
        (tmp_path / "model.pt").write_bytes(b"junk")
        extra = ["--model", str(tmp_path / "model.pt")]
    code = main(["few-shot", "--support", str(support), "--images", str(root / "images"),
                 "--out", str(tmp_path / "out"), *extra])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sgm", [True, False])
def test_train_scl_under_torchrun_with_two_processes(sgm, squares_folder, tmp_path):
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import torch

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]))
    root = squares_folder(count=6)
    run = tmp_path / "run"
    with socket.socket() as probe:  # a free port: torchrun's port 0 is not portable
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(port), "-m", "graphseg", "train", "scl", "--images",
               str(root / "images"), "--labels", str(root / "labels"), "--out", str(run),
               "--encoder", "small-cnn", "--size", "48", "--epochs", "2", "--episodes", "8",
               "--set", "channels=8", *([] if sgm else ["--no-sgm"])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["config"]["world_size"] == 2 and len(state["checksums"]) == 2
    assert len(set(state["checksums"])) == 1  # the replicas agree
