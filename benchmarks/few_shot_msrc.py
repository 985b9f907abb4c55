"""Few-shot segmentation (issue 16) on MSRC-v2's object classes in four folds, 1-shot and
5-shot, with FSS-1000's Eiffel class as a sanity row.

Protocol.  MSRC-v2's 16 object classes (the seven stuff classes merged into the
background, ``benchmarks/_segmenters.py``), renumbered 1..16 in MSRC's order and cut
into four folds of four (Pascal-5i convention, :func:`graphseg.data.fold_classes`):

* fold 0: cow, horse, sheep, aeroplane
* fold 1: face, car, bicycle, flower
* fold 2: sign, bird, book, chair
* fold 3: cat, dog, body, boat

For each fold, the trained rows train on 1-shot episodes of the other twelve classes
drawn from the *train* photos; the test episodes (a query and K supports of one
held-out class, the query not among them) come from the *test* photos, fixed by the
episode seed (``--episodes`` per fold and seed, ``--seeds`` seeds: the protocol is 1000
and 5).  A class needs K + 1 photos with at least 64 of its pixels: horse has 2 train
and 1 test photo, so it trains (in folds 1-3) but forms no test episode, and fold 0 is
scored over cow, sheep and aeroplane; bicycle (6 test photos), cat (8) and boat (7)
take part in 5-shot episodes with few distinct queries.  The schedule is fixed beforehand; nothing
is chosen on the test episodes.  Scores: the mean over classes of the foreground IoU
accumulated over each class's episodes (the Pascal-5i metric) and FB-IoU, at the
photos' resolution, averaged over the episode seeds (and the folds for "mean").

Rows: ``prototype`` (training-free: masked-average prototypes on the frozen encoder,
cosine matching), ``baseline`` (the CANet-style network with one prototype), ``SGM``
(SCL's self-guided module), with K = 5 also ``SGM + CGM`` (Eq. 5.15-5.17; the other
5-shot rows average their K predictions), and ``+ refine`` (the best SCL row's
prediction refined over the query photo's graph by ``--refine``).  The encoder is
frozen and the bundled ESPNetv2 by default: it was trained on PASCAL VOC
segmentation, whose classes overlap most of these, so the held-out classes are not
unseen by the encoder as in the literature's ImageNet setting; ``--encoder
efficientnet-lite0`` (ImageNet classification, the ``[imagenet]`` extra) is.

    python benchmarks/few_shot_msrc.py --json /tmp/bench_fss/out.json
    python benchmarks/few_shot_msrc.py --folds 0 1 --episodes 300 --seeds 2
    python benchmarks/few_shot_msrc.py --quick
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict

import numpy as np

from graphseg.data import (
    ClassPhotos,
    Episode,
    MSRCDataset,
    fold_classes,
    kit_root,
    sample_episodes,
)
from graphseg.segmenters import PrototypeSegmenter, SCLSegmenter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    apply_defaults,
    benchmark_parser,
    machine,
    machine_line,
    missing,
    settings_line,
    torch_threads,
    write_json,
)
from _segmenters import object_classes  # noqa: E402

QUICK = {"folds": [0], "episodes": 6, "seeds": 1, "epochs": 1, "train_episodes": 8,
         "size": 96, "shots": [1, 5], "refine": "crf"}
FULL = {"folds": [0, 1, 2, 3], "episodes": 1000, "seeds": 5, "epochs": 10,
        "train_episodes": 1000, "size": 320, "shots": [1, 5], "refine": "crf"}


def evaluate(segmenter, photos: ClassPhotos, classes, shots: int, args, *, cgm: bool = True,
             refine=None) -> dict:
    """Scores over ``args.seeds`` seeded sets of test episodes."""
    mious, fbs, seconds = [], [], []
    for seed in range(args.seeds):
        episodes = sample_episodes(photos, classes, shots=shots, count=args.episodes,
                                   seed=seed)
        start = time.perf_counter()
        scores = segmenter.evaluate(photos, episodes, cgm=cgm, refine=refine, seed=seed)
        seconds.append((time.perf_counter() - start) / len(episodes))
        mious.append(scores.miou())
        fbs.append(scores.fb_iou())
    return {"miou": float(np.mean(mious)), "fb_iou": float(np.mean(fbs)),
            "miou_per_seed": mious, "s_per_episode": float(np.mean(seconds))}


def benchmark_fold(fold: int, train: ClassPhotos, test: ClassPhotos, encoded, args):
    classes = sorted(train.classes)
    train_classes, test_classes = fold_classes(classes, fold)
    common = {"encoder": args.encoder, "size": args.size, "channels": args.channels,
              "epochs": args.epochs, "episodes": args.train_episodes, "seed": args.seed}
    models, train_seconds = {}, {}
    for name, sgm in (("baseline", False), ("SGM", True)):
        segmenter = SCLSegmenter(**common, sgm=sgm)
        start = time.perf_counter()
        segmenter.fit(train, train_classes, progress=False, encoded=encoded)
        train_seconds[name] = time.perf_counter() - start
        models[name] = segmenter
    prototype = PrototypeSegmenter(encoder=args.encoder, size=args.size)
    rows: Dict[str, dict] = {}
    for shots in args.shots:
        key = f"{shots}-shot"
        rows[f"prototype {key}"] = evaluate(prototype, test, test_classes, shots, args)
        rows[f"baseline {key}"] = evaluate(models["baseline"], test, test_classes, shots, args,
                                           cgm=False)
        rows[f"SGM {key}"] = evaluate(models["SGM"], test, test_classes, shots, args,
                                      cgm=False)
        best = f"SGM {key}"
        if shots > 1:
            rows[f"SGM + CGM {key}"] = evaluate(models["SGM"], test, test_classes, shots, args)
            best = f"SGM + CGM {key}"
        if args.refine:
            rows[f"{best} + refine ({args.refine})"] = evaluate(
                models["SGM"], test, test_classes, shots, args, cgm=shots > 1,
                refine=args.refine)
        for row in [r for r in rows if key in r]:
            print(f"  fold {fold} {row}: mIoU {100 * rows[row]['miou']:.1f}, FB-IoU "
                  f"{100 * rows[row]['fb_iou']:.1f}", flush=True)
    return {"train_classes": train_classes, "test_classes": test_classes, "rows": rows,
            "train_seconds": train_seconds}, models["SGM"]


def eiffel_row(model, args) -> Dict[str, dict]:
    """1-shot episodes of FSS-1000's Eiffel class (5 photos: every support-query pair)."""
    root = kit_root() / "fss1000_eiffel"
    if missing(root, "FSS-1000 Eiffel"):
        return {}
    photos = ClassPhotos.from_class_folders(root)
    pairs = [(s, q) for s in range(len(photos)) for q in range(len(photos)) if s != q]
    episodes = [Episode(1, (s,), q) for s, q in pairs]
    out = {}
    for name, segmenter in (("prototype", PrototypeSegmenter(encoder=args.encoder,
                                                             size=args.size)),
                            (f"SGM (fold {args.folds[0]} model)", model)):
        if segmenter is None:
            continue
        start = time.perf_counter()
        scores = segmenter.evaluate(photos, episodes)
        out[name] = {"miou": scores.miou(), "fb_iou": scores.fb_iou(),
                     "s_per_episode": (time.perf_counter() - start) / len(episodes),
                     "episodes": len(episodes)}
    return out


def print_table(results: dict) -> None:
    folds = results["folds"]
    rows = list(next(iter(folds.values()))["rows"])
    header = " | ".join(f"fold {f}" for f in folds)
    print(f"\n| row | {header} | mean | FB-IoU (mean) | s / episode |")
    print("|---|" + "---|" * (len(folds) + 3))
    for row in rows:
        values = [folds[f]["rows"][row]["miou"] for f in folds]
        fb = np.mean([folds[f]["rows"][row]["fb_iou"] for f in folds])
        secs = np.mean([folds[f]["rows"][row]["s_per_episode"] for f in folds])
        print(f"| {row} | " + " | ".join(f"{100 * v:.1f}" for v in values)
              + f" | {100 * np.mean(values):.1f} | {100 * fb:.1f} | {secs:.3f} |")
    if results.get("eiffel"):
        print("\nFSS-1000 Eiffel, 1-shot (all 20 support-query pairs)\n")
        print("| model | IoU | FB-IoU | s / episode |")
        print("|---|---|---|---|")
        for name, r in results["eiffel"].items():
            print(f"| {name} | {100 * r['miou']:.1f} | {100 * r['fb_iou']:.1f} | "
                  f"{r['s_per_episode']:.3f} |")


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, quick="fold 0, 6 episodes, 1 seed, 1 epoch of 8 "
                                             "episodes at 96 px (under 2 minutes)", threads=2)
    parser.add_argument("--data", default=str(kit_root() / "msrc_v2"), help="MSRC-v2 folder")
    parser.add_argument("--folds", nargs="+", type=int, choices=[0, 1, 2, 3])
    parser.add_argument("--shots", nargs="+", type=int)
    for flag in ("episodes", "seeds", "epochs", "train-episodes", "size"):
        parser.add_argument(f"--{flag}", type=int)
    parser.add_argument("--channels", type=int, default=64, help="SCL's width (default 64)")
    parser.add_argument("--encoder", default="espnetv2",
                        choices=["espnetv2", "efficientnet-lite0", "small-cnn"])
    parser.add_argument("--refine", choices=["walk", "a2gnn", "crf"],
                        help="the refinement row's method (default crf)")
    args = parser.parse_args(argv)
    apply_defaults(args, QUICK, FULL)
    root = Path(args.data)
    if missing(root):
        return 1
    info = machine(args.threads)
    print(machine_line(info))
    print(settings_line({k: v for k, v in vars(args).items() if k not in ("json",)}))
    _, lookup = object_classes(root)
    results: dict = {"folds": {}}
    with torch_threads(args.threads):
        train = ClassPhotos.from_dataset(MSRCDataset(root, "train"), lookup=lookup)
        test = ClassPhotos.from_dataset(MSRCDataset(root, "test"), lookup=lookup)
        print(f"MSRC-v2: {len(train)} train / {len(test)} test photos; photos per class "
              f"(train/test): " + ", ".join(
                  f"{train.class_names[c]} {len(train.classes[c])}/"
                  f"{len(test.classes.get(c, []))}" for c in sorted(train.classes)))
        start = time.perf_counter()
        encoded = SCLSegmenter(encoder=args.encoder, size=args.size,
                               channels=args.channels).encode_photos(train)
        print(f"  encoded the train photos once: {time.perf_counter() - start:.0f} s")
        model = None
        for fold in args.folds:
            results["folds"][fold], trained = benchmark_fold(fold, train, test, encoded, args)
            model = model or trained
        results["eiffel"] = eiffel_row(model, args)
    print_table(results)
    if args.json:
        write_json(args.json, {"machine": info, "settings": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
