"""Seeds from every kind of supervision: a uint8 ``(H, W)`` label map, 255 = unknown,
plus per-class confidences where the method has them (:class:`Seeds`).

* Dense CRF: :func:`dense_crf`, :func:`crf_labels`, :data:`PRESETS`.
* Image-level tags (thesis 2.2.2, 3.3.2): :class:`CAMClassifier`,
  :func:`small_cam_classifier`, :func:`espnetv2_cam_classifier`, :class:`ESPNetv2Features`,
  :func:`train_cam_classifier`,
  :func:`save_classifier`, :func:`load_classifier`, :func:`multiscale_cam`,
  :func:`cam_probabilities`, :func:`confident_labels`, :func:`reliable_regions`,
  :func:`release_regions`,
  :func:`cam_seeds`.
* Boxes (Eq. 3.2-3.5): :func:`grabcut_box`, :func:`box_seeds`, :func:`context_ratio`,
  :func:`fuse_box_cam`, :func:`confident_box_seeds`; :func:`opencv_grabcut`, the
  classic GrabCut baseline masks.
* Scribbles and points (3.6.1): :func:`expand_seeds`, :func:`merge_seeds`.
* Random walk: :func:`random_walk`, :func:`colour_affinity`,
  :func:`walk_probabilities`, :func:`fuse_probabilities` (the 1:3 fusion).
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
    CAMClassifier,
    ESPNetv2Features,
    espnetv2_cam_classifier,
    cam_probabilities,
    cam_seeds,
    confident_labels,
    load_classifier,
    multiscale_cam,
    reliable_regions,
    release_regions,
    save_classifier,
    small_cam_classifier,
    train_cam_classifier,
)
from graphseg.seeds.common import Seeds
from graphseg.seeds.crf import PRESETS, crf_labels, dense_crf
from graphseg.seeds.random_walk import (
    colour_affinity,
    fuse_probabilities,
    random_walk,
    walk_probabilities,
)
from graphseg.seeds.scribbles import expand_seeds, merge_seeds

__all__ = [
    "CAMClassifier", "ESPNetv2Features", "PRESETS", "Seeds", "box_seeds", "cam_probabilities",
    "cam_seeds", "colour_affinity", "confident_box_seeds", "context_ratio",
    "espnetv2_cam_classifier", "confident_labels", "crf_labels", "dense_crf",
    "expand_seeds", "fuse_box_cam", "fuse_probabilities", "grabcut_box", "load_classifier",
    "merge_seeds", "multiscale_cam", "opencv_grabcut", "random_walk", "reliable_regions", "release_regions",
    "save_classifier",
    "small_cam_classifier", "train_cam_classifier", "walk_probabilities",
]
