"""The data kit's GrabCut folder (Rother et al., 2004).

Layout: ``images/NAME.jpg``; ``boxes/NAME.txt`` one line ``x1 y1 x2 y2``
(half-open, may reach the image size); ``masks/NAME.png`` (255 = object);
``scribbles1/NAME.png`` and ``scribbles2/NAME.png`` from two annotators
(0 = unlabelled, 1 = object, 2 = background).

Samples use graphseg's convention: class 0 background, 1 object; the box has
class 1; scribbles come back with 0 background, 1 object, 255 unlabelled.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from graphseg.data.classes import GRABCUT_CLASSES
from graphseg.data.dataset import ImageDataset, read_pair, stems
from graphseg.data.sample import Sample, check_boxes
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import read_label_map


def read_box_txt(path: Path, label: int = 1) -> np.ndarray:
    """A GrabCut ``x1 y1 x2 y2`` box file as a ``(1, 5)`` int64 row with class ``label``
    (half-open pixels; fractional corners are rounded outward)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such box file")
    values = path.read_text(encoding="utf-8").split()
    try:
        corners = [float(v) for v in values]  # check_boxes rounds fractions outward
    except ValueError as error:
        raise ValueError(f"{path}: expected four numbers 'x1 y1 x2 y2'") from error
    if len(corners) != 4:
        raise ValueError(f"{path}: expected four numbers 'x1 y1 x2 y2', got {len(corners)}")
    return check_boxes(np.array([[label, *corners]]), None, str(path))


class GrabCutDataset(ImageDataset):
    """The GrabCut folder: one object per image, its box and a binary mask.

    Args:
        root (str or os.PathLike): folder with ``images/``, ``masks/``, ``boxes/``
            (and ``scribbles*/``).
    """

    class_names = GRABCUT_CLASSES

    def __init__(self, root):
        super().__init__(root, stems(Path(root) / "images"))

    def load(self, name: str) -> Sample:
        image, mask = read_pair(self.root / "images" / f"{name}.jpg",
                                self.root / "masks" / f"{name}.png")
        box = read_box_txt(self.root / "boxes" / f"{name}.txt")
        return Sample(name, image, (mask > 127).astype(np.uint8), boxes=box, tags=(1,),
                      class_names=self.class_names)

    def scribbles(self, name: str, annotator: int = 1) -> np.ndarray:
        """Human scribbles of ``annotator`` (1 or 2) as a seed map.

        Returns:
            np.ndarray: ``(H, W)`` uint8, 1 = object, 0 = background, 255 = unlabelled.
        """
        if annotator not in (1, 2):
            raise ValueError(f"annotator must be 1 or 2, got {annotator}")
        path = self.root / f"scribbles{annotator}" / f"{name}.png"
        raw = read_label_map(path)
        if raw.max() > 2:
            raise ValueError(f"{path}: GrabCut scribbles hold 0, 1, 2; got {raw.max()}")
        return np.array([IGNORE, 1, 0], dtype=np.uint8)[raw]
