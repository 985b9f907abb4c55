"""Every ```python block of README.md runs as pasted, and so do the Usage section's
commands that use the bundled sample.

Each block runs alone in a fresh interpreter, in an empty folder: a block that
leans on a name from another block, or on a file in the checkout, fails here.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

# blocks that train or run a network on a photo take tens of seconds on two cores
QUICK_BLOCKS = ("grid_graph", "AffinityAttentionConv(", "GridAdjacency")


def blocks(language: str):
    """``(line number, code)`` of every fenced block of ``language``."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```$", text, re.S | re.M):
        found.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


def params():
    return [pytest.param(code, id=f"line{line}",
                         marks=() if any(key in code for key in QUICK_BLOCKS)
                         else pytest.mark.slow)
            for line, code in blocks("python")]


def test_the_readme_has_its_python_blocks():
    assert len(blocks("python")) >= 6


@pytest.mark.parametrize("code", params())
def test_readme_python_block_runs_as_pasted(code, tmp_path):
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=900,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert run.returncode == 0, f"{code}\n{run.stderr[-3000:]}"


def sample_commands():
    """The bash blocks from Usage to Layout that start from the bundled sample
    (``SAMPLE=$(python -c ...)``): each block as one script, with its line."""
    return [pytest.param(code, id=f"line{line}") for line, code in blocks("bash")
            if code.startswith("SAMPLE=$(")]


def test_the_usage_section_has_commands_on_the_sample():
    assert sample_commands()


@pytest.mark.slow
@pytest.mark.parametrize("script", sample_commands())
def test_readme_sample_commands_run_as_pasted(script, tmp_path):
    bin_dir = Path(sys.executable).parent  # this environment's graphseg and python first
    run = subprocess.run(["bash", "-c", "set -e\n" + script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert run.returncode == 0, f"{script}\n{run.stderr[-3000:]}"
