"""benchmarks/dfr_msrc.py runs end to end in --quick mode and writes its rows."""
import json

import pytest

pytestmark = pytest.mark.slow


def test_dfr_msrc_quick_run_writes_every_row(data_kit, tmp_path, capsys, load_benchmark):
    out = tmp_path / "dfr.json"
    code = load_benchmark("dfr_msrc").main(["--quick", "--workdir", str(tmp_path),
                                            "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| + consistency head (full DFR) | 1.0 |" in printed and "% of full" in printed
    assert "| DFR fine-tuned |" in printed and "| random walker |" in printed
    results = json.loads(out.read_text())["results"]
    assert set(results["msrc"]["espnetv2"]) == {"pce", "dfr", "a2gnn", "full"}
    for row in ("pce", "dfr", "full"):
        r = results["msrc"]["espnetv2"][row]
        assert 0 <= r["test"] <= 1 and r["epoch"] in (1, 2)
        assert r["s_per_epoch"] > 0 and r["s_per_image"] > 0
    assert 0 < results["msrc"]["espnetv2"]["dfr"]["labelled"] < 0.2
    grabcut = results["grabcut"]
    assert set(grabcut) == {"random walker", "A2GNN", "DFR fine-tuned"}
    assert all(r["runs"] == 2 and 0 <= r["mean_object_iou"] <= 1 for r in grabcut.values())
