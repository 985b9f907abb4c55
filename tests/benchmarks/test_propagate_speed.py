"""benchmarks/propagate_speed.py runs every section in --quick mode and writes its rows."""
import json

import pytest

pytestmark = pytest.mark.slow


def test_propagate_speed_quick_run_writes_every_section(data_kit, tmp_path, capsys,
                                                        load_benchmark):
    out = tmp_path / "speed.json"
    code = load_benchmark("propagate_speed").main(["--quick", "--workdir", str(tmp_path),
                                                   "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| mean |" in printed and "cv2.grabCut" in printed and "graphseg demo:" in printed
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"photos", "gnn", "load", "workers", "batch", "demo"}
    photos = results["photos"]
    assert set(photos["photos"]) == {"banana1", "banana2"}
    for row in photos["photos"].values():
        assert row["total"] >= row["propagation"] > 0 and row["grabcut"] > 0
        assert 0 <= row["iou"] <= 1 and 0 <= row["grabcut_iou"] <= 1
        assert row["ratio"] == pytest.approx(row["total"] / row["grabcut"])
    assert results["gnn"]["grid"] == [64, 64] and results["gnn"]["epochs"] == 10
    assert len(results["load"]["1"]["pair"]) == 2 and results["load"]["1"]["slowdown"] > 0
    assert results["workers"]["ratio"] > 0 and results["batch"]["photos"] == 2
    assert len(results["demo"]["mean"]) == 3
