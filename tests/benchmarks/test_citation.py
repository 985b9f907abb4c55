"""benchmarks/citation.py on a tiny setting: one seed, a few epochs, Cora only."""
import json

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def cora_kit(data_kit):
    if not (data_kit / "planetoid" / "Cora" / "raw").is_dir():
        pytest.skip(f"Cora not found under {data_kit / 'planetoid'}")
    return data_kit


def test_quick_run_writes_json_with_every_model(cora_kit, tmp_path, capsys, load_benchmark):
    import torch

    bench = load_benchmark("citation")
    out, png = tmp_path / "citation.json", tmp_path / "citation.png"
    settings = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    assert bench.main(["--quick", "--runs", "1", "--epochs", "30", "--datasets", "Cora",
                       "--data", str(cora_kit), "--json", str(out), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    # torch's global settings are left as they were for the other tests
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == settings
    assert "quick mode: 1 runs of 30 epochs" in printed
    assert "81.5" in printed and "83.1" in printed  # published numbers beside ours
    assert "Target" in printed
    # the plot is written, or skipped with a message when matplotlib is missing
    assert png.is_file() or "matplotlib is not installed" in printed

    report = json.loads(out.read_text())
    assert report["seeds"] == [0]
    assert {"machine", "cpus", "torch", "torch_geometric", "graphseg"} <= set(report["machine"])
    assert report["machine"]["torch_threads"] == 1  # --threads' default, set for the run
    models = report["results"]["Cora"]
    assert list(models) == list(bench.MODELS)
    for key, result in models.items():
        assert len(result["runs"]) == 1
        assert 0.3 < result["mean"] <= 1.0, (key, result["mean"])
        assert result["runs"][0]["epoch"] <= 30
        assert result["wall_seconds"] > 0
    assert models["gcn"]["published"] == 81.5
    assert set(report["target"]["Cora"]["variants"]) == set(bench.OURS)
    assert report["target"]["Cora"]["best_published"] == 83.1

    # seeded and deterministic: the same seed gives the same number again
    again = tmp_path / "again.json"
    bench.main(["--runs", "1", "--epochs", "30", "--datasets", "Cora", "--models",
                "ours_similarity", "--data", str(cora_kit), "--json", str(again)])
    repeated = json.loads(again.read_text())["results"]["Cora"]["ours_similarity"]
    assert repeated["runs"] == [dict(models["ours_similarity"]["runs"][0],
                                     seconds=repeated["runs"][0]["seconds"])]


def test_select_uses_validation_only(cora_kit, tmp_path, capsys, load_benchmark):
    bench = load_benchmark("citation")
    out = tmp_path / "select.json"
    assert bench.main(["--select", "--runs", "1", "--epochs", "3", "--datasets", "Cora",
                       "--data", str(cora_kit), "--json", str(out)]) == 0
    assert "selected:" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["seeds"] == [bench.SELECTION["seed"]]  # not the reported seeds
    rows = report["selection"]["Cora"]["rows"]
    assert len(rows) == len(bench.grid_points())
    best = max(row["val_mean"] for row in rows)
    assert report["selection"]["Cora"]["selected"] in [
        row["settings"] for row in rows if row["val_mean"] == best]
    # the test nodes are never evaluated
    assert "test_acc" not in out.read_text()


def test_select_grid_axes_can_be_replaced(cora_kit, tmp_path, load_benchmark):
    bench = load_benchmark("citation")
    out = tmp_path / "select.json"
    assert bench.main(["--select", "--runs", "1", "--epochs", "2", "--datasets", "Cora",
                       "--grid", "hidden=8,32", "layers=3", "weight_decay=2e-3",
                       "--data", str(cora_kit), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["selection"]["Cora"]["rows"]
    # the named axes are replaced, the others (dropout, beta) keep the default grid's
    assert [(r["settings"]["hidden"], r["settings"]["dropout"]) for r in rows] == [
        (8, 0.5), (8, 0.8), (32, 0.5), (32, 0.8)]
    assert {(r["settings"]["layers"], r["settings"]["weight_decay"], r["settings"]["beta"])
            for r in rows} == {(3, 2e-3, bench.GRID["beta"][0])}


@pytest.mark.parametrize("grid", [["depth=2"], ["hidden"], ["hidden=1.5"], ["layers="]])
def test_select_grid_rejects_bad_axes(grid, capsys, load_benchmark):
    bench = load_benchmark("citation")
    with pytest.raises(SystemExit):
        bench.main(["--select", "--grid", *grid])
    assert "--grid" in capsys.readouterr().err


def test_grid_needs_select(capsys, load_benchmark):
    with pytest.raises(SystemExit):
        load_benchmark("citation").main(["--grid", "hidden=8"])
    assert "only applies to --select" in capsys.readouterr().err


def test_ours_settings(load_benchmark):
    bench = load_benchmark("citation")

    class Args:
        ours_setup, agnn_layers = "previous", 2
        ours_hidden = ours_dropout = ours_weight_decay = ours_layers = ours_beta = None

    assert bench.ours_settings("CiteSeer", Args) == dict(bench.OURS_PREVIOUS, layers=2)
    Args.ours_setup, Args.ours_beta = "selected", 1.0
    selected = bench.OURS_PER_DATASET["selected"]["CiteSeer"]
    assert bench.ours_settings("CiteSeer", Args) == dict(selected, beta=1.0)
    Args.ours_setup, Args.ours_beta = "stage1", None
    stage1 = bench.ours_settings("CiteSeer", Args)
    assert stage1 == bench.OURS_PER_DATASET["stage1"]["CiteSeer"] != selected


def test_missing_data_kit_is_an_error(tmp_path, capsys, load_benchmark):
    bench = load_benchmark("citation")
    assert bench.main(["--quick", "--data", str(tmp_path), "--datasets", "Cora"]) == 2
    assert "not found" in capsys.readouterr().err
