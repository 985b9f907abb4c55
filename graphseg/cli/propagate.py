"""``graphseg propagate``: dense masks for a folder of photos from their weak annotations.

For every image: seeds from its boxes, scribbles, points or tags, a graph of the
photo, a freshly trained propagation model and a dense CRF
(:func:`graphseg.propagation.propagate`).  Writes

* ``OUT/STEM.png``: the class-index label map (VOC palette);
* ``OUT/instances/STEM.png`` (boxes): ``i + 1`` where a pixel belongs to the
  instance of the file's ``i``-th box, 0 elsewhere;
* ``OUT/probs/STEM.npz`` with ``--save-probs``: ``probs``, float16 ``(C, H, W)``;
* ``OUT/manifest.json``: arguments, versions, and every image's status, seconds and
  the settings that made its files.

Every argument is checked before the first image is worked on (folders, the output
folder, ``--cam`` / ``--affinity`` model files, ``--device``): a bad one is one line
naming it, exit status 2.  Photos larger than ``--max-side`` (default 1024) are worked
on shrunk, their maps written at full size (:func:`graphseg.propagation.propagate`'s
``max_side``).

Every file is written atomically and the manifest after every image, so an
interrupted run (Ctrl-C: one line, exit status 130; or killed) resumes where it
stopped: images whose label map exists are skipped unless ``--overwrite``, provided
the manifest says the same settings made them; otherwise the command stops, naming
the options that differ, before it computes or records anything.  The manifest holds
the settings of every image before it is worked on (``"pending"``), so a map written
by a run killed before it could record it is accounted for by the rerun; temporary
files a killed run left (``.NAME.*.tmp``) are never read as outputs, and a rerun
outside torchrun deletes them.  A failing image (unreadable, bad annotation, no seed)
is reported and skipped; the exit status is then 1.  Under ``torchrun``
process ``RANK`` takes every ``WORLD_SIZE``-th image starting at ``RANK`` and
writes ``manifest.rankRANK.json``; ``--workers N`` runs N processes on one machine.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from tqdm.auto import tqdm

from graphseg.cli.batch import (
    Interrupted,
    interrupted_exit,
    load_manifest,
    recorded_failures,
    score_folder,
    stamp,
)
from graphseg.cli.failures import (
    FILE_ERRORS,
    UsageError,
    check_folder,
    check_out_folder,
    reading,
)
from graphseg.cli.info import collect
from graphseg.cli.options import (
    add_propagation_arguments,
    add_training_arguments,
    propagation,
    training_config,
)
from graphseg.cli.seeds import load_model, train_classifier
from graphseg.data import read_boxes, read_classes, read_seeds, read_tags, write_label_png
from graphseg.data.dataset import find_file, stems
from graphseg.nn.models import load_classifier
from graphseg.propagation import FEATURES, StageBar, propagate
from graphseg.propagation.propagate import GRABCUT_PRIOR, MAX_SIDE, RADIUS
from graphseg.refine.crf import PRESETS
from graphseg.training import load_affinity_net
from graphseg.utils import distributed
from graphseg.utils.constants import IGNORE, SUPERVISIONS
from graphseg.utils.io import atomic_open, read_image, write_json, write_png

# per-process state of the workers (set once by _setup)
_STATE: Dict[str, object] = {}


def _annotation(options: dict, name: str, shape):
    kind, source = options["kind"], Path(options["source"])
    if kind == "boxes":
        return read_boxes(source, name, options["class_names"], shape)
    if kind == "tags":
        if name not in options["tags"]:
            raise FileNotFoundError(f"{source}: no tags for this image")
        return [t for t in options["tags"][name] if t != options["background"]]
    return read_seeds(find_file(source, name, (".png",)), options["num_classes"])


def _setup(options: dict, cam_model=None, affinity_model=None) -> None:
    """The process's state: ``options`` and the models (loaded from their paths unless
    given, as the main process's checked ones are)."""
    torch.set_num_threads(options["threads"])
    _STATE.clear()
    _STATE.update(options)
    if cam_model is None and options["cam"]:
        cam_model = load_classifier(options["cam"])
    if affinity_model is None and options["affinity"]:
        affinity_model = load_affinity_net(options["affinity"])
    _STATE["cam_model"] = cam_model
    _STATE["affinity_model"] = None if affinity_model is None \
        else affinity_model.to(options["device"])


def _one(name: str) -> dict:
    """Propagate one image with the process's options; a record for the manifest."""
    o, out = _STATE, Path(_STATE["out"])
    try:
        image = read_image(find_file(Path(o["images"]), name))
        result = propagate(image, _annotation(o, name, image.shape[:2]), o["kind"],
                           o["num_classes"], propagator=o["propagator"], config=o["config"],
                           cam=o["cam_model"], features=o["features"],
                           affinity=o["affinity_model"], stride=o["stride"],
                           radius=o["radius"], fusion=o["fusion"], crf=o["crf"],
                           grabcut_prior=o["grabcut_prior"],
                           background=o["background"], seed=o["seed"], device=o["device"],
                           progress=o.get("progress"), max_side=o["max_side"])
        if result.instances is not None:
            write_png(out / "instances" / f"{name}.png", result.instances)
        if o["save_probs"]:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, probs=result.probs.astype(np.float16))
            with atomic_open(out / "probs" / f"{name}.npz") as file:
                file.write(buffer.getvalue())
        write_label_png(out / f"{name}.png", result.labels)  # last: marks the image done
        return {"status": "ok", "seconds": {k: round(v, 3) for k, v in result.seconds.items()}}
    except FILE_ERRORS as error:
        return {"status": "failed", "error": str(error)}


def _num_classes(args, options: dict, names: List[str]) -> int:
    """``--num-classes``, the classes file, the CAM's classes, or the largest annotated
    id + 1."""
    if args.num_classes:
        return args.num_classes
    if options["class_names"]:
        return len(options["class_names"])
    if options["cam_model"] is not None:
        return max(max(options["cam_model"].classes), args.background) + 1
    largest = args.background
    for name in names:
        try:
            if options["kind"] == "boxes":
                boxes = read_boxes(Path(options["source"]), name, None, None)
                largest = max([largest, *boxes[:, 0].tolist()])
            else:
                labels = read_seeds(find_file(Path(options["source"]), name, (".png",)))
                largest = max([largest, *np.unique(labels[labels != IGNORE]).tolist()])
        except FILE_ERRORS:
            continue  # reported when the image itself is processed
    return max(largest + 1, 2)


def run(args: argparse.Namespace) -> int:
    # pre-flight: every argument is checked before the first image is worked on
    images_dir = check_folder("--images", args.images)
    out = check_out_folder("--out", args.out)
    kind = next(k for k in SUPERVISIONS if getattr(args, k))
    source = Path(getattr(args, kind))
    if kind != "tags":  # a tags file or folder is checked by reading it
        check_folder(f"--{kind}", source)
    if args.gt:
        check_folder("--gt", args.gt)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA device")
    for flag, value, least in (("--max-side", args.max_side, 16), ("--stride", args.stride, 1),
                               ("--workers", args.workers, 1)):
        if value < least and not (flag == "--max-side" and value == 0):
            raise UsageError(f"{flag} {value}: expected at least {least}"
                             + (" (or 0, full size)" if flag == "--max-side" else ""))
    if not 0.0 < args.grabcut_prior < 1.0:
        raise UsageError(f"--grabcut-prior {args.grabcut_prior}: expected a value in (0, 1)")
    cam_model = load_model("--cam", args.cam, "cam") if args.cam else None
    affinity_model = load_model("--affinity", args.affinity, "affinity") \
        if args.affinity else None
    if affinity_model is not None and affinity_model.stride != args.stride:
        raise UsageError(f"--affinity {args.affinity}: the network's stride is "
                         f"{affinity_model.stride}, --stride is {args.stride}")
    try:
        rank, world, local = distributed.rank(), distributed.world_size(), \
            distributed.local_rank()
    except ValueError as error:
        raise UsageError(str(error)) from error
    device = f"cuda:{local}" if args.device == "cuda" and world > 1 else args.device
    torch.set_num_threads(args.threads)
    names = stems(images_dir)
    if not names:
        raise UsageError(f"--images {images_dir}: no images")
    with reading("--classes"):
        class_names = read_classes(args.classes) if args.classes else None
    tags, cam = None, args.cam
    if kind == "tags":
        with reading("--tags"):
            tags = read_tags(source, names, class_names)
        if not cam:
            if world > 1:
                raise UsageError("under torchrun, train the CAM classifier first (graphseg "
                                 "seeds --tags ... writes OUT/cam.pt) and pass --cam")
            if (out / "cam.pt").is_file():  # an earlier run's, which train_classifier reuses
                load_model("--out", out / "cam.pt", "cam")
            cam_model = train_classifier(images_dir, names, tags, out,
                                         background=args.background, seed=args.seed)
            cam = str(out / "cam.pt")
    propagator, layer = propagation(args)
    config = training_config(kind, layer=layer, hidden=args.hidden, epochs=args.epochs,
                             lr=args.lr)
    options = {"images": str(images_dir), "source": str(source), "kind": kind,
               "class_names": class_names, "tags": tags, "cam": cam,
               "propagator": propagator, "config": config,
               "features": args.features, "affinity": args.affinity,
               "stride": args.stride, "radius": args.radius, "fusion": args.fusion,
               "grabcut_prior": args.grabcut_prior,
               "crf": None if args.crf == "none" else args.crf, "background": args.background,
               "seed": args.seed, "device": device, "out": str(out),
               "save_probs": args.save_probs, "threads": args.threads,
               "max_side": args.max_side or None}
    _setup(options, cam_model, affinity_model)
    options["num_classes"] = _STATE["num_classes"] = _num_classes(args, _STATE, names)

    mine = names[rank::world]
    manifest_path = out / ("manifest.json" if world == 1 else f"manifest.rank{rank}.json")
    manifest = load_manifest(manifest_path)
    manifest.update(command=["graphseg", *sys.argv[1:]], rank=rank, world_size=world,
                    options={k: v for k, v in options.items() if k not in ("tags", "class_names")}
                    | {"config": asdict(options["config"])},
                    stack=collect()["versions"], started=time.strftime("%Y-%m-%dT%H:%M:%S"))
    images = manifest.setdefault("images", {})
    settings = {name: _settings(options, name) for name in mine}
    _recover(out, images, manifest.get("since"), args.save_probs)
    todo = [n for n in mine if args.overwrite or not _done(out, n, args.save_probs)]
    if not args.overwrite:  # resuming: what is there must be what these settings make
        _check_resume(out, manifest_path, images, {n: settings[n] for n in mine
                                                   if n not in todo}, kind)
    out.mkdir(parents=True, exist_ok=True)
    if world == 1:  # under torchrun another rank may be writing one right now
        _remove_leftovers(out, manifest.get("since"))
    # before an image is worked on, the settings it is made with: a run killed between
    # writing its label map and recording it leaves a map the rerun can still account for
    for name in todo:
        images.setdefault(name, {"status": "pending"})["pending"] = settings[name]
    manifest["since"] = time.time()
    write_json(manifest_path, manifest)
    print(f"{len(mine)} images for this process ({world} in all), {len(mine) - len(todo)} "
          f"already done; kind {kind}, propagator {propagator}, layer {layer}, "
          f"{options['num_classes']} classes, "
          f"device {device}")

    def record(name: str, result: dict) -> None:
        if result["status"] == "ok":
            result["settings"] = settings[name]  # what made its files
        elif "settings" in images.get(name, {}) and (out / f"{name}.png").is_file():
            result["settings"] = images[name]["settings"]  # --overwrite failed: the old files
        images[name] = result  # no "pending" left: recorded
        write_json(manifest_path, manifest)

    started, interrupted = time.time(), Interrupted()
    with interrupted, tqdm(total=len(todo), desc="propagate", unit="image",
                           disable=rank > 0) as bar:
        if args.workers > 1 and len(todo) > 1:
            worker_options = dict(options, threads=1)
            with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"),
                                     initializer=_setup_worker,
                                     initargs=(worker_options,)) as pool:
                try:
                    # the workers start (and inherit this) with Ctrl-C blocked: it is the
                    # main process's to handle, even while a worker still imports torch;
                    # one sent meanwhile is raised here when they have started
                    with _ctrl_c_held():
                        results = pool.map(_one, todo)
                    for name, result in zip(todo, results):
                        record(name, result)
                        bar.update()
                except KeyboardInterrupt:
                    _stop(pool)
                    raise
        else:
            # one process: a second bar shows the stages of the photo that runs
            _STATE["progress"] = stages = StageBar(position=1) if rank == 0 else None
            for name in todo:
                if stages is not None:
                    stages.describe(name)
                record(name, _one(name))
                bar.update()
            if stages is not None:
                stages.close()
    if interrupted.caught:
        # an image whose label map this run wrote but did not record (a worker's, or
        # one interrupted between the two writes) was made by these settings
        for name in todo:
            label = out / f"{name}.png"
            if images.get(name, {}).get("settings") != settings[name] and label.is_file() \
                    and label.stat().st_mtime >= started:
                images[name] = {"status": "ok", "settings": settings[name]}
        stamp(manifest, manifest_path, "interrupted")
        return interrupted_exit(sum(_done(out, n, args.save_probs)
                                    and images.get(n, {}).get("settings") == settings[n]
                                    for n in mine), len(mine), out)
    stamp(manifest, manifest_path, "finished")

    failures = recorded_failures(images, mine)
    done = sum(images.get(n, {}).get("status") == "ok" for n in mine)
    written = sum(images.get(n, {}).get("status") == "ok" for n in todo)
    print(f"wrote {written} label maps to {out}, {done - written} there already "
          f"(manifest: {manifest_path})")
    confusion = score_folder(mine, out, Path(args.gt), options["num_classes"]) if args.gt else None
    if confusion is not None and confusion.pixels:
        print(f"mIoU {100 * confusion.miou():.2f} over {done} images "
              f"(per class: {', '.join(f'{100 * v:.1f}' for v in confusion.iou())})")
    return failures.report(len(mine))


# what decides an image's files (recorded with it, compared when a rerun resumes), and the
# option that sets each; --device, --threads, --workers, --save-probs and --gt do not
_SETTINGS = {"images": "--images", "kind": "the kind of annotation", "source": None,
             "class_names": "--classes", "tags": "--tags", "cam": "--cam",
             "num_classes": "--num-classes", "background": "--background",
             "propagator": "--propagator", "features": "--features", "affinity": "--affinity",
             "stride": "--stride", "radius": "--radius", "fusion": "--fusion", "crf": "--crf",
             "grabcut_prior": "--grabcut-prior",
             "max_side": "--max-side", "seed": "--seed", "config": None}
_CONFIG_FLAGS = {"layer": "--layer", "hidden_channels": "--hidden", "stage1_epochs": "--epochs",
                 "stage2_epochs": "--epochs", "lr": "--lr"}


def _settings(options: dict, name: str) -> dict:
    """The settings that make image ``name``'s files, as the manifest stores them."""
    def path(value):
        return None if value is None else str(Path(value).resolve())

    settings = {key: options.get(key) for key in _SETTINGS}
    settings.update(images=path(options["images"]), source=path(options["source"]),
                    cam=path(options["cam"]), affinity=path(options["affinity"]),
                    radius=options["radius"] or RADIUS[options["kind"]],
                    config=asdict(options["config"]),
                    tags=None if options["tags"] is None else options["tags"].get(name))
    return json.loads(json.dumps(settings))  # as read back: tuples are lists


def _recover(out: Path, images: dict, since, save_probs: bool) -> None:
    """Record the images an earlier run finished but was killed (``kill -9``, power
    loss) before recording: their label map is newer than that run's start
    (``since``) and the manifest holds the settings they were being made with
    (``"pending"``).  A ``pending`` whose map is older (or absent) is dropped: that run
    did not finish the image, and whatever map is there was made before it."""
    for name, record in list(images.items()):
        pending = record.pop("pending", None)
        if pending is not None and since is not None and _done(out, name, save_probs) \
                and (out / f"{name}.png").stat().st_mtime >= since:
            images[name] = {"status": "ok", "settings": pending, "recovered": True}
        elif record.get("status") == "pending":  # never finished: as if never started
            del images[name]


def _remove_leftovers(out: Path, since) -> None:
    """Delete the temporary files (``.NAME.*.tmp``, :func:`~graphseg.utils.io.atomic_open`)
    that a killed run left in ``out``.  They are never read as outputs (no command
    lists dot files or ``.tmp`` suffixes), so this only frees the space; one newer than
    the last run's start could be another process's live write and is left alone."""
    for folder in (out, out / "instances", out / "probs"):
        if not folder.is_dir():
            continue
        for path in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if since is not None and path.stat().st_mtime < since:
                    path.unlink()


def _done(out: Path, name: str, save_probs: bool) -> bool:
    """Whether the files of ``name`` are there (the label map is written last)."""
    return (out / f"{name}.png").is_file() and \
        (not save_probs or (out / "probs" / f"{name}.npz").is_file())


def _check_resume(out: Path, manifest_path: Path, images: dict, settings: dict,
                  kind: str) -> None:
    """A :class:`UsageError` unless every image about to be skipped was made by
    ``settings`` (name -> settings), as the manifest records."""
    unknown = [name for name in settings if "settings" not in images.get(name, {})]
    if unknown:
        raise UsageError(
            f"--out {out}: {len(unknown)} label maps ({', '.join(unknown[:3])}"
            f"{', ...' if len(unknown) > 3 else ''}) have no settings in {manifest_path}, so "
            "resuming cannot tell what made them; rerun with --overwrite to recompute them, "
            "or choose another --out")
    changes, count = {}, 0
    for name, now in settings.items():
        before = images[name]["settings"]
        if before == now:
            continue
        count += 1
        for key in _SETTINGS:
            if key == "config":
                for field in sorted(set(before.get(key) or {}) | set(now[key])):
                    old, new = (before.get(key) or {}).get(field), now[key].get(field)
                    if old != new:
                        flag = _CONFIG_FLAGS.get(field, f"the A2GNN setting {field}")
                        changes.setdefault(f"{flag} ({field})" if flag == "--epochs"
                                           else flag, (old, new))
            elif before.get(key) != now[key]:
                changes.setdefault(_SETTINGS[key] or f"--{kind}", (before.get(key), now[key]))
    if changes:
        def shown(value):
            return "none" if value is None else ",".join(map(str, value)) \
                if isinstance(value, list) else str(value)

        listed = "; ".join(f"{flag} {shown(old)} then, {shown(new)} now"
                           for flag, (old, new) in changes.items())
        raise UsageError(
            f"--out {out}: {count} label maps there were made with other settings ({listed}); "
            "rerun with --overwrite to recompute them, or choose another --out")


@contextlib.contextmanager
def _ctrl_c_held():
    """A Ctrl-C inside the block is only noted, and raised as KeyboardInterrupt when
    the block ends; processes started inside it begin with SIGINT blocked.

    The mask is per thread: another thread (tqdm's monitor) may still take the
    signal, and Python then runs the handler in this thread at any point, also
    inside the pool's internals, where a KeyboardInterrupt could be swallowed; so
    the handler only notes it.  Where signal masks do not exist (Windows), SIGINT
    is noted the same way.
    """
    caught = []
    handler = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    masked = hasattr(signal, "pthread_sigmask")
    if masked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if masked:  # a pending SIGINT is delivered now, to the noting handler
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, handler)
    if caught:
        raise KeyboardInterrupt


def _setup_worker(options: dict) -> None:
    """:func:`_setup` in a worker, which leaves Ctrl-C to the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _setup(options)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop a pool at once: nothing more starts, and running images are abandoned
    (their files are written atomically, so none is left half-written)."""
    # the processes first: shutdown() forgets them
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=10)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of images")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--boxes", metavar="DIR",
                      help="STEM.json boxes (or STEM.xml with --classes, or GrabCut STEM.txt)")
    kind.add_argument("--scribbles", metavar="DIR", help="STEM.png scribbles, 255 = none")
    kind.add_argument("--points", metavar="DIR", help="STEM.png points, 255 = none")
    kind.add_argument("--tags", metavar="FILE", help="tags JSON mapping, or folder of STEM.json")
    parser.add_argument("--out", required=True, metavar="DIR")
    add_propagation_arguments(parser)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes on this machine, one torch thread each (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--cam", metavar="CHECKPOINT",
                        help="CAM classifier: --tags (default: train one, OUT/cam.pt); with "
                             "--points it limits the classes to the pointed ones")
    parser.add_argument("--fusion", type=float, default=0.0, metavar="R",
                        help="tags/points with a CAM: fuse the GNN with the CAM's random walk "
                             "1:R (the thesis' R = 3; default 0, off)")
    parser.add_argument("--classes", metavar="FILE", help="class names, one per line")
    parser.add_argument("--num-classes", type=int, metavar="K",
                        help="classes incl. background (default: --classes, the CAM's, or "
                             "the largest annotated id + 1)")
    parser.add_argument("--background", type=int, default=0,
                        help="background class id (default 0)")
    parser.add_argument("--grabcut-prior", type=float, default=GRABCUT_PRIOR, metavar="P",
                        help="boxes: pool the GNN's probabilities with GrabCut's answer in "
                             "each box, odds x P / (1 - P) where it says object (default "
                             f"{GRABCUT_PRIOR}; 0.5 = off)")
    parser.add_argument("--crf", choices=[*PRESETS, "none"], default="final",
                        help="dense CRF preset after propagation (default final)")
    parser.add_argument("--features", choices=FEATURES, default="espnetv2",
                        help="node features: the bundled pretrained ESPNetv2 encoder, or "
                             "colour and position (default espnetv2)")
    parser.add_argument("--affinity", metavar="CHECKPOINT",
                        help="trained affinity network (graphseg train-affinity): its levels "
                             "are the node features and its affinities the edges")
    parser.add_argument("--stride", type=int, default=8, help="pixels per node (default 8)")
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, metavar="PX",
                        help="working resolution: a photo whose longer side is above PX is "
                             "shrunk to it for the seeds, graph, GNN and CRF, and its maps "
                             f"are written at full size; 0 = full size (default {MAX_SIDE}: "
                             "a 4000 x 3000 photo's graph needs gigabytes at full size)")
    parser.add_argument("--radius", type=int,
                        help="window radius in nodes (default 4 boxes/scribbles, 3 points/tags)")
    add_training_arguments(parser)
    parser.add_argument("--lr", type=float, help="learning rate (default 0.035 boxes, else 0.03)")
    parser.add_argument("--save-probs", action="store_true",
                        help="also write OUT/probs/STEM.npz (float16 probabilities)")
    parser.add_argument("--gt", metavar="DIR",
                        help="STEM.png ground truth (or a GrabCut/MSRC/VOC root): print mIoU")
    parser.add_argument("--overwrite", action="store_true",
                        help="recompute images whose label map exists")
