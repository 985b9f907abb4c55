"""The data kit's MSRC-v2 folder (Malisiewicz & Efros, 2007 clean-up).

Layout: ``images/ID.jpg``; ``labels/ID.png`` class index per pixel (0 = building
... 22 = boat, 255 = void); ``classes.txt``; ``splits/{train,val,test}.txt``.

MSRC-v2 has no background class.  The stuff/object convention: the seven stuff
classes of :data:`graphseg.data.MSRC_STUFF` (building, grass, tree, sky,
mountain, water, road) play background for boxes, points and tags, the 16 others
are objects.  Label maps keep MSRC's own indices, so semantic metrics score all
23 classes; :attr:`MSRCDataset.background_classes` lists the stuff indices.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from graphseg.data.classes import MSRC_STUFF, read_classes
from graphseg.data.dataset import ImageDataset, read_pair, read_split, stems
from graphseg.data.sample import Sample
from graphseg.data.weak_labels import tags_from_labels


class MSRCDataset(ImageDataset):
    """MSRC-v2 with its fixed split.

    Args:
        root (str or os.PathLike): folder with ``images/``, ``labels/``,
            ``classes.txt``, ``splits/``.
        split (str, optional): ``"train"``, ``"val"``, ``"test"``, or ``None`` for
            every labelled image. (default: ``None``)
    """

    def __init__(self, root, split: Optional[str] = None):
        root = Path(root)
        names = (read_split(root / "splits" / f"{split}.txt") if split
                 else stems(root / "labels", (".png",)))
        super().__init__(root, names)
        self.class_names = read_classes(root / "classes.txt")
        self.background_classes = tuple(self.class_names.index(name) for name in MSRC_STUFF)

    def load(self, name: str) -> Sample:
        image, label = read_pair(self.root / "images" / f"{name}.jpg",
                                 self.root / "labels" / f"{name}.png")
        return Sample(name, image, label, tags=tags_from_labels(label, self.background_classes),
                      class_names=self.class_names)
