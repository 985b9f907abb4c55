"""benchmarks/affinity_net.py --quick: affinity separation rows for every graph."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


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
