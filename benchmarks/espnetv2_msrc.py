"""PASCAL VOC predictions of the kit's ESPNetv2 on MSRC-v2, scored where the classes
overlap, and its CPU inference time at 384 x 384.

Protocol.  Every labelled MSRC-v2 photo (all splits, 591) is resized bilinearly to
384 x 384 (the training size of the weights; ``--resize short`` resizes the short
side to 384 instead), normalised with the ImageNet mean / std, and the 21-class
logits are resized back to the photo's size before the arg-max.  For each MSRC class
``c`` mapped to a VOC class ``v`` the IoU is that of the masks ``pred == v`` and
``gt == c`` over the non-void pixels (``gt != 255``), with intersections and unions
summed over all photos (one IoU per class, not a mean of per-photo IoUs).  Pixels
of the other MSRC classes count: predicting ``v`` on them is a false positive.

Mapping (MSRC -> VOC): cow, sheep, horse, aeroplane, car, bicycle, bird, boat, cat,
dog and chair to the VOC class of the same name; MSRC ``body`` and ``face`` together
-> VOC ``person`` (MSRC-v2 labels a person's face and body / clothes as two classes;
VOC labels the whole person as one, so their union is the comparable region; hair,
hands and limbs are often void in MSRC, so they are not counted either way).  The
target is a mean IoU >= 0.75 over cow, sheep, car, aeroplane and cat.

    python benchmarks/espnetv2_msrc.py                     # all 591 photos
    python benchmarks/espnetv2_msrc.py --limit 50 --json out.json
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from graphseg.data import MSRCDataset, kit_root
from graphseg.data.classes import VOC_CLASSES
from graphseg.nn.backbones import load_espnetv2_voc, preprocess
from graphseg.utils.constants import IGNORE

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    benchmark_parser,
    machine,
    machine_line,
    missing,
    torch_threads,
    write_json,
)

DATA_DIR = kit_root()
WEIGHTS = DATA_DIR / "weights" / "espnetv2_s_2.0_pascal_384x384.pth"
SIZE = 384
# (row name, MSRC classes, VOC class)
MAPPING = [(name, (name,), name) for name in
           ("cow", "sheep", "car", "aeroplane", "cat", "horse", "bicycle", "bird", "boat", "dog",
            "chair")] + [("body+face", ("body", "face"), "person")]
TARGET = ("cow", "sheep", "car", "aeroplane", "cat")


def predict(model, image: np.ndarray, resize: str) -> np.ndarray:
    """``(H, W)`` VOC label map of an RGB photo."""
    h, w = image.shape[:2]
    if resize == "square":
        size = (SIZE, SIZE)
    else:
        scale = SIZE / min(h, w)
        size = (round(h * scale), round(w * scale))
    x = F.interpolate(preprocess(image)[None], size=size, mode="bilinear", align_corners=False)
    with torch.inference_mode():
        logits = model(x)
    logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits.argmax(1)[0].numpy()


def evaluate(model, dataset, limit, resize):
    classes = dataset.class_names
    rows = [(name, [classes.index(c) for c in msrc], VOC_CLASSES.index(voc))
            for name, msrc, voc in MAPPING]
    inter = np.zeros(len(rows), np.int64)
    union = np.zeros(len(rows), np.int64)
    gt_pixels = np.zeros(len(rows), np.int64)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(count):
        sample = dataset[i]
        pred = predict(model, sample.image, resize)
        valid = sample.label != IGNORE
        for r, (_, msrc, voc) in enumerate(rows):
            p = (pred == voc) & valid
            g = np.isin(sample.label, msrc)
            inter[r] += np.count_nonzero(p & g)
            union[r] += np.count_nonzero(p | g)
            gt_pixels[r] += np.count_nonzero(g)
    results = [{"msrc": name, "voc": VOC_CLASSES[voc], "gt_pixels": int(n),
                "iou": float(i / u) if u else None}
               for (name, _, voc), i, u, n in zip(rows, inter, union, gt_pixels)]
    return count, results


def time_inference(model, runs: int) -> list:
    """Seconds per forward pass of one 384 x 384 image (after two warm-up runs)."""
    x = torch.randn(1, 3, SIZE, SIZE)
    times = []
    with torch.inference_mode():
        for i in range(runs + 2):
            start = time.perf_counter()
            model(x)
            if i >= 2:
                times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, seed=False, threads=1,
                              threads_help="torch CPU threads (default 1)")
    parser.add_argument("--data", type=Path, default=DATA_DIR / "msrc_v2", help="MSRC-v2 folder")
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="the kit's .pth file")
    parser.add_argument("--limit", type=int, help="score only the first N photos")
    parser.add_argument("--resize", choices=("square", "short"), default="square",
                        help="384 x 384, or the short side to 384")
    parser.add_argument("--runs", type=int, default=10, help="timed forward passes")
    args = parser.parse_args(argv)
    if missing(args.data, "MSRC-v2"):
        return 2
    with torch_threads(args.threads):
        return benchmark(args)


def benchmark(args) -> int:
    model = load_espnetv2_voc(args.weights)
    dataset = MSRCDataset(args.data)
    info = machine()
    print(machine_line(info))

    start = time.perf_counter()
    count, results = evaluate(model, dataset, args.limit, args.resize)
    elapsed = time.perf_counter() - start
    print(f"\nMSRC-v2, {count} photos, resized {args.resize} to {SIZE}, {elapsed:.0f} s\n")
    print("| MSRC class | VOC class | IoU | GT pixels |\n|---|---|---|---|")
    for row in results:
        iou = "n/a" if row["iou"] is None else f"{row['iou']:.3f}"
        print(f"| {row['msrc']} | {row['voc']} | {iou} | {row['gt_pixels']} |")
    by_name = {row["msrc"]: row["iou"] for row in results}
    target = [by_name[name] for name in TARGET if by_name[name] is not None]
    target_mean = float(np.mean(target)) if target else None
    overlap = [row["iou"] for row in results if row["iou"] is not None]
    print(f"\nmean IoU over {', '.join(TARGET)}: "
          + ("n/a" if target_mean is None else f"{target_mean:.3f}") + " (target >= 0.75)")
    if overlap:
        print(f"mean IoU over the {len(overlap)} mapped rows with pixels: {np.mean(overlap):.3f}")

    times = time_inference(model, args.runs)
    median = statistics.median(times)
    print(f"\nCPU inference, 1 x 3 x {SIZE} x {SIZE}: median {median * 1000:.1f} ms over "
          f"{args.runs} runs ({args.threads} thread(s))")

    if args.json:
        write_json(args.json, {"machine": info, "args": vars(args), "photos": count,
                               "per_class": results, "target_classes": list(TARGET),
                               "target_mean_iou": target_mean,
                               "inference_ms": {"median": median * 1000,
                                                "runs": [t * 1000 for t in times]}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
