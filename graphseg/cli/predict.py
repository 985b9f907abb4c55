"""``graphseg predict``: class maps for a folder of photos from a trained segmenter.

``--model`` is a ``graphseg train`` run folder (its ``model.pt``) or a model file.
Writes

* ``OUT/STEM.png``: the class-index label map (VOC palette);
* ``OUT/probs/STEM.npz`` with ``--save-probs``: ``probs``, float16 ``(C, H, W)``;
* ``OUT/manifest.json``: arguments, versions, the model, and every image's status,
  seconds and the settings that made its files.

As with ``graphseg propagate``: every file is written atomically and the manifest
after every image, so an interrupted run (Ctrl-C: exit status 130; or killed)
resumes where it stopped, skipping the photos whose map these settings already
made; maps made by other settings (another model, other test-time options) stop
the command before it computes anything, unless ``--overwrite``.  A photo that
cannot be read is reported and skipped; the exit status is then 1.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import time
from pathlib import Path

import numpy as np
import torch

from graphseg.cli.batch import FolderRun, score_folder
from graphseg.cli.failures import (
    FILE_ERRORS,
    UsageError,
    check_folder,
    check_out_folder,
    reading,
)
from graphseg.data.dataset import find_file, stems
from graphseg.data.formats import write_label_png
from graphseg.refine.crf import PRESETS
from graphseg.utils.io import atomic_open, read_image


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="RUN",
                        help="a 'graphseg train' run folder, or its model.pt")
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of photos")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--crf", choices=PRESETS, help="dense CRF preset after the network "
                                                       "(default: none)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0], metavar="S",
                        help="test-time scales whose probabilities are averaged, e.g. "
                             "0.75 1 1.25 (default 1)")
    parser.add_argument("--flip", action="store_true",
                        help="also average the mirrored photo's probabilities")
    parser.add_argument("--max-side", type=int, default=1024, metavar="PX",
                        help="the network sees the photo with its longer side at most PX "
                             "pixels; maps are written at full size (default 1024)")
    parser.add_argument("--save-probs", action="store_true",
                        help="also write OUT/probs/STEM.npz (float16 probabilities)")
    parser.add_argument("--gt", metavar="DIR",
                        help="STEM.png ground truth (or a GrabCut/MSRC/VOC root): print mIoU")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, help="torch threads (default all)")
    parser.add_argument("--overwrite", action="store_true",
                        help="recompute photos whose map exists")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def run(args: argparse.Namespace) -> int:
    from graphseg.segmenters import load_segmenter

    images = check_folder("--images", args.images)
    out = check_out_folder("--out", args.out)
    model_path = Path(args.model)
    if model_path.is_dir():
        model_path = model_path / "model.pt"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA device")
    if any(not s > 0 for s in args.scales):
        raise UsageError(f"--scales {' '.join(map(str, args.scales))}: scales must be > 0")
    if args.max_side < 16:
        raise UsageError(f"--max-side {args.max_side}: expected at least 16 pixels")
    gt = check_folder("--gt", args.gt) if args.gt else None
    if args.threads:
        torch.set_num_threads(args.threads)
    names = stems(images)
    if not names:
        raise UsageError(f"--images {images}: no images")
    with reading("--model"):
        segmenter = load_segmenter(args.model)
    segmenter.net.to(args.device)
    settings = {"model": str(model_path.resolve()), "model_sha256": _digest(model_path),
                "scales": list(args.scales), "flip": args.flip, "crf": args.crf,
                "max_side": args.max_side}
    folder = FolderRun(names, out, settings, overwrite=args.overwrite, complete=lambda n: (
        (out / f"{n}.png").is_file()
        and (not args.save_probs or (out / "probs" / f"{n}.npz").is_file())))
    print(f"{len(names)} photos, {len(names) - len(folder.todo)} already done; "
          f"{segmenter.method} model {model_path} ({len(segmenter.class_names)} classes), "
          f"device {args.device}")
    code = folder.run(lambda name: _one(segmenter, images, out, name, args), desc="predict",
                      method=segmenter.method, class_names=list(segmenter.class_names),
                      versions={"torch": str(torch.__version__)})
    if code is not None:
        return code
    if gt is not None:
        confusion = score_folder(names, out, gt, len(segmenter.class_names))
        if confusion.pixels:
            print(f"mIoU {100 * confusion.miou():.2f} over "
                  f"{sum((out / f'{n}.png').is_file() for n in names)} photos (per class: "
                  f"{', '.join(f'{100 * v:.1f}' for v in confusion.iou())})")
    return folder.report()


def _one(segmenter, images: Path, out: Path, name: str, args) -> dict:
    """Predict photo ``name``; its manifest record."""
    start = time.time()
    try:
        image = read_image(find_file(images, name))
        labels, probs = segmenter.predict(image, scales=args.scales, flip=args.flip,
                                          crf=args.crf, max_side=args.max_side)
        if args.save_probs:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, probs=probs.astype(np.float16))
            with atomic_open(out / "probs" / f"{name}.npz") as file:
                file.write(buffer.getvalue())
        write_label_png(out / f"{name}.png", labels)  # last: marks the photo done
        return {"status": "ok", "seconds": round(time.time() - start, 3)}
    except FILE_ERRORS as error:
        return {"status": "failed", "error": str(error)}
