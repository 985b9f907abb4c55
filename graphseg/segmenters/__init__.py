"""Dataset-level segmenters (fit / predict / save / load) will live here.

The per-image propagation that this package held in 0.1 moved to
:mod:`graphseg.propagation`, and the affinity-net training to
:mod:`graphseg.training`.  Their names still import from here for one release, with
a ``DeprecationWarning`` (see CHANGELOG.md).
"""
from graphseg.utils.deprecation import moved

__getattr__ = moved(__name__, {
    "KINDS": "graphseg.utils.constants:SUPERVISIONS",
    **dict.fromkeys(("A2GNNConfig", "FEATURES", "LAYERS", "Propagation",
                     "backbone_features", "box_instances", "colour_position_features",
                     "node_features", "propagate", "segment_image", "train_a2gnn",
                     "walk_seeds"), "graphseg.propagation"),
    **dict.fromkeys(("load_affinity_net", "save_affinity_net", "train_affinity_net"),
                    "graphseg.training"),
})

__all__: list = []
