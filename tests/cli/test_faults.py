"""``graphseg propagate`` killed mid-way (``kill -9``) and rerun; a torchrun worker that dies.

Every kill point must leave valid files: label maps that decode, a manifest that is
valid JSON, and a rerun that recomputes only what was not finished.  Temporary files
(``.NAME.*.tmp``, left only by a kill in the middle of a write) are never counted as
outputs, and the rerun deletes them.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import pytest
import torch.distributed

from graphseg.cli import main
from graphseg.data import GrabCutDataset, sample_root, write_boxes_json
from graphseg.utils.io import read_label_map

REPO = Path(__file__).resolve().parents[2]
QUICK = ["--features", "colour", "--hidden", "8", "--crf", "none", "--threads", "1"]
NAMES = ("llama", "memorial", "teddy")


@pytest.fixture
def photos(tmp_path) -> Path:
    """The three sample photos at a third of their size, with their boxes."""
    dataset = GrabCutDataset(sample_root() / "grabcut")
    (tmp_path / "images").mkdir()
    for name in dataset.names:
        sample = dataset.load(name)
        h, w = sample.image.shape[:2]
        image = cv2.resize(sample.image, (w // 3, h // 3), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(tmp_path / "images" / f"{name}.png"), image[:, :, ::-1])
        write_boxes_json(tmp_path / "boxes" / f"{name}.json", sample.boxes // [1, 3, 3, 3, 3])
    return tmp_path


def arguments(photos: Path, epochs=("30", "30")) -> list:
    return ["propagate", "--images", str(photos / "images"), "--boxes", str(photos / "boxes"),
            "--out", str(photos / "out"), "--epochs", *epochs, *QUICK]


def environment() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def outputs(out: Path) -> dict:
    """name -> mtime of every label map, after checking each decodes."""
    maps = {}
    for path in sorted(out.glob("*.png")):
        assert read_label_map(path).ndim == 2  # decodes: no half-written file
        instances = out / "instances" / path.name
        assert cv2.imread(str(instances), cv2.IMREAD_UNCHANGED) is not None
        maps[path.stem] = path.stat().st_mtime_ns
    return maps


def leftovers(out: Path) -> list:
    return sorted(p.name for folder in (out, out / "instances") if folder.is_dir()
                  for p in folder.glob(".*.tmp"))


def rerun_and_check(photos: Path, args: list, before: dict, capsys) -> dict:
    """Rerun ``args``: every image done, the ones finished before not recomputed."""
    capsys.readouterr()
    assert main(args) == 0, capsys.readouterr().err
    assert f"{len(before)} already done" in capsys.readouterr().out
    after = outputs(photos / "out")
    assert set(after) == set(NAMES)
    assert {n: after[n] for n in before} == before  # mtimes unchanged: not recomputed
    record = json.loads((photos / "out" / "manifest.json").read_text())
    assert all(record["images"][n]["status"] == "ok" for n in NAMES)
    assert not any("pending" in r for r in record["images"].values())
    assert leftovers(photos / "out") == []
    return record


def test_kill_9_after_the_first_map_then_rerun(photos, capsys):
    args = arguments(photos)
    out = photos / "out"
    process = subprocess.Popen([sys.executable, "-m", "graphseg", *args], env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("*.png")) and process.poll() is None:
            assert time.monotonic() < deadline, "no label map within 300 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.read()[-2000:]
    process.stderr.close()
    record = json.loads((out / "manifest.json").read_text())  # valid JSON after the kill
    before = outputs(out)
    assert 1 <= len(before) < len(NAMES)
    for name in before:  # every map there is recorded, or pending with its settings
        assert record["images"][name].get("settings") or record["images"][name]["pending"]
    # the temporary files a kill mid-write leaves: never outputs, removed by the rerun
    # (planted here: the kill above rarely lands inside a write)
    stale = out / ".memorial.png.k1ll3d.tmp"
    stale.write_bytes(b"half a png")
    os.utime(stale, (time.time() - 3600,) * 2)
    rerun_and_check(photos, args, before, capsys)


KILLED_BEFORE_THE_RECORD = textwrap.dedent("""
    import os, signal, sys
    import graphseg.cli.propagate as propagate
    from graphseg.cli import main

    real, calls = propagate.write_json, []

    def write_json(path, value):
        calls.append(path)
        if len(calls) == 2:  # the first image's map is written, its record is next
            os.kill(os.getpid(), signal.SIGKILL)
        real(path, value)

    propagate.write_json = write_json
    sys.exit(main(sys.argv[1:]))
""")


def test_kill_9_between_a_map_and_its_record(photos, capsys):
    """The map is there but the manifest does not say it is done: the rerun takes it
    (it is newer than the run that was making it with these settings)."""
    args = arguments(photos, epochs=("4", "3"))
    out = photos / "out"
    done = subprocess.run([sys.executable, "-c", KILLED_BEFORE_THE_RECORD, *args],
                          env=environment(), capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    record = json.loads((out / "manifest.json").read_text())
    before = outputs(out)
    assert list(before) == ["llama"]  # the images go in name order
    assert record["images"]["llama"]["status"] == "pending"  # written, not recorded
    record = rerun_and_check(photos, args, before, capsys)
    assert record["images"]["llama"].get("recovered") is True
    # another setting now: the recovered map is refused like any other
    assert main([*args, "--hidden", "16"]) == 2
    assert "--hidden 8 then, 16 now" in capsys.readouterr().err


def _workers(launcher: int) -> dict:
    """RANK -> pid of the processes whose parent is ``launcher`` (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            variables = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher:
            for variable in variables:
                if variable.startswith(b"RANK="):
                    found[int(variable[5:])] = int(entry.name)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available() or not Path("/proc/self").is_dir(),
                    reason="needs torch.distributed and Linux /proc")
def test_a_torchrun_worker_that_dies_fails_the_launcher(photos):
    out = photos / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--standalone", "--max-restarts", "0", "-m", "graphseg",
               *arguments(photos, epochs=("2000", "2000"))]
    process = subprocess.Popen(command, env=environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not all((out / f"manifest.rank{r}.json").is_file() for r in (0, 1)):
            assert process.poll() is None and time.monotonic() < deadline, "a rank never started"
            time.sleep(0.1)
        workers = _workers(process.pid)
        assert set(workers) == {0, 1}, workers
        os.kill(workers[1], signal.SIGKILL)
        _, err = process.communicate(timeout=120)  # the launcher notices and stops rank 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode not in (0, None), err[-2000:]
    assert "FAILED" in err or "failed" in err, err[-2000:]
    json.loads((out / "manifest.rank0.json").read_text())  # still valid JSON
