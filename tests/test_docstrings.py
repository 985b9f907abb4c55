"""Runs the examples in the docstrings, so the documentation cannot go stale."""
import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import torch

import graphseg
import graphseg.graph
import graphseg.nn

MODULES = sorted(m.name for m in pkgutil.walk_packages(graphseg.__path__, "graphseg.")
                 if m.name != "graphseg.__main__")
OPTIONAL = {"triton", "torch_scatter", "torch_sparse"}  # the optional extras
GLOBALS = {"torch": torch, "np": np, "Data": __import__("torch_geometric").data.Data,
           **{name: getattr(graphseg.graph, name) for name in graphseg.graph.__all__},
           **{name: getattr(graphseg.nn, name) for name in graphseg.nn.__all__}}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name not in OPTIONAL:
            raise
        pytest.skip(f"{name} needs the optional {error.name}")
    result = doctest.testmod(module, extraglobs=GLOBALS, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
