"""``graphseg train scl``: the few-shot segmenter SCL (thesis chapter 5) on episodes.

The training photos are either a folder of photos with class-id label maps
(``--images`` + ``--labels``; class 0, and every ``--background`` class merged into
it, is never an episode's class) or a folder of classes in the FSS-1000 layout
(``--class-folders``: ``CLASS/N.jpg`` + ``CLASS/N.png``).  ``--fold N`` trains on the
classes outside fold ``N`` of ``--folds`` (the Pascal-5i convention: the sorted
class ids cut into contiguous groups; fold ``N`` is then the held-out test classes),
``--train-classes`` names them, and by default every class trains.

Every training step is a batch of 1-shot episodes drawn from ``(seed, epoch,
index)``; the frozen encoder sees each photo once.  ``RUN/`` is as for the other
methods (checkpoint after every epoch, ``model.pt``, ``train.json``; the same
command continues; other settings are refused, ``--restart``); ``graphseg few-shot
--model RUN`` uses the result.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from graphseg.cli.failures import UsageError, check_folder, check_out_folder, reading
from graphseg.cli.train import CHECKPOINT, LOG, MODEL, class_ids, logged_epochs, parse_settings
from graphseg.utils.io import write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--images", metavar="DIR", help="photos (with --labels)")
    data.add_argument("--class-folders", metavar="ROOT",
                      help="a folder of classes: CLASS/N.jpg + CLASS/N.png masks (FSS-1000)")
    parser.add_argument("--labels", metavar="DIR",
                        help="with --images: STEM.png class-id label maps (255 = void)")
    parser.add_argument("--classes", metavar="FILE",
                        help="class names, one per line, in id order (with --labels)")
    parser.add_argument("--background", nargs="+", default=["0"], metavar="CLASS",
                        help="with --labels: classes merged into background 0, never an "
                             "episode's class (ids, or names with --classes; default 0)")
    parser.add_argument("--fold", type=int, metavar="N",
                        help="train on the classes outside fold N (0-based) of --folds")
    parser.add_argument("--folds", type=int, default=4, help="number of folds (default 4)")
    parser.add_argument("--train-classes", nargs="+", metavar="CLASS",
                        help="train on these classes (ids, or names)")
    parser.add_argument("--out", required=True, metavar="RUN",
                        help="the run's folder (checkpoint, model.pt, train.json)")
    parser.add_argument("--encoder", choices=("espnetv2", "efficientnet-lite0", "small-cnn"),
                        help="frozen encoder: espnetv2 (bundled, PASCAL VOC-pretrained; "
                             "default), efficientnet-lite0 (ImageNet, the [imagenet] extra)")
    parser.add_argument("--no-sgm", action="store_true",
                        help="the baseline: one masked-average prototype, no self-guided "
                             "module")
    parser.add_argument("--epochs", type=int, help="epochs (default 10)")
    parser.add_argument("--episodes", type=int, help="episodes per epoch (default 1000)")
    parser.add_argument("--batch-size", type=int, help="episodes per step (default 4)")
    parser.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    parser.add_argument("--size", type=int, help="photos are resized to SIZE x SIZE "
                                                 "(default 320)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        dest="settings", help="any setting of SCLConfig, e.g. --set "
                                              "channels=128 (repeatable)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, help="torch threads (default all)")
    parser.add_argument("--restart", action="store_true",
                        help="start over instead of continuing the run in --out")


def run(args: argparse.Namespace) -> int:
    from graphseg.data.classes import background_lookup, read_classes
    from graphseg.data.dataset import find_file, stems
    from graphseg.data.episodes import ClassPhotos, EpisodeSampler, fold_classes
    from graphseg.segmenters import SCLConfig, SCLSegmenter
    from graphseg.utils.io import read_image, read_label_map

    # -- pre-flight: every argument checked before the photos are read ------------
    out = check_out_folder("--out", args.out)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA device")
    if args.images and not args.labels:
        raise UsageError("--images needs --labels (class-id label maps)")
    if args.fold is not None and args.train_classes:
        raise UsageError("--fold and --train-classes are alternatives: give one")
    names = {"epochs": "epochs", "episodes": "episodes", "batch_size": "batch_size",
             "lr": "lr", "size": "size", "encoder": "encoder"}
    settings = {key: getattr(args, flag) for flag, key in names.items()
                if getattr(args, flag) is not None}
    if args.no_sgm:
        settings["sgm"] = False
    settings["seed"] = args.seed
    settings.update(parse_settings(args.settings, SCLConfig, "scl"))
    try:
        config = SCLConfig(**settings)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from error
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.class_folders:
        with reading("--class-folders"):
            photos = ClassPhotos.from_class_folders(check_folder("--class-folders",
                                                                 args.class_folders))
        class_names = photos.class_names
    else:
        images = check_folder("--images", args.images)
        labels = check_folder("--labels", args.labels)
        with reading("--classes"):
            class_names = read_classes(args.classes) if args.classes else None
        lookup = background_lookup(class_ids(args.background, class_names, "--background"))
        stems_found = stems(images)
        if not stems_found:
            raise UsageError(f"--images {images}: no images")
        pairs = []
        for name in stems_found:
            with reading("--labels"):
                pairs.append((read_image(find_file(images, name)),
                              lookup[read_label_map(find_file(labels, name, (".png",)))]))
        try:
            photos = ClassPhotos([p[0] for p in pairs], [p[1] for p in pairs],
                                 names=stems_found, class_names=class_names)
        except ValueError as error:
            raise UsageError(f"--labels {labels}: {error}") from error
    available = sorted(photos.classes)
    if args.fold is not None:
        try:
            classes, held_out = fold_classes(available, args.fold, folds=args.folds)
        except ValueError as error:
            raise UsageError(f"--fold {args.fold}: {error}") from error
    elif args.train_classes:
        classes = class_ids(args.train_classes, class_names, "--train-classes")
        unknown = sorted(set(classes) - set(available))
        if unknown:
            raise UsageError(f"--train-classes: {unknown} appear in no photo (classes "
                             f"present: {available})")
        held_out = []
    else:
        classes, held_out = available, []
    if not classes:
        raise UsageError("no training class left (one fold holds them all)")
    try:
        EpisodeSampler(photos, classes, shots=1)
    except ValueError as error:
        raise UsageError(str(error)) from error

    segmenter = SCLSegmenter(config)
    print(f"training scl on {len(photos)} photos, {len(classes)} classes {classes}"
          + (f" (held out: {held_out})" if held_out else "")
          + f", encoder {config.encoder}, device {args.device}; run folder {out}")
    log_path = out / LOG
    epochs = logged_epochs(out, args.restart)
    from graphseg import __version__

    log = {"command": ["graphseg", *sys.argv[1:]], "method": "scl", "config": config.to_dict(),
           "train_classes": classes, "held_out": held_out, "photos": list(photos.names),
           "versions": {"graphseg": __version__, "torch": str(torch.__version__)},
           "epochs": epochs}
    started = [time.time()]

    def on_epoch_end(epoch: int, loss: float) -> None:
        del log["epochs"][epoch:]
        log["epochs"].append({"epoch": epoch + 1, "loss": loss,
                              "seconds": round(time.time() - started[0], 2)})
        segmenter.save(out / MODEL)
        write_json(log_path, log)
        print(f"epoch {epoch + 1}/{config.epochs}: loss {loss:.4f}", file=sys.stderr)
        started[0] = time.time()

    out.mkdir(parents=True, exist_ok=True)
    try:
        segmenter.fit(photos, classes, checkpoint=out / CHECKPOINT, resume=not args.restart,
                      device=args.device, on_epoch_end=on_epoch_end)
    except ValueError as error:
        if "was written with" in str(error):
            raise UsageError(f"--out {out}: {error}; rerun with --restart to start over, or "
                             "choose another --out") from error
        raise
    segmenter.save(out / MODEL)
    write_json(log_path, log)
    print(f"wrote {out / MODEL} (graphseg few-shot --model {out} ...)")
    return 0
