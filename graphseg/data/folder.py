"""A plain "images + masks" folder: ``images/STEM.*`` with ``masks/STEM.png``.

Masks are class-index maps (255 = ignore).  Binary masks saved as 0/255, the
common export of annotation tools, are read with ``binary=True``: values above
127 become class 1 (object), the rest class 0 (background).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from graphseg.data.dataset import ImageDataset, find_file, read_pair, stems
from graphseg.data.sample import Sample
from graphseg.data.weak_labels import tags_from_labels


class MaskFolderDataset(ImageDataset):
    """Images paired with masks by file stem.

    Args:
        root (str or os.PathLike): folder holding the two sub-folders.
        images (str, optional): sub-folder of photos (jpg, png, bmp, tif).
            (default: ``"images"``)
        masks (str, optional): sub-folder of ``STEM.png`` masks; an image without
            one is an error when it is loaded. (default: ``"masks"``)
        binary (bool, optional): read 0/255 masks as background/object (see the
            module notes). (default: ``False``)
        class_names (sequence of str, optional): class names, if known.
            (default: ``None``)
    """

    def __init__(self, root, images: str = "images", masks: str = "masks",
                 binary: bool = False, class_names: Optional[Sequence[str]] = None):
        super().__init__(root, stems(Path(root) / images))
        self.images, self.masks, self.binary = images, masks, binary
        default = ("background", "object") if binary else ()
        self.class_names = tuple(class_names) if class_names else default

    def load(self, name: str) -> Sample:
        image, label = read_pair(find_file(self.root / self.images, name),
                                 self.root / self.masks / f"{name}.png")
        if self.binary:
            label = (label > 127).astype(np.uint8)
        return Sample(name, image, label, tags=tags_from_labels(label, self.background_classes),
                      class_names=self.class_names)
