"""PASCAL VOC 2012 style folders: reading and writing.

Layout::

    JPEGImages/STEM.jpg            photo
    SegmentationClass/STEM.png     palette PNG, class index per pixel, 255 = void
    SegmentationObject/STEM.png    palette PNG, instance id per pixel (optional)
    Annotations/STEM.xml           boxes (optional)
    ImageSets/Segmentation/SPLIT.txt

Class 0 is background.  Tags come from the class map (every class present but
background and void).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from graphseg.data.classes import VOC_CLASSES
from graphseg.data.dataset import ImageDataset, read_pair, read_split, stems
from graphseg.data.formats import read_voc_xml, write_label_png, write_voc_xml
from graphseg.data.sample import Sample
from graphseg.data.weak_labels import tags_from_labels
from graphseg.utils.io import atomic_open, read_label_map


class VOCDataset(ImageDataset):
    """A VOC-style folder.

    Args:
        root (str or os.PathLike): folder holding ``JPEGImages/`` and
            ``SegmentationClass/``.
        split (str, optional): name of a list in ``ImageSets/Segmentation/``
            (``"train"``, ``"val"``...); ``None`` takes every
            ``SegmentationClass/*.png``. (default: ``None``)
        class_names (sequence of str, optional): class names.
            (default: :data:`VOC_CLASSES`, the 21 VOC classes)
    """

    def __init__(self, root, split: Optional[str] = None,
                 class_names: Sequence[str] = VOC_CLASSES):
        root = Path(root)
        names = (read_split(root / "ImageSets" / "Segmentation" / f"{split}.txt")
                 if split else stems(root / "SegmentationClass", (".png",)))
        super().__init__(root, names)
        self.class_names = tuple(class_names)

    def load(self, name: str) -> Sample:
        image, label = read_pair(self.root / "JPEGImages" / f"{name}.jpg",
                                 self.root / "SegmentationClass" / f"{name}.png")
        objects = self.root / "SegmentationObject" / f"{name}.png"
        instances = read_label_map(objects) if objects.is_file() else None
        if instances is not None and instances.shape != label.shape:
            raise ValueError(f"{objects}: instance map size {instances.shape} differs from "
                             f"the class map's {label.shape}")
        xml = self.root / "Annotations" / f"{name}.xml"
        boxes = read_voc_xml(xml, self.class_names, image.shape[:2]) if xml.is_file() else ()
        return Sample(name, image, label, instances, boxes,
                      tags_from_labels(label, self.background_classes), self.class_names)


def write_voc_sample(root, sample: Sample, class_names: Sequence[str] = VOC_CLASSES) -> None:
    """Write a sample into a VOC-style folder (every file atomically).

    Writes ``JPEGImages/STEM.jpg`` (quality 95), ``SegmentationClass/STEM.png`` and,
    when present, ``SegmentationObject/STEM.png`` (VOC palette) and
    ``Annotations/STEM.xml``.  Split lists are left to the caller.
    """
    from PIL import Image

    root = Path(root)
    with atomic_open(root / "JPEGImages" / f"{sample.name}.jpg") as file:
        Image.fromarray(sample.image).save(file, format="JPEG", quality=95)
    if sample.label is not None:
        write_label_png(root / "SegmentationClass" / f"{sample.name}.png", sample.label)
    if sample.instances is not None:
        write_label_png(root / "SegmentationObject" / f"{sample.name}.png", sample.instances)
    if len(sample.boxes):
        write_voc_xml(root / "Annotations" / f"{sample.name}.xml", sample.boxes, class_names,
                      sample.shape, f"{sample.name}.jpg")


