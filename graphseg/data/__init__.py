"""Datasets, weak labels and annotation files.

* :class:`Sample`: what every image reader returns (image, label map, instances,
  boxes, tags); :func:`check_boxes`; :func:`largest_first`, the order overlapping
  boxes are painted in.
* Readers: :class:`VOCDataset` (and :func:`write_voc_sample`), :class:`GrabCutDataset`,
  :class:`MSRCDataset` (stuff classes play background), :class:`MaskFolderDataset`,
  :func:`open_dataset`, :func:`sample_root` (the bundled sample), :func:`resolve_gt`
  (a ground-truth folder; :func:`binary_folder`, 0/255 object masks);
  :func:`load_planetoid` for citation graphs.
* Weak labels from ground truth: :func:`boxes_from_labels`, :func:`points_from_labels`,
  :func:`scribbles_from_labels`, :func:`tags_from_labels`, :func:`boxes_to_seeds`,
  :func:`labelled_fraction`.
* Few-shot episodes (thesis section 5.2, Pascal-5i): :class:`ClassPhotos` (photos per
  class, from a reader or FSS-1000 class folders), :func:`fold_classes`, :class:`Episode`,
  :func:`sample_episodes` (fixed test episodes), :class:`EpisodeSampler` (training).
* Files: boxes JSON and VOC XML, seed / label palette PNGs, tags JSON, class lists;
  :func:`read_boxes` and :func:`read_tags` read an annotation folder in any of them.
"""
from graphseg.data.classes import (
    GRABCUT_CLASSES,
    MSRC_STUFF,
    VOC_CLASSES,
    background_lookup,
    read_classes,
    voc_colormap,
    voc_palette,
)
from graphseg.data.dataset import ImageDataset
from graphseg.data.episodes import (
    ClassPhotos,
    Episode,
    EpisodeSampler,
    fold_classes,
    sample_episodes,
)
from graphseg.data.folder import MaskFolderDataset
from graphseg.data.formats import (
    read_boxes,
    read_boxes_json,
    read_seeds,
    read_tags,
    read_tags_json,
    read_voc_xml,
    write_boxes_json,
    write_label_png,
    write_tags_json,
    write_voc_xml,
)
from graphseg.data.grabcut import GrabCutDataset
from graphseg.data.layouts import (
    LAYOUTS,
    binary_folder,
    detect_layout,
    is_binary_mask,
    kit_root,
    open_dataset,
    resolve_gt,
    sample_root,
)
from graphseg.data.msrc import MSRCDataset
from graphseg.data.planetoid import load_planetoid
from graphseg.data.sample import Sample, check_boxes, largest_first
from graphseg.data.voc import VOCDataset, write_voc_sample
from graphseg.data.weak_labels import (
    boxes_from_labels,
    boxes_to_seeds,
    labelled_fraction,
    points_from_labels,
    scribbles_from_labels,
    tags_from_labels,
)
from graphseg.utils.constants import IGNORE

__all__ = [
    "GRABCUT_CLASSES", "IGNORE", "LAYOUTS", "MSRC_STUFF", "VOC_CLASSES", "ClassPhotos",
    "Episode", "EpisodeSampler", "GrabCutDataset", "ImageDataset", "MSRCDataset",
    "MaskFolderDataset", "Sample", "VOCDataset", "background_lookup", "binary_folder",
    "boxes_from_labels", "boxes_to_seeds", "check_boxes", "detect_layout", "fold_classes",
    "is_binary_mask", "kit_root", "labelled_fraction", "largest_first", "load_planetoid",
    "open_dataset", "points_from_labels", "read_boxes", "read_boxes_json", "read_classes",
    "read_seeds", "read_tags", "read_tags_json", "read_voc_xml", "resolve_gt",
    "sample_episodes", "sample_root", "scribbles_from_labels", "tags_from_labels",
    "voc_colormap", "voc_palette", "write_boxes_json", "write_label_png", "write_tags_json",
    "write_voc_sample", "write_voc_xml",
]
