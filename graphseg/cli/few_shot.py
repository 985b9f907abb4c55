"""``graphseg few-shot``: masks of one object in every photo of a folder, from a few
photos where it is drawn.

``--support DIR`` holds the K annotated photos: ``N.jpg`` with its mask ``N.png``
(as FSS-1000 lays them out), or ``DIR/images/N.jpg`` with ``DIR/masks/N.png``; a
mask is the object above 127 (a 0/255 export of any annotation tool; 0/1 maps work
too).  Every photo of ``--images`` gets ``OUT/STEM.png``, a 0/255 mask of the
object.

The model: ``--model RUN`` is a ``graphseg train scl`` run (SCL, thesis chapter 5;
K > 1 shots fused by CGM unless ``--no-cgm``); without it the command uses the
training-free prototype baseline on the bundled encoder (masked-average prototypes,
cosine matching) and says so.  ``--refine`` refines every mask over the photo's own
graph (a random walk, A2GNN from the confident pixels, or the dense CRF).

As with ``graphseg predict``: files are written atomically, ``OUT/manifest.json``
records every photo, an interrupted run resumes, maps made with other settings stop
the command unless ``--overwrite``, a photo that cannot be read is reported and the
exit status is then 1.  ``--gt DIR`` (0/255 or 0/1 masks) prints the mean IoU.
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from graphseg.cli.batch import FolderRun
from graphseg.cli.failures import (
    FILE_ERRORS,
    UsageError,
    check_folder,
    check_out_folder,
    reading,
)
from graphseg.data.dataset import find_file, stems
from graphseg.data.episodes import ClassPhotos
from graphseg.data.layouts import resolve_gt
from graphseg.metrics import object_iou
from graphseg.propagation.refinement import REFINEMENTS
from graphseg.utils.io import read_image, read_label_map, write_png


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--support", required=True, metavar="DIR",
                        help="the annotated photos: N.jpg + N.png masks, or images/ + masks/")
    parser.add_argument("--images", required=True, metavar="DIR", help="photos to segment")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--model", metavar="RUN",
                        help="a 'graphseg train scl' run folder or its model.pt (default: "
                             "the training-free prototype baseline)")
    parser.add_argument("--refine", choices=REFINEMENTS,
                        help="refine each mask over the photo's graph (default: none)")
    parser.add_argument("--no-cgm", action="store_true",
                        help="K > 1 shots: average them instead of CGM's weighting")
    parser.add_argument("--gt", metavar="DIR", help="ground-truth masks: print the mean IoU")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, help="torch threads (default all)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of --refine a2gnn (default 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="recompute photos whose mask exists")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def run(args: argparse.Namespace) -> int:
    from graphseg.segmenters import PrototypeSegmenter, load_few_shot

    support_dir = check_folder("--support", args.support)
    images = check_folder("--images", args.images)
    out = check_out_folder("--out", args.out)
    gt = check_folder("--gt", args.gt) if args.gt else None
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    names = stems(images)
    if not names:
        raise UsageError(f"--images {images}: no images")
    with reading("--support"):
        photos = ClassPhotos.from_class_folders(support_dir, min_pixels=1)
    if len(photos.class_names or ()) > 2:
        raise UsageError(f"--support {support_dir}: holds {len(photos.class_names) - 1} "
                         "class folders; give the folder of one object's photos")
    supports = [(photos.images[i], photos.mask(i, 1)) for i in range(len(photos))
                if (photos.labels[i] == 1).any()]
    if not supports:
        raise UsageError(f"--support {support_dir}: no mask marks an object pixel")
    if args.model:
        with reading("--model"):
            segmenter = load_few_shot(args.model)
        model_path = Path(args.model) / "model.pt" if Path(args.model).is_dir() \
            else Path(args.model)
        model = {"model": str(model_path.resolve()), "model_sha256": _digest(model_path)}
    else:
        segmenter = PrototypeSegmenter()
        model = {"model": "prototype baseline", "encoder": segmenter.encoder_name}
    segmenter.net.to(args.device)
    settings = {**model, "support": sorted(photos.names),
                "support_sha256": _support_digest(supports),
                "cgm": not args.no_cgm, "refine": args.refine,
                "seed": args.seed if args.refine == "a2gnn" else None}
    folder = FolderRun(names, out, settings, overwrite=args.overwrite, what="masks")
    print(f"{len(names)} photos, {len(names) - len(folder.todo)} already done; "
          f"{len(supports)} support photo(s) from {support_dir}; model: "
          f"{segmenter.describe()}" + ("" if args.model else " (no --model given)"))

    encoded = segmenter.encode_supports(supports)  # once, not per photo

    def one(name: str) -> dict:
        start = time.time()
        try:
            image = read_image(find_file(images, name))
            mask, _ = segmenter.predict(encoded, image, cgm=not args.no_cgm,
                                        refine=args.refine, seed=args.seed)
            write_png(out / f"{name}.png", (mask * 255).astype(np.uint8))
            return {"status": "ok", "seconds": round(time.time() - start, 3)}
        except FILE_ERRORS as error:
            return {"status": "failed", "error": str(error)}

    code = folder.run(one, desc="few-shot", method=segmenter.method,
                      versions={"torch": str(torch.__version__)})
    if code is not None:
        return code
    if gt is not None:
        _score(names, out, gt)
    return folder.report()


def _support_digest(supports) -> str:
    """One digest of the support photos and masks (a changed mask is other settings)."""
    digest = hashlib.sha256()
    for image, mask in supports:
        digest.update(np.ascontiguousarray(image).tobytes())
        digest.update(np.ascontiguousarray(mask).tobytes())
    return digest.hexdigest()[:16]


def _score(names, out: Path, gt_root: Path) -> None:
    gt_dir, _, _ = resolve_gt(gt_root)
    ious = []
    for name in names:
        pred = out / f"{name}.png"
        if not pred.is_file():
            continue
        try:
            truth = read_label_map(find_file(gt_dir, name, (".png",)))
        except FileNotFoundError:
            continue
        ious.append(object_iou((read_label_map(pred) > 127).astype(np.uint8),
                               ((truth > 127) | (truth == 1)).astype(np.uint8)))
    if ious:
        print(f"mean IoU {100 * float(np.mean(ious)):.2f} over {len(ious)} photos with "
              f"ground truth in {gt_dir}")
    else:
        print(f"--gt {gt_root}: no mask matches a photo of --images")
