import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch_geometric

from graphseg import __version__
from graphseg.cli import COMMANDS, command_parser, main
from graphseg.data import sample_root


def test_info_prints_versions_and_capabilities(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"graphseg {__version__}" in out
    assert torch.__version__ in out and torch_geometric.__version__ in out
    for name in ("pydensecrf2", "torch-scatter", "torch-sparse", "triton", "cuda"):
        assert name in out


def test_info_json_reports_what_is_importable(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["versions"]["torch"] == torch.__version__
    assert report["usable"]["cuda"]["usable"] == torch.cuda.is_available()
    try:
        import torch_sparse  # noqa: F401
        has_sparse = True
    except ImportError:
        has_sparse = False
    assert report["usable"]["torch-sparse"]["usable"] == has_sparse


def test_console_entry_point_and_usage_errors():
    run = subprocess.run([sys.executable, "-m", "graphseg", "--version"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and __version__ in run.stdout
    run = subprocess.run([sys.executable, "-m", "graphseg"], capture_output=True, text=True)
    assert run.returncode == 2 and "usage: graphseg" in run.stderr
    run = subprocess.run([sys.executable, "-m", "graphseg", "nope"], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "invalid choice" in run.stderr


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_no_command(flag):
    # they answer from the command table: no command's module, so neither torch nor PyG
    code = f"""
import sys
from graphseg.cli import main
try:
    main([{flag!r}])
except SystemExit:
    pass
loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "torch_geometric")
          or m.startswith("graphseg.cli.") and m != "graphseg.cli.failures"]
assert not loaded, loaded
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_help_lists_every_command_and_command_help_its_options(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--help"])
    assert exit.value.code == 0
    listing = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    for name, description in COMMANDS.items():
        assert f"{name} {' '.join(description.split()[:3])}" in listing
    with pytest.raises(SystemExit) as exit:
        main(["propagate", "--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: graphseg propagate") and "--save-probs" in text
    assert " ".join(COMMANDS["propagate"].split()[:4]) in " ".join(text.split()).lower()


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_builds_its_parser(name):
    parser, module = command_parser(name)
    assert parser.prog == f"graphseg {name}" and callable(module.run)


def test_unknown_option_is_reported_by_the_command(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["info", "--bogus"])
    assert exit.value.code == 2
    assert "graphseg info: error: unrecognized arguments: --bogus" in capsys.readouterr().err


def usage_errors(root: Path):
    """(argv, the one-line message) of a bad argument of every kind, each found before
    any image is processed."""
    sample = sample_root() / "grabcut"
    (root / "empty").mkdir()
    (root / "tags.json").write_text("{not json")
    return [
        (["seeds", "--images", str(root / "empty"), "--tags", str(root / "tags.json"),
          "--out", str(root / "out")], f"error: --tags {root / 'tags.json'}: not valid JSON"),
        (["propagate", "--images", str(sample / "images"), "--boxes", str(sample / "boxes"),
          "--classes", str(root / "nope.txt"), "--out", str(root / "out")],
         f"error: --classes {root / 'nope.txt'}: no such classes file"),
        (["evaluate", "--pred", str(root / "empty"), "--gt", str(root / "empty"),
          "--background", "sky"], "error: --background 'sky': expected 'none', 'auto' or ids"),
        (["weak-labels", "--from", str(root / "nope"), "--kind", "boxes", "--out",
          str(root / "out")], f"error: --from {root / 'nope'}: no such folder"),
        (["visualize", "--image", str(sample / "images" / "llama.jpg"), "--boxes",
          str(root / "llama.xml"), "--out", str(root / "p.png")],
         f"error: --boxes {root / 'llama.xml'}: a VOC XML file needs --classes"),
        (["train-affinity", "--images", str(root / "empty"), "--seeds", str(root / "nope"),
          "--out", str(root / "ck.pt")], f"error: --seeds {root / 'nope'}: no such folder"),
    ]


def test_usage_errors_are_one_line_naming_the_argument(tmp_path, capsys):
    for argv, message in usage_errors(tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err


def command_help(name: str) -> str:
    return command_parser(name)[0].format_help()


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_has_a_description_and_examples(name):
    text = command_help(name)
    usage, description = text.split("\n\n", 2)[:2]
    assert " ".join(COMMANDS[name].split()[:3]).lower() in " ".join(description.split()).lower()
    examples = text.split("\nexamples:\n", 1)[1]  # the epilog, after the options
    assert f"  graphseg {name}" in examples or f"-m graphseg {name}" in examples


@pytest.mark.parametrize("name", ["propagate", "seeds"])
def test_help_documents_every_annotation_file_format(name):
    text = command_help(name)
    # the box JSON, its coordinate convention, float corners, GrabCut's txt and VOC's xml
    assert '[{"label": 1, "box": [x1, y1, x2, y2]}, ...]' in text
    assert "half-open" in text and "x1 <= x < x2" in text and "rounded outward" in text
    assert 'STEM.txt   GrabCut\'s box file: one line "x1 y1 x2 y2"' in text
    assert "STEM.xml   PASCAL VOC" in text
    assert "255 = unlabelled" in text and '{"tags": [1, 15]}' in text


def sample_examples(name: str):
    """The example lines of ``graphseg NAME --help`` that use only the bundled sample."""
    block = command_help(name).split("\nexamples:\n", 1)[1].split("\n\n", 1)[0]
    commands = block.replace("\\\n", " ").splitlines()
    return [c.strip() for c in commands if "SAMPLE" in c and not c.strip().startswith("#")]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["weak-labels", "visualize", "seeds"])
def test_help_examples_on_the_bundled_sample_run_as_printed(name, tmp_path):
    commands = sample_examples(name)
    assert commands and commands[0].startswith("SAMPLE=")
    bin_dir = Path(sys.executable).parent  # graphseg and python of this environment first
    script = "set -e\n" + "\n".join(commands) + "\n"
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600, env={**os.environ,
                                           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert run.returncode == 0, run.stderr[-2000:]
