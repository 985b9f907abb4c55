"""Weak-label and annotation files, one per image named after the image's stem.

* Boxes as JSON, ``STEM.json``: ``[{"label": 1, "box": [x1, y1, x2, y2]}, ...]``;
  ``label`` is a class index, or a class name resolved through a classes list.
  Coordinates are half-open pixels (the box covers ``x1 <= x < x2``); fractional
  ones (COCO-style float boxes) are rounded outward, ``x1, y1`` down and ``x2, y2``
  up, to the smallest pixel box holding them (:func:`graphseg.data.check_boxes`).
* Boxes as PASCAL VOC XML (``Annotations/STEM.xml``): ``<object><name>`` and
  ``<bndbox>`` with VOC's 1-based inclusive corners; reading converts
  ``(xmin, ymin, xmax, ymax)`` to ``(xmin - 1, ymin - 1, xmax, ymax)``, writing
  does the reverse.
* Scribbles, points and label maps as uint8 palette PNGs (``STEM.png``): class
  index per pixel, 255 = unlabelled, VOC colour map for display.
* Image-level tags as JSON, ``STEM.json``: ``{"tags": [3, 11], "names": [...]}``,
  or the tags of a whole folder as one JSON mapping ``{"STEM": [3, "cat"], ...}``.
* GrabCut's box files, ``STEM.txt``: one line ``x1 y1 x2 y2`` (half-open pixels,
  like the JSON's), class 1.

:func:`read_boxes` (one image's) and :func:`read_tags` (many images') read an
annotation folder in whichever of these formats it holds.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from graphseg.data.classes import class_index, voc_palette
from graphseg.data.dataset import lookup
from graphseg.data.grabcut import read_box_txt
from graphseg.data.sample import check_boxes
from graphseg.utils.checks import class_ids_out_of_range
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import atomic_open, read_label_map, write_json, write_png

PathLike = Union[str, Path]


def _resolve(label, class_names: Optional[Sequence[str]], source: str) -> int:
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise ValueError(f"{source}: label must be a class index or name, got {label!r}")
    if isinstance(label, str):
        if class_names is None:
            raise ValueError(f"{source}: label {label!r} is a name; pass the classes file "
                             "to resolve names")
        index = class_index(class_names).get(label)
        if index is None:
            raise ValueError(f"{source}: unknown class {label!r}; known: "
                             f"{', '.join(class_names)}")
        return index
    if label < 0 or label >= IGNORE or (class_names is not None and label >= len(class_names)):
        top = len(class_names) - 1 if class_names is not None else IGNORE - 1
        raise ValueError(f"{source}: class index {label} outside 0..{top}")
    return label


def read_boxes_json(path: PathLike, class_names: Optional[Sequence[str]] = None,
                    shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Read a boxes JSON file.

    Args:
        path (str or os.PathLike): ``STEM.json`` holding a list of
            ``{"label": ..., "box": [x1, y1, x2, y2]}`` (half-open pixels; other keys,
            such as the ``"name"`` :func:`write_boxes_json` adds, are ignored;
            fractional coordinates are rounded outward).
        class_names (sequence of str, optional): class names, to resolve string labels and
            bound indices. (default: ``None``)
        shape (tuple of int, optional): image ``(H, W)``; when given, boxes are
            checked and clipped to it (see :func:`graphseg.data.check_boxes`).
            (default: ``None``)

    Returns:
        np.ndarray: ``(N, 5)`` int64 ``(class, x1, y1, x2, y2)``.
    """
    path = Path(path)
    entries = _read_json(path, "boxes")
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of {{\"label\", \"box\"}} objects")
    rows = []
    for i, entry in enumerate(entries):
        where = f"{path} entry {i}"
        box = entry.get("box") if isinstance(entry, dict) else None
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) for v in box)):
            raise ValueError(f"{where}: expected \"box\": [x1, y1, x2, y2] numbers, got {box!r}")
        rows.append([_resolve(entry.get("label"), class_names, where), *box])
    boxes = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return check_boxes(boxes, shape, str(path))


def write_boxes_json(path: PathLike, boxes, class_names: Optional[Sequence[str]] = None) -> None:
    """Write ``(N, 5)`` boxes as JSON (atomically); adds ``"name"`` when classes are known."""
    entries = []
    for row in np.asarray(boxes, dtype=np.int64).reshape(-1, 5).tolist():
        entry = {"label": row[0], "box": row[1:]}
        if class_names is not None:
            entry["name"] = class_names[row[0]]
        entries.append(entry)
    write_json(path, entries)


def read_voc_xml(path: PathLike, class_names: Sequence[str],
                 shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Read the boxes of a PASCAL VOC annotation XML.

    Args:
        path (str or os.PathLike): ``Annotations/STEM.xml``.
        class_names (sequence of str): class names; each ``<object><name>`` must be
            one of them.
        shape (tuple of int, optional): image ``(H, W)`` to check and clip against.
            (default: ``None``, the file's ``<size>``)

    Returns:
        np.ndarray: ``(N, 5)`` int64 half-open boxes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such annotation file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise ValueError(f"{path}: not valid XML ({error})") from error
    if shape is None and root.find("size") is not None:
        size = root.find("size")
        shape = (int(size.findtext("height")), int(size.findtext("width")))
    rows = []
    for i, obj in enumerate(root.iter("object")):
        where = f"{path} object {i}"
        box = obj.find("bndbox")
        try:
            corners = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: needs <bndbox> with numeric xmin ymin xmax ymax") \
                from error
        label = _resolve((obj.findtext("name") or "").strip(), class_names, where)
        # fractional corners are rounded outward by check_boxes
        rows.append([label, corners[0] - 1, corners[1] - 1, corners[2], corners[3]])
    return check_boxes(np.array(rows, dtype=np.float64).reshape(-1, 5), shape, str(path))


def write_voc_xml(path: PathLike, boxes, class_names: Sequence[str], shape: Tuple[int, int],
                  filename: str) -> None:
    """Write boxes as a PASCAL VOC annotation XML (atomically).

    Args:
        path (str or os.PathLike): destination ``.xml``.
        boxes (array-like): ``(N, 5)`` half-open boxes.
        class_names (sequence of str): class names, for ``<name>``.
        shape (tuple of int): image ``(H, W)``.
        filename (str): the image's file name, for ``<filename>``.
    """
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for key, value in (("width", shape[1]), ("height", shape[0]), ("depth", 3)):
        ET.SubElement(size, key).text = str(value)
    ET.SubElement(root, "segmented").text = "1"
    for label, x1, y1, x2, y2 in np.asarray(boxes, dtype=np.int64).reshape(-1, 5).tolist():
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = class_names[label]
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for key, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(box, key).text = str(value)
    ET.indent(root)
    with atomic_open(path, "wb") as file:
        ET.ElementTree(root).write(file, encoding="utf-8", xml_declaration=False)


def write_label_png(path: PathLike, label: np.ndarray) -> None:
    """Write a class-index map (label map, scribbles, points) as a VOC palette PNG.

    Args:
        path (str or os.PathLike): destination ``.png``.
        label (numpy.ndarray): ``(H, W)`` uint8 class indices, 255 = ignore /
            unlabelled.
    """
    label = np.asarray(label)
    if label.dtype != np.uint8 or label.ndim != 2:
        raise ValueError(f"{path}: label map must be an (H, W) uint8 array, "
                         f"got {label.dtype} {label.shape}")
    write_png(path, label, palette=voc_palette())


def read_seeds(path: PathLike, num_classes: Optional[int] = None) -> np.ndarray:
    """Read a scribble / point / label PNG and check its class indices.

    Args:
        path (str or os.PathLike): ``STEM.png``, uint8 class indices,
            255 = unlabelled.
        num_classes (int, optional): when given, every value must be
            < ``num_classes`` or 255. (default: ``None``)

    Returns:
        np.ndarray: ``(H, W)`` uint8.
    """
    label = read_label_map(path)
    if num_classes is not None:
        bad = class_ids_out_of_range(label, num_classes)
        if bad:
            raise ValueError(f"{path}: class ids {bad} >= num_classes "
                             f"({num_classes}); only 255 may exceed it")
    return label


def write_tags_json(path: PathLike, tags: Sequence[int],
                    class_names: Optional[Sequence[str]] = None) -> None:
    """Write image-level tags as ``{"tags": [...], "names": [...]}`` (atomically)."""
    value = {"tags": [int(t) for t in tags]}
    if class_names is not None:
        value["names"] = [class_names[t] for t in value["tags"]]
    write_json(path, value)


def read_tags_json(path: PathLike, class_names: Optional[Sequence[str]] = None) -> Tuple[int, ...]:
    """Read image-level tags written by :func:`write_tags_json` (indices or names)."""
    path = Path(path)
    value = _read_json(path, "tags")
    if not isinstance(value, dict) or not isinstance(value.get("tags"), list):
        raise ValueError(f"{path}: expected {{\"tags\": [class, ...]}}")
    return tuple(sorted(_resolve(t, class_names, str(path)) for t in value["tags"]))


def read_boxes(folder: PathLike, stem: str, class_names: Optional[Sequence[str]] = None,
               shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Read the boxes of image ``stem`` from an annotation folder.

    The folder's ``STEM.json`` (:func:`read_boxes_json`) when it has one; else
    ``STEM.txt``, a GrabCut box of class 1, when it has that; else, with
    ``classes``, ``STEM.xml`` (:func:`read_voc_xml`).

    Args:
        folder (str or os.PathLike): the annotation folder.
        stem (str): the image's file stem.
        class_names (sequence of str, optional): class names, to resolve names (required for
            VOC XML). (default: ``None``)
        shape (tuple of int, optional): image ``(H, W)`` to check and clip against.
            (default: ``None``)

    Returns:
        np.ndarray: ``(N, 5)`` int64 ``(class, x1, y1, x2, y2)``.
    """
    folder = Path(folder)
    # suffixes in any case (STEM.Json, STEM.XML); a missing file is named in lower case
    json_path = lookup(folder, stem, (".json",))
    if json_path is None:
        txt_path = lookup(folder, stem, (".txt",))
        if txt_path is not None:
            return check_boxes(read_box_txt(txt_path), shape, str(txt_path))
    if json_path is not None or class_names is None:
        return read_boxes_json(json_path or folder / f"{stem}.json", class_names, shape)
    return read_voc_xml(lookup(folder, stem, (".xml",)) or folder / f"{stem}.xml",
                        class_names, shape)


def read_tags(path: PathLike, stems: Optional[Sequence[str]] = None,
              class_names: Optional[Sequence[str]] = None) -> Dict[str, Tuple[int, ...]]:
    """Read the image-level tags of many images: ``{stem: sorted class ids}``.

    Args:
        path (str or os.PathLike): a folder of ``STEM.json`` tag files
            (:func:`read_tags_json`), or one JSON file mapping every stem to its
            tags, ``{"STEM": [class, ...], ...}`` (class ids or names).
        stems (sequence of str, optional): for a folder, the images to read (those
            without a file are left out).  A mapping is read whole.
            (default: ``None``, every ``*.json`` in the folder)
        class_names (sequence of str, optional): class names, to resolve names and bound ids.
            (default: ``None``)

    Returns:
        dict: stem -> tuple of class ids, sorted.
    """
    path = Path(path)
    if path.is_dir():
        if stems is None:
            stems = sorted({p.stem for p in path.iterdir()
                            if p.suffix.lower() == ".json" and p.is_file()})
        files = {stem: lookup(path, stem, (".json",)) for stem in stems}
        return {stem: read_tags_json(file, class_names) for stem, file in files.items()
                if file is not None}
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such tags file or folder")
    value = _read_json(path, "tags")
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise ValueError(f'{path}: expected {{"STEM": [class, ...], ...}}')
    return {stem: tuple(sorted(_resolve(t, class_names, f"{path} {stem!r}") for t in tags))
            for stem, tags in value.items()}


def _read_json(path: Path, what: str):
    """Parse a JSON file, naming the file in every error."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
