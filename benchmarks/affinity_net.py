"""How well learned affinities separate objects from background on GrabCut-13.

Trains :class:`graphseg.nn.models.AffinityNet` (thesis section 3.3.3) on the 13
GrabCut photos with their box seeds (:func:`graphseg.seeds.box_seeds`, default
arguments), then measures, on the full photos, the edge weights of the stride-8
graph (square window, radius 4, the thesis' box setting) on pairs of nodes
labelled by the ground-truth masks (majority vote per cell):

* ``pos_mean`` / ``neg_mean``: mean affinity of same-label / different-label pairs;
* ``auc``: probability that a random same-label pair has a higher affinity than
  a random different-label pair (1 = perfect separation, 0.5 = none);
* ``auc_unseeded``: the same on pairs with at least one end that has no seed,
  i.e. where the graph has to generalise beyond its training labels.

Rows: the colour affinity the pipeline uses without a network
(``exp(-10 mean|c_i - c_j|)`` on the stride-8 mean colour,
:func:`graphseg.segmenters.colour_position_features`), the small CNN trained
from scratch, and the ESPNetv2 encoder with the kit's PASCAL VOC weights, frozen
(head only) and fine-tuned.

    OMP_NUM_THREADS=1 python benchmarks/affinity_net.py            # a few minutes
    python benchmarks/affinity_net.py --quick --json out.json      # seconds
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from graphseg.data import GrabCutDataset, kit_root
from graphseg.graph import grid_affinity, label_map_to_nodes
from graphseg.nn.backbones import ESPNetv2Encoder, SmallCNN, load_espnetv2_voc, preprocess
from graphseg.nn.models import AffinityNet
from graphseg.propagation import colour_position_features
from graphseg.seeds import box_seeds
from graphseg.training import train_affinity_net
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

WEIGHTS = kit_root() / "weights" / "espnetv2_s_2.0_pascal_384x384.pth"
RADIUS = 4


def load(args):
    """``(image, seeds, ground truth)`` of the GrabCut photos (downscaled in quick mode)."""
    dataset = GrabCutDataset(kit_root() / "grabcut")
    names = dataset.names[:3] if args.quick else dataset.names
    out = []
    for name in names:
        sample = dataset.load(name)
        image, gt, boxes = sample.image, sample.label, sample.boxes.copy()
        if args.quick:  # a quarter of the size: GrabCut and training in seconds
            h, w = gt.shape
            size = (w // 4, h // 4)
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
            gt = np.asarray(Image.fromarray(gt).resize(size, Image.NEAREST))
            boxes[:, 1:] //= 4
        seeds = box_seeds(image, boxes).labels
        out.append((name, image, seeds, gt))
    return out


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(pos > neg) + P(pos == neg) / 2 (Mann-Whitney), from the pooled ranks."""
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    values = np.concatenate([pos, neg])
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.arange(1, values.size + 1)
    # average ranks of ties
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    for s, e in zip(starts, ends):
        if e - s > 1:
            ranks[order[s:e]] = (s + e + 1) / 2
    return float((ranks[:pos.size].sum() - pos.size * (pos.size + 1) / 2)
                 / (pos.size * neg.size))


def pair_values(planes: torch.Tensor, labels: torch.Tensor, seeded: torch.Tensor):
    """Affinities of same- and different-label pairs, and whether both ends are seeded."""
    k, h, w = planes.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    from graphseg.graph import window_offsets

    same, diff, unseeded_same, unseeded_diff = [], [], [], []
    for i, (dy, dx) in enumerate(window_offsets(RADIUS, "square", self_loops=False).tolist()):
        ty, tx = ys + dy, xs + dx
        inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
        a = labels[ys[inside], xs[inside]]
        b = labels[ty[inside], tx[inside]]
        value = planes[i][inside]
        known = (a != IGNORE) & (b != IGNORE)
        unseeded = ~(seeded[ys[inside], xs[inside]] & seeded[ty[inside], tx[inside]])
        for mask, target, target_unseeded in (((a == b) & known, same, unseeded_same),
                                               ((a != b) & known, diff, unseeded_diff)):
            target.append(value[mask])
            target_unseeded.append(value[mask & unseeded])
    cat = lambda parts: torch.cat(parts).numpy()  # noqa: E731
    return cat(same), cat(diff), cat(unseeded_same), cat(unseeded_diff)


def evaluate(name: str, data, edge_maps, seconds: float, history=None) -> dict:
    pools = [[], [], [], []]
    for (_, image, seeds, gt), edges in zip(data, edge_maps):
        grid = tuple(edges.shape[1:])
        labels = label_map_to_nodes(gt, grid).view(grid)
        seeded = label_map_to_nodes(seeds, grid).view(grid) != IGNORE
        planes = grid_affinity(edges, RADIUS, "square", self_loops=False)
        for pool, values in zip(pools, pair_values(planes, labels, seeded)):
            pool.append(values)
    pos, neg, pos_u, neg_u = (np.concatenate(p) for p in pools)
    return {"graph": name, "pos_mean": float(pos.mean()), "neg_mean": float(neg.mean()),
            "gap": float(pos.mean() - neg.mean()), "auc": auc(pos, neg),
            "auc_unseeded": auc(pos_u, neg_u), "pos_pairs": int(pos.size),
            "neg_pairs": int(neg.size), "train_seconds": seconds,
            "loss_curve": history or []}


@torch.no_grad()
def network_edges(model: AffinityNet, data):
    model.eval()
    return [model(preprocess(image)[None]).affinity[0] for _, image, _, _ in data]


def train(model: AffinityNet, data, args, epochs: int):
    samples = [(image, seeds) for _, image, seeds, _ in data]
    start = time.perf_counter()
    history = train_affinity_net(model, samples, epochs=epochs, batch_size=args.batch_size,
                                 crop=args.crop, lr=args.lr, reg_weight=args.reg_weight,
                                 reg_norm=args.reg_norm, sigma_xy=args.sigma_xy,
                                 seed=args.seed, progress=args.progress)
    return history, time.perf_counter() - start


def run(args) -> list:
    data = load(args)
    colour = [colour_position_features(image, 8)[:3] * 10 for _, image, _, _ in data]
    rows = [evaluate("colour exp(-10 mean|dc|)", data, colour, 0.0)]
    channels = 28 if args.quick else args.affinity_channels
    for backbone in args.backbones:
        torch.manual_seed(args.seed)
        if backbone == "small":
            name = "small CNN (scratch)"
            model = AffinityNet(SmallCNN(8 if args.quick else args.width, seed=args.seed),
                                affinity_channels=channels, seed=args.seed)
            epochs = args.epochs
        else:
            frozen = backbone == "espnetv2-frozen"
            name = f"ESPNetv2 VOC ({'frozen' if frozen else 'fine-tuned'})"
            if not Path(args.weights).is_file():
                print(f"skipping {name}: no weights at {args.weights}", file=sys.stderr)
                continue
            encoder = load_espnetv2_voc(args.weights).base_net
            assert isinstance(encoder, ESPNetv2Encoder)
            model = AffinityNet(encoder, affinity_channels=channels, freeze_backbone=frozen,
                                seed=args.seed)
            epochs = args.espnet_epochs
        history, seconds = train(model, data, args, epochs)
        rows.append(evaluate(name, data, network_edges(model, data), seconds, history))
        print(f"{name}: trained {epochs} epochs in {seconds:.0f} s, loss "
              + " ".join(f"{v:.3f}" for v in history), flush=True)
    return rows


def table(rows) -> str:
    lines = [f"{'graph':32s} {'pos mean':>9s} {'neg mean':>9s} {'gap':>7s} {'AUC':>7s} "
             f"{'AUC unseeded':>13s} {'train s':>8s}"]
    for r in rows:
        lines.append(f"{r['graph']:32s} {r['pos_mean']:9.3f} {r['neg_mean']:9.3f} "
                     f"{r['gap']:7.3f} {r['auc']:7.3f} {r['auc_unseeded']:13.3f} "
                     f"{r['train_seconds']:8.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, quick="3 photos at 1/4 size, tiny networks, 2 epochs",
                              seed=0, threads=1)
    parser.add_argument("--backbones", nargs="+",
                        choices=("small", "espnetv2-frozen", "espnetv2-finetune"),
                        default=("small", "espnetv2-frozen", "espnetv2-finetune"))
    parser.add_argument("--epochs", type=int, default=20, help="small CNN epochs (default 20)")
    parser.add_argument("--espnet-epochs", type=int, default=12,
                        help="ESPNetv2 epochs (default 12, the release)")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--affinity-channels", type=int, default=448)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=320)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--reg-weight", type=float, default=3.0)
    parser.add_argument("--reg-norm", choices=("nodes", "kernel"), default="nodes")
    parser.add_argument("--sigma-xy", type=float, default=6.0, help="in nodes (default 6)")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--progress", action="store_true", help="tqdm bars while training")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = args.espnet_epochs = 2
        args.crop, args.batch_size = min(args.crop, 64), 2
        args.backbones = [b for b in args.backbones if b != "espnetv2-finetune"]
    if missing(kit_root() / "grabcut"):
        return 2
    with torch_threads(args.threads):
        info = machine()
        print(machine_line(info))
        start = time.perf_counter()
        rows = run(args)
    print(table(rows))
    print(f"GrabCut-13{' (quick)' if args.quick else ''}, box seeds, radius {RADIUS} square "
          f"window on the stride-8 grid; {time.perf_counter() - start:.0f} s")
    if args.json:
        write_json(args.json, {"rows": rows, "args": vars(args), "machine": info})
    return 0


if __name__ == "__main__":
    sys.exit(main())
