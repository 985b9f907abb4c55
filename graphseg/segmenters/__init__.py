"""Dataset-level segmenters: trained on a folder of weakly labelled photos, then
segment any photo (:mod:`graphseg.segmenters.base` has the protocol).

* :class:`RRMSegmenter` (``"rrm"``): Reliable Region Mining from image-level tags,
  thesis chapter 2, one step.
* :class:`TwoStepSegmenter` (``"two-step"``): the same segmentation network trained
  on label maps (pseudo labels, or full masks for the fully supervised upper bound).
* :class:`DFRSegmenter` (``"dfr"``): the Dynamic Feature Regularised loss from
  scribbles, thesis chapter 4.

Few-shot segmenters (:mod:`graphseg.segmenters.few_shot`) segment an object in new
photos from K photos with its mask: :class:`SCLSegmenter` (thesis chapter 5, trained
on episodes of other classes; :func:`load_few_shot`) and the training-free
:class:`PrototypeSegmenter`.

:func:`load_segmenter` reads any of them back from the file
:meth:`Segmenter.save` wrote.

The per-image propagation that this package held in 0.1 moved to
:mod:`graphseg.propagation`, and the affinity-net training to
:mod:`graphseg.training`.  Their names still import from here for one release, with
a ``DeprecationWarning`` (see CHANGELOG.md).
"""
from graphseg.segmenters.base import (
    FORMAT,
    FORMAT_VERSION,
    METHODS,
    Segmenter,
    SegmenterConfig,
    load_segmenter,
)
from graphseg.segmenters.dfr import DFRConfig, DFRSegmenter
from graphseg.segmenters.few_shot import (
    PrototypeSegmenter,
    SCLConfig,
    SCLSegmenter,
    load_few_shot,
)
from graphseg.segmenters.rrm import RRMConfig, RRMNetConfig, RRMNetSegmenter, RRMSegmenter
from graphseg.segmenters.two_step import TwoStepConfig, TwoStepSegmenter
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

__all__ = ["DFRConfig", "DFRSegmenter", "FORMAT", "FORMAT_VERSION", "METHODS",
           "PrototypeSegmenter", "RRMConfig", "RRMNetConfig", "RRMNetSegmenter", "RRMSegmenter",
           "SCLConfig", "SCLSegmenter", "Segmenter", "SegmenterConfig", "TwoStepConfig",
           "TwoStepSegmenter", "load_few_shot", "load_segmenter"]
