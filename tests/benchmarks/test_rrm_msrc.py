"""benchmarks/rrm_msrc.py runs end to end in --quick mode and writes its rows."""
import json

import pytest

pytestmark = pytest.mark.slow


def test_rrm_msrc_quick_run_writes_every_row(data_kit, tmp_path, capsys, load_benchmark):
    out = tmp_path / "rrm.json"
    code = load_benchmark("rrm_msrc").main(["--quick", "--workdir", str(tmp_path),
                                            "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| RRM (R-FAM) | espnetv2 |" in printed and "% of full" in printed
    results = json.loads(out.read_text())["results"]["espnetv2"]
    assert set(results) == {"cam-crf", "rrm-rfam", "full"}
    for row in ("rrm-rfam", "full"):
        assert 0 <= results[row]["test"] <= 1 and results[row]["epoch"] in (1, 2)
        assert results[row]["s_per_epoch"] > 0 and results[row]["s_per_image"] > 0
