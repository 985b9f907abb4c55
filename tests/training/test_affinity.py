"""Training the affinity CNN of thesis section 3.3.3: seeded, checkpointed and
resumable, its file format, and the ``train-affinity`` command (one process and two
under ``torchrun``)."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graphseg.losses import affinity_loss
from graphseg.nn.backbones import SmallCNN, preprocess
from graphseg.nn.models import AffinityNet
from graphseg.training import load_affinity_net, save_affinity_net, train_affinity_net

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net(seed=0, width=4, channels=14):
    return AffinityNet(SmallCNN(width, seed=seed), affinity_channels=channels, seed=seed)


# ---------------------------------------------------------------- training


def kit_sample(data_kit, name="flower", scale=0.25):
    """A downscaled GrabCut photo and its scribble seeds (1 object, 0 background)."""
    from graphseg.data import GrabCutDataset

    dataset = GrabCutDataset(data_kit / "grabcut")
    sample = dataset.load(name)
    h, w = sample.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = np.asarray(Image.fromarray(sample.image).resize(size, Image.BILINEAR))
    seeds = np.asarray(Image.fromarray(dataset.scribbles(name)).resize(size, Image.NEAREST))
    return image, seeds.copy()


def full_loss(model, image, seeds):
    from graphseg.graph import label_map_to_nodes

    with torch.no_grad():
        out = model.eval()(preprocess(image)[None])  # eval: batch-norm statistics as trained
    grid = out.affinity.shape[-2:]
    labels = label_map_to_nodes(seeds, grid).view(1, *grid)
    colour = torch.nn.functional.avg_pool2d(
        torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255, 8, ceil_mode=True)
    return affinity_loss(out.affinity, labels, colour)[0].item()


def train_kwargs(**extra):
    return dict(dict(epochs=3, batch_size=2, crop=96, lr=0.01, seed=5, progress=False), **extra)


def synthetic_samples():
    """Three photos of different sizes with a dark object, seeds on top and on the object."""
    rng = np.random.default_rng(0)
    samples = []
    for i, (h, w) in enumerate([(40, 56), (48, 44), (36, 60)]):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image[h // 2:, w // 3:] //= 4
        seeds = np.full((h, w), 255, np.uint8)
        seeds[:6] = 0
        seeds[h // 2 + 4:, w // 3 + 4:] = 1 + i % 2
        samples.append((image, seeds))
    return samples


def reference_loop(model, samples, epochs, batch_size, crop, lr, seed):
    """The training loop as it was before the engine (default loss settings)."""
    from torch.utils.data.distributed import DistributedSampler

    from graphseg.training.affinity import _batch, _check_samples

    data = _check_samples(samples)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sampler = DistributedSampler(range(len(data)), num_replicas=1, rank=0, shuffle=True,
                                 seed=seed)
    steps = math.ceil(len(sampler) / batch_size)
    history = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = list(sampler)
        model.train()
        losses = []
        for step in range(steps):
            indices = order[step * batch_size:(step + 1) * batch_size]
            images, labels, colour = _batch(data, indices, crop, model.stride, seed, epoch)
            loss, parts = affinity_loss(model(images).affinity, labels, colour)
            for group in optimizer.param_groups:
                group["lr"] = lr * (1 - (epoch * steps + step) / (epochs * steps)) ** 0.9
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(parts["loss"])
        history.append(float(np.mean(losses)))
    return history


def test_training_equals_the_loop_before_the_engine():
    settings = dict(epochs=3, batch_size=2, crop=32, lr=0.01, seed=5)  # last batch: 1 crop
    model, reference = tiny_net(seed=1), tiny_net(seed=1)
    history = train_affinity_net(model, synthetic_samples(), progress=False, **settings)
    assert history == reference_loop(reference, synthetic_samples(), **settings)
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name


def test_training_reduces_loss_and_is_deterministic(data_kit):
    image, seeds = kit_sample(data_kit)
    assert (seeds == 1).any() and (seeds == 0).any()
    samples = [(image, seeds), (image[:, ::-1].copy(), seeds[:, ::-1].copy())]
    first = tiny_net(seed=1)
    before = full_loss(first, image, seeds)
    history = train_affinity_net(first, samples, **train_kwargs(epochs=8))
    after = full_loss(first, image, seeds)
    assert len(history) == 8 and all(math.isfinite(v) for v in history)
    assert after < 0.8 * before and history[-1] < 0.8 * history[0], (before, after, history)
    second = tiny_net(seed=1)
    assert train_affinity_net(second, samples, **train_kwargs(epochs=8)) == history
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoint_resume_equals_uninterrupted_run(data_kit, tmp_path):
    image, seeds = kit_sample(data_kit, "teddy", 0.2)
    samples = [(image, seeds)] * 3
    whole = tiny_net(seed=2)
    history = train_affinity_net(whole, samples, **train_kwargs(checkpoint=tmp_path / "a.pt"))

    class Interrupt(Exception):
        pass

    def stop(epoch, loss):
        if epoch == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_affinity_net(tiny_net(seed=2), samples,
                           **train_kwargs(checkpoint=tmp_path / "b.pt", callback=stop))
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    resumed = tiny_net(seed=7)  # another init: the checkpoint's weights must win
    seen = []
    again = train_affinity_net(resumed, samples, **train_kwargs(
        checkpoint=tmp_path / "b.pt", callback=lambda e, loss: seen.append(e)))
    assert seen == [1, 2] and again == history
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # a finished run resumes to nothing; another configuration is refused
    assert train_affinity_net(tiny_net(), samples, **train_kwargs(
        checkpoint=tmp_path / "b.pt")) == history
    with pytest.raises(ValueError, match=r"another configuration .*'lr': \(0\.01, 0\.02\)"):
        train_affinity_net(tiny_net(), samples, **train_kwargs(checkpoint=tmp_path / "b.pt",
                                                                lr=0.02))
    with pytest.raises(ValueError, match="was written with architecture .*'affinity_channels'"
                                         ": 14.*this run has .*'affinity_channels': 12"):
        train_affinity_net(tiny_net(channels=12), samples,
                           **train_kwargs(checkpoint=tmp_path / "b.pt"))
    # the training checkpoint is also a model file
    loaded = load_affinity_net(tmp_path / "b.pt")
    x = preprocess(image)[None]
    with torch.no_grad():
        assert torch.equal(loaded(x).affinity, resumed.eval()(x).affinity)


def test_save_load_round_trip(tmp_path):
    net = tiny_net(seed=4)
    net.eval()
    save_affinity_net(net, tmp_path / "net.pt")
    loaded = load_affinity_net(tmp_path / "net.pt")
    assert loaded.architecture == net.architecture and not loaded.training
    x = torch.randn(1, 3, 30, 41)
    with torch.no_grad():
        a, b = net(x), loaded(x)
    assert torch.equal(a.features, b.features) and torch.equal(a.affinity, b.affinity)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a graphseg affinity-net checkpoint"):
        load_affinity_net(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_affinity_net(tmp_path / "missing.pt")


def test_training_rejects_bad_samples():
    image = np.zeros((32, 32, 3), np.uint8)
    seeds = np.zeros((32, 32), np.uint8)
    with pytest.raises(ValueError, match=r"samples\[1\] seed map has shape"):
        train_affinity_net(tiny_net(), [(image, seeds), (image, seeds[:20])], progress=False)
    with pytest.raises(ValueError, match=r"samples\[0\] seed map has no labelled pixel"):
        train_affinity_net(tiny_net(), [(image, np.full_like(seeds, 255))], progress=False)
    with pytest.raises(ValueError, match="samples is empty"):
        train_affinity_net(tiny_net(), [], progress=False)
    with pytest.raises(ValueError, match="lr must be > 0"):
        train_affinity_net(tiny_net(), [(image, seeds)], lr=float("nan"), progress=False)


# ---------------------------------------------------------------- command line


def write_folder(root: Path, count=4, size=(40, 56)):
    from graphseg.data import write_label_png

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    for i in range(count):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        image[size[0] // 2:, size[1] // 3:] //= 4  # a dark "object"
        Image.fromarray(image).save(root / "images" / f"im{i}.png")
        seeds = np.full(size, 255, np.uint8)
        seeds[:6] = 0
        seeds[size[0] // 2 + 4:, size[1] // 3 + 4:] = 1
        write_label_png(root / "seeds" / f"im{i}.png", seeds)


CLI_ARGS = ["--width", "4", "--affinity-channels", "14", "--epochs", "2", "--batch-size", "1",
            "--crop", "32", "--threads", "1", "--no-progress"]


def test_cli_trains_and_resumes(tmp_path, capsys):
    from graphseg.cli import main

    write_folder(tmp_path)
    (tmp_path / "images" / "extra.png").write_bytes((tmp_path / "images" / "im0.png")
                                                     .read_bytes())  # no seed map: skipped
    args = ["train-affinity", "--images", str(tmp_path / "images"), "--seeds",
            str(tmp_path / "seeds"), "--out", str(tmp_path / "ck.pt"), *CLI_ARGS]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "loss per epoch" in out.out and "1 images have no seed map" in out.err
    assert main(args) == 0
    assert "resuming from" in capsys.readouterr().out
    assert main([*args, "--lr", "0.5"]) == 2
    assert "another configuration" in capsys.readouterr().err
    assert main([args[0], "--images", str(tmp_path / "nowhere"), *args[3:]]) == 2
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_shard_the_samples(tmp_path):
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    write_folder(tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--standalone", "-m", "graphseg", "train-affinity",
               "--images", str(tmp_path / "images"), "--seeds", str(tmp_path / "seeds"),
               "--out", str(tmp_path / "ck.pt"), *CLI_ARGS]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("loss per epoch") == 1  # rank 0 only
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert state["config"]["world_size"] == 2 and state["epoch"] == 2
    first, second = state["shards"]
    assert len(first) == len(second) == 2
    assert sorted(first + second) == [0, 1, 2, 3]  # disjoint shards covering every image
    assert state["checksums"][0] == state["checksums"][1]  # DDP kept the replicas equal
