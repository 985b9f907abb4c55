"""``graphseg seeds``: seed label maps from boxes, scribbles, points or image-level tags.

Writes ``OUT/STEM.png`` per image (class index, 255 = unknown, VOC palette), each
atomically, so an interrupted run can be resumed: images whose PNG exists are
skipped unless ``--overwrite``.  A bad image is reported by name and skipped;
the command exits 1 at the end.  With ``--gt DIR`` (``STEM.png`` label maps) it
prints the seeds' coverage and precision.

Inputs (one file per image, the formats of :mod:`graphseg.data.formats`):
``--boxes DIR`` ``STEM.json`` (or ``STEM.xml`` with ``--classes``, or GrabCut's
``STEM.txt``); ``--scribbles DIR``
/ ``--points DIR`` ``STEM.png``; ``--tags`` a folder of ``STEM.json`` tag files or
one JSON file ``{"STEM": [class, ...], ...}``.  Without ``--cam`` a CAM
classifier is first trained on the given images and tags and saved as
``OUT/cam.pt`` (reused by a resumed run): by default the 1x1 classifier of the
pretrained ESPNetv2 encoder (frozen; ``--weights``, default the bundled
PASCAL VOC weights), or with ``--backbone small`` the small CNN trained from
scratch.  ``--cam`` loads either kind (the checkpoint says which).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from graphseg.cli.failures import Failures
from graphseg.data import (
    read_boxes_json,
    read_classes,
    read_seeds,
    read_tags_json,
    read_voc_xml,
    write_label_png,
)
from graphseg.data.dataset import find_file, stems
from graphseg.data.grabcut import read_box_txt
from graphseg.data.sample import check_boxes
from graphseg.metrics import SeedQuality
from graphseg.nn.backbones.pretrained import BUNDLED_WEIGHTS
from graphseg.nn.models import (
    espnetv2_cam_classifier,
    load_classifier,
    save_classifier,
    small_cam_classifier,
)
from graphseg.seeds import box_seeds, cam_seeds, expand_seeds
from graphseg.seeds.cam import METHODS
from graphseg.training import train_cam_classifier
from graphseg.utils.io import read_image, read_label_map


def read_boxes(folder: Path, stem: str, classes, shape):
    """Boxes of one image from ``STEM.json``, ``STEM.xml`` (with ``classes``) or a
    GrabCut ``STEM.txt`` (``x1 y1 x2 y2``, class 1)."""
    if (folder / f"{stem}.txt").is_file() and not (folder / f"{stem}.json").is_file():
        return check_boxes(read_box_txt(folder / f"{stem}.txt"), shape, str(folder / f"{stem}.txt"))
    if (folder / f"{stem}.json").is_file() or classes is None:
        return read_boxes_json(folder / f"{stem}.json", classes, shape)
    return read_voc_xml(folder / f"{stem}.xml", classes, shape)


def read_all_tags(path: Path, names, classes):
    """``{stem: tags}`` from a folder of tag files or one JSON mapping."""
    if path.is_dir():
        return {n: read_tags_json(path / f"{n}.json", classes) for n in names
                if (path / f"{n}.json").is_file()}
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such tags file or folder")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise ValueError(f'{path}: expected {{"STEM": [class, ...], ...}}')
    names_to_ids = {name: i for i, name in enumerate(classes or ())}
    out = {}
    for stem, tags in value.items():
        try:
            out[stem] = tuple(sorted(names_to_ids[t] if isinstance(t, str) else int(t)
                                     for t in tags))
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: bad tags for {stem!r}: {tags!r}") from error
    return out


def classifier(args, images_dir: Path, names, tags, out: Path):
    """The CAM classifier: ``--cam``, a saved ``OUT/cam.pt``, or a freshly trained one."""
    if args.cam:
        return load_classifier(args.cam)
    saved = out / "cam.pt"
    if saved.is_file() and not args.overwrite:
        print(f"using the classifier trained earlier: {saved}")
        return load_classifier(saved)
    tagged = [n for n in names if n in tags]
    present = sorted({t for n in tagged for t in tags[n]} - {args.background})
    if not present:
        raise SystemExit("error: --tags names no foreground class; nothing to train on")
    if args.backbone == "espnetv2":
        model = espnetv2_cam_classifier(present, weights=args.weights, seed=args.seed)
        options = {"size": 320, "lr": 1e-3}
    else:
        model = small_cam_classifier(present, seed=args.seed)
        options = {}
    images = [read_image(find_file(images_dir, n)) for n in tagged]
    print(f"training a CAM classifier ({args.backbone}) on {len(images)} images, "
          f"classes {present}")
    train_cam_classifier(model, images, [[t for t in tags[n] if t != args.background]
                                         for n in tagged],
                         epochs=args.epochs, seed=args.seed, **options)
    save_classifier(model, saved)
    return model


def run(args: argparse.Namespace) -> int:
    images_dir, out = Path(args.images), Path(args.out)
    if not images_dir.is_dir():
        print(f"error: --images {images_dir}: no such folder", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    names = stems(images_dir)
    classes = read_classes(args.classes) if args.classes else None
    num_classes = len(classes) if classes else None
    model, tags = None, None
    if args.tags:
        tags = read_all_tags(Path(args.tags), names, classes)
        model = classifier(args, images_dir, names, tags, out)
    source = Path(args.boxes or args.scribbles or args.points or ".")
    if not (args.tags or source.is_dir()):
        print(f"error: {source}: no such folder", file=sys.stderr)
        return 2
    quality, failures, skipped = SeedQuality(num_classes), Failures(), 0

    def one(name: str) -> None:
        target = out / f"{name}.png"
        image = read_image(find_file(images_dir, name))
        if args.boxes:
            seeds = box_seeds(image, read_boxes(source, name, classes, image.shape[:2]),
                              args.background, args.band, seed=args.seed,
                              wide_band=args.wide_band)
        elif args.tags:
            if name not in tags:
                raise FileNotFoundError(f"{args.tags}: no tags for this image")
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


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "seeds", help="seed label maps (255 = unknown) from boxes, scribbles, points or tags")
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
    parser.set_defaults(run=run)
