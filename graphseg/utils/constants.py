"""The vocabulary every part of graphseg shares.

* :data:`IGNORE`: the label of unknown / unlabelled / ignored pixels and nodes in
  every label map, seed map and loss (uint8 maps use it, so class ids are 0..254).
* :data:`SUPERVISIONS`: the kinds of weak annotation, in the order the command line
  and the benchmarks list them.
"""
from __future__ import annotations

IGNORE = 255
SUPERVISIONS = ("boxes", "scribbles", "points", "tags")

__all__ = ["IGNORE", "SUPERVISIONS"]
