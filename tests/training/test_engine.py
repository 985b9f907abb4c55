"""The training engine: schedules, accumulation, exact resume, seeding, checkpoints,
hooks, AMP and DistributedDataParallel under torchrun."""
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphseg.training import fit
from graphseg.utils.io import read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_thread")


class Interrupt(Exception):
    pass


def regression(n=12, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g, dtype=dtype)
    return x, (x @ torch.tensor([1.0, -2.0, 0.5], dtype=dtype) + 0.3)[:, None]


def toy_model(seed=0, dropout=0.2):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(3, 8), nn.Dropout(dropout), nn.Tanh(), nn.Linear(8, 1))


def train(model=None, n=12, seen=None, lr=0.1, dtype=torch.float32, noise=True, **options):
    """``fit`` on a small regression whose loss draws from torch's, numpy's and Python's
    global generators (dropout and, with ``noise``, noisy targets), so only an exact
    restore of the random states resumes it exactly."""
    x, y = regression(n, dtype)
    model = toy_model() if model is None else model
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    def loss(net, indices, epoch):
        if seen is not None:
            seen.append((epoch, list(indices)))
        target = y[indices]
        if noise:
            target = target + 0.01 * (torch.randn(len(indices), 1) + np.random.normal()
                                      + random.random())
        return F.mse_loss(net(x[indices]), target)

    options = dict(dict(epochs=4, batch_size=4, seed=3, progress=False), **options)
    return model, fit(model, optimizer, loss, n, **options)


def stop_after(epoch):
    def callback(e, loss):
        if e == epoch:
            raise Interrupt
    return callback


def assert_same_weights(a, b):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


# ---------------------------------------------------------------- optimisation


@pytest.mark.parametrize("schedule,accumulate", [("poly", 1), ("cosine", 1), ("poly", 2),
                                                 (None, 1)])
def test_schedules_follow_their_formulas(schedule, accumulate):
    steps = []
    train(lr=0.2, epochs=2, schedule=schedule, accumulate=accumulate,
          on_step=lambda epoch, step, loss, logs: steps.append((epoch, step, logs["lr"])))
    updates = math.ceil(3 / accumulate)  # 12 samples in batches of 4
    total = 2 * updates
    assert [(e, s) for e, s, _ in steps] == [(s // updates, s) for s in range(total)]
    formula = {"poly": lambda t: (1 - t / total) ** 0.9,
               "cosine": lambda t: 0.5 * (1 + math.cos(math.pi * t / total)),
               None: lambda t: 1.0}[schedule]
    for _, step, lr in steps:
        assert lr == pytest.approx(0.2 * formula(step), rel=1e-12), step


@pytest.mark.parametrize("n", [8, 6])  # 6: the last group has one batch
def test_gradient_accumulation_equals_a_bigger_batch(n):
    options = dict(n=n, dtype=torch.float64, noise=False, schedule="poly")
    small, history = train(toy_model(dropout=0.0).double(), batch_size=2, accumulate=2,
                           **options)
    big, expected = train(toy_model(dropout=0.0).double(), batch_size=4, **options)
    assert history == pytest.approx(expected, rel=1e-10)
    for (name, p), q in zip(small.state_dict().items(), big.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=name)


def test_step_hook_and_epoch_averages():
    x, y = regression(10)
    model = toy_model(dropout=0.0)
    batches, steps, epochs = [], [], []

    def loss(net, indices, epoch):
        value = F.mse_loss(net(x[indices]), y[indices])
        batches.append((value.item(), len(indices)))
        return value, {"half": value.item() / 2}

    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.05), loss, 10, epochs=2,
                  batch_size=4, accumulate=2, progress=False,
                  on_step=lambda *args: steps.append(args),
                  on_epoch_end=lambda *args: epochs.append(args))
    assert [len(batch) for batch in (batches, steps, epochs)] == [6, 4, 2]
    assert [n for _, n in batches] == [4, 4, 2] * 2
    groups = []  # per epoch, batches of 4, 4 and 2: steps over the first two, then the last
    for e in range(2):
        groups += [batches[3 * e:3 * e + 2], batches[3 * e + 2:3 * e + 3]]
    for k, ((epoch, step, value, logs), group) in enumerate(zip(steps, groups)):
        group = [v for v, _ in group]
        assert (epoch, step) == (k // 2, k)
        assert value == pytest.approx(np.mean(group), rel=1e-12)
        assert logs["half"] == pytest.approx(np.mean(group) / 2, rel=1e-12)
        assert logs["lr"] == 0.05
    by_samples = [sum(v * n for v, n in batches[3 * e:3 * e + 3]) / 10 for e in range(2)]
    assert history == by_samples and epochs == [(0, history[0]), (1, history[1])]
    model = toy_model(dropout=0.0)
    batches.clear()
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.05), loss, 10, epochs=1,
                  batch_size=4, average="batches", progress=False)
    assert history == [float(np.mean([v for v, _ in batches]))]


# ---------------------------------------------------------------- resume and seeding


def test_resume_equals_uninterrupted_run(tmp_path):
    seen_whole, seen_resumed = [], []
    whole, history = train(seen=seen_whole, checkpoint=tmp_path / "a.pt", schedule="poly")
    with pytest.raises(Interrupt):
        train(checkpoint=tmp_path / "b.pt", schedule="poly", on_epoch_end=stop_after(1))
    assert read_checkpoint(tmp_path / "b.pt", "a checkpoint")["epoch"] == 2
    ends = []
    resumed, again = train(toy_model(seed=9), seen=seen_resumed, checkpoint=tmp_path / "b.pt",
                           schedule="poly", on_epoch_end=lambda e, loss: ends.append(e))
    assert ends == [2, 3] and again == history
    assert seen_resumed == [s for s in seen_whole if s[0] >= 2]  # the same batches
    assert_same_weights(whole, resumed)
    # a finished run resumes to nothing
    assert train(checkpoint=tmp_path / "b.pt", schedule="poly")[1] == history


def test_seeded_runs_repeat_and_leave_the_callers_random_state_alone():
    torch.manual_seed(1)
    first, history = train()
    torch.manual_seed(2)
    np.random.seed(2)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    second, again = train()
    assert again == history
    assert_same_weights(first, second)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert (np.random.get_state()[1] == states[1]).all() and random.getstate() == states[2]
    assert train(seed=4)[1] != history


def test_another_configuration_is_refused(tmp_path):
    path = tmp_path / "ck.pt"
    options = dict(epochs=1, checkpoint=path, config={"lr": 0.1}, meta={"format": "toy"})
    train(**options)
    with pytest.raises(ValueError, match=r"ck.pt: was written with another configuration "
                                         r"\(checkpoint, now\): \{'lr': \(0.1, 0.2\)\}; use "
                                         r"resume=False to start over"):
        train(**dict(options, config={"lr": 0.2}))
    with pytest.raises(ValueError, match=r"\{'batch_size': \(4, 3\)\}"):
        train(**dict(options, batch_size=3))
    with pytest.raises(ValueError, match=r"\{'accumulate': \(1, 2\)\}"):
        train(**dict(options, accumulate=2))
    with pytest.raises(ValueError, match="was written with format 'toy', this run has 'other'"):
        train(**dict(options, meta={"format": "other"}))
    assert len(train(**dict(options, epochs=2, resume=False))[1]) == 2  # starts over
    with pytest.raises(ValueError, match=r"config must not set \['epochs'\]"):
        train(config={"epochs": 3})
    with pytest.raises(ValueError, match=r"meta must not set \['model'\]"):
        train(meta={"model": 1})
    with pytest.raises(ValueError, match="schedule must be one of 'poly', 'cosine'"):
        train(schedule="step")
    with pytest.raises(ValueError, match="accumulate must be >= 1"):
        train(accumulate=0)
    with pytest.raises(ValueError, match="average must be one of"):
        train(average="mean")


def test_checkpoint_is_complete_and_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    model, history = train(epochs=2, checkpoint=path, meta={"format": "toy"})
    state = read_checkpoint(path, "a checkpoint")  # loads with weights_only=True
    assert state["format"] == "toy" and state["epoch"] == 2 and state["history"] == history
    assert state["config"] == {"epochs": 2, "batch_size": 4, "seed": 3, "num_samples": 12,
                               "world_size": 1, "schedule": None, "accumulate": 1,
                               "amp": False}
    assert sorted(state["shards"][0]) == list(range(12)) and len(state["rng"]) == 1
    assert state["checksums"][0] == pytest.approx(
        float(sum(p.detach().double().sum() for p in model.parameters())), rel=1e-12)
    for name, value in model.state_dict().items():
        assert torch.equal(state["model"][name], value), name
    saved = torch.save

    def dies_in_epoch_two(obj, file):
        if obj["epoch"] == 2:
            file.write(b"half a checkpoint")
            raise OSError("disk full")
        saved(obj, file)

    monkeypatch.setattr(torch, "save", dies_in_epoch_two)
    with pytest.raises(OSError, match="disk full"):
        train(epochs=3, checkpoint=tmp_path / "b.pt")
    monkeypatch.undo()
    assert read_checkpoint(tmp_path / "b.pt", "a checkpoint")["epoch"] == 1  # left whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pt", "ck.pt"]  # no temp file
    whole = train(epochs=3)[1]
    assert train(epochs=3, checkpoint=tmp_path / "b.pt")[1] == whole


# ---------------------------------------------------------------- AMP


def test_amp_needs_cuda():
    with pytest.raises(ValueError, match="amp needs a model on a CUDA device, got one on cpu"):
        train(amp=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_amp_trains_and_resumes(tmp_path):
    x, y = (t.cuda() for t in regression(64))
    model = toy_model(dropout=0.0).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    outputs = []

    def loss(net, indices, epoch):
        out = net(x[indices])
        outputs.append(out.dtype)
        return F.mse_loss(out.float(), y[indices])

    history = fit(model, optimizer, loss, 64, epochs=5, batch_size=16, amp=True,
                  checkpoint=tmp_path / "ck.pt", progress=False)
    assert set(outputs) == {torch.float16} and history[-1] < history[0]
    state = read_checkpoint(tmp_path / "ck.pt", "a checkpoint")
    assert state["config"]["amp"] and state["scaler"]["scale"] > 0
    assert "cuda" in state["rng"][0]


# ---------------------------------------------------------------- torchrun

WORKER = '''
import json, sys
import torch, torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from graphseg.training import fit

class Interrupt(Exception):
    pass

torch.set_num_threads(1)
dist.init_process_group("gloo")  # fit joins an existing group and leaves it
x = torch.linspace(-1, 1, 16)[:, None]
y = torch.sin(3 * x)

def run(path, stop=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 16), nn.Dropout(0.1), nn.Tanh(), nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    def end(epoch, loss):
        if epoch == stop:
            raise Interrupt
    def loss(net, indices, epoch):
        return F.mse_loss(net(x[indices]), y[indices])
    history = fit(model, optimizer, loss, len(x), epochs=3, batch_size=2, schedule="cosine",
                  checkpoint=path, progress=False, on_epoch_end=end)
    return history, [p.tolist() for p in model.parameters()]

out = sys.argv[1]
whole = run(out + "/a.pt")
try:
    run(out + "/b.pt", stop=0)
except Interrupt:
    pass
resumed = run(out + "/b.pt")
with open(f"{out}/rank{dist.get_rank()}.json", "w") as file:
    json.dump({"whole": whole, "resumed": resumed}, file)
dist.destroy_process_group()
'''


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    (tmp_path / "worker.py").write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--standalone", str(tmp_path / "worker.py"), str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # one averaged loss, replicas kept equal
    assert ranks[0]["resumed"] == ranks[0]["whole"]
    state = read_checkpoint(tmp_path / "a.pt", "a checkpoint")
    assert state["config"]["world_size"] == 2 and state["epoch"] == 3
    first, second = state["shards"]
    assert len(first) == len(second) == 8 and sorted(first + second) == list(range(16))
    assert state["checksums"][0] == state["checksums"][1]
    assert len(state["rng"]) == 2
