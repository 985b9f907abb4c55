"""benchmarks/pseudo_labels.py runs end to end in --quick mode and writes finite rows."""
import json
import math

import pytest
import torch

pytestmark = pytest.mark.slow


def test_pseudo_labels_quick_run_writes_finite_rows(data_kit, tmp_path, capsys, load_benchmark):
    out = tmp_path / "pseudo.json"
    threads = torch.get_num_threads()
    code = load_benchmark("pseudo_labels").main(
        ["--quick", "--limit", "1", "--msrc-images", "1", "--workdir", str(tmp_path),
         "--json", str(out), "--plot", str(tmp_path / "pseudo.png")])
    assert code == 0
    assert torch.get_num_threads() == threads  # --threads 1 held for the run only
    printed = capsys.readouterr().out
    for heading in ("GrabCut-13 boxes", "GrabCut-13 scribbles", "MSRC-v2 val",
                    "Seconds per image", "train_a2gnn alone", "OpenCV GrabCut",
                    "random_walker"):
        assert heading in printed
    report = json.loads(out.read_text())
    assert report["environment"]["torch"] and report["environment"]["seed"] == 0
    rows = report["rows"]
    tables = {r["table"] for r in rows}
    assert {"GrabCut-13 boxes", "GrabCut-13 scribbles", "MSRC-v2 val", "seconds per image",
            "speed"} <= tables
    for row in rows:
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert math.isfinite(value), (row, key)
        for key in ("mean_object_iou", "pooled_miou", "miou"):
            if key in row:
                assert row[key] is not None and 0.0 <= row[key] <= 1.0, row
    methods = {(r["table"], r["method"]) for r in rows if "method" in r}
    assert ("GrabCut-13 boxes", "OpenCV GrabCut") in methods
    assert ("GrabCut-13 scribbles", "random_walker") in methods
    assert {("MSRC-v2 val", m) for m in ("seeds-only", "CRF-only", "A2GNN")} <= methods
    speed = [r for r in rows if r["table"] == "speed"]
    assert {(r["schedule"], r["threads"]) for r in speed} == {
        ("A2GNNConfig()", 1), ("A2GNNConfig()", 2), ("release boxes", 1), ("release boxes", 2)}
    assert all(r["seconds"] > 0 for r in speed)
    assert (tmp_path / "pseudo.png").stat().st_size > 0
