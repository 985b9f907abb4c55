"""Every script in examples/ runs on the data kit at its smallest setting and prints an mIoU."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--limit", "1", "--epochs", "3", "3", "--hidden", "16"]
CASES = {
    "boxes.py": TINY,
    "scribbles.py": TINY,
    "points.py": TINY,
    "tags.py": TINY + ["--cam-epochs", "1", "--cam-images", "16"],
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_prints_miou(script, data_kit, tmp_path):
    args = list(CASES[script])
    if script == "tags.py":
        args += ["--workdir", str(tmp_path)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", GRAPHSEG_DATA=str(data_kit))
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r"^mIoU .*: (\d\.\d{3})$", result.stdout, re.MULTILINE)
    assert match, result.stdout
    assert 0.0 <= float(match.group(1)) <= 1.0
    assert re.search(r"IoU \d\.\d{3}", result.stdout.splitlines()[0])


def test_examples_readme_lists_every_script():
    readme = (ROOT / "examples" / "README.md").read_text()
    for script in CASES:
        assert f"examples/{script}" in readme
