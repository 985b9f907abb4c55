"""Every implementation of AffinityAttentionConv against the message-passing reference."""
import pytest
import torch

from graphseg.graph import CSRAdjacency, GridAdjacency, grid_graph, image_to_graph
from graphseg.nn import A2GNN, AffinityAttentionConv
from graphseg.ops import csr_attention, grid_attention

MODES = ["gate", "mask"]


def grid_case(h=6, w=7, radius=2, window="disk", threshold=0.0, seed=0, f=5):
    g = torch.Generator().manual_seed(seed)
    feats = torch.rand(3, h, w, generator=g, dtype=torch.float64) * 4
    data = image_to_graph(feats, radius=radius, window=window, threshold=threshold)
    x = torch.randn(h * w, f, generator=g, dtype=torch.float64)
    return x, data


def reference(x, edge_index, edge_weight, negative, add_self_loops, w=1.3):
    conv = AffinityAttentionConv(negative=negative, add_self_loops=add_self_loops,
                                 impl="message_passing").double()
    with torch.no_grad():
        conv.w.fill_(w)
    x = x.clone().requires_grad_(True)
    weight = None if edge_weight is None else edge_weight.clone().requires_grad_(True)
    out = conv(x, edge_index, weight)
    loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum()
    loss.backward()
    return out.detach(), x.grad, None if weight is None else weight.grad, conv.w.grad


def run_impl(impl, x, graph, negative, add_self_loops, w=1.3):
    conv = AffinityAttentionConv(negative=negative, add_self_loops=add_self_loops,
                                 impl=impl).double()
    with torch.no_grad():
        conv.w.fill_(w)
    x = x.clone().requires_grad_(True)
    out = conv(x, graph) if not isinstance(graph, tuple) else conv(x, *graph)
    loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum()
    loss.backward()
    return out.detach(), x.grad, conv.w.grad


@pytest.mark.parametrize("negative", MODES)
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("shape", [(6, 7, 2, "disk", 0.0), (3, 4, 4, "square", 0.0),
                                   (5, 5, 1, "square", 0.3)])
def test_grid_path_matches_reference_values_and_gradients(negative, add_self_loops, weighted,
                                                          shape):
    h, w, radius, window, threshold = shape
    x, data = grid_case(h, w, radius, window, threshold)
    edge_weight = data.edge_weight if weighted else None
    out, gx, gweight, gw = reference(x, data.edge_index, edge_weight, negative, add_self_loops)
    adj = GridAdjacency.from_edge_index(data.edge_index, edge_weight, (h, w), radius, window)
    weight = None
    if weighted:
        weight = adj.weight.clone().requires_grad_(True)
        adj = GridAdjacency(h, w, adj.offsets, adj.mask, weight)
    for impl in ("grid", "csr"):  # both kernels run on a GridAdjacency
        if weighted:
            weight.grad = None
        out2, gx2, gw2 = run_impl(impl, x, adj, negative, add_self_loops)
        assert torch.allclose(out2, out, atol=1e-12)
        assert torch.allclose(gx2, gx, atol=1e-10)
        assert torch.allclose(gw2, gw, atol=1e-10)
        if weighted:
            # the reference's gradient of each edge weight sits in the edge's plane slot
            src, dst = data.edge_index
            dy = src // w - dst // w
            dx = src % w - dst % w
            k = [adj.offsets.tolist().index([a, b]) for a, b in zip(dy.tolist(), dx.tolist())]
            planes = weight.grad[torch.tensor(k), dst // w, dst % w]
            assert torch.allclose(planes, gweight, atol=1e-10)


@pytest.mark.parametrize("impl", ["csr", "dense"])
@pytest.mark.parametrize("negative", MODES)
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_csr_and_dense_paths_match_reference(impl, negative, add_self_loops, weighted):
    g = torch.Generator().manual_seed(1)
    n = 15
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    pairs = torch.randperm(n * n, generator=g)[:60]
    edge_index = torch.stack([pairs % n, pairs // n])  # includes a few self loops
    edge_weight = torch.rand(60, generator=g, dtype=torch.float64) if weighted else None
    out, gx, _, gw = reference(x, edge_index, edge_weight, negative, add_self_loops)
    out2, gx2, gw2 = run_impl(impl, x, (edge_index, edge_weight), negative, add_self_loops)
    assert torch.allclose(out2, out, atol=1e-12)
    assert torch.allclose(gx2, gx, atol=1e-10)
    assert torch.allclose(gw2, gw, atol=1e-10)
    if impl == "csr":
        adj = CSRAdjacency.from_edge_index(edge_index, edge_weight, n,
                                           add_self_loops=add_self_loops)
        out3, gx3, gw3 = run_impl("csr", x, adj, negative, add_self_loops)
        assert torch.allclose(out3, out, atol=1e-12) and torch.allclose(gx3, gx, atol=1e-10)


@pytest.mark.parametrize("negative", MODES)
def test_gradcheck_grid_and_csr_kernels(negative):
    x, data = grid_case(4, 5, 2, "disk", seed=3, f=3)
    adj = GridAdjacency.from_data(data)
    weight = adj.weight.clone().requires_grad_(True)
    w = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    x.requires_grad_(True)

    def grid_fn(x, weight, w):
        planes = GridAdjacency(4, 5, adj.offsets, adj.mask, weight)
        return grid_attention(x, planes, w, 2.0, negative, add_self_loops=True)[0]

    assert torch.autograd.gradcheck(grid_fn, (x, weight, w))
    csr = CSRAdjacency.from_edge_index(data.edge_index, data.edge_weight, 20,
                                       add_self_loops=True)
    csr_weight = csr.weight.clone().requires_grad_(True)

    def csr_fn(x, weight, w):
        return csr_attention(x, csr.with_weight(weight), w, 2.0, negative)[0]

    assert torch.autograd.gradcheck(csr_fn, (x, csr_weight, w))


def test_isolated_nodes_and_all_negative_cosines_on_fast_paths():
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [-2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    edge_index = torch.tensor([[1, 2, 0, 0], [0, 0, 1, 2]])  # node 3 isolated
    weight = torch.ones(4, dtype=torch.float64)
    for add_self_loops in (True, False):
        ref = AffinityAttentionConv(negative="mask", add_self_loops=add_self_loops,
                                    impl="message_passing")(x, edge_index, weight)
        for impl in ("csr", "dense"):
            out = AffinityAttentionConv(negative="mask", add_self_loops=add_self_loops,
                                        impl=impl)(x, edge_index, weight)
            assert torch.allclose(out, ref) and torch.isfinite(out).all()
    # on a grid: a 1 x 3 map whose middle node is anti-parallel to both neighbours
    x = torch.tensor([[1.0], [-1.0], [1.0]], dtype=torch.float64)
    g = grid_graph(1, 3, 1, self_loops=False)
    adj = GridAdjacency.from_edge_index(g.edge_index, None, (1, 3), 1)
    out = AffinityAttentionConv(negative="mask", add_self_loops=False, impl="grid")(x, adj)
    assert torch.all(out == 0)


def as_matrix(edge_index, values, n):
    return torch.zeros(n, n, dtype=values.dtype).index_put((edge_index[1], edge_index[0]),
                                                           values)


def test_native_attention_weights_and_round_trips():
    x, data = grid_case()
    adj = GridAdjacency.from_data(data)
    edge_index, edge_weight = adj.to_edge_index()
    assert torch.equal(edge_index, data.edge_index)
    assert torch.allclose(edge_weight, data.edge_weight)
    conv = AffinityAttentionConv().double()
    _, (ref_index, ref_alpha) = AffinityAttentionConv(impl="message_passing").double()(
        x, data.edge_index, data.edge_weight, return_attention_weights=True)
    expected = as_matrix(ref_index, ref_alpha, 42)
    for impl in ("grid", "csr"):
        _, attention = AffinityAttentionConv(impl=impl).double()(
            x, adj, return_attention_weights=True)
        assert isinstance(attention, GridAdjacency)
        assert torch.allclose(attention.weight.sum(dim=0),
                              torch.ones(6, 7, dtype=torch.float64))
        assert torch.allclose(as_matrix(*attention.to_edge_index(), 42), expected)
    # the CSR structure of a GridAdjacency is built once
    assert adj.to_csr(True).col is adj.to_csr(True).col
    assert adj.to_csr(True).num_edges == adj.to_csr(False).num_edges  # self loops already in

    csr = CSRAdjacency.from_edge_index(data.edge_index, data.edge_weight, 42,
                                       add_self_loops=True)
    _, csr_attention_weights = conv(x, csr, return_attention_weights=True)
    assert torch.allclose(as_matrix(*csr_attention_weights.to_edge_index(), 42), expected)
    # transpose bookkeeping: t_perm lists edges by source, t_col their targets
    assert torch.equal(csr.col[csr.t_perm], torch.sort(csr.col, stable=True).values)
    assert torch.equal(csr.t_col, csr.row[csr.t_perm])


def test_sparse_tensor_input_on_csr_path():
    torch_sparse = pytest.importorskip("torch_sparse")
    x, data = grid_case()
    adj = torch_sparse.SparseTensor(row=data.edge_index[1], col=data.edge_index[0],
                                    value=data.edge_weight, sparse_sizes=(42, 42))
    ref = AffinityAttentionConv(impl="message_passing")(x, data.edge_index, data.edge_weight)
    assert torch.allclose(AffinityAttentionConv(impl="csr")(x, adj), ref)


def test_a2gnn_on_every_path_agrees():
    _, data = grid_case(8, 9, 3, "square")
    x = torch.rand(72, 10)
    graphs = {"grid": GridAdjacency.from_data(data),
              "csr": CSRAdjacency.from_edge_index(data.edge_index, data.edge_weight, 72,
                                                  add_self_loops=True),
              "message_passing": (data.edge_index, data.edge_weight)}
    outputs = []
    for impl, graph in graphs.items():
        torch.manual_seed(0)
        model = A2GNN(10, 3, hidden_channels=16, impl=impl).eval()
        graph = graph if isinstance(graph, tuple) else (graph,)
        outputs.append(model(x, *graph).logits)
    for out in outputs[1:]:
        assert torch.allclose(out, outputs[0], atol=1e-5)


def test_dispatch_errors():
    x, data = grid_case()
    adj = GridAdjacency.from_data(data)
    with pytest.raises(ValueError, match="impl='grid' needs a GridAdjacency"):
        AffinityAttentionConv(impl="grid")(x, data.edge_index)
    with pytest.raises(ValueError, match="edge_weight must be None with a GridAdjacency"):
        AffinityAttentionConv()(x, adj, data.edge_weight)
    with pytest.raises(ValueError, match="GridAdjacency has 42 nodes but x has 41"):
        AffinityAttentionConv()(x[:41], adj)
    with pytest.raises(ValueError, match="impl must be one of"):
        AffinityAttentionConv(impl="fast")
    with pytest.raises(ValueError, match="outside the radius-1 square window"):
        GridAdjacency.from_edge_index(data.edge_index, None, (6, 7), 1)
    with pytest.raises(ValueError, match="data has no 'grid_size'"):
        GridAdjacency.from_data(type(data)(edge_index=data.edge_index))
    with pytest.raises(ValueError, match="impl='dense' needs an N x N matrix"):
        AffinityAttentionConv(impl="dense")(torch.rand(20000, 2), torch.zeros(2, 0).long())
    # the same layer as the reference on an adjacency: "auto" picks the native kernel
    ref = AffinityAttentionConv(impl="message_passing").double()(x, adj)
    assert torch.allclose(ref, AffinityAttentionConv().double()(x, adj))


@pytest.mark.parametrize("negative", MODES)
def test_csr_kernel_with_one_w_per_edge_is_two_graphs_in_one(negative):
    # two graphs with their own w, joined block-diagonally: each graph's own result,
    # and gradcheck through the per-edge w
    (x1, d1), (x2, d2) = grid_case(4, 5, 2, seed=1, f=3), grid_case(3, 4, 1, seed=2, f=3)
    g1, g2 = (CSRAdjacency.from_edge_index(d.edge_index, d.edge_weight, d.num_nodes,
                                           add_self_loops=True) for d in (d1, d2))
    joined = CSRAdjacency.block_diagonal([g1, g2])
    assert joined.num_nodes == 32 and joined.num_edges == g1.num_edges + g2.num_edges
    assert joined.self_loops and bool(joined.is_self.sum() == 32)
    w = torch.tensor([0.7, 1.9], dtype=torch.float64, requires_grad=True)
    edge_graph = (joined.row >= 20).long()

    def joined_fn(x, w):
        return csr_attention(x, joined, w.index_select(0, edge_graph), 2.0, negative)[0]

    x = torch.cat([x1, x2]).requires_grad_(True)
    out = joined_fn(x, w)
    assert torch.allclose(out[:20], csr_attention(x1, g1, w[:1], 2.0, negative)[0])
    assert torch.allclose(out[20:], csr_attention(x2, g2, w[1:], 2.0, negative)[0])
    assert torch.autograd.gradcheck(joined_fn, (x, w))
    with pytest.raises(ValueError, match="every graph has edge weights or none"):
        CSRAdjacency.block_diagonal([g1, g2.with_weight(None)])
