"""The propagation step swapped on the same graphs and seeds (issue #6, image part).

Pseudo-label quality of graphseg's per-image propagation (thesis chapter 3) when one
piece is changed and everything else is kept: the same seeds, node features, window,
schedule, dense CRF and scoring.  Sections (``--sections``, all by default):

* ``layers`` (thesis Fig. 3.7): the propagation layer swapped in the same model
  (:class:`graphseg.nn.models.A2GNN` with ``layer=``): PyG's ``GCNConv`` (with the
  edge weights), ``GATConv`` (1 head) and ``AGNNConv`` (both without edge weights:
  they take none), the affinity attention layer (A2GNN), and the random walk of the
  one-hot seeds over the same affinities (no training; AffinityNet's beta 8, 64
  steps).  GrabCut-13 boxes, MSRC-v2 val boxes and scribbles; every GNN with its
  supervision's release losses (boxes: CE + reg + MP + consistency checking;
  scribbles: CE + reg), and with ``--layer-ce`` also with cross-entropy alone (the
  figure's "CE" bars).
* ``losses`` (thesis Table 3.5): A2GNN on boxes with the losses switched off:
  CE; CE + reg; CE + MP; CE + MP + CC; CE + reg + MP; all (= CE + reg + MP + CC).
  Overrides of :meth:`A2GNNConfig.release` ``("boxes")``: ``reg_weight=0`` drops the
  regularised loss, ``mp_weight=0`` the MP loss, ``consistency=False`` the
  consistency checking (which needs the MP loss's points).
* ``graphs`` (thesis Table 3.6): A2GNN on boxes with the graph swapped:
  ``superpixel`` (SLIC superpixels as nodes, as many as the grid has cells, node
  features the ESPNetv2 cell features averaged over each superpixel's pixels, edges
  between touching superpixels weighted by the feature distance; the regularised
  loss, MP loss and consistency checking are defined on the node grid, so only CE is
  run there), ``feature distance`` (grid graph, edge weights
  ``exp(-mean |f_i - f_j|)`` on the ESPNetv2 node features themselves, Eq. 3.8),
  ``colour affinity`` (graphseg's default: the same on the cells' mean RGB times 10)
  and ``affinity CNN`` (the same on the affinity map of an
  :class:`~graphseg.nn.models.AffinityNet`, section 3.3.3: the bundled ESPNetv2
  encoder frozen, its head trained here with ``train_affinity_net`` on this
  benchmark's own box seeds of every photo it scores, cached under ``--workdir``).
  Every grid graph with CE alone and with all losses.

Shared by every run: stride-8 node grid, radius 4 square window (the thesis' box and
scribble setting), node features from the bundled PASCAL VOC ESPNetv2 encoder (last
three levels; as :func:`graphseg.propagation.propagate`), seeds as in ``propagate``
(boxes: :func:`graphseg.seeds.box_seeds`, GrabCut in every box and background
outside; scribbles: SLIC expansion, :func:`graphseg.seeds.expand_seeds`), the
release schedule's learning rate etc. with ``--hidden`` channels and ``--epochs``, the
``"final"`` dense CRF after the propagation, ``--seed`` for GrabCut and training.
A run that appears in several sections (A2GNN, colour affinity, all losses) is
computed once.

Data:

* GrabCut-13 (its boxes), every photo downscaled so that its longer side is at most
  ``--max-side`` pixels (320 by default, the size of the MSRC-v2 photos, to fit the
  PyG layers' time on a CPU; 0 keeps the originals); predictions are scaled back
  (nearest) and scored against the full-size masks.
* MSRC-v2 val, the images with at least one object class (``--msrc-images`` of
  them, evenly spaced: the split is sorted by class), the seven stuff classes mapped
  to background 0 in ground truth and weak labels (as in ``benchmarks/seeds.py``
  and ``benchmarks/pseudo_labels.py``); boxes (one per connected object region) and
  scribbles synthesised from the ground truth with :mod:`graphseg.data.weak_labels`
  (seed ``seed * 100003 + i``, ``i`` the image's place in the selection).

Scores: "mIoU" is the mean IoU of a confusion matrix pooled over the images
(:class:`graphseg.metrics.ConfusionMatrix`).  On GrabCut it is the 2-class mIoU
(background and object); the mean over the photos of the object IoU (the score of
``benchmarks/pseudo_labels.py``) is printed next to it.  On MSRC-v2 it is over the
classes present in ground truth or prediction (background + the objects seen), void
pixels ignored.  The thesis measures all three on PASCAL VOC 2012 *train* (mIoU over
21 classes) with a trained affinity CNN graph and the full schedule on a GPU; its
numbers are printed under each table for reference, not as a target.

    python benchmarks/propagation.py --json /tmp/bench_propagation/out.json \\
        --plot /tmp/bench_propagation/out.png
    python benchmarks/propagation.py --quick --json out.json
    python benchmarks/propagation.py --sections losses --datasets grabcut --epochs 150 150
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from graphseg.data import (
    GrabCutDataset,
    MSRCDataset,
    boxes_from_labels,
    kit_root,
    scribbles_from_labels,
)
from graphseg.graph import superpixel_graph
from graphseg.graph.affinity import l1_normalize
from graphseg.graph.superpixel import pixels_to_superpixels, superpixels_to_pixels
from graphseg.metrics import ConfusionMatrix
from graphseg.metrics.confusion import object_iou
from graphseg.nn.backbones import load_espnetv2_voc
from graphseg.nn.models import AffinityNet
from graphseg.nn.models.affinity_net import affinity_maps
from graphseg.propagation import A2GNNConfig, node_features, segment_image, train_a2gnn
from graphseg.refine import dense_crf
from graphseg.seeds import box_seeds, expand_seeds
from graphseg.training import train_affinity_net
from graphseg.utils.constants import IGNORE

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    benchmark_parser,
    grouped_bars,
    machine,
    machine_line,
    missing,
    pyplot,
    save_figure,
    settings_line,
    torch_threads,
    write_json,
)

SECTIONS = ("layers", "losses", "graphs")
DATASETS = ("grabcut", "msrc")
STRIDE, RADIUS, COLOUR_SCALE = 8, 4, 10.0

# display name -> segment_image's config.layer ("random-walk": its propagator instead)
LAYERS = {"GCN": "gcn", "GAT": "gat", "AGNN": "agnn", "A2GNN": "a2gnn",
          "random walk": "random-walk"}
# Table 3.5: display name -> overrides of A2GNNConfig.release("boxes")
LOSSES = {
    "CE": dict(reg_weight=0.0, mp_weight=0.0, consistency=False),
    "CE + reg": dict(mp_weight=0.0, consistency=False),
    "CE + MP": dict(reg_weight=0.0, consistency=False),
    "CE + MP + CC": dict(reg_weight=0.0),
    "CE + reg + MP": dict(consistency=False),
    "all": {},
}
GRAPHS = ("superpixel", "feature distance", "colour affinity", "affinity CNN")
# what every section reports: (dataset, kind) columns
COLUMNS = {"layers": (("grabcut", "boxes"), ("msrc", "boxes"), ("msrc", "scribbles")),
           "losses": (("grabcut", "boxes"), ("msrc", "boxes")),
           "graphs": (("grabcut", "boxes"), ("msrc", "boxes"))}
DATASET_NAMES = {"grabcut": "GrabCut-13", "msrc": "MSRC-v2 val"}
# the thesis' numbers (PASCAL VOC 2012 train, boxes, mIoU %) for reference
THESIS = {
    "layers": "Fig. 3.7 (VOC train, boxes): A2GNN 78.8 with every loss, AGNN 6.9 lower; "
              "with CE alone A2GNN 73.8, AGNN 1.9 lower (GCN and GAT below AGNN)",
    "losses": "Table 3.5 (VOC train, boxes): CE 73.8, CE + reg 74.9, CE + MP 75.9, "
              "CE + MP + CC 77.2, CE + reg + MP 78.1, all 78.8",
    "graphs": "Table 3.6 (VOC train, boxes, all losses): superpixel + distance 73.3, "
              "feature map + distance 74.7, feature map + affinity CNN 78.8",
}


# ----------------------------------------------------------------------------- data
class Item:
    """One photo with its seeds and node features, ready for every propagation."""

    def __init__(self, dataset, name, image, gt, kind, seeds, boxes, num_classes, features,
                 full_gt=None):
        self.dataset, self.name, self.image, self.gt, self.kind = dataset, name, image, gt, kind
        self.seeds, self.boxes, self.num_classes, self.features = seeds, boxes, num_classes, \
            features
        self.full_gt = gt if full_gt is None else full_gt


def downscale(image, boxes, max_side):
    """The photo with its longer side at most ``max_side`` and its boxes scaled
    (outward rounding, so that the box still holds the object)."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, boxes
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    out = np.asarray(boxes, dtype=np.int64).copy()
    out[:, 1] = np.floor(out[:, 1] * size[0] / w)
    out[:, 2] = np.floor(out[:, 2] * size[1] / h)
    out[:, 3] = np.minimum(np.ceil(out[:, 3] * size[0] / w), size[0])
    out[:, 4] = np.minimum(np.ceil(out[:, 4] * size[1] / h), size[1])
    return small, out


def grabcut_items(args):
    dataset = GrabCutDataset(kit_root() / "grabcut")
    items = []
    for name in dataset.names[: args.limit]:
        sample = dataset.load(name)
        image, boxes = downscale(sample.image, sample.boxes, args.max_side)
        seeds = box_seeds(image, boxes, 0, seed=args.seed).labels
        items.append(Item("grabcut", name, image, None, "boxes", seeds, boxes, 2,
                          node_features(image, "espnetv2", STRIDE), full_gt=sample.label))
    return items


def msrc_items(args, kinds):
    val = MSRCDataset(kit_root() / "msrc_v2", "val")
    background = list(val.background_classes)
    stuff = np.arange(256, dtype=np.uint8)
    stuff[background] = 0  # every stuff class becomes background 0
    num_classes = len(val.class_names)
    # images with an object; val is sorted by class, so take evenly spaced ones
    samples = [s for s in (val.load(n) for n in val.names)
               if np.isin(s.label, [c for c in range(num_classes) if c not in background]).any()]
    count = min(args.msrc_images, len(samples))
    picks = np.unique(np.linspace(0, len(samples) - 1, count).round().astype(int))
    items = []
    for i, index in enumerate(picks):
        sample = samples[int(index)]
        image, gt, seed = sample.image, stuff[sample.label], args.seed * 100_003 + i
        features = node_features(image, "espnetv2", STRIDE)
        if "boxes" in kinds:
            boxes = boxes_from_labels(sample.label, background_classes=background)
            if len(boxes):
                seeds = box_seeds(image, boxes, 0, seed=args.seed).labels
                items.append(Item("msrc", sample.name, image, gt, "boxes", seeds, boxes,
                                  num_classes, features))
        if "scribbles" in kinds:
            scribbles = stuff[scribbles_from_labels(sample.label, seed=seed)]
            seeds = expand_seeds(image, scribbles, num_classes).labels
            if (seeds != IGNORE).any():
                items.append(Item("msrc", sample.name, image, gt, "scribbles", seeds, None,
                                  num_classes, features))
    return items


# ----------------------------------------------------------------------------- graphs
def superpixel_propagation(item, config, seed):
    """Node probabilities on the superpixel graph, painted back to the pixel grid:
    ``(C, H, W)``."""
    h, w = item.features.shape[1:]
    data = superpixel_graph(item.image, n_segments=h * w)
    segments = data.segments
    count = int(data.num_nodes)
    # each superpixel's features: the mean over its pixels of their cell's features
    height, width = segments.shape
    cell = ((torch.arange(height) // STRIDE)[:, None] * w
            + (torch.arange(width) // STRIDE)[None, :]).reshape(-1)
    flat = segments.reshape(-1)
    pairs, counts = torch.unique(flat * (h * w) + cell, return_counts=True)
    weights = torch.sparse_coo_tensor(torch.stack([pairs // (h * w), pairs % (h * w)]),
                                      counts.float(), (count, h * w))
    sums = torch.sparse.mm(weights, item.features.reshape(item.features.size(0), -1).t())
    feats = sums / torch.bincount(flat, minlength=count).float()[:, None]
    source, target = data.edge_index
    edge_weight = torch.exp(-(feats[source] - feats[target]).abs().mean(dim=1))
    labels = pixels_to_superpixels(item.seeds, segments)
    probs = train_a2gnn(l1_normalize(feats), data.edge_index, labels, item.num_classes,
                        (1, count), edge_weight=edge_weight, config=config, seed=seed)
    return superpixels_to_pixels(probs, segments).numpy()


def affinity_network(args, items):
    """An AffinityNet (frozen ESPNetv2 VOC encoder, trained head) trained on the box
    seeds of ``items``; cached (as a resumable checkpoint) under ``--workdir``."""
    boxed = [it for it in items if it.kind == "boxes"]
    samples = [(it.image, it.seeds) for it in boxed]
    settings = dict(epochs=args.affinity_epochs, batch_size=2 if args.quick else 4,
                    crop=64 if args.quick else 320, seed=args.seed)
    channels = 28 if args.quick else 448
    key = hashlib.sha1(repr((sorted((it.dataset, it.name) for it in boxed), settings,
                             channels, args.max_side)).encode()).hexdigest()[:10]
    path = Path(args.workdir) / f"affinity_{key}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    encoder = load_espnetv2_voc().base_net
    model = AffinityNet(encoder, affinity_channels=channels, stride=STRIDE,
                        freeze_backbone=True, seed=args.seed)
    start = time.perf_counter()
    cached = path.is_file()
    history = train_affinity_net(model, samples, **settings, checkpoint=path, progress=False)
    seconds = time.perf_counter() - start
    print(f"  affinity CNN: {'cached ' if cached else ''}{path}, {len(samples)} box seed maps, "
          f"{settings['epochs']} epochs (crop {settings['crop']}, batch "
          f"{settings['batch_size']}), d_A {channels}, loss "
          + " ".join(f"{v:.3f}" for v in history) + f", {seconds:.0f} s", flush=True)
    return model, {"path": str(path), "samples": len(samples), "channels": channels,
                   "history": history, "seconds": seconds, "cached": cached, **settings}


# ----------------------------------------------------------------------------- runs
def configure(args, kind, losses, layer="a2gnn"):
    overrides = {"hidden_channels": args.hidden}
    if layer != "random-walk":  # a propagator, which trains no layer
        overrides["layer"] = layer
    if args.epochs:
        overrides.update(stage1_epochs=args.epochs[0], stage2_epochs=args.epochs[1])
    if losses != "release":
        overrides.update(LOSSES[losses])
    return A2GNNConfig.release(kind, **overrides)


def propagate_case(item, graph, layer, losses, args, edge_maps):
    """Pixel labels (the item's resolution) of one run and the propagation's seconds."""
    config = configure(args, item.kind, losses, layer)
    start = time.perf_counter()
    if graph == "superpixel":
        probs = superpixel_propagation(item, config, args.seed)
    else:
        edges = {"colour affinity": None, "feature distance": item.features,
                 "affinity CNN": edge_maps.get((item.dataset, item.name))}[graph]
        _, probs = segment_image(item.image, item.seeds, item.num_classes, boxes=item.boxes,
                                 stride=STRIDE, radius=RADIUS, features=item.features,
                                 edge_features=edges, colour_scale=COLOUR_SCALE,
                                 config=config, crf=None, seed=args.seed,
                                 propagator="random-walk" if layer == "random-walk" else "gnn")
    seconds = time.perf_counter() - start
    probs = dense_crf(item.image, probs, preset="final")
    return probs.argmax(axis=0).astype(np.uint8), seconds


def plan(args):
    """Every (section, dataset, kind, row, graph, layer, losses) to report."""
    rows = []
    for section in args.sections:
        for dataset, kind in COLUMNS[section]:
            if dataset not in args.datasets:
                continue
            if section == "layers":
                for name, layer in LAYERS.items():
                    rows.append((section, dataset, kind, name, "colour affinity", layer,
                                 "release"))
                    if args.layer_ce and layer != "random-walk":
                        rows.append((section, dataset, kind, f"{name} (CE)", "colour affinity",
                                     layer, "CE"))
            elif section == "losses":
                for name in LOSSES:
                    rows.append((section, dataset, kind, name, "colour affinity", "a2gnn",
                                 name))
            else:
                for graph in GRAPHS:
                    for losses in (("CE",) if graph == "superpixel" else ("CE", "all")):
                        rows.append((section, dataset, kind, f"{graph} ({losses})", graph,
                                     "a2gnn", losses))
    return rows


def canonical(kind, losses):
    """The release losses of boxes are "all": one run serves both names."""
    return "all" if (kind == "boxes" and losses == "release") else losses


class Scores:
    """Pooled confusion matrices (and GrabCut object IoUs, seconds) per run."""

    def __init__(self):
        self.cm, self.objects, self.seconds = {}, {}, {}

    def add(self, key, item, pred):
        gt = item.full_gt
        if pred.shape != gt.shape:  # a downscaled GrabCut photo: score at full size
            pred = cv2.resize(pred, gt.shape[::-1], interpolation=cv2.INTER_NEAREST)
        self.cm.setdefault(key, ConfusionMatrix(item.num_classes)).update(pred, gt, item.name)
        if item.dataset == "grabcut":
            self.objects.setdefault(key, []).append(object_iou(pred, gt))
        return self.cm[key]

    def row(self, key):
        cm = self.cm[key]
        out = {"miou": cm.miou(), "images": len(self.seconds.get(key, [])),
               "gnn_seconds": float(np.mean(self.seconds.get(key, [float("nan")])))}
        if key in self.objects:
            out["mean_object_iou"] = float(np.mean(self.objects[key]))
        return out


def run_all(args, items, rows, edge_maps):
    runs = list(dict.fromkeys((d, k, g, layer, canonical(k, losses))
                              for _, d, k, _, g, layer, losses in rows))
    scores = Scores()
    for item in items:
        line = []
        for dataset, kind, graph, layer, losses in runs:
            if (dataset, kind) != (item.dataset, item.kind):
                continue
            key = (dataset, kind, graph, layer, losses)
            pred, seconds = propagate_case(item, graph, layer, losses, args, edge_maps)
            scores.seconds.setdefault(key, []).append(seconds)
            single = ConfusionMatrix(item.num_classes).update(
                pred if pred.shape == item.full_gt.shape else cv2.resize(
                    pred, item.full_gt.shape[::-1], interpolation=cv2.INTER_NEAREST),
                item.full_gt).miou()
            scores.add(key, item, pred)
            line.append(f"{graph[:6]}/{layer}/{losses} {single:.3f} ({seconds:.1f} s)")
        print(f"  {item.dataset:<7} {item.kind:<9} {item.name:<9} " + ", ".join(line),
              flush=True)
    out = []
    for section, dataset, kind, name, graph, layer, losses in rows:
        key = (dataset, kind, graph, layer, canonical(kind, losses))
        if key not in scores.cm:
            continue  # no image of that dataset and kind
        out.append({"section": section, "dataset": DATASET_NAMES[dataset], "kind": kind,
                    "row": name, "graph": graph, "layer": layer, "losses": losses,
                    **scores.row(key)})
    return out


# ----------------------------------------------------------------------------- output
def settings(args) -> dict:
    return {"seed": args.seed, "sections": list(args.sections), "datasets": list(args.datasets),
            "hidden": args.hidden, "epochs": args.epochs or "release (150+150 boxes, "
            "50+50 scribbles)", "grabcut_images": args.limit or 13,
            "grabcut_max_side": args.max_side, "msrc_images": args.msrc_images,
            "affinity_epochs": args.affinity_epochs, "layer_ce": args.layer_ce,
            "features": "espnetv2", "stride": STRIDE, "radius": RADIUS, "crf": "final",
            "quick": args.quick}


def print_section(section, rows):
    table = [r for r in rows if r["section"] == section]
    if not table:
        return
    columns = list(dict.fromkeys((r["dataset"], r["kind"]) for r in table))
    names = list(dict.fromkeys(r["row"] for r in table))
    title = {"layers": "Propagation layers (thesis Fig. 3.7), colour-affinity graph",
             "losses": "Losses (thesis Table 3.5), A2GNN, colour-affinity graph, boxes",
             "graphs": "Graphs (thesis Table 3.6), A2GNN, boxes"}[section]
    print(f"\n{title}: pooled mIoU (GrabCut: 2-class bg/fg mIoU [mean object IoU])")
    heads = []
    for dataset, kind in columns:
        head = f"{dataset} {kind}"
        heads.append(head + (" [obj]" if dataset.startswith("GrabCut") else ""))
    width = max(len(n) for n in names) + 2
    print(f"{'':<{width}}" + "".join(f"{h:>28}" for h in heads) + f"{'GNN s/img':>11}")
    for name in names:
        cells, seconds = [], []
        for dataset, kind in columns:
            r = next((r for r in table if r["row"] == name and r["dataset"] == dataset
                      and r["kind"] == kind), None)
            if r is None:
                cells.append(f"{'-':>28}")
                continue
            text = f"{r['miou']:.3f}"
            if "mean_object_iou" in r:
                text += f" [{r['mean_object_iou']:.3f}]"
            text += f" (n={r['images']})"
            cells.append(f"{text:>28}")
            seconds.append(r["gnn_seconds"])
        print(f"{name:<{width}}" + "".join(cells) + f"{np.nanmean(seconds):>11.2f}")
    print(f"thesis, for reference: {THESIS[section]}")


def plot(path, rows):
    plt = pyplot()
    if plt is None:
        return
    sections = [s for s in SECTIONS if any(r["section"] == s for r in rows)]
    fig, axes = plt.subplots(1, len(sections), figsize=(6 * len(sections), 5.5), squeeze=False)
    for ax, section in zip(axes[0], sections):
        table = [r for r in rows if r["section"] == section]
        columns = list(dict.fromkeys((r["dataset"], r["kind"]) for r in table))
        names = list(dict.fromkeys(r["row"] for r in table))
        miou = {(r["row"], r["dataset"], r["kind"]): r["miou"] for r in table}
        grouped_bars(ax, [f"{d}\n{k}" for d, k in columns],
                     {name: [miou.get((name, *column)) for column in columns]
                      for name in names})
        ax.set_ylim(0, 1)
        ax.set_ylabel("pooled mIoU (GrabCut: 2 classes)")
        ax.set_title({"layers": "layers (Fig. 3.7)", "losses": "losses (Table 3.5)",
                      "graphs": "graphs (Table 3.6)"}[section], fontsize=10)
        ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    save_figure(fig, path, dpi=120, bbox_inches="tight")


def main(argv=None) -> int:
    parser = benchmark_parser(
        __doc__, quick="tiny: 2 GrabCut photos, 1 MSRC image, hidden 16, 3 + 3 epochs, a "
                       "1-epoch affinity head at crop 64; every row still run", plot=True,
        seed=0, threads=1, threads_help="torch threads (1)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--limit", type=int, help="only the first N GrabCut photos (all 13)")
    parser.add_argument("--max-side", type=int, default=320,
                        help="GrabCut photos downscaled to this longer side (320; 0 = full "
                             "size); scored at full size")
    parser.add_argument("--msrc-images", type=int, default=12,
                        help="N evenly spaced MSRC-v2 val images with an object (12)")
    parser.add_argument("--hidden", type=int, default=32,
                        help="hidden channels of every GNN (32; the thesis 256)")
    parser.add_argument("--epochs", type=int, nargs=2, metavar=("STAGE1", "STAGE2"),
                        default=[25, 25],
                        help="epochs of the two stages for every GNN (25 25; 0 0 = the "
                             "release schedule, 150 + 150 for boxes and 50 + 50 for "
                             "scribbles)")
    parser.add_argument("--layer-ce", action="store_true",
                        help="layers: also every GNN with cross-entropy alone")
    parser.add_argument("--affinity-epochs", type=int, default=8,
                        help="epochs of the affinity CNN's head (8)")
    parser.add_argument("--workdir", default="/tmp/bench_propagation",
                        help="cache of the affinity CNN (/tmp/bench_propagation)")
    args = parser.parse_args(argv)
    if args.epochs == [0, 0]:
        args.epochs = None
    if args.quick:
        args.limit = min(args.limit or 2, 2)
        args.msrc_images = 1
        args.hidden = 16
        args.epochs = [3, 3]
        args.affinity_epochs = 1
    if missing(kit_root()):
        return 2
    with torch_threads(args.threads):
        return benchmark(args)


def benchmark(args) -> int:
    info, asked = machine(), settings(args)
    print(machine_line(info))
    print(settings_line(asked), flush=True)
    env = {**info, **asked}
    start = time.perf_counter()
    rows = plan(args)
    kinds = {k for _, d, k, *_ in rows if d == "msrc"}
    items = []
    if "grabcut" in args.datasets and any(d == "grabcut" for _, d, *_ in rows):
        items += grabcut_items(args)
    if "msrc" in args.datasets and kinds:
        items += msrc_items(args, kinds)
    print(f"  {len(items)} (image, kind) pairs: seeds and ESPNetv2 features in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    edge_maps, affinity = {}, None
    if any(g == "affinity CNN" for *_, g, _, _ in rows):
        model, affinity = affinity_network(args, items)
        for item in items:
            if item.kind == "boxes":
                edge_maps[(item.dataset, item.name)] = affinity_maps(model, item.image).affinity
    results = run_all(args, items, rows, edge_maps)
    for section in SECTIONS:
        print_section(section, results)
    total = time.perf_counter() - start
    print(f"\ntotal {total:.0f} s ({env['machine']}, {env['cpus']} CPUs, "
          f"{env['torch_threads']} torch thread(s), torch {env['torch']}, "
          f"PyG {env['torch_geometric']}, seed {args.seed})")
    if args.json:
        write_json(args.json, {"environment": env, "affinity_cnn": affinity, "rows": results,
                               "seconds": total})
    if args.plot:
        plot(args.plot, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
