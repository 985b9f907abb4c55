"""Plain functions on tensors for the networks of :mod:`graphseg.nn`: the few-shot
segmentation rules of SCL (thesis chapter 5, Eq. 5.1-5.17) and the training-free
baselines they build on (:mod:`graphseg.nn.functional.few_shot`)."""
from graphseg.nn.functional.few_shot import (
    cgm_fuse,
    cgm_weights,
    masked_average_pooling,
    prior_mask,
    prototype_segmentation,
    resize_mask,
    sgm_prototypes,
)

__all__ = ["cgm_fuse", "cgm_weights", "masked_average_pooling", "prior_mask",
           "prototype_segmentation", "resize_mask", "sgm_prototypes"]
