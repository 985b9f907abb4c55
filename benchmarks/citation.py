"""Node classification on Cora and CiteSeer: GCN, GAT, AGNN and AffinityAttentionConv.

Data: the data kit's Planetoid files (``planetoid/{Cora,CiteSeer}/raw``), copied to
a temporary folder and processed there by PyG's ``Planetoid``; the standard public
split (20 labelled nodes per class, 500 validation, 1000 test nodes) and
``NormalizeFeatures()`` (each bag-of-words row sums to 1).

Models, each in its paper's published setup (full batch, Adam, cross-entropy on the
labelled nodes):

* GCN (Kipf & Welling 2017): GCNConv -> 16, ReLU, GCNConv -> classes; dropout 0.5
  on the input of both layers; lr 0.01; weight decay 5e-4 on the first layer only,
  as in the paper.
* GAT (Velickovic et al. 2018): GATConv 8 heads x 8 hidden (concatenated), ELU,
  GATConv with 1 head -> classes (the paper's output layer for Cora and CiteSeer);
  dropout 0.6 on the input of both layers and on the attention coefficients;
  lr 0.005; weight decay 5e-4.
* AGNN (Thekumparampil et al. 2018), with PyG's AGNNConv: dropout 0.5, Linear -> 16,
  ReLU, ``--agnn-layers`` propagation layers (the first with its beta fixed at 1,
  the others learnable; default 4, the paper's choice for Cora and CiteSeer; PyG's
  example uses 2), dropout 0.5, Linear -> classes; lr 0.01; weight decay 5e-4.
* Ours: the AGNN architecture with ``graphseg.nn.AffinityAttentionConv`` (Eq. 3.18)
  as the propagation layer (first layer ``w`` fixed at 1, the others learnable),
  on a ``CSRAdjacency`` built once per dataset, in two variants:

  - ``ours_ones``: every edge weight 1.  After the ReLU the hidden features are
    non-negative, so ``cos >= 0`` and the gated term adds ``beta`` to every
    neighbour whose cosine is positive: a neighbour sharing no active hidden unit
    (``cos == 0``) is down-weighted by ``exp(-beta)``; otherwise this is AGNN.
  - ``ours_similarity``: edge weight = cosine similarity of the two papers'
    bag-of-words vectors (in [0, 1], the vectors being non-negative; cosine does
    not change under the row normalisation).  Eq. 3.8's ``exp(-||f_i - f_j||_1 / d)``
    was not used: on normalised bag-of-words rows ``||f_i - f_j||_1 <= 2``, so with
    ``d`` the feature count (1433 / 3703) every weight is ~1 and it would not
    differ from ``ours_ones``.

  ``beta`` scales the edge term.  The self loop has weight 1 (the cosine of a paper
  with itself) and gets ``+beta`` too, so a large beta pins the attention on the
  node itself: the thesis' beta = 10 (tuned for image affinities near 1) all but
  switches propagation off here.  beta = 0.5 was chosen first, in AGNN's setup, by
  mean *validation* accuracy of ``ours_similarity`` over seeds 100-102 among
  {0.5, 1, 3, 10} on both datasets.

  Settings of ours (``--ours-setup``): ``previous`` is AGNN's setup above (hidden
  16, input dropout 0.5, weight decay 5e-4, ``--agnn-layers`` layers) with beta
  0.5, the earlier version of this benchmark; ``selected`` (the default) is chosen
  per dataset, as the papers tune theirs, by ``--select`` in two stages.  Stage 1:
  ``ours_similarity`` at every point of the grid hidden {16, 64} x input dropout
  {0.5, 0.8} x weight decay {5e-4, 1e-3} x propagation layers {2, 4} (beta 0.5,
  the dropout before the last layer 0.5, lr 0.01), seeds 100-102 (disjoint from
  the reported seeds 0-9), the protocol below, highest mean validation accuracy
  wins (ties: the first in grid order).  The test nodes are not even evaluated in
  ``--select``.  Stage 1 picked Cora hidden 16, input dropout 0.8, weight decay 5e-4,
  4 layers and CiteSeer hidden 64, input dropout 0.8, weight decay 1e-3, 4 layers
  (beta 0.5 on both; ``--ours-setup stage1``).

  Stage 2: every tuned axis of both stage-1 picks sat on an edge of the grid, so
  the grid was extended past those edges (``--grid``), same model, seeds and rule,
  validation accuracy only.  This was done after the stage-1 picks' test numbers
  had been seen (CiteSeer missed the target), hence a separate, documented stage;
  the stage-1 picks are points of the stage-2 grids::

      python benchmarks/citation.py --select --datasets Cora --grid hidden=8,16 \
          dropout=0.8,0.9 weight_decay=2.5e-4,5e-4 layers=4,6
      python benchmarks/citation.py --select --datasets CiteSeer --grid hidden=64,128 \
          dropout=0.8,0.9 weight_decay=1e-3,2e-3,5e-3 layers=4,6

  Selected (``--ours-setup selected``, the default): Cora hidden 16, input dropout
  0.9, weight decay 5e-4, 4 layers; CiteSeer hidden 128, input dropout 0.8,
  weight decay 2e-3, 4 layers (beta 0.5); the search stopped there (a plateau).
  GAT's attention dropout on our layer was tried in a throwaway prototype at the
  stage-1 CiteSeer pick, validation only, showed no reliable gain and was not added.
  The validation accuracies of every selection step are in ``benchmarks/README.md``.
  ``--ours-hidden``, ``--ours-dropout``, ``--ours-weight-decay``, ``--ours-layers``
  and ``--beta`` override single settings.

Protocol: full-batch training for at most ``--epochs`` epochs (default 500), with
GAT's early stopping: stop once ``--patience`` (100) epochs have passed without a
new best validation accuracy or a new lowest validation loss.  After every epoch
the model is evaluated with dropout off; the reported number is the test accuracy
at the epoch with the highest validation accuracy (ties: lower validation loss),
as if that epoch had been checkpointed.  The same rule for every model (the papers
differ: GCN stops on validation loss within 200 epochs, GAT as here with patience
100 and no epoch cap); the test set is never used to choose anything.  In
practice the validation loss keeps creeping down, so nearly every run reaches the
cap (``epochs_run`` in the JSON): this is close to a fixed 500-epoch budget.

Runs ``i = 0 .. --runs - 1`` use seed ``--seed + i`` (Python, NumPy and torch via
``torch_geometric.seed_everything``, before the model is built), under
``torch.use_deterministic_algorithms(True)`` with one torch thread by default:
the same command gives the same numbers, run after run (a different thread count
may change the float summation order and so the last digits).  One thread is also
what these small graphs run fastest with on a shared machine.  Mean and sample
standard deviation (n - 1) of the test accuracy over the runs are printed beside
the published numbers, with the wall time of each model.  Target (issue 6): an
AffinityAttentionConv model within one standard deviation (ours) of the best
published number on each dataset (mean + std >= best), or better.

The bag-of-words input is fed to the first layer as a sparse CSR matrix, and
input dropout is drawn for its non-zero entries only: the same model, several
times faster (see ``feature_dropout``).

    python benchmarks/citation.py --quick
    python benchmarks/citation.py --json citation.json --plot citation.png
    python benchmarks/citation.py --runs 100 --datasets Cora --models gcn ours_similarity
    python benchmarks/citation.py --select --json select.json   # stage 1
    python benchmarks/citation.py --ours-setup previous         # the earlier settings
    python benchmarks/citation.py --ours-setup stage1           # before the grid was extended
"""
from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_geometric.transforms as T
from torch import nn
from torch_geometric import seed_everything
from torch_geometric.nn import AGNNConv, GATConv, GCNConv

from graphseg.data import kit_root, load_planetoid
from graphseg.graph import CSRAdjacency
from graphseg.nn import AffinityAttentionConv

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    apply_defaults,
    benchmark_parser,
    machine,
    machine_line,
    missing,
    pyplot,
    save_figure,
    torch_threads,
    write_json,
)

DATA_DIR = kit_root()
DATASETS = ("Cora", "CiteSeer")
MODELS = ("gcn", "gat", "agnn", "ours_ones", "ours_similarity")
LABELS = {"gcn": "GCN", "gat": "GAT", "agnn": "AGNN",
          "ours_ones": "AffinityAttn (E=1)", "ours_similarity": "AffinityAttn (E=cos BoW)"}
# Test accuracy (%) on the public Planetoid split, as published in the three papers.
PUBLISHED = {"gcn": {"Cora": 81.5, "CiteSeer": 70.3},
             "gat": {"Cora": 83.0, "CiteSeer": 72.5},
             "agnn": {"Cora": 83.1, "CiteSeer": 71.7}}
OURS = ("ours_ones", "ours_similarity")
# The settings of the "ours" models (the AGNN architecture with our layer): hidden
# size, input (feature) dropout, weight decay, propagation layers and beta.
# "previous": AGNN's setup for both datasets (layers: --agnn-layers, default 4), the
# earlier version of this benchmark.  "selected": per dataset, by mean validation
# accuracy of ours_similarity over the selection seeds (--select, stage 2 of the
# docstring); "stage1": the picks of the default grid, before it was extended.
OURS_PREVIOUS = {"hidden": 16, "dropout": 0.5, "weight_decay": 5e-4, "layers": 4, "beta": 0.5}
OURS_PER_DATASET = {
    "selected": {
        "Cora": {"hidden": 16, "dropout": 0.9, "weight_decay": 5e-4, "layers": 4, "beta": 0.5},
        "CiteSeer": {"hidden": 128, "dropout": 0.8, "weight_decay": 2e-3, "layers": 4,
                     "beta": 0.5},
    },
    "stage1": {
        "Cora": {"hidden": 16, "dropout": 0.8, "weight_decay": 5e-4, "layers": 4, "beta": 0.5},
        "CiteSeer": {"hidden": 64, "dropout": 0.8, "weight_decay": 1e-3, "layers": 4,
                     "beta": 0.5},
    },
}
SETUPS = ("selected", "stage1", "previous")
# the selection grid (--select), searched in full on each dataset
GRID = {"hidden": (16, 64), "dropout": (0.5, 0.8), "weight_decay": (5e-4, 1e-3),
        "layers": (2, 4), "beta": (0.5,)}
SELECTION = {"seed": 100, "runs": 3, "model": "ours_similarity"}
FULL = {"runs": 10, "epochs": 500}
QUICK = {"runs": 2, "epochs": 100}


def feature_dropout(x, p: float, training: bool):
    """Dropout on the bag-of-words input, a sparse CSR tensor, drawn for its values.

    The same random function as ``F.dropout`` on the dense matrix (a dropped zero
    is still zero), as in Kipf & Welling's code (sparse dropout).  Sparse input
    makes an epoch several times faster: 1.3% of Cora's entries are non-zero
    (0.9% of CiteSeer's), and drawing the dense mask and multiplying the dense
    matrix dominated the epoch time.
    """
    if not training or p == 0.0:
        return x
    return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(),
                                   F.dropout(x.values(), p, True), x.shape,
                                   check_invariants=False)


class GCN(nn.Module):
    """Kipf & Welling: GCNConv -> 16, ReLU, GCNConv -> classes, dropout 0.5."""
    lr = 0.01

    def __init__(self, graph, in_channels, num_classes):
        super().__init__()
        self.edge_index = graph["edge_index"]
        # cached: the normalised adjacency is computed once (transductive setting)
        self.conv1 = GCNConv(in_channels, 16, cached=True)
        self.conv2 = GCNConv(16, num_classes, cached=True)

    def forward(self, x):
        x = feature_dropout(x, 0.5, self.training)
        x = F.relu(self.conv1(x, self.edge_index))
        x = F.dropout(x, 0.5, self.training)
        return self.conv2(x, self.edge_index)

    def param_groups(self):
        # Kipf & Welling regularise the first layer only
        return [{"params": self.conv1.parameters(), "weight_decay": 5e-4},
                {"params": self.conv2.parameters(), "weight_decay": 0.0}]


class GAT(nn.Module):
    """Velickovic et al.: 8 heads x 8, ELU, 1 output head; dropout 0.6 everywhere."""
    lr = 0.005

    def __init__(self, graph, in_channels, num_classes):
        super().__init__()
        self.edge_index = graph["edge_index"]
        self.conv1 = GATConv(in_channels, 8, heads=8, dropout=0.6)
        self.conv2 = GATConv(8 * 8, num_classes, heads=1, concat=False, dropout=0.6)

    def forward(self, x):
        x = feature_dropout(x, 0.6, self.training)
        x = F.elu(self.conv1(x, self.edge_index))
        x = F.dropout(x, 0.6, self.training)
        return self.conv2(x, self.edge_index)

    def param_groups(self):
        return [{"params": self.parameters(), "weight_decay": 5e-4}]


class AttentionPropagation(nn.Module):
    """The AGNN model: Linear -> hidden, ReLU, propagation layers, Linear -> classes.

    AGNN's setup: hidden 16, input dropout 0.5, weight decay 5e-4 (the defaults);
    the dropout before the last layer is 0.5 in every setup.
    """
    lr = 0.01

    def __init__(self, in_channels, num_classes, props, adjacency, hidden=16,
                 dropout=0.5, weight_decay=5e-4):
        super().__init__()
        self.adjacency = adjacency  # edge_index for AGNNConv, a CSRAdjacency for ours
        self.dropout, self.weight_decay = dropout, weight_decay
        self.lin1 = nn.Linear(in_channels, hidden)
        self.props = nn.ModuleList(props)
        self.lin2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = feature_dropout(x, self.dropout, self.training)
        x = F.relu(self.lin1(x))
        for prop in self.props:
            x = prop(x, self.adjacency)
        x = F.dropout(x, 0.5, self.training)
        return self.lin2(x)

    def param_groups(self):
        return [{"params": self.parameters(), "weight_decay": self.weight_decay}]


def ours_settings(dataset: str, args) -> dict:
    """The "ours" settings on ``dataset``: the setup, then any explicit overrides."""
    if args.ours_setup == "previous":
        settings = dict(OURS_PREVIOUS, layers=args.agnn_layers)
    else:
        settings = dict(OURS_PER_DATASET[args.ours_setup][dataset])
    for key in OURS_PREVIOUS:
        value = getattr(args, f"ours_{key}")
        if value is not None:
            settings[key] = value
    return settings


def make_model(key: str, graph: dict, in_channels: int, num_classes: int, args,
               ours: dict | None = None) -> nn.Module:
    """``ours``: the settings of the "ours" models (see ``ours_settings``)."""
    if key == "gcn":
        return GCN(graph, in_channels, num_classes)
    if key == "gat":
        return GAT(graph, in_channels, num_classes)
    # AGNN and ours: the first propagation layer's coefficient (AGNN's beta, our w)
    # is fixed at 1, the later ones are learned
    if key == "agnn":
        props = [AGNNConv(requires_grad=i > 0) for i in range(args.agnn_layers)]
        return AttentionPropagation(in_channels, num_classes, props, graph["edge_index"])
    props = [AffinityAttentionConv(beta=ours["beta"], requires_grad=i > 0)
             for i in range(ours["layers"])]
    adjacency = graph["csr_ones"] if key == "ours_ones" else graph["csr_similarity"]
    return AttentionPropagation(in_channels, num_classes, props, adjacency,
                                hidden=ours["hidden"], dropout=ours["dropout"],
                                weight_decay=ours["weight_decay"])


def load(name: str, data_dir: Path):
    """The normalised graph and the graph forms every model needs."""
    with tempfile.TemporaryDirectory(prefix="graphseg-citation-") as workdir:
        # load_planetoid copies raw/ first: Planetoid writes processed/ next to it
        data = load_planetoid(data_dir / "planetoid", name, workdir)[0]
    raw_x = data.x.clone()
    data = T.NormalizeFeatures()(data)
    n, edge_index = data.num_nodes, data.edge_index

    # cosine of the bag-of-words vectors of each edge's two ends, in [0, 1]
    # (CiteSeer has a few all-zero feature rows: their edges get 0)
    unit = F.normalize(raw_x, p=2.0, dim=1)
    source, target = edge_index
    similarity = (unit[source] * unit[target]).sum(dim=1).clamp(0.0, 1.0)
    graph = {
        "edge_index": edge_index,
        # built once: the layer takes the CSR (self loops of weight 1 included)
        # in place of edge_index, the fastest CPU path
        "csr_ones": CSRAdjacency.from_edge_index(edge_index, torch.ones(edge_index.size(1)),
                                                 n, add_self_loops=True),
        "csr_similarity": CSRAdjacency.from_edge_index(edge_index, similarity, n,
                                                       add_self_loops=True),
    }
    # the models' first layers take the features as a sparse CSR matrix (see
    # feature_dropout); everything else is dense
    graph["features"] = data.x.to_sparse_csr()
    stats = {"nodes": n, "edges": int(edge_index.size(1)), "features": int(data.num_features),
             "classes": int(data.y.max()) + 1, "train": int(data.train_mask.sum()),
             "val": int(data.val_mask.sum()), "test": int(data.test_mask.sum()),
             "edge_similarity_mean": float(similarity.mean())}
    return data, graph, stats


def train_run(key: str, data, graph: dict, num_classes: int, seed: int, args,
              ours: dict | None = None, test: bool = True) -> dict:
    """Train one model from ``seed``; test accuracy at the best-validation epoch.

    ``test=False`` (the selection): the test nodes are not even evaluated.
    """
    seed_everything(seed)
    model = make_model(key, graph, data.num_features, num_classes, args, ours)
    optimizer = torch.optim.Adam(model.param_groups(), lr=model.lr)
    x, y = graph["features"], data.y
    masks = {"train": data.train_mask, "val": data.val_mask}
    if test:
        masks["test"] = data.test_mask
    best = {"val_acc": -1.0, "val_loss": math.inf}
    lowest_loss, last_progress = math.inf, 0
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        optimizer.zero_grad()
        out = model(x)
        F.cross_entropy(out[masks["train"]], y[masks["train"]]).backward()
        optimizer.step()

        model.eval()
        with torch.no_grad():
            out = model(x)
        pred = out.argmax(dim=1)
        acc = {k: float((pred[m] == y[m]).float().mean()) for k, m in masks.items()}
        val_loss = float(F.cross_entropy(out[masks["val"]], y[masks["val"]]))
        # the test accuracy of every epoch is recorded, but only the validation
        # numbers decide which one is reported (as if the model were checkpointed)
        if acc["val"] > best["val_acc"] or (acc["val"] == best["val_acc"]
                                            and val_loss < best["val_loss"]):
            best = {"val_acc": acc["val"], "val_loss": val_loss, "epoch": epoch}
            if test:
                best["test_acc"] = acc["test"]
        # GAT's stopping rule: progress is a new best validation accuracy or loss
        if best["epoch"] == epoch or val_loss < lowest_loss:
            last_progress = epoch
        lowest_loss = min(lowest_loss, val_loss)
        if args.patience and epoch - last_progress >= args.patience:
            break
    best["epochs_run"] = epoch
    best["seconds"] = time.perf_counter() - start
    best["seed"] = seed
    return best


def summarise(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def target_check(results: dict) -> dict:
    """Per dataset: is an AffinityAttentionConv model within one std of the best published?"""
    out = {}
    for dataset, models in results.items():
        name, best = max(((m, p[dataset]) for m, p in PUBLISHED.items()), key=lambda t: t[1])
        variants = {}
        for key in OURS:
            if key not in models:
                continue
            mean, std = models[key]["mean"] * 100, models[key]["std"] * 100
            variants[key] = {"mean": mean, "std": std, "gap": mean - best,
                             "met": mean + std >= best}
        out[dataset] = {"best_published": best, "best_published_model": LABELS[name],
                        "variants": variants,
                        "met": any(v["met"] for v in variants.values()) if variants else None}
    return out


def print_table(results: dict, targets: dict) -> None:
    header = (f"{'dataset':<9} {'model':<25} {'test acc % (ours)':>18} {'published':>9} "
              f"{'val acc %':>9} {'epoch':>6} {'s/run':>6} {'wall s':>7}")
    print(header)
    print("-" * len(header))
    for dataset, models in results.items():
        for key, r in models.items():
            published = PUBLISHED.get(key, {}).get(dataset)
            published = f"{published:.1f}" if published is not None else "-"
            mean_epoch = statistics.fmean(run["epoch"] for run in r["runs"])
            print(f"{dataset:<9} {LABELS[key]:<25} "
                  f"{r['mean'] * 100:>10.1f} ± {r['std'] * 100:<4.1f} {published:>9} "
                  f"{r['val_mean'] * 100:>9.1f} {mean_epoch:>6.0f} "
                  f"{r['wall_seconds'] / len(r['runs']):>6.1f} {r['wall_seconds']:>7.1f}")
    print("\nTarget: AffinityAttentionConv within one std of the best published number, "
          "or better (mean + std >= best)")
    for dataset, t in targets.items():
        if t["met"] is None:
            print(f"  {dataset}: no AffinityAttentionConv model was run")
            continue
        parts = [f"{LABELS[k]} {v['mean']:.1f} ± {v['std']:.1f} ({v['gap']:+.1f}): "
                 f"{'met' if v['met'] else 'NOT met'}" for k, v in t["variants"].items()]
        print(f"  {dataset}: best published {t['best_published']:.1f} "
              f"({t['best_published_model']}); " + "; ".join(parts))


def plot(results: dict, path: str) -> None:
    plt = pyplot()
    if plt is None:
        return
    datasets = list(results)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2),
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        models = results[dataset]
        keys = list(models)
        means = [models[k]["mean"] * 100 for k in keys]
        stds = [models[k]["std"] * 100 for k in keys]
        groups = ((False, "tab:blue", "baseline (mean ± std)"),
                  (True, "tab:orange", "AffinityAttentionConv (mean ± std)"))
        for ours, color, label in groups:
            index = [i for i, k in enumerate(keys) if (k in OURS) == ours]
            if index:
                # points, not bars: the axis does not start at 0
                ax.errorbar(index, [means[i] for i in index], yerr=[stds[i] for i in index],
                            fmt="o", markersize=7, capsize=5, color=color, label=label)
        published = [(i, PUBLISHED[k][dataset]) for i, k in enumerate(keys) if k in PUBLISHED]
        if published:
            ax.scatter(*zip(*published), marker="_", s=400, linewidths=2, color="tab:red",
                       zorder=3, label="published")
        best = max(p[dataset] for p in PUBLISHED.values())
        ax.axhline(best, color="gray", linestyle="--", linewidth=1,
                   label="best published")
        low = min(min(m - s for m, s in zip(means, stds)), best - 5)
        high = max(max(m + s for m, s in zip(means, stds)), best)
        ax.set_ylim(max(0.0, low - 2), min(100.0, high + 2))
        ax.set_xlim(-0.5, len(keys) - 0.5)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([LABELS[k].replace(" (", "\n(") for k in keys], fontsize=8)
        runs = len(next(iter(models.values()))["runs"])
        ax.set(title=f"{dataset} ({runs} runs)", ylabel="test accuracy (%)")
    handles, names = axes[0][0].get_legend_handles_labels()
    # one row under two or more panels; two rows fit under a single panel
    ncol = len(names) if len(datasets) > 1 else math.ceil(len(names) / 2)
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=8)
    rows = math.ceil(len(names) / ncol)
    fig.tight_layout(rect=(0, 0.035 + 0.04 * rows, 1, 1))
    save_figure(fig, path, dpi=120)


def run_all(args, seeds):
    """``results[dataset][model]`` and ``stats[dataset]`` for every dataset and model."""
    results, stats = {}, {}
    for dataset in args.datasets:
        data, graph, stats[dataset] = load(dataset, args.data)
        ours = ours_settings(dataset, args)
        stats[dataset]["ours_settings"] = ours
        results[dataset] = {}
        for key in args.models:
            runs = [train_run(key, data, graph, stats[dataset]["classes"], seed, args, ours)
                    for seed in seeds]
            mean, std = summarise([r["test_acc"] for r in runs])
            results[dataset][key] = {
                "label": LABELS[key], "mean": mean, "std": std,
                "val_mean": statistics.fmean(r["val_acc"] for r in runs),
                "published": PUBLISHED.get(key, {}).get(dataset),
                "settings": ours if key in OURS else None,
                "wall_seconds": sum(r["seconds"] for r in runs), "runs": runs}
            # progress on stderr, so that stdout is the report
            print(f"  {dataset} {LABELS[key]}: {mean * 100:.1f} ± {std * 100:.1f} "
                  f"({results[dataset][key]['wall_seconds']:.1f} s)",
                  file=sys.stderr, flush=True)
    return results, stats


def parse_grid(specs) -> dict:
    """``GRID`` with the axes named in ``specs`` ("KEY=V1,V2,...") replaced."""
    grid = dict(GRID)
    for spec in specs or ():
        key, sep, values = spec.partition("=")
        if not sep or key not in GRID or not values:
            raise ValueError(f"--grid {spec!r}: expected KEY=V1,V2,... with KEY one of "
                             f"{', '.join(GRID)}")
        kind = type(GRID[key][0])  # int (hidden, layers) or float
        try:
            grid[key] = tuple(kind(v) for v in values.split(","))
        except ValueError:
            raise ValueError(f"--grid {spec!r}: the values of {key} must be "
                             f"{kind.__name__}s") from None
    return grid


def grid_points(grid: dict = GRID):
    """Every combination of ``grid``, in a fixed order (the first wins a tie)."""
    points = [{}]
    for key, values in grid.items():
        points = [dict(p, **{key: v}) for p in points for v in values]
    return points


def select(args, seeds):
    """Mean validation accuracy of every grid point; the test nodes are never evaluated."""
    key = SELECTION["model"]
    report, stats = {}, {}
    for dataset in args.datasets:
        data, graph, stats[dataset] = load(dataset, args.data)
        rows = []
        for point in grid_points(args.grid):
            start = time.perf_counter()
            runs = [train_run(key, data, graph, stats[dataset]["classes"], seed, args, point,
                              test=False) for seed in seeds]
            mean, std = summarise([r["val_acc"] for r in runs])
            rows.append({"settings": point, "val_mean": mean, "val_std": std,
                         "epochs": [r["epoch"] for r in runs],
                         "seconds": time.perf_counter() - start})
            print(f"  {dataset} {point}: val {mean * 100:.2f} ± {std * 100:.2f} "
                  f"({rows[-1]['seconds']:.1f} s)", file=sys.stderr, flush=True)
        # max() keeps the first of equal means: the grid order breaks ties
        best = max(rows, key=lambda r: r["val_mean"])
        report[dataset] = {"rows": rows, "selected": best["settings"]}
    return report, stats


def print_selection(report: dict) -> None:
    names = list(GRID)  # every grid has GRID's axes, in this order
    header = " ".join(f"{n:>12}" for n in names) + f" {'val acc %':>14}"
    for dataset, r in report.items():
        print(f"\n{dataset} ({SELECTION['model']}), mean ± std validation accuracy:")
        print(header)
        print("-" * len(header))
        for row in sorted(r["rows"], key=lambda row: -row["val_mean"]):
            print(" ".join(f"{row['settings'][n]:>12g}" for n in names)
                  + f" {row['val_mean'] * 100:>8.2f} ± {row['val_std'] * 100:.2f}")
        print(f"selected: {r['selected']}")


def main(argv=None) -> int:
    parser = benchmark_parser(
        __doc__, quick=f"{QUICK['runs']} runs of {QUICK['epochs']} epochs; --runs / --epochs "
                       "given explicitly still win", plot=True,
        seed=None, seed_help=f"run i uses seed + i (default 0; --select: {SELECTION['seed']})",
        threads=1, threads_help="torch threads (default 1: see the docstring)")
    parser.add_argument("--data", type=Path, default=DATA_DIR,
                        help="data kit folder holding planetoid/{Cora,CiteSeer}/raw "
                             "(default: $GRAPHSEG_DATA or ../shared/data)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--runs", type=int, help="seeds per model (default 10; quick: 2)")
    parser.add_argument("--epochs", type=int,
                        help=f"epochs per run, at most (default {FULL['epochs']}; "
                             f"quick: {QUICK['epochs']})")
    parser.add_argument("--patience", type=int, default=100,
                        help="stop after this many epochs without a new best validation "
                             "accuracy or loss (0: never; default 100)")
    parser.add_argument("--agnn-layers", type=int, default=4,
                        help="propagation layers of AGNN (default 4), and of ours with "
                             "--ours-setup previous")
    parser.add_argument("--ours-setup", choices=SETUPS, default="selected",
                        help="settings of the ours_* models: 'selected' (default), per "
                             "dataset on validation accuracy; 'stage1', the picks of the "
                             "default grid before it was extended; or 'previous' (AGNN's: "
                             "hidden 16, dropout 0.5, weight decay 5e-4, --agnn-layers, "
                             "beta 0.5); the --ours-* flags below override any of them")
    parser.add_argument("--ours-hidden", type=int, help="hidden size of ours")
    parser.add_argument("--ours-dropout", type=float, help="input dropout of ours")
    parser.add_argument("--ours-weight-decay", type=float, help="weight decay of ours")
    parser.add_argument("--ours-layers", type=int, help="propagation layers of ours")
    parser.add_argument("--beta", "--ours-beta", dest="ours_beta", type=float,
                        help="AffinityAttentionConv's edge coefficient")
    parser.add_argument("--select", action="store_true",
                        help=f"the hyper-parameter selection instead: {SELECTION['model']} "
                             f"at every point of the grid, {SELECTION['runs']} seeds from "
                             f"{SELECTION['seed']} by default, validation accuracy only")
    parser.add_argument("--grid", nargs="+", metavar="KEY=V1,V2",
                        help="with --select: replace these axes of the grid, e.g. "
                             "--grid hidden=64,128 weight_decay=1e-3,5e-3 (default grid: "
                             + "; ".join(f"{k}={','.join(f'{v:g}' for v in vs)}"
                                         for k, vs in GRID.items()) + ")")
    args = parser.parse_args(argv)
    if args.grid and not args.select:
        parser.error("--grid only applies to --select")
    try:
        args.grid = parse_grid(args.grid)
    except ValueError as error:
        parser.error(str(error))
    # explicit --runs / --epochs win over the (quick) defaults
    runs = {"runs": SELECTION["runs"]} if args.select else {}
    apply_defaults(args, dict(QUICK, **runs), dict(FULL, **runs))
    if args.seed is None:
        args.seed = SELECTION["seed"] if args.select else 0
    if min(args.runs, args.epochs, args.agnn_layers, args.threads) < 1 or args.patience < 0:
        parser.error("--runs, --epochs, --agnn-layers and --threads must be at least 1, "
                     "--patience at least 0")
    if (args.ours_hidden or 1) < 1 or (args.ours_layers or 1) < 1 or not (
            0.0 <= (args.ours_dropout or 0.0) < 1.0):
        parser.error("--ours-hidden and --ours-layers must be at least 1, "
                     "--ours-dropout in [0, 1)")
    if any(missing(args.data / "planetoid" / name / "raw") for name in args.datasets):
        return 2

    seeds = [args.seed + i for i in range(args.runs)]
    info = machine(args.threads)
    print(machine_line(info))
    print(f"seeds {seeds[0]}..{seeds[-1]} ({args.runs} runs); at most {args.epochs} epochs, "
          f"patience {args.patience or 'off'}; the epoch of best validation accuracy is "
          f"reported; AGNN: {args.agnn_layers} propagation layers")
    if args.select:
        print(f"selection: {SELECTION['model']} on every point of {args.grid}; validation "
              "accuracy only (the test nodes are not evaluated)")
    else:
        for dataset in args.datasets:
            print(f"ours on {dataset} ({args.ours_setup}): " + ", ".join(
                f"{k}={v:g}" for k, v in ours_settings(dataset, args).items()))
    if args.quick:
        print(f"quick mode: {args.runs} runs of {args.epochs} epochs per model (the full "
              f"protocol is {FULL['runs']} runs of {FULL['epochs']} epochs); numbers are "
              "indicative only")

    # torch's global settings are restored afterwards: main() also runs inside pytest
    deterministic = torch.are_deterministic_algorithms_enabled()
    start_all = time.perf_counter()
    try:
        with torch_threads(args.threads), warnings.catch_warnings():
            # bitwise reproducible runs; on CPU every op used here has a deterministic kernel
            torch.use_deterministic_algorithms(True)
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            if args.select:
                results, stats = select(args, seeds)
            else:
                results, stats = run_all(args, seeds)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    total = time.perf_counter() - start_all

    if args.select:
        print_selection(results)
        print(f"\ntotal wall time {total:.1f} s")
        if args.json:
            write_json(args.json, {"machine": info, "settings": vars(args), "seeds": seeds,
                                   "grid": args.grid, "datasets": stats, "selection": results,
                                   "total_seconds": total})
        return 0

    print()
    targets = target_check(results)
    print_table(results, targets)
    print(f"\ntotal wall time {total:.1f} s")
    if args.json:
        write_json(args.json, {"machine": info, "settings": vars(args), "seeds": seeds,
                               "datasets": stats, "results": results, "target": targets,
                               "total_seconds": total})
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
