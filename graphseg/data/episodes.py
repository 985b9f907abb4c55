"""Episodes for few-shot segmentation (thesis section 5.2; the Pascal-5i protocol of
OSLSM, Shaban et al., BMVC 2017).

An *episode* of class ``c`` is a support set S of K photos (K = ``shots``), each
with its binary mask of ``c``, and a query photo Q, a different photo that also
contains ``c``: a K-shot segmenter sees S and must segment ``c`` in Q.  The masks
are ``1`` on the class, ``0`` elsewhere and ``255`` where the ground truth is void
(:meth:`ClassPhotos.mask`); background (class ``0``) is never an episode class.

The training and test classes are disjoint: the class ids are cut into ``folds``
contiguous groups (:func:`fold_classes`; Pascal-5i: 20 VOC classes, 4 folds of 5),
one group is held out for testing and the model trains on episodes of the others.
Test episodes are fixed and seeded (:func:`sample_episodes`): OSLSM's protocol
scores 1000 test episodes per fold, drawn once, so every method meets the same
supports and queries.  Training episodes come from :class:`EpisodeSampler`, whose
episode ``i`` of epoch ``e`` is drawn from a generator seeded with ``(seed, e, i)``,
as :class:`~graphseg.data.torch_dataset.SegmentationSet` draws its augmentation,
so the training engine resumes exactly.

Photos come from a class-id dataset (:meth:`ClassPhotos.from_dataset`, e.g.
MSRC-v2 with its stuff classes merged into background by a lookup table) or from
a folder of classes in the FSS-1000 style (:meth:`ClassPhotos.from_class_folders`).

Example:
    >>> import numpy as np
    >>> from graphseg.data import ClassPhotos, fold_classes, sample_episodes
    >>> images, labels = [], []
    >>> for i in range(8):  # class 1 + i % 4 in a square, background around it
    ...     label = np.zeros((16, 16), np.uint8)
    ...     label[4:12, 4:12] = 1 + i % 4
    ...     images.append(np.zeros((16, 16, 3), np.uint8))
    ...     labels.append(label)
    >>> photos = ClassPhotos(images, labels, min_pixels=16)
    >>> photos.classes
    {1: [0, 4], 2: [1, 5], 3: [2, 6], 4: [3, 7]}
    >>> train, test = fold_classes(sorted(photos.classes), 1, folds=2)
    >>> train, test
    ([1, 2], [3, 4])
    >>> episodes = sample_episodes(photos, test, shots=1, count=10, seed=0)
    >>> len(episodes), all(e.cls in test and e.query not in e.support for e in episodes)
    (10, True)
    >>> int(photos.mask(episodes[0].query, episodes[0].cls).sum())
    64
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from graphseg.data.dataset import IMAGE_SUFFIXES, find_file, lookup, stems
from graphseg.utils.checks import check_positive_int
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import read_image, read_label_map

__all__ = ["ClassPhotos", "Episode", "EpisodeSampler", "fold_classes", "sample_episodes"]


class ClassPhotos:
    """Photos with class-id label maps, and per class the photos that contain it.

    Args:
        images (sequence of numpy.ndarray): ``(H, W, 3)`` uint8 photos.
        labels (sequence of numpy.ndarray): one ``(H, W)`` uint8 class-id map per
            photo: ``0`` background (never an episode class), ``255`` void.
        names (sequence of str, optional): the photos' names, for messages.
            (default: ``None``, ``"photo 0"``, ``"photo 1"``, ...)
        class_names (sequence of str, optional): class names in id order.
            (default: ``None``, none known)
        min_pixels (int, optional): a class counts as present in a photo where it
            covers at least this many pixels. (default: ``64``)

    Attributes:
        images, labels (list of numpy.ndarray): as given.
        names (list of str), class_names (tuple of str), min_pixels (int).
        classes (dict of int to list of int): class id (1..254) -> sorted indices of
            the photos where it is present; classes present nowhere are absent.
    """

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], *,
                 names: Optional[Sequence[str]] = None,
                 class_names: Optional[Sequence[str]] = None, min_pixels: int = 64):
        self.images, self.labels = list(images), list(labels)
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} label maps")
        self.names = (list(names) if names is not None
                      else [f"photo {i}" for i in range(len(self.images))])
        if len(self.names) != len(self.images):
            raise ValueError(f"names has {len(self.names)} entries for {len(self.images)} "
                             "images")
        self.class_names = tuple(class_names) if class_names is not None else ()
        self.min_pixels = check_positive_int(min_pixels, "min_pixels")
        classes: Dict[int, List[int]] = {}
        for index, (image, label) in enumerate(zip(self.images, self.labels)):
            name = self.names[index]
            if (not isinstance(image, np.ndarray) or image.dtype != np.uint8
                    or image.ndim != 3 or image.shape[2] != 3):
                raise ValueError(f"{name}: image must be an (H, W, 3) uint8 array, got "
                                 f"{_describe(image)}")
            if not isinstance(label, np.ndarray) or label.dtype != np.uint8 or label.ndim != 2:
                raise ValueError(f"{name}: label map must be an (H, W) uint8 array, got "
                                 f"{_describe(label)}")
            if label.shape != image.shape[:2]:
                raise ValueError(f"{name}: label map is {label.shape[1]}x{label.shape[0]} but "
                                 f"the image is {image.shape[1]}x{image.shape[0]}")
            counts = np.bincount(label.ravel(), minlength=256)
            for cls in np.flatnonzero(counts[1:IGNORE] >= self.min_pixels) + 1:
                classes.setdefault(int(cls), []).append(index)
        self.classes = dict(sorted(classes.items()))

    @classmethod
    def from_dataset(cls, dataset, *, lookup: Optional[np.ndarray] = None,
                     min_pixels: int = 64) -> "ClassPhotos":
        """Every sample of a graphseg image reader (e.g. ``MSRCDataset(root, split)``),
        read once and held in memory.

        Args:
            dataset: a graphseg reader (a sequence of :class:`~graphseg.data.Sample`
                with ``names`` and ``class_names``); every sample needs a label map.
            lookup (numpy.ndarray, optional): a 256-entry uint8 table applied to every
                label map first, e.g. one that merges MSRC-v2's stuff classes into
                background ``0`` and renumbers the 16 objects ``1..16``.
                (default: ``None``)
            min_pixels (int, optional): see :class:`ClassPhotos`. (default: ``64``)

        Returns:
            ClassPhotos: the photos; ``class_names`` follow ``lookup`` (a new id takes
            the name of the one class mapped onto it, ``"background"`` for a merged
            ``0``, the names joined by ``+`` for other merges).
        """
        if lookup is not None and (not isinstance(lookup, np.ndarray) or lookup.shape != (256,)
                                   or lookup.dtype != np.uint8):
            raise ValueError(f"lookup must be a (256,) uint8 table, got {_describe(lookup)}")
        images, labels, names = [], [], []
        for index in range(len(dataset)):
            sample = dataset[index]
            if sample.label is None:
                raise ValueError(f"{sample.name}: no label map; episodes need class masks")
            images.append(sample.image)
            labels.append(sample.label if lookup is None else lookup[sample.label])
            names.append(sample.name)
        class_names = tuple(getattr(dataset, "class_names", ()))
        if lookup is not None and class_names:
            class_names = _renamed(class_names, lookup)
        return cls(images, labels, names=names, class_names=class_names, min_pixels=min_pixels)

    @classmethod
    def from_class_folders(cls, root, *, min_pixels: int = 64) -> "ClassPhotos":
        """A folder of classes, FSS-1000 style.

        Each subfolder ``CLASS/`` holds ``N.jpg`` photos with their masks ``N.png``
        (flat, the FSS-1000 release), or ``CLASS/images/N.*`` with
        ``CLASS/masks/N.png`` (the data kit's layout).  ``root`` itself may be one
        class folder in either layout (it has ``images/``, or photos of its own):
        then it is the only class.  Mask values above 127 are the object (colour
        masks are read as grey); a mask whose largest value is 1 is a 0/1 map, its
        1 the object.  Hidden subfolders (``.name``) are skipped.

        Args:
            root (str or os.PathLike): the folder.
            min_pixels (int, optional): see :class:`ClassPhotos`. (default: ``64``)

        Returns:
            ClassPhotos: class ids ``1..n`` in sorted folder-name order,
            ``class_names`` ``("background", *folder names)``; each photo's label map
            is its class id on the object, ``0`` elsewhere; photo names
            ``CLASS/N``.

        Raises:
            FileNotFoundError: ``root`` is no folder, or a photo has no mask (naming
                the missing file).
            ValueError: a class folder without photos (naming it), a mask of another
                size than its photo (naming the mask), more than 254 classes.
        """
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such folder")
        if _is_class_folder(root):
            folders = [root]
        else:
            folders = sorted((p for p in root.iterdir()
                              if p.is_dir() and not p.name.startswith(".")),
                             key=lambda p: p.name)
        if not folders:
            raise ValueError(f"{root}: no photos (neither N.jpg + N.png, images/ + masks/, "
                             "nor class subfolders holding them)")
        if len(folders) >= IGNORE:
            raise ValueError(f"{root}: {len(folders)} classes, at most 254 fit a uint8 label map")
        images, labels, names = [], [], []
        for cls_id, folder in enumerate(folders, start=1):
            for name, image_path, mask_path in _class_files(folder):
                image = read_image(image_path)
                mask = _read_mask(mask_path)
                if mask.shape != image.shape[:2]:
                    raise ValueError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} "
                                     f"but {image_path.name} is {image.shape[1]}x"
                                     f"{image.shape[0]}")
                images.append(image)
                # a 0/1 map (largest value 1) marks the object with 1
                threshold = 0 if mask.max() == 1 else 127
                labels.append(np.where(mask > threshold, cls_id, 0).astype(np.uint8))
                names.append(f"{folder.name}/{name}")
        return cls(images, labels, names=names,
                   class_names=("background", *(f.name for f in folders)),
                   min_pixels=min_pixels)

    def __len__(self) -> int:
        return len(self.images)

    def mask(self, photo: int, cls: int) -> np.ndarray:
        """The binary episode mask of class ``cls`` in photo ``photo``.

        Returns:
            numpy.ndarray: ``(H, W)`` uint8, ``1`` where the label is ``cls``, ``255``
            where it is void, ``0`` elsewhere.
        """
        if not 0 <= cls < IGNORE:
            raise ValueError(f"cls must be a class id in 0..254, got {cls}")
        label = self.labels[photo]
        out = (label == cls).astype(np.uint8)
        out[label == IGNORE] = IGNORE
        return out

    def __repr__(self) -> str:
        return f"ClassPhotos({len(self)} photos, {len(self.classes)} classes)"


def fold_classes(class_ids: Sequence[int], fold: int, *,
                 folds: int = 4) -> Tuple[List[int], List[int]]:
    """The Pascal-5i split of ``class_ids`` for held-out ``fold``.

    The sorted ids are cut into ``folds`` contiguous groups as equal as possible:
    with ``n`` ids, the first ``n % folds`` groups hold ``n // folds + 1`` ids and
    the others ``n // folds`` (16 classes, 4 folds: 4 each; 10 classes: 3, 3, 2, 2;
    the 20 VOC classes: fold ``i`` tests classes ``5i + 1 .. 5i + 5``).

    Args:
        class_ids (sequence of int): the episode classes (distinct; background
            excluded).
        fold (int): the held-out group, ``0 .. folds - 1``.
        folds (int, optional): the number of groups, ``1 .. len(class_ids)``.
            (default: ``4``)

    Returns:
        tuple of list of int: ``(train_classes, test_classes)``, each sorted; together
        every id, once.
    """
    ids = sorted(int(c) for c in class_ids)
    if len(set(ids)) != len(ids):
        raise ValueError(f"class_ids holds duplicates: {ids}")
    check_positive_int(folds, "folds")
    if folds > len(ids):
        raise ValueError(f"folds={folds} is more than the {len(ids)} classes: every fold "
                         "needs at least one class")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)):
        raise TypeError(f"fold must be an int, got {type(fold).__name__}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{folds - 1} (0-based, {folds} folds), got {fold}")
    size, extra = divmod(len(ids), folds)
    start = fold * size + min(fold, extra)
    stop = start + size + (1 if fold < extra else 0)
    return ids[:start] + ids[stop:], ids[start:stop]


@dataclass(frozen=True)
class Episode:
    """One few-shot episode.

    Attributes:
        cls (int): the class to segment.
        support (tuple of int): indices of the K support photos (distinct).
        query (int): index of the query photo (not in ``support``).
    """

    cls: int
    support: Tuple[int, ...]
    query: int


def sample_episodes(photos: ClassPhotos, classes: Sequence[int], *, shots: int = 1,
                    count: int = 1000, seed: int = 0) -> List[Episode]:
    """Fixed, seeded test episodes (OSLSM: 1000 per fold).

    Each episode draws its class uniformly among those of ``classes`` with at least
    ``shots + 1`` photos, then ``shots`` distinct support photos and a query photo
    not among them, all containing the class.  Episode ``i`` comes from a generator
    seeded with ``(seed, i)``: the same seed gives the same list, and a longer list
    starts with a shorter one (the lists of different ``shots`` are unrelated).

    Args:
        photos (ClassPhotos): the photos.
        classes (sequence of int): the episode classes (e.g. a fold's test classes
            from :func:`fold_classes`); ``0`` and ``255`` are refused.
        shots (int, optional): K, the support photos per episode. (default: ``1``)
        count (int, optional): the number of episodes. (default: ``1000``)
        seed (int, optional): seeds the draws. (default: ``0``)

    Returns:
        list of Episode: ``count`` episodes.

    Raises:
        ValueError: no class of ``classes`` has ``shots + 1`` photos (the message
            lists every class with its photo count).
    """
    check_positive_int(count, "count")
    pools = _pools(photos, classes, shots)
    return [_draw(np.random.default_rng([int(seed), index]), pools, shots)
            for index in range(count)]


class EpisodeSampler:
    """Training episodes, reproducible per ``(epoch, index)``.

    Episode ``index`` of epoch ``epoch`` is drawn, by the rules of
    :func:`sample_episodes`, from a generator seeded with ``(seed, epoch, index)``:
    a resumed run sees the same episodes, and every epoch new ones.

    Args:
        photos (ClassPhotos): the photos.
        classes (sequence of int): the episode classes (e.g. a fold's training
            classes); classes with fewer than ``shots + 1`` photos are left out.
        shots (int, optional): K, the support photos per episode. (default: ``1``)
        episodes_per_epoch (int, optional): ``len(sampler)``. (default: ``1000``)
        seed (int, optional): seeds the draws. (default: ``0``)

    Attributes:
        classes (list of int): the classes episodes are drawn from (sorted).
    """

    def __init__(self, photos: ClassPhotos, classes: Sequence[int], *, shots: int = 1,
                 episodes_per_epoch: int = 1000, seed: int = 0):
        self.photos = photos
        self.shots = shots
        self.episodes_per_epoch = check_positive_int(episodes_per_epoch, "episodes_per_epoch")
        self.seed = int(seed)
        self._pools = _pools(photos, classes, shots)
        self.classes = [c for c, _ in self._pools]

    def __len__(self) -> int:
        return self.episodes_per_epoch

    def episode(self, index: int, epoch: int = 0) -> Episode:
        """Episode ``index`` (``0 .. len - 1``) of epoch ``epoch`` (>= 0)."""
        if not 0 <= index < self.episodes_per_epoch:
            raise IndexError(f"episode {index} out of range: an epoch has "
                             f"{self.episodes_per_epoch} episodes")
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        return _draw(np.random.default_rng([self.seed, int(epoch), int(index)]), self._pools,
                     self.shots)

    def __repr__(self) -> str:
        return (f"EpisodeSampler({self.shots}-shot, {len(self.classes)} classes, "
                f"{self.episodes_per_epoch} episodes per epoch)")


def _pools(photos: ClassPhotos, classes: Sequence[int],
           shots: int) -> List[Tuple[int, np.ndarray]]:
    """``(class, its photo indices)`` for the classes with ``shots + 1`` photos."""
    check_positive_int(shots, "shots")
    wanted = sorted({int(c) for c in classes})
    if not wanted:
        raise ValueError("classes is empty: episodes need at least one class")
    bad = [c for c in wanted if not 0 < c < IGNORE]
    if bad:
        raise ValueError(f"classes {bad} cannot be episode classes (0 is background, "
                         "255 void; episode classes are 1..254)")
    counts = {c: len(photos.classes.get(c, ())) for c in wanted}
    pools = [(c, np.asarray(photos.classes[c])) for c in wanted if counts[c] > shots]
    if not pools:
        listed = ", ".join(f"class {c}: {n} photo{'' if n == 1 else 's'}"
                           for c, n in counts.items())
        raise ValueError(f"no class has the {shots + 1} photos a {shots}-shot episode needs "
                         f"({shots} support + 1 query; with at least {photos.min_pixels} "
                         f"pixels of the class): {listed}")
    return pools


def _draw(rng: np.random.Generator, pools: List[Tuple[int, np.ndarray]],
          shots: int) -> Episode:
    cls, pool = pools[int(rng.integers(len(pools)))]
    picked = rng.choice(pool, size=shots + 1, replace=False)
    return Episode(cls, tuple(int(p) for p in picked[:shots]), int(picked[shots]))


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {value.shape}"
    return type(value).__name__


def _renamed(names: Tuple[str, ...], table: np.ndarray) -> Tuple[str, ...]:
    """Class names after ``table`` maps the ids of ``names``."""
    mapped = [int(table[c]) for c in range(len(names))]
    top = max((m for m in mapped if m != IGNORE), default=-1)
    out = []
    for new in range(top + 1):
        sources = [names[c] for c, m in enumerate(mapped) if m == new]
        if len(sources) == 1:
            out.append(sources[0])
        elif new == 0 and sources:
            out.append("background")
        else:
            out.append("+".join(sources))
    return tuple(out)


def _photo_suffixes(flat: bool) -> Tuple[str, ...]:
    """Photo suffixes; in a flat class folder ``.png`` files are the masks."""
    return tuple(s for s in IMAGE_SUFFIXES if not (flat and s == ".png"))


def _is_class_folder(folder: Path) -> bool:
    """``folder`` is one class: it has ``images/`` or photos of its own."""
    return (folder / "images").is_dir() or bool(stems(folder, _photo_suffixes(flat=True)))


def _class_files(folder: Path) -> List[Tuple[str, Path, Path]]:
    """``(stem, photo, mask)`` of one class folder, in stem order."""
    flat = not (folder / "images").is_dir()
    photos, masks = (folder, folder) if flat else (folder / "images", folder / "masks")
    suffixes = _photo_suffixes(flat)
    names = sorted(set(stems(photos, suffixes)))
    if not names:
        raise ValueError(f"{folder}: no photos (expected N.jpg with N.png masks, or "
                         "images/N.jpg with masks/N.png)")
    out = []
    for name in names:
        image_path = find_file(photos, name, suffixes)
        mask_path = lookup(masks, name, (".png",))
        if mask_path is None:
            raise FileNotFoundError(f"{image_path}: no mask {masks / (name + '.png')}")
        out.append((name, image_path, mask_path))
    return out


def _read_mask(path: Path) -> np.ndarray:
    """An ``(H, W)`` uint8 mask; colour masks (some FSS-1000 exports) as grey."""
    with Image.open(path) as image:
        if image.mode in ("RGB", "RGBA", "RGBX", "LA"):
            return np.asarray(image.convert("L"))
    return read_label_map(path)
