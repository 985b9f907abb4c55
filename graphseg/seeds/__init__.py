"""Seeds from every kind of supervision: a uint8 ``(H, W)`` label map, 255 = unknown,
plus per-class confidences where the method has them (:class:`Seeds`).

* Image-level tags (thesis 2.2.2, 3.3.2): :func:`multiscale_cam`,
  :func:`cam_probabilities`, :func:`confident_labels`, :func:`reliable_regions`,
  :func:`release_regions`, :func:`cam_seeds` (the classifiers are in
  :mod:`graphseg.nn.models.cam`, their training in :mod:`graphseg.training.cam`).
* Boxes (Eq. 3.2-3.5): :func:`grabcut_box`, :func:`box_seeds`, :func:`context_ratio`,
  :func:`fuse_box_cam`, :func:`confident_box_seeds`; :func:`opencv_grabcut`, the
  classic GrabCut baseline masks.
* Scribbles and points (3.6.1): :func:`expand_seeds`, :func:`merge_seeds`.

Still importable from here for one release, with a ``DeprecationWarning`` (see
CHANGELOG.md): the CAM classifiers (now :mod:`graphseg.nn.models`),
``train_cam_classifier`` (:mod:`graphseg.training`), and the dense CRF and random
walk (:mod:`graphseg.refine`).
"""
from graphseg.seeds.boxes import (
    box_seeds,
    confident_box_seeds,
    context_ratio,
    fuse_box_cam,
    grabcut_box,
    opencv_grabcut,
)
from graphseg.seeds.cam import (
    METHODS,
    cam_probabilities,
    cam_seeds,
    confident_labels,
    multiscale_cam,
    release_regions,
    reliable_regions,
)
from graphseg.seeds.scribbles import expand_seeds, merge_seeds
from graphseg.utils.deprecation import moved
from graphseg.utils.types import Seeds

__getattr__ = moved(__name__, {
    **dict.fromkeys(("CAMClassifier", "ESPNetv2Features", "espnetv2_cam_classifier",
                     "load_classifier", "save_classifier", "small_cam_classifier"),
                    "graphseg.nn.models.cam"),
    **dict.fromkeys(("PRESETS", "colour_affinity", "crf_labels", "dense_crf",
                     "fuse_probabilities", "random_walk", "walk_probabilities"),
                    "graphseg.refine"),
    "train_cam_classifier": "graphseg.training.cam",
})

__all__ = [
    "METHODS", "Seeds", "box_seeds", "cam_probabilities", "cam_seeds", "confident_box_seeds",
    "confident_labels", "context_ratio", "expand_seeds", "fuse_box_cam", "grabcut_box",
    "merge_seeds", "multiscale_cam", "opencv_grabcut", "reliable_regions", "release_regions",
]
