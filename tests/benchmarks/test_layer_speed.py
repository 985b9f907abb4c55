"""benchmarks/layer_speed.py runs end to end on a tiny setting."""
import json

import pytest

pytestmark = pytest.mark.slow


def test_layer_speed_tiny_quick_run_writes_table_json_and_plot(tmp_path, capsys,
                                                               load_benchmark):
    out, png = tmp_path / "speed.json", tmp_path / "speed.png"
    # --quick with a tinier grid: the explicit --sizes / --features win
    code = load_benchmark("layer_speed").main(
        ["--quick", "--sizes", "8", "--features", "8", "--layers", "grid", "csr", "AGNNConv",
         "--no-cora", "--repeats", "1", "--json", str(out), "--plot", str(png)])
    assert code == 0
    table = capsys.readouterr().out
    assert png.stat().st_size > 0
    assert "AffinityAttentionConv (grid)" in table and "machine:" in table
    report = json.loads(out.read_text())
    results = {(r["case"]["layer"], r["case"]["impl"]): r for r in report["results"]}
    assert set(results) == {("AffinityAttentionConv", "grid"), ("AffinityAttentionConv", "csr"),
                            ("AGNNConv", "")}
    for result in results.values():
        assert "error" not in result, result
        assert result["nodes"] == 64 and result["seconds"] > 0 and result["peak_mb"] > 0
    assert report["machine"]["torch"]
    # the quick grid's window; the full grid would have both
    assert {r["case"]["window"] for r in report["results"]} == {"disk5"}
