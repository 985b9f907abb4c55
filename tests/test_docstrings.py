"""Runs the examples in the docstrings, so the documentation cannot go stale.

Collected: every module of graphseg whose source holds an example (a ``>>>``
prompt); a module without one has nothing to check here.  A collected module
must run *all* its prompts: one that doctest does not find (in a comment, or in
the docstring of an object doctest cannot see) fails like a wrong output.

Each docstring runs in an empty namespace, as a reader pasting it into a fresh
``python`` would: an example imports what it uses (``numpy``, ``torch``,
graphseg's own names).
"""
import doctest
import importlib
import re
from pathlib import Path

import pytest

import graphseg

ROOT = Path(graphseg.__file__).parent
# a prompt with code on it (doctest skips ">>> # a comment" and a bare ">>>")
PROMPT = re.compile(r"^[ \t]*>>>[ \t]+[^#\s]", re.MULTILINE)
OPTIONAL = {"triton", "torch_scatter", "torch_sparse"}  # the optional extras


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# module name -> number of example prompts in its source
EXAMPLES = {_module_name(path): len(PROMPT.findall(path.read_text(encoding="utf-8")))
            for path in sorted(ROOT.rglob("*.py")) if path.name != "__main__.py"}
EXAMPLES = {name: count for name, count in EXAMPLES.items() if count}


def test_the_package_has_examples():
    assert len(EXAMPLES) >= 20 and "graphseg.seeds.cam" in EXAMPLES


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.filterwarnings("error:graphseg.* moved to:DeprecationWarning")  # today's names
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name not in OPTIONAL:
            raise
        pytest.skip(f"{name} needs the optional {error.name}")
    report = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, name, globs={}):
        runner.run(test, out=report.append)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, "".join(report)
    assert attempted == EXAMPLES[name], (
        f"{name} has {EXAMPLES[name]} '>>>' prompts but doctest ran {attempted}: some "
        "example sits where doctest does not look")
