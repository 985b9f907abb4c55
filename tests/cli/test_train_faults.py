"""``graphseg train`` and ``graphseg predict`` killed mid-way (``kill -9``) and rerun, and
``graphseg train`` under a two-process ``torchrun``."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed

from graphseg.cli import main
from graphseg.segmenters import load_segmenter
from graphseg.utils.io import read_label_map

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--backbone", "small-cnn", "--crop", "40", "--batch-size", "4", "--threads", "1"]


def environment() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def train_args(root: Path, out: Path, epochs: int) -> list:
    return ["train", "two-step", "--images", str(root / "images"), "--labels",
            str(root / "labels"), "--classes", str(root / "classes.txt"), "--out", str(out),
            "--epochs", str(epochs), *SMALL]


def kill_when(command: list, ready, timeout: float = 120) -> None:
    """Start ``python -m graphseg COMMAND``, SIGKILL it once ``ready()`` holds."""
    process = subprocess.Popen([sys.executable, "-m", "graphseg", *command], env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while not ready():
            assert process.poll() is None, "finished before the kill point"
            assert time.time() < deadline, "the kill point never came"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)


@pytest.mark.slow
def test_train_killed_after_an_epoch_resumes_to_the_uninterrupted_weights(squares_folder,
                                                                          tmp_path, capsys,
                                                                          restore_threads):
    root = squares_folder(count=8)
    epochs = 30
    whole = tmp_path / "whole"
    assert main(train_args(root, whole, epochs)) == 0
    run = tmp_path / "run"

    def after_two_epochs():
        log = run / "train.json"
        try:
            return len(json.loads(log.read_text())["epochs"]) >= 2
        except (OSError, ValueError):
            return False

    kill_when(train_args(root, run, epochs), after_two_epochs)
    for name in ("train.json",):  # every file the kill left is whole
        json.loads((run / name).read_text())
    done = torch.load(run / "checkpoint.pt", weights_only=True)["epoch"]
    assert 2 <= done < epochs
    assert main(train_args(root, run, epochs)) == 0
    log = json.loads((run / "train.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == list(range(1, epochs + 1))
    a, b = load_segmenter(whole).net.state_dict(), load_segmenter(run).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_predict_killed_mid_way_keeps_what_it_finished(squares_folder, tmp_path, capsys,
                                                      restore_threads):
    root = squares_folder(count=40, size=160)
    run = tmp_path / "run"
    assert main(train_args(root, run, 1)) == 0
    out = tmp_path / "masks"
    command = ["predict", "--model", str(run), "--images", str(root / "images"), "--out",
               str(out), "--threads", "1", "--scales", "1", "1.5", "2", "--flip"]
    kill_when(command, lambda: len(list(out.glob("*.png"))) >= 3)
    json.loads((out / "manifest.json").read_text())  # valid after the kill
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert 3 <= len(before) < 40
    for path in out.glob("*.png"):
        assert read_label_map(path).shape == (160, 160)  # no half-written map
    assert main(command) == 0
    assert f"{len(before)} already done" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert len(after) == 40 and all(after[n] == t for n, t in before.items())


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="needs torch.distributed")
def test_train_under_torchrun_with_two_processes(squares_folder, tmp_path):
    root = squares_folder(count=8)
    run = tmp_path / "run"
    with socket.socket() as probe:  # a free port: torchrun's port 0 is not portable
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(port), "-m", "graphseg", *train_args(root, run, 2)]
    done = subprocess.run(command, env=environment(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training two-step on 8 photos (2 process(es))" in done.stdout
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["config"]["world_size"] == 2 and len(state["shards"]) == 2
    assert sorted(sum(state["shards"], [])) == list(range(8))  # each photo on one rank
    assert len(set(state["checksums"])) == 1  # the replicas agree
    assert load_segmenter(run).history == state["history"]
