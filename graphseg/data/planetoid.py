"""Planetoid citation graphs (Cora, CiteSeer) from a folder in the raw format.

PyG's :class:`~torch_geometric.datasets.Planetoid` writes ``processed/`` next to
``raw/``, so a read-only source (such as the data kit) is copied into a working
folder first.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from graphseg.utils.checks import check_choice

NAMES = ("Cora", "CiteSeer")


def load_planetoid(source, name: str, workdir):
    """Copy ``source/NAME/raw`` into ``workdir`` and load it with PyG, offline.

    Args:
        source (str or os.PathLike): folder holding ``Cora/raw/ind.cora.*`` and/or
            ``CiteSeer/raw/...``.
        name (str): ``"Cora"`` or ``"CiteSeer"``.
        workdir (str or os.PathLike): writable folder; the copy and PyG's
            ``processed/`` go there and are reused by later calls.

    Returns:
        torch_geometric.datasets.Planetoid: one graph with ``train_mask``,
        ``val_mask`` and ``test_mask`` (the public split).
    """
    from torch_geometric.datasets import Planetoid

    check_choice(name, "name", NAMES)
    raw = Path(source) / name / "raw"
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: no such folder (expected Planetoid raw files "
                                f"ind.{name.lower()}.*)")
    target = Path(workdir) / name / "raw"
    if not target.is_dir():
        shutil.copytree(raw, target)
    return Planetoid(str(workdir), name)
