"""``graphseg train-affinity``: train the affinity CNN (thesis section 3.3.3) on seed maps.

Pairs every image ``IMAGES/STEM.*`` with ``SEEDS/STEM.png`` (a seed map as
written by ``graphseg seeds``: class index, 255 = unknown) and trains an
:class:`~graphseg.nn.models.AffinityNet` with
:func:`graphseg.training.train_affinity_net`.  The checkpoint ``--out`` is
written atomically after every epoch; running the same command again resumes
from it (``--no-resume`` starts over).  It is also the trained network:
:func:`graphseg.training.load_affinity_net` reads it.

Images without a seed map are skipped with a note; unreadable pairs are
reported by name and skipped, and the command then exits 1 after training on
the rest.  Under ``torchrun --nproc_per_node N -m graphseg train-affinity ...``
every process trains on its own shard with DistributedDataParallel (gloo).
"""
from __future__ import annotations

import argparse
import sys

import torch

from graphseg.cli.failures import Failures, UsageError, check_folder
from graphseg.cli.seeds import load_model
from graphseg.cli.visualize import check_out_file
from graphseg.data import read_seeds
from graphseg.data.dataset import find_file, lookup, stems
from graphseg.nn.backbones.pretrained import BUNDLED_WEIGHTS
from graphseg.utils.constants import IGNORE
from graphseg.utils.distributed import rank as process_rank
from graphseg.utils.io import read_image


def build_model(args):
    from graphseg.nn.backbones import SmallCNN, load_espnetv2_voc
    from graphseg.nn.models import AffinityNet

    if args.backbone == "small":
        backbone = SmallCNN(args.width, seed=args.seed)
    else:
        backbone = load_espnetv2_voc(args.weights).base_net
    return AffinityNet(backbone, affinity_channels=args.affinity_channels,
                       freeze_backbone=args.freeze_backbone, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from graphseg.training import train_affinity_net

    images_dir = check_folder("--images", args.images)
    seeds_dir = check_folder("--seeds", args.seeds)
    out = check_out_file("--out", args.out)
    if out.is_file() and not args.no_resume:
        load_model("--out", out, "affinity")  # resumed: it must be one (or --no-resume)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.backbone != "espnetv2" and (args.weights != str(BUNDLED_WEIGHTS)
                                        or args.freeze_backbone):
        raise UsageError("--weights and --freeze-backbone need --backbone espnetv2")
    try:
        rank = process_rank()
    except ValueError as error:
        raise UsageError(str(error)) from error
    try:  # before the images are read: a bad --weights is found at once
        model = build_model(args)
    except (OSError, ValueError) as error:
        raise UsageError(f"--weights {error}" if args.backbone == "espnetv2"
                         else str(error)) from error
    names = stems(images_dir)
    failures, samples, missing = Failures(), [], []
    for name in names:
        seeds_path = lookup(seeds_dir, name, (".png",))
        if seeds_path is None:
            missing.append(name)
            continue

        def read(name=name, seeds_path=seeds_path):
            image = read_image(find_file(images_dir, name))
            seeds = read_seeds(seeds_path)
            if seeds.shape != image.shape[:2]:
                raise ValueError(f"seed map is {seeds.shape[1]}x{seeds.shape[0]} but the image "
                                 f"is {image.shape[1]}x{image.shape[0]}")
            if (seeds == IGNORE).all():
                raise ValueError("seed map has no labelled pixel")
            return image, seeds

        pair = failures.attempt(name, read)
        if pair is not None:
            samples.append(pair)
    quiet = rank != 0
    if missing and not quiet:
        print(f"note: {len(missing)} images have no seed map in {seeds_dir} and are skipped"
              f" ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})",
              file=sys.stderr)
    if not samples:
        failures.report(len(names))
        raise UsageError(f"no image of {images_dir} has a usable seed map in {seeds_dir}")
    if not quiet:
        resumed = out.is_file() and not args.no_resume
        print(f"training the affinity net ({args.backbone} backbone) on {len(samples)} images"
              + (f", resuming from {out}" if resumed else ""))
    try:
        history = train_affinity_net(
            model, samples, epochs=args.epochs, batch_size=args.batch_size, crop=args.crop,
            lr=args.lr, weight_decay=args.weight_decay, radius=args.radius,
            reg_weight=args.reg_weight, reg_norm=args.reg_norm, seed=args.seed, checkpoint=out,
            resume=not args.no_resume, progress=not args.no_progress)
    except ValueError as error:  # e.g. a checkpoint of another configuration
        raise UsageError(str(error)) from error
    if not quiet:
        curve = ", ".join(f"{v:.4f}" for v in history)
        print(f"loss per epoch: {curve}")
        print(f"wrote {out}")
    return failures.report(len(names)) if not quiet else (1 if failures.items else 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of images")
    parser.add_argument("--seeds", required=True, metavar="DIR",
                        help="STEM.png seed maps (255 = unknown), e.g. from graphseg seeds")
    parser.add_argument("--out", required=True, metavar="CKPT",
                        help="checkpoint, written every epoch and resumed from")
    parser.add_argument("--backbone", choices=("small", "espnetv2"), default="small",
                        help="small: a CNN trained from scratch (default); espnetv2: the "
                             "pretrained ESPNetv2 encoder")
    parser.add_argument("--weights", metavar="PATH", default=str(BUNDLED_WEIGHTS),
                        help="espnetv2: its weights (default: the bundled PASCAL VOC ones)")
    parser.add_argument("--freeze-backbone", action="store_true",
                        help="espnetv2: train the affinity head only")
    parser.add_argument("--width", type=int, default=32,
                        help="small: channels of the first level (default 32)")
    parser.add_argument("--affinity-channels", type=int, default=448,
                        help="channels of the affinity head d_A (default 448)")
    parser.add_argument("--epochs", type=int, default=12, help="default 12")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="crops per step and process (default 4)")
    parser.add_argument("--crop", type=int, default=448, help="crop side in pixels (default 448)")
    parser.add_argument("--lr", type=float, default=0.01, help="initial lr, poly (default 0.01)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="default 5e-4")
    parser.add_argument("--radius", type=int, default=5,
                        help="pair radius in nodes for the loss (default 5)")
    parser.add_argument("--reg-weight", type=float, default=3.0,
                        help="lambda of the affinity regularised loss (default 3)")
    parser.add_argument("--reg-norm", choices=("nodes", "kernel"), default="nodes",
                        help="normalisation of the regularised loss: per node (default, as "
                             "the Gated CRF loss) or by the kernel mass (wider affinity range)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch threads per process (default torch's)")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over even if --out exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
