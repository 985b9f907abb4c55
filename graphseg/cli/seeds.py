"""``graphseg seeds``: seed label maps from boxes, scribbles, points or image-level tags.

Writes ``OUT/STEM.png`` per image (class index, 255 = unknown, VOC palette), each
atomically, so an interrupted run can be resumed: images whose PNG exists are
skipped unless ``--overwrite``.  A bad image is reported by name and skipped;
the command exits 1 at the end.  With ``--gt DIR`` (``STEM.png`` label maps) it
prints the seeds' coverage and precision.

Inputs (one file per image, the formats of :mod:`graphseg.data.formats`):
``--boxes DIR`` ``STEM.json`` (or ``STEM.xml`` with ``--classes``, or GrabCut's
``STEM.txt``); ``--scribbles DIR`` / ``--points DIR`` ``STEM.png``; ``--tags`` a
folder of ``STEM.json`` tag files or one JSON file ``{"STEM": [class, ...], ...}``.
Without ``--cam`` a CAM classifier is first trained on the given images and tags
and saved as ``OUT/cam.pt`` (reused by a resumed run; :func:`train_classifier`):
by default the 1x1 classifier of the pretrained ESPNetv2 encoder (frozen;
``--weights``, default the bundled PASCAL VOC weights), or with ``--backbone
small`` the small CNN trained from scratch.  ``--cam`` loads either kind (the
checkpoint says which).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping, Sequence, Union

import torch
from tqdm.auto import tqdm

from graphseg import __version__
from graphseg.cli.failures import (
    FILE_ERRORS,
    Failures,
    UsageError,
    check_folder,
    check_out_folder,
    reading,
)
from graphseg.data import read_boxes, read_classes, read_seeds, read_tags, write_label_png
from graphseg.data.dataset import find_file, stems
from graphseg.metrics import SeedQuality
from graphseg.nn.backbones.pretrained import BUNDLED_WEIGHTS, load_espnetv2_voc
from graphseg.nn.models import (
    CAMClassifier,
    espnetv2_cam_classifier,
    load_classifier,
    save_classifier,
    small_cam_classifier,
)
from graphseg.seeds import box_seeds, cam_seeds, expand_seeds
from graphseg.seeds.cam import METHODS
from graphseg.training import load_affinity_net, train_cam_classifier
from graphseg.utils.constants import SUPERVISIONS
from graphseg.utils.io import read_checkpoint, read_image, read_label_map

# the graphseg files a model argument may be handed, by their "format" entry (a CAM
# checkpoint has none: its "state_dict" and "classes" say what it is)
_FORMATS = {"graphseg-affinity-net": "an affinity-net checkpoint (graphseg train-affinity)",
            "graphseg-segmenter": "a segmenter model file (graphseg train; for graphseg "
                                  "predict)",
            "graphseg-segmenter-training": "a training checkpoint of graphseg train",
            "graphseg-cam-training": "a CAM training checkpoint"}
_CAM = "a CAM checkpoint (graphseg seeds --tags writes OUT/cam.pt)"
# the format versions this graphseg reads: neither format has a version entry yet, so a
# file with one was written by a newer graphseg
_VERSIONS = {"cam": (None,), "affinity": (None,)}


def load_model(flag: str, path, kind: str):
    """The CAM classifier (``kind="cam"``) or affinity network (``"affinity"``) of
    argument ``flag``, checked before any work starts: a :class:`UsageError` naming
    ``flag`` for a missing or damaged file, a graphseg file of another kind, or one of
    a newer format.  The file is read with ``weights_only=True``: nothing in it runs."""
    path = Path(path)
    expected = _CAM if kind == "cam" else _FORMATS["graphseg-affinity-net"]
    if not path.is_file():
        raise UsageError(f"{flag} {path}: {'is a folder' if path.is_dir() else 'no such file'}"
                         f", expected {expected}")
    try:
        state = read_checkpoint(path, "a graphseg checkpoint")
    except FILE_ERRORS as error:
        raise UsageError(f"{flag} {error}; expected {expected}") from error
    found = state.get("format")
    is_cam = found is None and "state_dict" in state and "classes" in state
    if not (is_cam if kind == "cam" else found == "graphseg-affinity-net"):
        what = "a CAM checkpoint" if is_cam else _FORMATS.get(found) or (
            f"a {found!r} file" if isinstance(found, str) else "not a graphseg checkpoint")
        raise UsageError(f"{flag} {path}: {what}, expected {expected}")
    version = state.get("format_version")
    if version not in _VERSIONS[kind]:
        raise UsageError(f"{flag} {path}: format version {version!r}, newer than this "
                         f"graphseg ({__version__}) reads: upgrade graphseg")
    with reading(flag):
        if kind == "cam":
            return load_classifier(path)
        return load_affinity_net(path)


def train_classifier(images_dir: Path, names: Sequence[str],
                     tags: Mapping[str, Sequence[int]], out: Path, *, background: int = 0,
                     backbone: str = "espnetv2", weights: Union[str, Path] = BUNDLED_WEIGHTS,
                     epochs: int = 20, seed: int = 0, overwrite: bool = False) -> CAMClassifier:
    """The CAM classifier of a run on tags: ``OUT/cam.pt`` when an earlier run saved one
    (unless ``overwrite``), else one trained on the tagged images and saved there.

    ``graphseg propagate --tags`` without ``--cam`` calls it with the defaults of
    ``graphseg seeds --tags``.

    Args:
        images_dir (pathlib.Path): the folder of images.
        names (sequence of str): the stems of its images; those with tags are
            trained on.
        tags (mapping): stem -> class ids (:func:`graphseg.data.read_tags`).
        out (pathlib.Path): the output folder.
        background (int, optional): the class id dropped from every image's tags.
            (default: ``0``)
        backbone (str, optional): ``"espnetv2"``, a 1x1 classifier on the frozen
            pretrained encoder of ``weights``, or ``"small"``, a small CNN trained
            from scratch. (default: ``"espnetv2"``)
        weights (str or os.PathLike, optional): the encoder's ``.pth`` state dict
            (``backbone="espnetv2"`` only).
            (default: :data:`~graphseg.nn.backbones.pretrained.BUNDLED_WEIGHTS`)
        epochs (int, optional): epochs of the training. (default: ``20``)
        seed (int, optional): seed of the training. (default: ``0``)
        overwrite (bool, optional): train again even if ``OUT/cam.pt`` exists.
            (default: ``False``)
    """
    saved = out / "cam.pt"
    if saved.is_file() and not overwrite:
        print(f"using the classifier trained earlier: {saved}")
        return load_classifier(saved)
    tagged = [n for n in names if n in tags]
    present = sorted({t for n in tagged for t in tags[n]} - {background})
    if not present:
        raise UsageError("--tags names no foreground class; nothing to train on")
    if backbone == "espnetv2":
        model = espnetv2_cam_classifier(present, weights=weights, seed=seed)
        options = {"size": 320, "lr": 1e-3}
    else:
        model = small_cam_classifier(present, seed=seed)
        options = {}
    images, targets = [], []
    for name in tagged:
        try:
            images.append(read_image(find_file(images_dir, name)))
        except FILE_ERRORS:
            continue  # reported when the image itself is processed
        targets.append([t for t in tags[name] if t != background])
    print(f"training a CAM classifier ({backbone}) on {len(images)} images, classes {present}")
    train_cam_classifier(model, images, targets, epochs=epochs, seed=seed, **options)
    save_classifier(model, saved)
    return model


def run(args: argparse.Namespace) -> int:
    images_dir = check_folder("--images", args.images)
    out = check_out_folder("--out", args.out)
    kind = next(k for k in SUPERVISIONS if getattr(args, k))
    source = Path(getattr(args, kind))
    if kind != "tags":
        check_folder(f"--{kind}", source)
    if args.gt:
        check_folder("--gt", args.gt)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = stems(images_dir)
    with reading("--classes"):
        class_names = read_classes(args.classes) if args.classes else None
    num_classes = len(class_names) if class_names else None
    model, tags = None, None
    if kind == "tags":
        with reading("--tags"):
            tags = read_tags(source, names, class_names)
        if args.cam:
            model = load_model("--cam", args.cam, "cam")
        else:
            if (out / "cam.pt").is_file() and not args.overwrite:
                load_model("--out", out / "cam.pt", "cam")  # what train_classifier reuses
            elif args.backbone == "espnetv2":
                with reading("--weights"):
                    load_espnetv2_voc(args.weights)
            model = train_classifier(images_dir, names, tags, out, background=args.background,
                                     backbone=args.backbone, weights=args.weights,
                                     epochs=args.epochs, seed=args.seed,
                                     overwrite=args.overwrite)
    quality, failures, skipped = SeedQuality(num_classes), Failures(), 0

    def one(name: str) -> None:
        target = out / f"{name}.png"
        image = read_image(find_file(images_dir, name))
        if kind == "boxes":
            seeds = box_seeds(image, read_boxes(source, name, class_names, image.shape[:2]),
                              args.background, args.band, seed=args.seed,
                              wide_band=args.wide_band)
        elif kind == "tags":
            if name not in tags:
                raise FileNotFoundError(f"{source}: no tags for this image")
            seeds = cam_seeds(model, image, [t for t in tags[name] if t != args.background],
                              args.method, args.background, args.gamma, args.keep)
        else:
            scribbles = read_seeds(find_file(source, name, (".png",)), num_classes)
            seeds = expand_seeds(image, scribbles, num_classes, args.superpixel_area)
        if seeds.labels.shape != image.shape[:2]:
            raise ValueError(f"seed map {seeds.labels.shape} does not match the image")
        write_label_png(target, seeds.labels)
        if args.gt:
            quality.update(seeds.labels, read_label_map(find_file(Path(args.gt), name, (".png",))),
                           name)

    for name in tqdm(names, desc="seeds", unit="image"):
        if (out / f"{name}.png").is_file() and not args.overwrite:
            skipped += 1
            if args.gt:
                failures.attempt(name, lambda: quality.update(
                    read_label_map(out / f"{name}.png"),
                    read_label_map(find_file(Path(args.gt), name, (".png",))), name))
            continue
        failures.attempt(name, lambda: one(name))
    done = len(names) - len(failures.items) - skipped
    print(f"wrote {done} seed maps to {out}" + (f", {skipped} already there" if skipped else ""))
    if args.gt and quality.confusion.pixels:
        print(quality.line(decimals=2))
    return failures.report(len(names))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of images")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--boxes", metavar="DIR", help="STEM.json boxes (or STEM.xml)")
    kind.add_argument("--scribbles", metavar="DIR", help="STEM.png scribbles, 255 = none")
    kind.add_argument("--points", metavar="DIR", help="STEM.png points, 255 = none")
    kind.add_argument("--tags", metavar="FILE", help="tags JSON mapping, or folder of STEM.json")
    parser.add_argument("--cam", metavar="CHECKPOINT",
                        help="CAM classifier for --tags (default: train one, OUT/cam.pt)")
    parser.add_argument("--backbone", choices=("espnetv2", "small"), default="espnetv2",
                        help="tags: backbone of a classifier trained here: the frozen "
                             "pretrained ESPNetv2 encoder (default) or a small CNN from scratch")
    parser.add_argument("--weights", metavar="PTH", default=str(BUNDLED_WEIGHTS),
                        help="tags: ESPNetv2 weights for --backbone espnetv2 (default: the "
                             "bundled PASCAL VOC weights, = the data kit's "
                             "weights/espnetv2_s_2.0_pascal_384x384.pth)")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--gt", metavar="DIR", help="STEM.png ground truth: print coverage "
                                                    "and precision")
    parser.add_argument("--classes", metavar="FILE", help="class names, one per line")
    parser.add_argument("--background", type=int, default=0,
                        help="background class id (default 0)")
    parser.add_argument("--band", type=float, default=0.05,
                        help="boxes: unknown band inside GrabCut's border, fraction of the "
                             "box's shorter side (default 0.05; with --wide-band 0, 0 = "
                             "thesis Eq. 3.2)")
    parser.add_argument("--wide-band", type=float, default=0.25,
                        help="boxes: the band of boxes covering most of the image (GrabCut "
                             "context under 0.25 of the box), where GrabCut fails most "
                             "(default 0.25)")
    parser.add_argument("--superpixel-area", type=int, default=100, metavar="PIXELS",
                        help="scribbles/points: mean SLIC superpixel size (default 100)")
    parser.add_argument("--method", choices=METHODS, default="reliable",
                        help="tags: seed rule (default reliable, Eq. 2.7)")
    parser.add_argument("--keep", type=float, default=0.4,
                        help="tags: fraction of each class kept (default 0.4)")
    parser.add_argument("--gamma", type=float, default=6.0,
                        help="tags: background decay of Eq. 2.4 (default 6)")
    parser.add_argument("--epochs", type=int, default=20,
                        help="tags: epochs when training a classifier (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch threads (default torch's; 1 is often fastest on shared cores)")
    parser.add_argument("--overwrite", action="store_true",
                        help="recompute seed maps (and the classifier) that already exist")
