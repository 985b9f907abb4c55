"""``graphseg propagate`` and ``graphseg demo`` on the bundled sample."""
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch.distributed

from graphseg.cli import command_parser, main
from graphseg.data import (
    GrabCutDataset,
    read_boxes_json,
    sample_root,
    write_boxes_json,
    write_label_png,
)
from graphseg.nn.backbones import SmallCNN
from graphseg.nn.models import AffinityNet, save_classifier, small_cam_classifier
from graphseg.training import save_affinity_net
from graphseg.utils.io import read_label_map

FAST = ["--features", "colour", "--epochs", "4", "3", "--hidden", "8", "--threads", "1"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path) -> Path:
    """The three sample photos at a third of their size, their boxes, scribbles
    and masks, and one corrupt image."""
    dataset = GrabCutDataset(sample_root() / "grabcut")
    for sub in ("images", "boxes", "scribbles", "masks"):
        (tmp_path / sub).mkdir()
    for name in dataset.names:
        sample = dataset.load(name)
        h, w = sample.image.shape[:2]
        size = (w // 3, h // 3)
        image = cv2.resize(sample.image, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(tmp_path / "images" / f"{name}.png"), image[:, :, ::-1])
        write_boxes_json(tmp_path / "boxes" / f"{name}.json", sample.boxes // [1, 3, 3, 3, 3])
        nearest = cv2.INTER_NEAREST
        write_label_png(tmp_path / "scribbles" / f"{name}.png",
                        cv2.resize(dataset.scribbles(name, 1), size, interpolation=nearest))
        write_label_png(tmp_path / "masks" / f"{name}.png",
                        cv2.resize(sample.label, size, interpolation=nearest))
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    return tmp_path


def manifest(out: Path, name="manifest.json") -> dict:
    return json.loads((out / name).read_text())


def test_boxes_resume_and_a_corrupt_image(folder, capsys):
    out = folder / "out"
    args = ["propagate", "--images", str(folder / "images"), "--boxes", str(folder / "boxes"),
            "--out", str(out), "--gt", str(folder / "masks"), "--save-probs", *FAST]
    assert main(args) == 1  # the corrupt image fails, the others are written
    captured = capsys.readouterr()
    assert "error: broken:" in captured.err and "1 of 4 images failed" in captured.err
    assert "mIoU" in captured.out
    for name in ("llama", "memorial", "teddy"):
        label = read_label_map(out / f"{name}.png")
        instances = cv2.imread(str(out / "instances" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert instances.dtype == np.uint16 and label.shape == instances.shape
        _, x1, y1, x2, y2 = read_boxes_json(folder / "boxes" / f"{name}.json")[0]
        inside = np.zeros(label.shape, bool)
        inside[y1:y2, x1:x2] = True
        assert instances.max() <= 1  # one box per photo
        assert np.array_equal(instances == 1, (label == 1) & inside)
        assert np.load(out / "probs" / f"{name}.npz")["probs"].shape == (2, *label.shape)
    record = manifest(out)
    assert record["images"]["broken"]["status"] == "failed"
    assert record["images"]["teddy"]["status"] == "ok"
    assert record["images"]["teddy"]["seconds"]["total"] > 0
    assert record["options"]["config"]["stage1_epochs"] == 4 and "torch" in record["stack"]

    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert main(args) == 1  # resumed: only the corrupt image is tried again
    assert "3 already done" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == before
    (folder / "images" / "broken.png").unlink()
    assert main(args) == 0
    assert main([*args, "--overwrite"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} != before


def test_workers_give_the_same_masks(folder):
    (folder / "images" / "broken.png").unlink()
    common = ["propagate", "--images", str(folder / "images"), "--scribbles",
              str(folder / "scribbles"), *FAST, "--crf", "none"]
    assert main([*common, "--out", str(folder / "one")]) == 0
    assert main([*common, "--out", str(folder / "two"), "--workers", "2"]) == 0
    for name in ("llama", "memorial", "teddy"):
        assert np.array_equal(read_label_map(folder / "one" / f"{name}.png"),
                              read_label_map(folder / "two" / f"{name}.png"))


def test_random_walk_points_and_tags(folder, capsys):
    (folder / "images" / "broken.png").unlink()
    cam = folder / "tags" / "cam.pt"  # as if an earlier run had trained it
    save_classifier(small_cam_classifier(classes=(1,), width=4), cam)
    (folder / "tags.json").write_text(json.dumps({"llama": [1], "memorial": [1], "teddy": [1]}))
    common = ["--images", str(folder / "images"), *FAST]
    assert main(["propagate", *common, "--points", str(folder / "scribbles"), "--propagator",
                 "random-walk", "--out", str(folder / "walk")]) == 0
    assert manifest(folder / "walk")["options"]["propagator"] == "random-walk"
    capsys.readouterr()
    assert main(["propagate", *common, "--points", str(folder / "scribbles"), "--layer",
                 "random-walk", "--out", str(folder / "old")]) == 0  # 0.1's spelling
    assert "--layer random-walk is deprecated" in capsys.readouterr().err
    for name in ("llama", "memorial", "teddy"):
        assert np.array_equal(read_label_map(folder / "walk" / f"{name}.png"),
                              read_label_map(folder / "old" / f"{name}.png"))
    net = folder / "affinity.pt"
    save_affinity_net(AffinityNet(SmallCNN(width=8, seed=0), affinity_channels=28), net)
    assert main(["propagate", *common, "--scribbles", str(folder / "scribbles"), "--affinity",
                 str(net), "--out", str(folder / "affinity")]) == 0
    assert manifest(folder / "affinity")["options"]["affinity"] == str(net)
    capsys.readouterr()
    assert main(["propagate", *common, "--tags", str(folder / "tags.json"),
                 "--out", str(folder / "tags")]) == 0
    assert f"using the classifier trained earlier: {cam}" in capsys.readouterr().out
    assert manifest(folder / "tags")["options"]["cam"] == str(cam)
    assert manifest(folder / "tags")["options"]["num_classes"] == 2
    assert len(list((folder / "tags").glob("*.png"))) == 3


def test_missing_folder_is_a_usage_error(folder, capsys):
    assert main(["propagate", "--images", str(folder / "nope"), "--boxes",
                 str(folder / "boxes"), "--out", str(folder / "out")]) == 2
    assert "--images" in capsys.readouterr().err


def test_a_rank_outside_the_world_is_an_error(folder, monkeypatch, capsys):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["propagate", "--images", str(folder / "images"), "--boxes",
                 str(folder / "boxes"), "--out", str(folder / "out")]) == 2
    assert capsys.readouterr().err == "error: RANK=2 is not in [0, WORLD_SIZE=2)\n"
    monkeypatch.setenv("RANK", "one")
    assert main(["train-affinity", "--images", str(folder / "images"), "--seeds",
                 str(folder / "scribbles"), "--out", str(folder / "ck.pt")]) == 2
    assert capsys.readouterr().err == ("error: the environment variable RANK must be an integer, "
                                       "got 'one'\n")


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
@pytest.mark.slow
def test_torchrun_shards_the_images(folder):
    (folder / "images" / "broken.png").unlink()
    out = folder / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--standalone", "-m", "graphseg", "propagate", "--images",
               str(folder / "images"), "--boxes", str(folder / "boxes"), "--out", str(out),
               *FAST]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    shards = [set(manifest(out, f"manifest.rank{r}.json")["images"]) for r in (0, 1)]
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert shards[0] | shards[1] == {"llama", "memorial", "teddy"}
    assert len(list(out.glob("*.png"))) == 3


@pytest.mark.slow
def test_demo(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--limit", "1", "--features", "colour",
                 "--epochs", "3", "2", "--hidden", "8", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "GrabCut" in printed and "mean" in printed and str(tmp_path.resolve()) in printed
    assert {p.name for p in tmp_path.glob("*.png")} == {"llama_boxes.png", "llama_scribbles.png"}


def test_grabcut_box_files_of_the_bundled_sample(tmp_path, capsys):
    root = sample_root() / "grabcut"
    assert main(["propagate", "--images", str(root / "images"), "--boxes", str(root / "boxes"),
                 "--out", str(tmp_path), "--gt", str(root), *FAST]) == 0
    assert "mIoU" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.png"))) == 3


def only_llama(folder: Path) -> list:
    """The ``folder`` fixture reduced to its llama photo; the common arguments."""
    for name in ("broken", "memorial", "teddy"):
        (folder / "images" / f"{name}.png").unlink()
    return ["propagate", "--images", str(folder / "images"), "--boxes", str(folder / "boxes"),
            *FAST]


def test_resume_with_other_settings_is_refused(folder, capsys):
    out = folder / "out"
    args = [*only_llama(folder), "--out", str(out)]
    assert main(args) == 0
    assert manifest(out)["images"]["llama"]["settings"]["config"]["hidden_channels"] == 8
    before = (out / "manifest.json").read_text(), (out / "llama.png").stat().st_mtime_ns
    capsys.readouterr()
    changed = [*args, "--hidden", "16", "--crf", "none"]  # the last --hidden wins
    assert main(changed) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {out}: 1 label maps there were made with other "
                          "settings (--crf final then, none now; --hidden 8 then, 16 now); "
                          "rerun with --overwrite") and err.count("\n") == 1
    assert ((out / "manifest.json").read_text(), (out / "llama.png").stat().st_mtime_ns) \
        == before  # nothing recomputed, nothing recorded
    assert main([*changed, "--overwrite"]) == 0
    assert manifest(out)["images"]["llama"]["settings"]["config"]["hidden_channels"] == 16
    assert manifest(out)["images"]["llama"]["settings"]["crf"] is None
    capsys.readouterr()
    assert main(changed) == 0 and "1 already done" in capsys.readouterr().out
    (out / "manifest.json").unlink()  # label maps that no manifest accounts for
    assert main(changed) == 2
    assert "have no settings in" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_and_the_rerun_resumes(folder, monkeypatch, capsys):
    (folder / "images" / "broken.png").unlink()
    module = importlib.import_module("graphseg.cli.propagate")
    real, calls = module._one, []

    def one(name):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second photo
        return real(name)

    monkeypatch.setattr(module, "_one", one)
    out = folder / "out"
    args = ["propagate", "--images", str(folder / "images"), "--scribbles",
            str(folder / "scribbles"), "--out", str(out), *FAST, "--crf", "none"]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert f"interrupted: 1 of 3 images done in {out}; rerun the same command to resume\n" \
        in err and "Traceback" not in err
    record = manifest(out)  # valid JSON, the finished photo recorded with its settings
    assert [n for n, r in record["images"].items() if r["status"] == "ok"] == calls[:1]
    assert record["images"][calls[0]]["settings"]["kind"] == "scribbles"
    assert main(args) == 0 and "1 already done" in capsys.readouterr().out
    assert len(list(out.glob("*.png"))) == 3


def test_hidden_defaults_to_the_benchmarked_64():
    parser, _ = command_parser("propagate")
    assert parser.parse_args(["--images", "i", "--boxes", "b", "--out", "o"]).hidden == 64


@pytest.mark.slow
@pytest.mark.parametrize("delay", [3.0, 0.5])
def test_ctrl_c_stops_the_workers_too(folder, delay):
    """SIGINT to the whole process group (what Ctrl-C sends) while two workers run, or
    while they start (Ctrl-C is held then, not lost)."""
    (folder / "images" / "broken.png").unlink()
    out = folder / "out"
    command = [sys.executable, "-m", "graphseg", "propagate", "--images", str(folder / "images"),
               "--boxes", str(folder / "boxes"), "--out", str(out), "--workers", "2", *FAST,
               "--epochs", "400", "400", "--crf", "none"]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    # SIGINT as in a terminal's foreground job: a shell's background job (pytest run with
    # `&` from a script) passes it on ignored, and Python then keeps ignoring it
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for _ in range(1200):  # the manifest is written just before the workers start
        if (out / "manifest.json").is_file() or process.poll() is not None:
            break
        time.sleep(0.1)
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.count("interrupted: ") == 1
    assert "rerun the same command to resume" in err
    images = manifest(out)["images"]  # valid JSON; every label map there is recorded
    for label in out.glob("*.png"):
        assert images[label.stem]["status"] == "ok" and "settings" in images[label.stem]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_arguments_are_refused_before_any_work(folder, capsys, monkeypatch):
    module = importlib.import_module("graphseg.cli.propagate")
    monkeypatch.setattr(module, "_one", lambda name: pytest.fail("an image was worked on"))
    cam, net = folder / "cam.pt", folder / "affinity.pt"
    save_classifier(small_cam_classifier(classes=(1,), width=4), cam)
    save_affinity_net(AffinityNet(SmallCNN(width=8, seed=0), affinity_channels=28), net)
    damaged = folder / "damaged.pt"
    damaged.write_bytes(cam.read_bytes()[:200])
    newer = folder / "newer.pt"
    state = torch.load(cam, weights_only=True)
    torch.save({**state, "format_version": 7}, newer)
    (folder / "out.txt").write_text("a file")
    base = ["propagate", "--images", str(folder / "images"), "--points",
            str(folder / "scribbles"), *FAST]
    cases = {
        ("--out", str(folder / "out.txt")): "exists and is not a folder",
        ("--out", str(folder / "out.txt" / "sub")): "out.txt is not a folder",
        ("--cam", str(folder / "nope.pt")): "nope.pt: no such file, expected a CAM checkpoint",
        ("--cam", str(net)): "an affinity-net checkpoint (graphseg train-affinity), expected "
                             "a CAM checkpoint",
        ("--cam", str(damaged)): "not a graphseg checkpoint (PytorchStreamReader failed",
        ("--cam", str(newer)): "format version 7, newer than this graphseg",
        ("--affinity", str(cam)): "a CAM checkpoint, expected an affinity-net checkpoint",
        ("--gt", str(folder / "nope")): "no such folder",
        ("--max-side", "8"): "expected at least 16 (or 0, full size)",
        ("--grabcut-prior", "1.5"): "expected a value in (0, 1)",
    }
    for (flag, value), expected in cases.items():
        out = [] if flag == "--out" else ["--out", str(folder / "out")]
        assert main([*base, *out, flag, value]) == 2, flag
        err = one_line_error(capsys)
        assert err.startswith(f"error: {flag} {value}") and expected in err, err
    assert not (folder / "out").exists()  # nothing written either
    assert main(["seeds", "--images", str(folder / "images"), "--boxes", str(folder / "boxes"),
                 "--out", str(folder / "out.txt")]) == 2
    assert "--out" in one_line_error(capsys)
    (folder / "t.json").write_text('{"llama": [1]}')
    assert main(["seeds", "--images", str(folder / "images"), "--tags", str(folder / "t.json"),
                 "--cam", str(net), "--out", str(folder / "out")]) == 2
    assert "an affinity-net checkpoint" in one_line_error(capsys)


def test_output_files_of_the_other_commands_are_checked_first(folder, capsys):
    (folder / "out.txt").write_text("a file")
    commands = [
        ["weak-labels", "--from", str(sample_root() / "grabcut"), "--kind", "boxes",
         "--out", str(folder / "out.txt")],
        ["visualize", "--image", str(folder / "images" / "llama.png"), "--out", str(folder)],
        ["evaluate", "--pred", str(folder / "masks"), "--gt", str(folder / "masks"),
         "--json", str(folder / "out.txt" / "x.json")],
        ["train-affinity", "--images", str(folder / "images"), "--seeds",
         str(folder / "scribbles"), "--out", str(folder / "out.txt")],  # not a checkpoint
        ["train-affinity", "--images", str(folder / "images"), "--seeds",
         str(folder / "scribbles"), "--out", str(folder / "ck.pt"), "--backbone", "espnetv2",
         "--weights", str(folder / "nope.pth")],
    ]
    for command in commands:
        assert main(command) == 2, command
        err = one_line_error(capsys)
        flag = "--json" if command[0] == "evaluate" else "--weights" if "--weights" in command \
            else "--out"
        assert err.startswith(f"error: {flag} "), err
    assert not (folder / "ck.pt").exists()


def test_extensions_in_any_case(folder, capsys):
    """A camera's a.JPG with its box file a.Json, a B.PNG scribble map and ground truth."""
    for name in ("broken", "memorial", "teddy"):
        (folder / "images" / f"{name}.png").unlink()
    image = cv2.imread(str(folder / "images" / "llama.png"))
    (folder / "images" / "llama.png").unlink()
    cv2.imwrite(str(folder / "images" / "llama.JPG"), image)
    (folder / "boxes" / "llama.json").rename(folder / "boxes" / "llama.Json")
    (folder / "scribbles" / "llama.png").rename(folder / "scribbles" / "llama.PNG")
    (folder / "masks" / "llama.png").rename(folder / "masks" / "llama.PNG")
    for kind in ("boxes", "scribbles"):
        out = folder / f"out-{kind}"
        assert main(["propagate", "--images", str(folder / "images"), f"--{kind}",
                     str(folder / kind), "--out", str(out), "--gt", str(folder / "masks"),
                     *FAST, "--crf", "none"]) == 0, capsys.readouterr().err
        assert "mIoU" in capsys.readouterr().out
        assert read_label_map(out / "llama.png").shape == image.shape[:2]
    assert main(["evaluate", "--pred", str(folder / "out-boxes"), "--gt",
                 str(folder / "masks")]) == 0
    assert "1 images scored" in capsys.readouterr().out


def test_a_phone_sized_photo_is_worked_on_at_max_side(tmp_path, capsys):
    """4000 x 3000 at the default --max-side: a small graph, the map at full size."""
    rng = np.random.default_rng(0)
    image = rng.integers(90, 110, (3000, 4000, 3), dtype=np.uint8)
    image[900:2100, 1200:2800] = (200, 40, 40)
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "phone.jpg"), image)
    write_boxes_json(tmp_path / "boxes" / "phone.json", [[1, 1000, 700, 3000, 2300]])
    out = tmp_path / "out"
    args = ["propagate", "--images", str(tmp_path / "images"), "--boxes", str(tmp_path / "boxes"),
            "--out", str(out), "--features", "colour", "--epochs", "2", "2", "--hidden", "8",
            "--crf", "none", "--threads", "1"]
    assert main(args) == 0, capsys.readouterr().err
    labels = read_label_map(out / "phone.png")
    assert labels.shape == (3000, 4000)
    assert not labels[:700].any() and not labels[:, 3000:].any()  # outside the box
    instances = cv2.imread(str(out / "instances" / "phone.png"), cv2.IMREAD_UNCHANGED)
    assert instances.shape == (3000, 4000)
    assert manifest(out)["images"]["phone"]["settings"]["max_side"] == 1024
    capsys.readouterr()
    assert main([*args, "--max-side", "512"]) == 2  # another working resolution: refused
    assert "--max-side 1024 then, 512 now" in one_line_error(capsys)
