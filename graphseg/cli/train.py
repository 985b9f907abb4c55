"""``graphseg train METHOD``: train a dataset-level segmenter on a folder of photos.

Methods (:data:`graphseg.segmenters.METHODS`):

* ``rrm``: Reliable Region Mining (thesis chapter 2) from image-level tags, one
  step: a classification branch whose CAMs give reliable regions online, and a
  segmentation branch trained on them with the joint loss.
* ``two-step``: the same segmentation network trained on label maps: pseudo
  labels (e.g. ``graphseg propagate --tags`` output; 255 = ignored), or full
  masks for the fully supervised upper bound.
* ``dfr``: the Dynamic Feature Regularised loss (thesis chapter 4) from
  scribbles (``STEM.png`` class ids on the strokes, 255 elsewhere, as
  ``graphseg propagate --scribbles`` reads them).
* ``scl``: the few-shot segmenter SCL (thesis chapter 5) on episodes of class-labelled
  photos, for ``graphseg few-shot --model RUN`` (:mod:`graphseg.cli.train_scl`).

Any setting of the method's configuration (:mod:`graphseg.segmenters`) can be
given with ``--set NAME=VALUE`` (repeatable), e.g. ``--set radius=3 --set
gamma=0.95``; the dedicated flags are shorthands for the common ones.

``--out RUN`` is the run's folder: ``RUN/checkpoint.pt`` (written after every
epoch), ``RUN/model.pt`` (the segmenter, after every epoch; ``graphseg predict
--model RUN`` reads it) and ``RUN/train.json`` (settings, versions, the loss and
validation mIoU of every epoch).  Rerunning the same command continues from the
last finished epoch; with other settings it stops and names them (``--restart``
starts over).  Before any training, every photo and label map is read: one that
cannot be read, or whose size differs from its photo's, is reported by name and
left out (the command then exits 1 after training on the rest); a label map
with no labelled pixel is left out with a note.  Under ``torchrun
--nproc_per_node N -m graphseg train ...`` every process trains on its own shard
(DistributedDataParallel).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from graphseg.cli.failures import Failures, UsageError, check_folder, check_out_folder, reading
from graphseg.data.classes import background_lookup, read_classes
from graphseg.data.dataset import find_file, stems
from graphseg.data.formats import read_tags
from graphseg.utils import distributed
from graphseg.utils.checks import class_ids_out_of_range
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import read_image, read_label_map, write_json

#: the files of a run folder (``--out RUN``), shared with ``train scl``
CHECKPOINT, MODEL, LOG = "checkpoint.pt", "model.pt", "train.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    methods = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    rrm = methods.add_parser("rrm", help="one-step RRM from image-level tags (thesis ch. 2)",
                             description="Train RRM (Reliable Region Mining) from image-level "
                                         "tags.")
    rrm.add_argument("--images", required=True, metavar="DIR", help="folder of photos")
    rrm.add_argument("--tags", required=True, metavar="FILE",
                     help="tags JSON mapping {STEM: [class, ...]} or folder of STEM.json, "
                          "as 'graphseg propagate --tags' reads (photos without tags are "
                          "left out)")
    _add_common(rrm)
    _add_attention(rrm)
    rrm.add_argument("--warmup-epochs", type=int, metavar="N",
                     help="epochs of the classification loss alone before the CAMs give "
                          "reliable regions (default 2)")
    rrm.add_argument("--no-energy", action="store_true", help="ablation: no dense energy loss")
    rrm.add_argument("--no-bcd", action="store_true", help="ablation: no BCD loss")
    rrm.add_argument("--no-ce", action="store_true",
                     help="ablation: no cross-entropy on the reliable regions")
    two = methods.add_parser("two-step",
                             help="the segmentation network on label maps (pseudo labels, "
                                  "or full masks for the upper bound)",
                             description="Train the segmentation network on label maps.")
    two.add_argument("--images", required=True, metavar="DIR", help="folder of photos")
    two.add_argument("--labels", required=True, metavar="DIR",
                     help="STEM.png label maps (class ids, palette or grayscale; 255 = "
                          "ignored)")
    two.add_argument("--binary", action="store_true",
                     help="label maps are 0/255 masks: above 127 is class 1 (object)")
    _add_common(two)
    _add_attention(two)
    dfr = methods.add_parser("dfr", help="DFR from scribbles (thesis ch. 4)",
                             description="Train DFR (Dynamic Feature Regularised loss) from "
                                         "scribbles.")
    dfr.add_argument("--images", required=True, metavar="DIR", help="folder of photos")
    dfr.add_argument("--scribbles", required=True, metavar="DIR",
                     help="STEM.png scribbles: class ids on the strokes, 255 = unlabelled "
                          "(as 'graphseg propagate --scribbles' reads them)")
    _add_common(dfr)
    dfr.add_argument("--kernel", choices=("dynamic", "static"),
                     help="regulariser kernel: position + RGB + the consistency head's "
                          "features (dynamic, default) or position + RGB (static)")
    dfr.add_argument("--no-dfr", action="store_true",
                     help="ablation: partial cross-entropy only (no regulariser, no "
                          "consistency head)")
    dfr.add_argument("--no-consistency-head", action="store_true",
                     help="ablation: no feature consistency head (implies --kernel static)")
    dfr.add_argument("--no-feature-distance", action="store_true",
                     help="ablation: no feature distance loss (Eq. 4.11)")
    dfr.add_argument("--no-feature-regularized", action="store_true",
                     help="ablation: no feature regularised loss (Eq. 4.12)")
    from graphseg.cli import train_scl

    scl = methods.add_parser("scl", help="the few-shot segmenter SCL on episodes (thesis "
                                         "ch. 5), for graphseg few-shot",
                             description=train_scl.__doc__.split("\n\n")[0],
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    train_scl.add_arguments(scl)


def _add_attention(parser: argparse.ArgumentParser) -> None:
    """The option of the methods on the RRM network (rrm, two-step)."""
    parser.add_argument("--attention", choices=("rfam", "plain"),
                        help="global sub-branch attention (default rfam)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="RUN",
                        help="the run's folder (checkpoint, model.pt, train.json)")
    parser.add_argument("--classes", metavar="FILE",
                        help="class names, one per line, in id order (background included)")
    parser.add_argument("--num-classes", type=int, metavar="K",
                        help="classes incl. background, without --classes (default: the "
                             "largest id in the labels or tags + 1)")
    parser.add_argument("--background", nargs="+", default=["0"], metavar="CLASS",
                        help="the background class (id, or name with --classes); more than "
                             "one: the others are merged into the first, e.g. MSRC-v2's "
                             "stuff classes (default 0)")
    parser.add_argument("--val-images", metavar="DIR", help="validation photos: mIoU per epoch")
    parser.add_argument("--val-labels", metavar="DIR", help="validation ground truth STEM.png")
    parser.add_argument("--backbone", choices=("espnetv2", "efficientnet-lite0", "small-cnn"),
                        help="espnetv2: bundled, PASCAL VOC-pretrained (default); "
                             "efficientnet-lite0: ImageNet-pretrained, the [imagenet] extra; "
                             "small-cnn: from scratch")
    parser.add_argument("--epochs", type=int, help="passes over the photos (default 20)")
    parser.add_argument("--batch-size", type=int, help="photos per step (default 8)")
    parser.add_argument("--lr", type=float, help="backbone learning rate (default 1e-4)")
    parser.add_argument("--crop", type=int, help="training crop side in pixels (default 321)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    parser.add_argument("--threads", type=int, help="torch threads (default all)")
    parser.add_argument("--restart", action="store_true",
                        help="start over instead of continuing the run in --out")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        dest="settings",
                        help="any setting of the method's configuration, e.g. --set "
                             "gamma=0.95 (repeatable)")


def class_ids(values: Sequence[str], class_names: Optional[Sequence[str]],
              flag: str = "--background") -> List[int]:
    """The class ids that ``values`` (ids, or names with ``class_names``) give to ``flag``."""
    ids = []
    for value in values:
        if value.isdigit():
            ids.append(int(value))
        elif class_names is not None and value in class_names:
            ids.append(list(class_names).index(value))
        else:
            known = f" (classes: {', '.join(class_names)})" if class_names else \
                " (names need --classes)"
            raise UsageError(f"{flag} {value}: not a class id or name{known}")
    return ids


def _settings(args: argparse.Namespace, config_class) -> dict:
    """The configuration settings the command line gives: the flags, then ``--set``."""
    names = {"backbone": "backbone", "attention": "attention", "epochs": "epochs",
             "batch_size": "batch_size", "lr": "lr", "crop": "crop",
             "warmup_epochs": "warmup_epochs", "kernel": "kernel"}
    settings = {key: getattr(args, flag) for flag, key in names.items()
                if getattr(args, flag, None) is not None}
    for flag in ("energy", "bcd", "ce", "feature_distance", "feature_regularized"):
        if getattr(args, f"no_{flag}", False):
            key = {"feature_distance": "fd", "feature_regularized": "fr"}.get(flag, flag)
            settings[f"{key}_weight"] = 0.0
    if getattr(args, "no_consistency_head", False) or getattr(args, "no_dfr", False):
        settings.update(consistency_head=False, kernel="static")
    if getattr(args, "no_dfr", False):
        settings["dfr_weight"] = 0.0
    settings["seed"] = args.seed
    settings.update(parse_settings(args.settings, config_class, args.method))
    return settings


def parse_settings(items: Sequence[str], config_class, method: str) -> dict:
    """``NAME=VALUE`` strings as typed settings of ``config_class`` (a dataclass):
    numbers, booleans (true/false/1/0/yes/no), strings, and comma-separated tuples."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--set {item!r}: expected NAME=VALUE, e.g. --set gamma=0.95")
        if name not in fields:
            raise UsageError(f"--set {name}: not a setting of {method} "
                             f"(settings: {', '.join(sorted(fields))})")
        default = fields[name].default
        try:
            out[name] = _typed(value.strip(), default)
        except ValueError as error:
            raise UsageError(f"--set {name}={value}: {error}") from error
    return out


def _typed(value: str, default):
    """``value`` converted to the type of ``default``."""
    if isinstance(default, bool):
        lowered = value.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if isinstance(default, tuple):
        kind = type(default[0]) if default else float
        return tuple(kind(v) for v in value.split(",") if v.strip())
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def _read_labels(images: Path, labels: Optional[Path], names: Sequence[str], binary: bool,
                 lookup: np.ndarray, failures: Failures) -> Tuple[list, list, list]:
    """The names of the photos (and label maps) that can be read and agree in size,
    their ``(image, label map)`` pairs as a :class:`SegmentationSet` reads them, and
    the names of maps with no labelled pixel (left out)."""
    kept, pairs, empty = [], [], []
    for name in names:
        def read(name=name):
            image = read_image(find_file(images, name))
            if labels is None:
                return image, None
            path = find_file(labels, name, (".png",))
            label = read_label_map(path)
            if label.shape != image.shape[:2]:
                raise ValueError(f"{path}: label map is {label.shape[1]}x{label.shape[0]} but "
                                 f"the photo is {image.shape[1]}x{image.shape[0]}")
            return image, (label > 127).astype(np.uint8) if binary else lookup[label]

        pair = failures.attempt(name, read)
        if pair is None:
            continue
        if pair[1] is not None and (pair[1] == IGNORE).all():
            empty.append(name)
            continue
        kept.append(name)
        pairs.append(pair)
    return kept, pairs, empty


def run(args: argparse.Namespace) -> int:
    from graphseg.data.torch_dataset import SegmentationSet
    from graphseg.segmenters import METHODS

    if args.method == "scl":
        from graphseg.cli import train_scl

        return train_scl.run(args)

    # -- pre-flight: every argument checked before any work -----------------------
    images = check_folder("--images", args.images)
    out = check_out_folder("--out", args.out)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA device")
    if args.amp and not args.device.startswith("cuda"):
        raise UsageError("--amp needs --device cuda")
    if (args.val_images is None) != (args.val_labels is None):
        raise UsageError("--val-images and --val-labels go together")
    try:
        rank, world, local = (distributed.rank(), distributed.world_size(),
                              distributed.local_rank())
    except ValueError as error:
        raise UsageError(str(error)) from error
    device = f"cuda:{local}" if args.device == "cuda" and world > 1 else args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    segmenter_class = METHODS[args.method]
    settings = _settings(args, segmenter_class.Config)
    try:  # the settings are checked before any photo is read
        segmenter_class.Config(**settings)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from error
    with reading("--classes"):
        class_names = read_classes(args.classes) if args.classes else None
    background = class_ids(args.background, class_names)
    names = stems(images)
    if not names:
        raise UsageError(f"--images {images}: no images")
    tags, labels_dir, labels_flag = None, None, None
    if args.method == "rrm":
        with reading("--tags"):
            tags = read_tags(args.tags, names, class_names)
        names = [n for n in names if n in tags]
        if not names:
            raise UsageError(f"--tags {args.tags}: tags none of the photos in {images}")
    else:
        labels_flag = "--scribbles" if args.method == "dfr" else "--labels"
        labels_dir = check_folder(labels_flag, getattr(args, labels_flag[2:]))
    lookup = background_lookup(background[1:], to=background[0])
    failures = Failures()
    binary = getattr(args, "binary", False)
    names, pairs, empty = _read_labels(images, labels_dir, names, binary, lookup, failures)
    maps = [label for _, label in pairs]
    if not names:
        failures.report(len(failures.items))
        raise UsageError(f"--images {images}: no photo left to train on")
    largest = max([max(t, default=0) for t in (tags or {}).values()]
                  + [int(m[m != IGNORE].max(initial=0)) for m in maps if m is not None]
                  + background)
    num_classes = len(class_names) if class_names else (args.num_classes or largest + 1)
    if class_names is None:
        class_names = tuple(f"class{i}" for i in range(num_classes))
        class_names = ("background",) + class_names[1:] if background[0] == 0 else class_names
    if background[0] >= num_classes:
        raise UsageError(f"--background {background[0]}: not below the {num_classes} classes")
    if tags is not None:
        merged = set(background)
        tags = {n: tuple(sorted(set(t) - merged)) for n, t in tags.items()}
        for name in names:
            bad = [t for t in tags[name] if t >= num_classes]
            if bad:
                raise UsageError(f"--tags {args.tags}: {name} has class ids {bad} >= "
                                 f"{num_classes} classes")
    for name, label in zip(names, maps):
        bad = class_ids_out_of_range(label, num_classes) if label is not None else []
        if len(bad):
            raise UsageError(f"{labels_flag} {labels_dir}: {name}.png holds class ids "
                             f"{list(bad)[:5]} >= {num_classes} classes (give --classes or "
                             "--num-classes)")
    val = _validation(args, lookup, num_classes) if args.val_images else None

    try:
        segmenter = segmenter_class(class_names, background=background[0], **settings)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from error
    data = SegmentationSet(
        [find_file(images, n) for n in names],
        labels=None if labels_dir is None else [find_file(labels_dir, n, (".png",))
                                                for n in names],
        tags=None if tags is None else [tags[n] for n in names], names=names,
        lookup=lookup, binary=binary)
    data.cache = dict(enumerate(pairs))  # read once, by the checks above
    quiet = rank != 0
    if empty and not quiet:
        print(f"note: left out {len(empty)} label maps with no labelled pixel: "
              f"{', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}", file=sys.stderr)
    if not quiet:
        print(f"training {args.method} on {len(names)} photos ({world} process(es)), "
              f"{num_classes} classes, background {background[0]}, backbone "
              f"{segmenter.config.backbone}, device {device}; run folder {out}")
    return _train(args, segmenter, data, val, out, device, quiet, failures, len(names))


def _validation(args, lookup: np.ndarray, num_classes: int):
    images = check_folder("--val-images", args.val_images)
    labels = check_folder("--val-labels", args.val_labels)
    pairs = []
    for name in stems(images):
        with reading("--val-labels"):
            image = read_image(find_file(images, name))
            label = read_label_map(find_file(labels, name, (".png",)))
        if label.shape != image.shape[:2]:
            raise UsageError(f"--val-labels {labels}: {name}.png is {label.shape[1]}x"
                             f"{label.shape[0]} but its photo is {image.shape[1]}x"
                             f"{image.shape[0]}")
        pairs.append((image, lookup[label]))
    if not pairs:
        raise UsageError(f"--val-images {images}: no images")
    return pairs


def logged_epochs(out: Path, restart: bool) -> list:
    """The epochs an earlier run into ``out`` logged in ``train.json``, which a resumed
    run continues (none with ``restart``, without a checkpoint, or from a damaged log)."""
    log = out / LOG
    if restart or not (out / CHECKPOINT).is_file() or not log.is_file():
        return []
    try:
        return json.loads(log.read_text(encoding="utf-8")).get("epochs", [])
    except ValueError:
        return []


def _train(args, segmenter, data, val, out: Path, device: str, quiet: bool,
           failures: Failures, count: int) -> int:
    from graphseg import __version__

    log_path = out / LOG
    epochs = logged_epochs(out, args.restart)
    log = {"command": ["graphseg", *sys.argv[1:]], "method": segmenter.method,
           "config": segmenter.config.to_dict(), "class_names": list(segmenter.class_names),
           "background": segmenter.background, "images": data.names,
           "versions": {"graphseg": __version__, "torch": str(torch.__version__)},
           "epochs": epochs}
    started = [time.time()]

    def on_epoch_end(epoch: int, loss: float) -> None:
        if quiet:
            return
        record = {"epoch": epoch + 1, "loss": loss,
                  "seconds": round(time.time() - started[0], 2)}
        if val is not None:
            confusion = segmenter.evaluate(*zip(*val))
            record["val_miou"] = float(confusion.miou())
            segmenter.net.train()
        del log["epochs"][epoch:]
        log["epochs"].append(record)
        segmenter.save(out / MODEL)
        write_json(log_path, log)
        shown = f", val mIoU {100 * record['val_miou']:.2f}" if val is not None else ""
        print(f"epoch {epoch + 1}/{segmenter.config.epochs}: loss {loss:.4f}{shown} "
              f"({record['seconds']:.1f} s)", file=sys.stderr)
        started[0] = time.time()

    out.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # early CAMs respond nowhere for some tags: expected while training
            warnings.filterwarnings("ignore", message="tag .* has no CAM response")
            segmenter.fit(data, checkpoint=out / CHECKPOINT, resume=not args.restart,
                          device=device, amp=args.amp, progress=not quiet,
                          on_epoch_end=on_epoch_end)
    except ValueError as error:
        if "was written with" in str(error):
            raise UsageError(f"--out {out}: {error}; rerun with --restart to start over, or "
                             "choose another --out") from error
        raise
    if not quiet:
        segmenter.save(out / MODEL)
        write_json(log_path, log)
        print(f"wrote {out / MODEL} (graphseg predict --model {out} ...)")
    return failures.report(count + len(failures.items))
