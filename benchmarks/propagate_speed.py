"""graphseg propagate against OpenCV GrabCut: seconds per photo, under load, quality (issue #17).

Everything is timed side by side in one run, so the ratios hold on any machine; the
machine line says which.  Sections (``--sections``, all by default):

* ``photos``: the ``graphseg propagate`` command with its defaults on the GrabCut-13
  photos from their boxes (one process); the per-stage seconds of every photo from
  the command's manifest, next to ``cv2.grabCut`` (5 iterations, the whole photo,
  the same box; :func:`graphseg.seeds.opencv_grabcut`) timed in this process on the
  same photo; their ratio; the object IoU of both against the ground truth.  The
  command's start (imports, loading the encoder) is reported once, apart.
* ``gnn``: the GNN stage alone (:func:`graphseg.propagation.train_a2gnn` at the
  command's box settings) on a 64 x 64-node graph, radius 4: a GrabCut photo resized
  to 512 x 512 at stride 8, its box seeds and ESPNetv2 features.
* ``load``: the command on ``--load-photos`` (3) photos alone, then two copies started
  together on the same cores (each into its own folder): wall seconds and the
  slowdown of each; with ``--threads-sweep`` also at 2 torch threads per process,
  the setting that collapses under load.
* ``workers``: the command with ``--workers 1`` and ``--workers 2`` on all the
  photos: throughput (photos per second, the processes' start included) and their
  ratio.
* ``batch``: :func:`graphseg.propagation.train_a2gnn_batch` of ``--batch`` photos'
  graphs at once against the same photos one by one: seconds and ratio.
* ``demo``: ``graphseg demo`` end to end (a fresh process), wall seconds and its
  mean row.

The settings are the command's defaults; they were chosen on the data kit's
GrabCut-13 and MSRC-v2 val photos (there is no separate test set of box photos), so
the quality rows are not held-out numbers.  ``--quick`` runs every section on two
photos with 5 + 5 epochs (about two minutes), for the tests.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    benchmark_parser,
    machine,
    machine_line,
    missing,
    settings_line,
    torch_threads,
    write_json,
)

from graphseg.data import GrabCutDataset, kit_root  # noqa: E402
from graphseg.graph import GridAdjacency, image_to_graph, label_map_to_nodes  # noqa: E402
from graphseg.losses import boxes_to_grid  # noqa: E402
from graphseg.metrics import object_iou  # noqa: E402
from graphseg.propagation import (  # noqa: E402
    A2GNNConfig,
    PhotoGraph,
    colour_position_features,
    node_features,
    train_a2gnn_batch,
)
from graphseg.seeds import box_seeds, opencv_grabcut  # noqa: E402
from graphseg.utils.io import read_label_map  # noqa: E402

SECTIONS = ("photos", "gnn", "load", "workers", "batch", "demo")
STAGES = ("seeds", "features", "propagation", "postprocess", "total")


def _epochs(epochs) -> dict:
    """``A2GNNConfig.default``'s overrides for ``--quick``'s epochs (None: the default)."""
    return {} if epochs is None else {"stage1_epochs": epochs[0], "stage2_epochs": epochs[1]}


def _command(name: str, *args: str) -> list:
    return [sys.executable, "-m", "graphseg", name, *args]


def _folder(root: Path, names, work: Path) -> Path:
    """A folder with ``images/`` and ``boxes/`` of the named GrabCut photos."""
    for sub, suffix in (("images", ".jpg"), ("boxes", ".txt")):
        (work / sub).mkdir(parents=True, exist_ok=True)
        for name in names:
            target = work / sub / f"{name}{suffix}"
            if not target.exists():
                target.symlink_to((root / sub / f"{name}{suffix}").resolve())
    return work


def _propagate(folder: Path, out: Path, extra) -> subprocess.Popen:
    return subprocess.Popen(_command("propagate", "--images", str(folder / "images"),
                                     "--boxes", str(folder / "boxes"), "--out", str(out),
                                     "--overwrite", *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(process: subprocess.Popen, started: float) -> float:
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(process.args)} failed ({process.returncode}):\n"
                           f"{stdout}\n{stderr}")
    return time.perf_counter() - started


def run_propagate(folder: Path, out: Path, extra=(), copies: int = 1) -> list:
    """Wall seconds of ``copies`` commands started together (each its own folder)."""
    started = time.perf_counter()
    processes = [_propagate(folder, out / str(i), extra) for i in range(copies)]
    return [_wait(p, started) for p in processes]


def photos_section(dataset, names, work: Path, extra) -> dict:
    out = work / "photos_out"
    wall = run_propagate(_folder(dataset.root, names, work / "photos"), out, extra)[0]
    manifest = json.loads((out / "0" / "manifest.json").read_text())["images"]
    rows = {}
    for name in names:
        sample = dataset.load(name)
        start = time.perf_counter()
        mask = opencv_grabcut(sample.image, sample.boxes, seed=0)
        grabcut_seconds = time.perf_counter() - start
        seconds = manifest[name]["seconds"]
        ours = read_label_map(out / "0" / f"{name}.png")
        rows[name] = {**{k: seconds[k] for k in STAGES}, "grabcut": grabcut_seconds,
                      "ratio": seconds["total"] / grabcut_seconds,
                      "iou": object_iou(ours, sample.label),
                      "grabcut_iou": object_iou(mask, sample.label)}
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in next(iter(rows.values()))}
    mean["ratio"] = mean["total"] / mean["grabcut"]
    start = wall - sum(r["total"] for r in rows.values())
    return {"photos": rows, "mean": mean, "command_wall": wall, "command_start": start}


def photo_graph(image: np.ndarray, boxes: np.ndarray):
    """The box problem ``propagate`` trains on: stride-8 ESPNetv2 nodes, radius-4
    colour edges, box seeds, node-grid boxes (a ``PhotoGraph``)."""
    h, w = image.shape[:2]
    colour = colour_position_features(image, 8)[:3]
    data = image_to_graph(node_features(image, "espnetv2", 8), radius=4,
                          edge_features=colour * 10)
    labels = label_map_to_nodes(box_seeds(image, boxes).labels, data.grid_size)
    return PhotoGraph(data.x, GridAdjacency.from_data(data), labels, data.grid_size, colour,
                      boxes_to_grid(boxes, (h, w), data.grid_size))


def gnn_section(dataset, name: str, epochs) -> dict:
    sample = dataset.load(name)
    h, w = sample.image.shape[:2]
    image = cv2.resize(sample.image, (512, 512), interpolation=cv2.INTER_AREA)
    boxes = sample.boxes.astype(np.float64)
    boxes[:, [1, 3]] *= 512 / w
    boxes[:, [2, 4]] *= 512 / h
    photo = photo_graph(image, np.round(boxes).astype(np.int64))
    config = A2GNNConfig.default("boxes", **_epochs(epochs))
    start = time.perf_counter()
    train_a2gnn_batch([photo], 2, config=config)
    seconds = time.perf_counter() - start
    return {"grid": list(photo.grid_size), "edges": photo.graph.to_csr().num_edges,
            "epochs": config.stage1_epochs + config.stage2_epochs,
            "hidden": config.hidden_channels, "seconds": seconds}


def load_section(dataset, names, work: Path, extra, thread_counts) -> dict:
    folder = _folder(dataset.root, names, work / "load")
    rows = {}
    for threads in thread_counts:
        flags = [*extra, "--threads", str(threads)]
        alone = run_propagate(folder, work / f"load_alone_{threads}", flags)[0]
        pair = run_propagate(folder, work / f"load_pair_{threads}", flags, copies=2)
        rows[str(threads)] = {"alone": alone, "pair": pair,
                              "slowdown": max(pair) / alone}
    return rows


def workers_section(dataset, names, work: Path, extra) -> dict:
    folder = _folder(dataset.root, names, work / "workers")
    rows = {}
    for workers in (1, 2):
        wall = run_propagate(folder, work / f"workers_{workers}",
                             [*extra, "--workers", str(workers)])[0]
        rows[str(workers)] = {"seconds": wall, "photos_per_s": len(names) / wall}
    rows["ratio"] = rows["2"]["photos_per_s"] / rows["1"]["photos_per_s"]
    return rows


def batch_section(dataset, names, epochs) -> dict:
    photos = [photo_graph(sample.image, sample.boxes)
              for sample in (dataset.load(name) for name in names)]
    config = A2GNNConfig.default("boxes", **_epochs(epochs))
    start = time.perf_counter()
    for photo in photos:
        train_a2gnn_batch([photo], 2, config=config)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    train_a2gnn_batch(photos, 2, config=config)
    together = time.perf_counter() - start
    return {"photos": len(photos), "one_by_one": alone, "batched": together,
            "ratio": alone / together}


def demo_section(work: Path, quick: bool) -> dict:
    args = ["--out", str(work / "demo")] + (["--limit", "1", "--epochs", "5", "5"]
                                            if quick else [])
    start = time.perf_counter()
    done = subprocess.run(_command("demo", *args), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"graphseg demo failed:\n{done.stdout}\n{done.stderr}")
    mean = next((line for line in done.stdout.splitlines() if line.startswith("mean")), "")
    return {"seconds": wall, "mean": mean.split()[1:]}


def print_report(results: dict) -> None:
    if "photos" in results:
        r = results["photos"]
        print("\n| photo | seeds | features | GNN | CRF | total | cv2.grabCut | ratio | "
              "IoU ours | IoU GrabCut |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, row in [*r["photos"].items(), ("mean", r["mean"])]:
            print(f"| {name} | {row['seeds']:.2f} | {row['features']:.2f} | "
                  f"{row['propagation']:.2f} | {row['postprocess']:.2f} | {row['total']:.2f} | "
                  f"{row['grabcut']:.2f} | {row['ratio']:.1f}x | {row['iou']:.3f} | "
                  f"{row['grabcut_iou']:.3f} |")
        print(f"(seconds; the command's start, once per run: {r['command_start']:.1f} s; "
              "target: total at most 3x cv2.grabCut, IoU at least 0.88 and above GrabCut's)")
    if "gnn" in results:
        r = results["gnn"]
        print(f"\nGNN stage, {r['grid'][0]} x {r['grid'][1]} nodes, radius 4, {r['edges']} "
              f"edges, {r['epochs']} epochs, hidden {r['hidden']}: {r['seconds']:.2f} s "
              "(target at most 5 s)")
    if "load" in results:
        print("\n| torch threads per process | one alone (s) | two together (s) | slowdown |")
        print("|---|---|---|---|")
        for threads, row in results["load"].items():
            pair = " / ".join(f"{s:.1f}" for s in row["pair"])
            print(f"| {threads} | {row['alone']:.1f} | {pair} | {row['slowdown']:.2f}x |")
        print("(target: each of the two within 2.5x of one alone)")
    if "workers" in results:
        r = results["workers"]
        print(f"\n--workers 1: {r['1']['seconds']:.1f} s, --workers 2: {r['2']['seconds']:.1f} s; "
              f"throughput ratio {r['ratio']:.2f}x (target at least 1.6x)")
    if "batch" in results:
        r = results["batch"]
        print(f"\ntrain_a2gnn_batch of {r['photos']} photos: {r['batched']:.2f} s, one by one "
              f"{r['one_by_one']:.2f} s, ratio {r['ratio']:.2f}x")
    if "demo" in results:
        r = results["demo"]
        print(f"\ngraphseg demo: {r['seconds']:.1f} s end to end (target under 60 s); mean "
              f"boxes / GrabCut / scribbles {' / '.join(r['mean'])}")


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, quick="two photos, 5 + 5 epochs (about two minutes)",
                              seed=False, threads=None,
                              threads_help="torch threads of this process's sections "
                                           "(gnn, batch; default: the command's, 1)")
    parser.add_argument("--data", default=str(kit_root() / "grabcut"), help="GrabCut-13 folder")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--load-photos", type=int, default=None,
                        help="photos per command in the load section (default 3)")
    parser.add_argument("--batch", type=int, default=4, help="photos in the batch section")
    parser.add_argument("--threads-sweep", action="store_true",
                        help="load: also 2 torch threads per process (minutes: it collapses)")
    parser.add_argument("--workdir", help="where outputs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    if missing(args.data):
        return 2
    dataset = GrabCutDataset(args.data)
    names = dataset.names[:2] if args.quick else dataset.names
    epochs = (5, 5) if args.quick else None
    extra = ["--epochs", "5", "5"] if args.quick else []
    load_names = names[: args.load_photos or (1 if args.quick else 3)]
    threads = args.threads or 1
    info = machine(threads)
    print(machine_line(info))
    print(settings_line({"sections": " ".join(args.sections), "photos": len(names),
                         "quick": args.quick, "threads": threads}))
    results = {}
    with tempfile.TemporaryDirectory() as tmp, torch_threads(threads):
        work = Path(args.workdir or tmp)
        for section in args.sections:
            print(f"running {section} ...", file=sys.stderr, flush=True)
            if section == "photos":
                results[section] = photos_section(dataset, names, work, extra)
            elif section == "gnn":
                results[section] = gnn_section(dataset, "llama", epochs)
            elif section == "load":
                results[section] = load_section(dataset, load_names, work, extra,
                                                [1, 2] if args.threads_sweep else [1])
            elif section == "workers":
                results[section] = workers_section(dataset, names, work, extra)
            elif section == "batch":
                results[section] = batch_section(dataset, names[: args.batch], epochs)
            else:
                results[section] = demo_section(work, args.quick)
    print_report(results)
    if args.json:
        write_json(args.json, {"machine": info, "settings": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
