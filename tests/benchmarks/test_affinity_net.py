"""benchmarks/affinity_net.py --quick: affinity separation rows for every graph."""
import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def test_benchmark_quick(data_kit, tmp_path, capsys, load_benchmark):
    out = tmp_path / "bench.json"
    assert load_benchmark("affinity_net").main(["--quick", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "colour" in table and "small CNN" in table and "machine:" in table
    report = json.loads(out.read_text())
    assert report["machine"]["torch_threads"] == 1  # --threads' default
    rows = {row["graph"]: row for row in report["rows"]}
    assert len(rows) >= 2
    for row in rows.values():
        assert 0 <= row["neg_mean"] <= 1 and 0 <= row["pos_mean"] <= 1 and 0 <= row["auc"] <= 1
