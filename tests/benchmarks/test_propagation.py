"""``benchmarks/propagation.py --quick``: every layer, loss and graph row, finite mIoU."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "propagation.py"

pytestmark = pytest.mark.slow


def test_quick_run_has_every_row(data_kit, tmp_path):
    if not ((data_kit / "grabcut").is_dir() and (data_kit / "msrc_v2").is_dir()):
        pytest.skip(f"data kit (GrabCut-13, MSRC-v2) not found at {data_kit}")
    out, png = tmp_path / "out.json", tmp_path / "out.png"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRAPHSEG_DATA": str(data_kit),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # the tiniest setting: one GrabCut photo, one MSRC-v2 image
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--limit", "1",
                           "--json", str(out), "--plot", str(png),
                           "--workdir", str(tmp_path / "work")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    for needle in ("torch=", "torch_geometric=", "seed=0", "machine=", "Fig. 3.7",
                   "Table 3.5", "Table 3.6"):
        assert needle in text
    result = json.loads(out.read_text())
    assert result["environment"]["quick"] is True
    assert png.stat().st_size > 0
    rows = result["rows"]
    got = {(r["section"], r["dataset"], r["kind"], r["row"]) for r in rows}
    layers = ("GCN", "GAT", "AGNN", "A2GNN", "random walk")
    losses = ("CE", "CE + reg", "CE + MP", "CE + MP + CC", "CE + reg + MP", "all")
    graphs = ("superpixel (CE)", "feature distance (CE)", "feature distance (all)",
              "colour affinity (CE)", "colour affinity (all)", "affinity CNN (CE)",
              "affinity CNN (all)")
    expected = set()
    for dataset, kind in (("GrabCut-13", "boxes"), ("MSRC-v2 val", "boxes"),
                          ("MSRC-v2 val", "scribbles")):
        expected |= {("layers", dataset, kind, name) for name in layers}
        if kind == "boxes":
            expected |= {("losses", dataset, kind, name) for name in losses}
            expected |= {("graphs", dataset, kind, name) for name in graphs}
    assert expected <= got, sorted(expected - got)
    for r in rows:
        assert r["miou"] is not None and math.isfinite(r["miou"]) and 0 <= r["miou"] <= 1, r
        assert r["images"] >= 1
        if r["dataset"] == "GrabCut-13":
            assert 0 <= r["mean_object_iou"] <= 1
