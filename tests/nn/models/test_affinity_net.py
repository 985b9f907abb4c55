"""The affinity CNN of thesis section 3.3.3: labels, loss, model, graph, training."""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graphseg.graph import image_to_graph, window_offsets
from graphseg.losses import affinity_labels, affinity_loss, affinity_pairs, pair_distances
from graphseg.nn.backbones import SmallCNN, preprocess
from graphseg.nn.models import AffinityNet, affinity_graph
from graphseg.propagation import colour_position_features
from graphseg.training import load_affinity_net, save_affinity_net, train_affinity_net

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_net(seed=0, width=4, channels=14):
    return AffinityNet(SmallCNN(width, seed=seed), affinity_channels=channels, seed=seed)


# ---------------------------------------------------------------- brute force references


def brute_pairs(seeds, radius, window):
    """Ordered labelled pairs (b, i, j, label) within the window, i != j."""
    b, h, w = seeds.shape
    out = {}
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                for k, (dy, dx) in enumerate(window_offsets(radius, window).tolist()):
                    yy, xx = y + dy, x + dx
                    if (dy, dx) == (0, 0) or not (0 <= yy < h and 0 <= xx < w):
                        continue
                    a, c = int(seeds[bi, y, x]), int(seeds[bi, yy, xx])
                    if a == 255 or c == 255:
                        continue
                    kind = "neg" if a != c else ("bg_pos" if a == 0 else "fg_pos")
                    out[(bi, k, y, x)] = kind
    return out


def brute_loss(aff, seeds, colour, radius, window, weighting, reg_weight=3.0, sigma_xy=6.0,
               sigma_rgb=0.1, eps=1e-5, reg_norm="nodes"):
    b, d, h, w = aff.shape
    sums = {"bg_pos": [], "fg_pos": [], "neg": []}
    ar, mass = aff.new_zeros(()), 0.0
    offsets = window_offsets(radius, window).tolist()
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                for dy, dx in offsets:
                    yy, xx = y + dy, x + dx
                    if (dy, dx) == (0, 0) or not (0 <= yy < h and 0 <= xx < w):
                        continue
                    dist = (aff[bi, :, y, x] - aff[bi, :, yy, xx]).abs().sum() / d
                    g = math.exp(-(dy * dy + dx * dx) / (2 * sigma_xy ** 2)
                                 - float((colour[bi, :, y, x] - colour[bi, :, yy, xx]).square()
                                         .sum()) / (2 * sigma_rgb ** 2))
                    ar, mass = ar + g * dist, mass + g
                    a, c = int(seeds[bi, y, x]), int(seeds[bi, yy, xx])
                    if a == 255 or c == 255:
                        continue
                    if a != c:
                        sums["neg"].append(-torch.log(1 - torch.exp(-dist) + eps))
                    else:
                        sums["bg_pos" if a == 0 else "fg_pos"].append(dist)
    mean = {k: torch.stack(v).mean() if v else aff.new_zeros(()) for k, v in sums.items()}
    if weighting == "release":
        ac = mean["bg_pos"] / 4 + mean["fg_pos"] / 4 + mean["neg"] / 2
    else:
        pos = sums["bg_pos"] + sums["fg_pos"]
        ac = (torch.stack(pos).mean() if pos else 0) + mean["neg"]
    ar = ar / (b * h * w) if reg_norm == "nodes" else ar / mass
    return ac + reg_weight * ar, mean


def random_case(seed=0, b=2, d=5, h=5, w=6, double=True):
    g = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    aff = torch.randn(b, d, h, w, generator=g, dtype=dtype)
    seeds = torch.randint(0, 4, (b, h, w), generator=g)
    seeds[seeds == 3] = 255
    seeds[1, 1] = 2  # a second foreground class
    colour = torch.rand(b, 3, h, w, generator=g, dtype=dtype) * 0.3
    return aff, seeds, colour


# ---------------------------------------------------------------- labels and loss


@pytest.mark.parametrize("window", ["disk", "square"])
def test_affinity_labels_match_brute_force(window):
    _, seeds, _ = random_case()
    labels = affinity_labels(seeds, radius=2, window=window)
    pairs = affinity_pairs(seeds, radius=2, window=window)
    assert labels.shape == (2, len(window_offsets(2, window)), 5, 6)
    expected = brute_pairs(seeds, 2, window)
    for index in np.ndindex(*labels.shape):
        kind = expected.get(index)
        assert int(labels[index]) == {None: 255, "neg": 0}.get(kind, 1), index
        for name in ("bg_pos", "fg_pos", "neg"):
            assert bool(getattr(pairs, name)[index]) == (kind == name), (index, name)
    assert len(expected) > 20 and {"bg_pos", "fg_pos", "neg"} <= set(expected.values())


@pytest.mark.parametrize("weighting,window,reg_norm", [
    ("release", "disk", "nodes"), ("thesis", "disk", "nodes"), ("release", "square", "nodes"),
    ("thesis", "square", "kernel"), ("release", "disk", "kernel")])
def test_affinity_loss_and_gradient_match_brute_force(weighting, window, reg_norm):
    aff, seeds, colour = random_case(seed=1)
    aff_a = aff.clone().requires_grad_(True)
    loss, parts = affinity_loss(aff_a, seeds, colour, radius=2, window=window,
                                weighting=weighting, reg_norm=reg_norm)
    loss.backward()
    aff_b = aff.clone().requires_grad_(True)
    ref, means = brute_loss(aff_b, seeds, colour, 2, window, weighting, reg_norm=reg_norm)
    ref.backward()
    assert torch.allclose(loss, ref, rtol=1e-9, atol=1e-12)
    assert torch.allclose(aff_a.grad, aff_b.grad, rtol=1e-7, atol=1e-10)
    for name in ("bg_pos", "fg_pos", "neg"):
        assert parts[name] == pytest.approx(float(means[name].detach()), rel=1e-9)


def test_regularised_term_alone_and_pair_distances():
    aff, seeds, colour = random_case(seed=2)
    _, parts = affinity_loss(aff, seeds, colour, radius=2, reg_weight=0.0)
    ref, _ = brute_loss(aff, seeds, colour, 2, "disk", "release", reg_weight=1.0)
    ac, _ = brute_loss(aff, seeds, colour, 2, "disk", "release", reg_weight=0.0)
    assert parts["ar"] == pytest.approx(float(ref - ac), rel=1e-9)
    assert parts["loss"] == pytest.approx(parts["ac"], rel=1e-12)
    dist = pair_distances(aff, radius=1, window="square")
    planes = torch.stack([torch.exp(-dist[b]) for b in range(2)])
    from graphseg.graph import grid_affinity
    for b in range(2):  # exp(-distance) is Eq. 3.8, as the graph code computes it
        assert torch.allclose(planes[b] * (grid_affinity(aff[b], 1) > 0),
                              grid_affinity(aff[b], 1), atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: pair_distances(x, 1), (aff[:1, :2, :3, :4]
                                                                     .clone().requires_grad_(),))


def test_affinity_loss_rejects_bad_inputs():
    aff, seeds, colour = random_case(double=False)
    with pytest.raises(ValueError, match="labels has shape"):
        affinity_loss(aff, seeds[:, :4], colour)
    with pytest.raises(ValueError, match="colour must have shape"):
        affinity_loss(aff, seeds, colour[:, :, :4])
    with pytest.raises(ValueError, match="no labelled node"):
        affinity_loss(aff, torch.full_like(seeds, 255), colour)
    bad = aff.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="affinity contains 1 non-finite"):
        affinity_loss(bad, seeds, colour)
    with pytest.raises(TypeError, match="labels must hold integer"):
        affinity_loss(aff, seeds.float(), colour)
    with pytest.raises(ValueError, match="weighting"):
        affinity_loss(aff, seeds, colour, weighting="paper")


# ---------------------------------------------------------------- model and graph


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (65, 17)])
def test_model_grid_matches_colour_features(size):
    net = tiny_net().eval()
    h, w = size
    out = net(torch.zeros(2, 3, h, w))
    grid = tuple(colour_position_features(np.zeros((h, w, 3), np.uint8), 8).shape[1:])
    assert grid == (math.ceil(h / 8), math.ceil(w / 8))
    assert out.features.shape == (2, 4 * 2 + 4 * 4 + 4 * 4, *grid)
    assert out.affinity.shape == (2, 14, *grid)


def test_affinity_graph_matches_image_to_graph():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)
    net = tiny_net(seed=3)
    net.train()  # affinity_graph must switch to eval and back
    data = affinity_graph(net, image, radius=2, threshold=0.3)
    assert net.training
    with torch.no_grad():
        out = net.eval()(preprocess(image)[None])
    ref = image_to_graph(out.features[0], 2, "square", edge_features=out.affinity[0],
                         threshold=0.3)
    assert data.grid_size == ref.grid_size == (6, 9)
    assert torch.equal(data.edge_index, ref.edge_index)
    assert torch.allclose(data.edge_weight, ref.edge_weight)
    assert torch.allclose(data.x, ref.x) and torch.allclose(data.x.abs().sum(1),
                                                            torch.ones(54))
    assert data.stride == 8 and (data.edge_weight > 0.3).all()


def test_model_rejects_bad_arguments():
    with pytest.raises(TypeError, match="backbone interface"):
        AffinityNet(torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="levels"):
        AffinityNet(SmallCNN(4), levels=5)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\)"):
        tiny_net()(torch.zeros(3, 8, 8))


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
        checkpoint=tmp_path / "b.pt", callback=lambda e, l: seen.append(e)))
    assert seen == [1, 2] and again == history
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # a finished run resumes to nothing; another configuration is refused
    assert train_affinity_net(tiny_net(), samples, **train_kwargs(
        checkpoint=tmp_path / "b.pt")) == history
    with pytest.raises(ValueError, match="another configuration"):
        train_affinity_net(tiny_net(), samples, **train_kwargs(checkpoint=tmp_path / "b.pt",
                                                                lr=0.02))
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


# ---------------------------------------------------------------- benchmark


def test_benchmark_quick(data_kit, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("affinity_net_bench",
                                                  ROOT / "benchmarks" / "affinity_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    assert module.main(["--quick", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "colour" in table and "small CNN" in table
    report = json.loads(out.read_text())
    rows = {row["graph"]: row for row in report["rows"]}
    assert len(rows) >= 2
    for row in rows.values():
        assert 0 <= row["neg_mean"] <= 1 and 0 <= row["pos_mean"] <= 1 and 0 <= row["auc"] <= 1
