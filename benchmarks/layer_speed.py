"""Forward + backward time and peak memory of graph attention layers, side by side.

Every implementation of :class:`graphseg.nn.AffinityAttentionConv` (grid, csr,
auto on a plain edge_index, message_passing, dense where it fits) against PyG's
AGNNConv, GATConv (1 head) and GCNConv, on pixel grid graphs (radius-4 square and
radius-5 disk windows) and on Cora's citation graph.  Each case runs in a fresh
process, so its peak memory is its own: peak RSS on CPU,
``torch.cuda.max_memory_allocated`` on CUDA.
Ratios are against AGNNConv on the same graph, in the same run.

    python benchmarks/layer_speed.py --quick
    python benchmarks/layer_speed.py --json out.json --plot out.png
    python benchmarks/layer_speed.py --sizes 128 --features 256 --windows disk5
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from graphseg.data import kit_root

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import (  # noqa: E402
    apply_defaults,
    benchmark_parser,
    machine,
    machine_line,
    pyplot,
    save_figure,
    write_json,
)

# "auto": the layer called as PyG users do, layer(x, edge_index, edge_weight), on its
# cached layout (the other impls of ours get the adjacency object they run on)
LAYERS = [("AffinityAttentionConv", "grid"), ("AffinityAttentionConv", "csr"),
          ("AffinityAttentionConv", "auto"),
          ("AffinityAttentionConv", "message_passing"), ("AffinityAttentionConv", "dense"),
          ("AGNNConv", ""), ("GATConv", ""), ("GCNConv", "")]
WINDOWS = {"square4": (4, "square"), "disk5": (5, "disk")}
DENSE_MAX_NODES = 4096
DATA_DIR = kit_root()
# the grids of a full and of a --quick run (Cora is in both unless --no-cora)
FULL = {"sizes": [32, 64, 128, 256], "windows": ["square4", "disk5"], "features": [64, 256]}
QUICK = {"sizes": [32, 64], "windows": ["disk5"], "features": [64]}


def build_case(case):
    """The layer, its inputs and the graph size for one case (runs in the worker)."""
    import torch
    from torch_geometric.nn import AGNNConv, GATConv, GCNConv

    from graphseg.graph import CSRAdjacency, GridAdjacency, image_to_graph
    from graphseg.nn import AffinityAttentionConv

    torch.manual_seed(case["seed"])
    device = torch.device(case["device"])
    f = case["features"]
    if case["graph"] == "cora":
        import shutil
        import tempfile

        from torch_geometric.datasets import Planetoid
        root = tempfile.mkdtemp()
        shutil.copytree(DATA_DIR / "planetoid" / "Cora", Path(root) / "Cora")
        data = Planetoid(root, "Cora")[0]
        edge_index, edge_weight = data.edge_index, torch.rand(data.num_edges)
        n, grid = data.num_nodes, None
    else:
        radius, window = WINDOWS[case["window"]]
        size = case["size"]
        # edge weights: affinities of a random 16-channel map, as from an affinity head
        graph = image_to_graph(torch.rand(16, size, size), radius=radius, window=window,
                               threshold=0.0)
        edge_index, edge_weight, n = graph.edge_index, graph.edge_weight, graph.num_nodes
        grid = graph
    x = torch.randn(n, f, device=device, requires_grad=True)
    name, impl = case["layer"], case["impl"]
    if name == "AffinityAttentionConv":
        layer = AffinityAttentionConv(impl=impl)
        if impl == "grid":
            args = (GridAdjacency.from_data(grid).to(device),)
        elif impl == "csr":
            args = (CSRAdjacency.from_edge_index(edge_index, edge_weight, n,
                                                 add_self_loops=True).to(device),)
        else:
            args = (edge_index.to(device), edge_weight.to(device))
    elif name == "AGNNConv":
        layer, args = AGNNConv(), (edge_index.to(device),)
    elif name == "GATConv":
        layer, args = GATConv(f, f, heads=1), (edge_index.to(device),)
    else:
        layer, args = GCNConv(f, f), (edge_index.to(device), edge_weight.to(device))
    return layer.to(device), x, args, n, edge_index.size(1)


def worker(case) -> dict:
    """Time one case and measure its peak memory; prints one JSON line."""
    import torch
    torch.set_num_threads(case["threads"])
    if case["device"] == "cpu" and case["memory_limit_gb"]:
        limit = int(case["memory_limit_gb"] * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    result = {"case": case}
    try:
        layer, x, args, n, e = build_case(case)
        result.update(nodes=n, edges=e)
        cuda = case["device"] == "cuda"

        def step():
            out = layer(x, *args)
            out.square().mean().backward()
            x.grad = None

        step()  # warm-up: caches, kernel compilation
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(case["repeats"]):
            start = time.perf_counter()
            step()
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        result["seconds"] = statistics.median(times)
        if cuda:
            result["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        else:
            result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except (RuntimeError, MemoryError) as error:
        result["error"] = "out of memory" if "memory" in str(error).lower() \
            else str(error).splitlines()[0][:120]
    return result


def run_case(case, timeout: float) -> dict:
    command = [sys.executable, __file__, "--worker", json.dumps(case)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": case, "error": f"timeout ({timeout:.0f} s)"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["killed"])[-1]
        return {"case": case, "error": f"exit {done.returncode}: {tail[:120]}"}
    return json.loads(lines[-1])


def idle_rss_mb() -> float:
    """Peak RSS of a process that only imports the stack: the floor of every CPU number."""
    code = ("import resource, torch, torch_geometric, graphseg.nn; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                text=True, check=True).stdout)


def cases(args):
    graphs = [("grid", size, window) for window in args.windows for size in args.sizes]
    if args.cora:
        graphs.append(("cora", None, None))
    for device in args.devices:
        for graph, size, window in graphs:
            for f in args.features:
                for layer, impl in LAYERS:
                    if args.layers and (impl or layer) not in args.layers:
                        continue
                    if impl == "grid" and graph != "grid":
                        continue
                    if impl == "dense" and (graph == "grid" and size * size > DENSE_MAX_NODES):
                        continue
                    yield {"device": device, "graph": graph, "size": size, "window": window,
                           "features": f, "layer": layer, "impl": impl, "seed": args.seed,
                           "repeats": args.repeats, "threads": args.threads,
                           "memory_limit_gb": args.memory_limit_gb}


def label(case) -> str:
    if case["graph"] == "cora":
        return "Cora"
    return f"{case['size']}x{case['size']} {case['window']}"


def print_table(results) -> None:
    header = (f"{'device':<6} {'graph':<16} {'N':>7} {'E':>9} {'F':>4} {'layer':<38} "
              f"{'fwd+bwd ms':>11} {'speed-up':>9} {'peak MB':>9} {'mem ratio':>9}")
    print(header)
    print("-" * len(header))
    baseline = {}
    for r in results:
        c = r["case"]
        if c["layer"] == "AGNNConv" and "seconds" in r:
            baseline[(c["device"], label(c), c["features"])] = r
    for r in results:
        c = r["case"]
        name = c["layer"] + (f" ({c['impl']})" if c["impl"] else "")
        base = baseline.get((c["device"], label(c), c["features"]))
        if "seconds" not in r:
            print(f"{c['device']:<6} {label(c):<16} {r.get('nodes', ''):>7} "
                  f"{r.get('edges', ''):>9} {c['features']:>4} {name:<38} {r['error']}")
            continue
        speed = f"{base['seconds'] / r['seconds']:.1f}x" if base else "-"
        mem = f"{r['peak_mb'] / base['peak_mb']:.2f}" if base else "-"
        print(f"{c['device']:<6} {label(c):<16} {r['nodes']:>7} {r['edges']:>9} "
              f"{c['features']:>4} {name:<38} {r['seconds'] * 1000:>11.1f} {speed:>9} "
              f"{r['peak_mb']:>9.0f} {mem:>9}")


def plot(results, path: str) -> None:
    """Time and memory against N: one column per feature size, one colour per layer,
    solid for the disk window, dashed for the square one."""
    plt = pyplot()
    if plt is None:
        return
    grid = [r for r in results if "seconds" in r and r["case"]["graph"] == "grid"]
    features = sorted({r["case"]["features"] for r in grid})
    names = [layer + (f" ({impl})" if impl else "") for layer, impl in LAYERS]
    colours = dict(zip(names, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(2, max(len(features), 1), figsize=(6 * len(features), 8),
                             squeeze=False)
    series = {}
    for r in grid:
        c = r["case"]
        name = c["layer"] + (f" ({c['impl']})" if c["impl"] else "")
        key = (c["features"], c["device"], name, c["window"])
        series.setdefault(key, []).append((r["nodes"], r["seconds"], r["peak_mb"]))
    for (f, device, name, window), points in sorted(series.items()):
        column = features.index(f)
        n, seconds, memory = zip(*sorted(points))
        style = dict(color=colours[name], marker="o", linestyle="-" if window == "disk5" else "--",
                     label=f"{name}, {window}" + ("" if device == "cpu" else f", {device}"))
        axes[0][column].loglog(n, seconds, **style)
        axes[1][column].loglog(n, memory, **style)
    for column, f in enumerate(features):
        axes[0][column].set(title=f"F = {f}", xlabel="nodes N", ylabel="forward + backward (s)")
        axes[1][column].set(xlabel="nodes N", ylabel="peak memory (MB)")
    if features:
        axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def main(argv=None) -> int:
    parser = benchmark_parser(
        __doc__, quick="32 and 64 grids, disk5, F=64, Cora, 3 repeats; --sizes / --windows "
                       "/ --features given explicitly still win", plot=True,
        seed=0, threads=os.cpu_count(),
        threads_help="torch threads of every case (default: one per CPU)")
    parser.add_argument("--sizes", type=int, nargs="+",
                        help=f"grid sides (default {FULL['sizes']}; quick: {QUICK['sizes']})")
    parser.add_argument("--windows", nargs="+", choices=sorted(WINDOWS),
                        help=f"default {FULL['windows']}; quick: {QUICK['windows']}")
    parser.add_argument("--features", type=int, nargs="+",
                        help=f"default {FULL['features']}; quick: {QUICK['features']}")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="default: cpu, and cuda when available")
    parser.add_argument("--layers", nargs="+", metavar="NAME",
                        help="only these: grid, csr, auto, message_passing, dense (our "
                             "implementations), AGNNConv, GATConv, GCNConv")
    parser.add_argument("--no-cora", dest="cora", action="store_false")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    parser.add_argument("--memory-limit-gb", type=float, default=20.0,
                        help="address-space limit per CPU case (0: none)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    import torch
    if args.devices is None:
        args.devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    # explicit --sizes / --windows / --features win over the (quick) defaults
    apply_defaults(args, QUICK, FULL)
    if args.cora and not (DATA_DIR / "planetoid" / "Cora").is_dir():
        print(f"Cora not found under {DATA_DIR}: skipping it")
        args.cora = False

    info = dict(machine(args.threads), idle_rss_mb=idle_rss_mb())
    print(machine_line(info))
    print(f"seed={args.seed} threads={args.threads} repeats={args.repeats} (median)")
    results = []
    for case in cases(args):
        results.append(run_case(case, args.timeout))
        r = results[-1]
        status = f"{r['seconds'] * 1000:.1f} ms" if "seconds" in r else r["error"]
        print(f"  {label(case)} F={case['features']} {case['layer']} {case['impl']}: {status}",
              file=sys.stderr, flush=True)
    print_table(results)
    if args.json:
        write_json(args.json, {"machine": info, "args": vars(args), "results": results})
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
