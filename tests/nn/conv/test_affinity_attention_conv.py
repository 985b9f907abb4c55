import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.nn import AGNNConv
from torch_geometric.utils import to_torch_coo_tensor, to_torch_csr_tensor

from graphseg.graph import grid_graph
from graphseg.nn import AffinityAttentionConv

MODES = ["gate", "mask"]


def dense_reference(x, edge_index, edge_weight, w, beta, negative, add_self_loops):
    """Eq. 3.18 with N x N matrices: P[i, j] is the attention of target i on source j."""
    n = x.size(0)
    src, dst = edge_index
    adjacent = torch.zeros(n, n, dtype=torch.bool)
    adjacent[dst, src] = True
    weights = torch.zeros(n, n, dtype=x.dtype)
    if edge_weight is not None:
        weights[dst, src] = edge_weight
    eye = torch.eye(n, dtype=torch.bool)
    if add_self_loops:
        adjacent |= eye
        weights[eye] = 1.0 if edge_weight is not None else 0.0
    xn = F.normalize(x, dim=-1)
    cos = xn @ xn.t()
    if negative == "gate":
        score = w * cos + beta * (cos > 0).to(x.dtype) * weights
    else:
        score = w * cos + beta * weights
        adjacent &= (cos >= 0) | eye
    p = score.masked_fill(~adjacent, float("-inf")).softmax(dim=1).nan_to_num(0.0)
    return p @ x, p


def random_graph(n=12, e=40, f=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=dtype)
    pairs = torch.randperm(n * n, generator=g)[:e]
    edge_index = torch.stack([pairs % n, pairs // n])
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    weight = torch.rand(edge_index.size(1), generator=g, dtype=dtype)
    return x, edge_index, weight


def sparse_forms(edge_index, weight, n):
    adj = torch.stack([edge_index[1], edge_index[0]])  # PyG's adj_t[target, source]
    forms = {"coo": to_torch_coo_tensor(adj, weight, size=n),
             "csr": to_torch_csr_tensor(adj, weight, size=n)}
    try:
        from torch_sparse import SparseTensor
    except ImportError:
        return forms
    forms["SparseTensor"] = SparseTensor(row=adj[0], col=adj[1], value=weight,
                                         sparse_sizes=(n, n))
    return forms


@pytest.mark.parametrize("negative", MODES)
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_matches_dense_reference(negative, add_self_loops, weighted):
    x, edge_index, weight = random_graph()
    if not add_self_loops:  # keep a few self loops of the input
        edge_index = torch.cat([edge_index, torch.tensor([[0, 3], [0, 3]])], dim=1)
        weight = torch.cat([weight, torch.tensor([0.5, 1.0])])
    weight = weight if weighted else None
    conv = AffinityAttentionConv(beta=10.0, negative=negative, add_self_loops=add_self_loops)
    with torch.no_grad():
        conv.w.fill_(2.5)
    out, (ei, alpha) = conv(x, edge_index, weight, return_attention_weights=True)
    expected, p = dense_reference(x, edge_index, weight, 2.5, 10.0, negative, add_self_loops)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(alpha, p[ei[1], ei[0]], atol=1e-6)


@pytest.mark.parametrize("negative", MODES)
def test_sparse_input_forms_match_edge_index(negative):
    x, edge_index, weight = random_graph(n=10, e=35, seed=1)
    conv = AffinityAttentionConv(negative=negative)
    expected, (ei, alpha) = conv(x, edge_index, weight, return_attention_weights=True)
    dense_alpha = torch.zeros(10, 10)
    dense_alpha[ei[1], ei[0]] = alpha
    for name, adj in sparse_forms(edge_index, weight, 10).items():
        out, att = conv(x, adj, return_attention_weights=True)
        assert torch.allclose(out, expected, atol=1e-6), name
        att_dense = att.to_dense()
        assert torch.allclose(att_dense, dense_alpha, atol=1e-6), name


@pytest.mark.sparse
@pytest.mark.parametrize("negative", MODES)
def test_sparse_tensor_without_values_is_unweighted(negative):
    torch_sparse = pytest.importorskip("torch_sparse")
    x, edge_index, _ = random_graph(seed=2)
    adj = torch_sparse.SparseTensor(row=edge_index[1], col=edge_index[0], sparse_sizes=(12, 12))
    conv = AffinityAttentionConv(negative=negative)
    out, att = conv(x, adj, return_attention_weights=True)
    assert isinstance(att, torch_sparse.SparseTensor)
    assert torch.allclose(out, conv(x, edge_index), atol=1e-6)


def test_equals_agnnconv_without_edge_weights():
    torch.manual_seed(0)
    g = grid_graph(9, 11, radius=3, window="disk")
    x = torch.randn(g.num_nodes, 16, requires_grad=True)
    # the reference is AGNNConv to the bit; the default (fast) path up to rounding
    ours, theirs = AffinityAttentionConv(impl="message_passing"), AGNNConv()
    fast = AffinityAttentionConv()
    with torch.no_grad():
        ours.w.fill_(1.7)
        fast.w.fill_(1.7)
        theirs.beta.fill_(1.7)
    a, b, c = ours(x, g.edge_index), theirs(x, g.edge_index), fast(x, g.edge_index)
    assert torch.equal(a, b)
    assert torch.allclose(c, b, atol=1e-5)
    grad_a, = torch.autograd.grad(a.square().sum(), x)
    grad_b, = torch.autograd.grad(b.square().sum(), x)
    grad_c, = torch.autograd.grad(c.square().sum(), x)
    assert torch.equal(grad_a, grad_b)
    assert torch.allclose(grad_c, grad_b, atol=1e-4)
    # and with a fixed w, against AGNNConv(requires_grad=False)
    fixed = AffinityAttentionConv(requires_grad=False, impl="message_passing")
    assert "w" not in dict(fixed.named_parameters())
    assert torch.equal(fixed(x, g.edge_index), AGNNConv(requires_grad=False)(x, g.edge_index))


@pytest.mark.parametrize("negative", MODES)
def test_gradcheck_float64(negative):
    x, edge_index, weight = random_graph(n=7, e=20, f=4, seed=3, dtype=torch.float64)
    x.requires_grad_(True)
    weight.requires_grad_(True)
    conv = AffinityAttentionConv(beta=2.0, negative=negative).double()
    assert torch.autograd.gradcheck(lambda a, b: conv(a, edge_index, b), (x, weight))
    assert torch.autograd.gradcheck(lambda w: _with_w(conv, w, x, edge_index, weight),
                                    (torch.tensor([0.8], dtype=torch.float64,
                                                  requires_grad=True),))


def _with_w(conv, w, x, edge_index, weight):
    from torch.func import functional_call
    return functional_call(conv, {"w": w}, (x.detach(), edge_index, weight.detach()))


@pytest.mark.parametrize("negative", MODES)
def test_permutation_equivariance(negative):
    x, edge_index, weight = random_graph(seed=4)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(12)
    conv = AffinityAttentionConv(negative=negative)
    out = conv(x, edge_index, weight)
    out_perm = conv(x[perm], inverse[edge_index], weight)
    assert torch.allclose(out_perm, out[perm], atol=1e-6)


@pytest.mark.parametrize("negative", MODES)
def test_isolated_nodes(negative):
    x = torch.randn(5, 3)
    edge_index = torch.tensor([[0, 1], [1, 0]])  # nodes 2, 3, 4 have no edges
    with_loops = AffinityAttentionConv(negative=negative)(x, edge_index, torch.ones(2))
    assert torch.allclose(with_loops[2:], x[2:])  # attention 1 on itself
    without = AffinityAttentionConv(negative=negative, add_self_loops=False)(x, edge_index)
    assert torch.all(without[2:] == 0)


def test_all_negative_cosines_in_mask_mode():
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [-2.0, 0.0]])
    edge_index = torch.tensor([[1, 2, 0, 0], [0, 0, 1, 2]])
    weight = torch.ones(4)
    out = AffinityAttentionConv(negative="mask")(x, edge_index, weight)
    assert torch.allclose(out, x)  # only the self loop survives
    no_loops = AffinityAttentionConv(negative="mask", add_self_loops=False)
    assert torch.all(no_loops(x, edge_index, weight)[0] == 0)
    gated = AffinityAttentionConv(negative="gate")(x, edge_index, weight)
    assert not torch.allclose(gated, x)  # gate keeps them, without the edge bonus


@pytest.mark.parametrize("negative", MODES)
def test_batched_graphs_equal_separate_graphs(negative):
    graphs = []
    for seed in range(3):
        x, edge_index, weight = random_graph(n=8 + seed, e=25, seed=seed)
        graphs.append(Data(x=x, edge_index=edge_index, edge_weight=weight))
    batch = Batch.from_data_list(graphs)
    conv = AffinityAttentionConv(negative=negative)
    out = conv(batch.x, batch.edge_index, batch.edge_weight)
    separate = torch.cat([conv(g.x, g.edge_index, g.edge_weight) for g in graphs])
    assert torch.allclose(out, separate, atol=1e-6)


def test_memory_is_linear_in_edges():
    # 300k nodes: an N x N matrix would need 360 GB; an edge list is a few MB.
    n = 300_000
    x = torch.randn(n, 4)
    ring = torch.arange(n)
    edge_index = torch.stack([ring, (ring + 1) % n])
    out = AffinityAttentionConv()(x, edge_index, torch.rand(n))
    assert out.shape == (n, 4) and torch.isfinite(out).all()


def test_bad_input():
    conv = AffinityAttentionConv()
    x, edge_index, weight = random_graph()
    with pytest.raises(ValueError, match="edge_index refers to node 12"):
        conv(x, torch.tensor([[0], [12]]))
    with pytest.raises(ValueError, match="edge_weight must be non-negative"):
        conv(x, edge_index, -weight)
    with pytest.raises(ValueError, match="edge_weight contains 1 non-finite"):
        conv(x, edge_index, torch.cat([weight[:-1], torch.tensor([float("nan")])]))
    with pytest.raises(ValueError, match=r"edge_weight must have shape"):
        conv(x, edge_index, weight[:-1])
    with pytest.raises(ValueError, match="x contains"):
        conv(torch.full_like(x, float("nan")), edge_index)
    with pytest.raises(ValueError, match="x has no nodes"):
        conv(torch.zeros(0, 8), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"x must have shape \(N, F\)"):
        conv(torch.zeros(8), edge_index)
    with pytest.raises(ValueError, match="edge_weight must be None"):
        conv(x, sparse_forms(edge_index, weight, 12)["coo"], weight)
    with pytest.raises(ValueError, match="sparse adjacency has size"):
        conv(x[:5], sparse_forms(edge_index, weight, 12)["coo"])
    with pytest.raises(ValueError, match="negative must be one of"):
        AffinityAttentionConv(negative="drop")


def test_reset_parameters_and_repr():
    conv = AffinityAttentionConv(beta=5.0, negative="mask")
    with torch.no_grad():
        conv.w.fill_(3.0)
    conv.reset_parameters()
    assert conv.w.item() == 1.0
    assert repr(conv) == ("AffinityAttentionConv(beta=5.0, negative='mask', add_self_loops=True, "
                          "impl='auto')")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("negative", MODES)
def test_cuda_matches_cpu(negative):
    x, edge_index, weight = random_graph(n=50, e=400, f=16, seed=5)
    x.requires_grad_(True)
    conv = AffinityAttentionConv(negative=negative)
    out = conv(x, edge_index, weight)
    grad, = torch.autograd.grad(out.square().sum(), x)
    x_cuda = x.detach().cuda().requires_grad_(True)
    out_cuda = conv.cuda()(x_cuda, edge_index.cuda(), weight.cuda())
    grad_cuda, = torch.autograd.grad(out_cuda.square().sum(), x_cuda)
    assert torch.allclose(out_cuda.cpu(), out, atol=1e-5)
    assert torch.allclose(grad_cuda.cpu(), grad, atol=1e-4)


def test_cora_node_classification(data_kit, tmp_path):
    # PyG's AGNN example set-up on the standard Planetoid split: the layer must
    # learn on a real citation graph (published AGNN accuracy: 83.1%).
    import shutil

    from torch_geometric.datasets import Planetoid
    from torch_geometric.transforms import NormalizeFeatures

    shutil.copytree(data_kit / "planetoid" / "Cora", tmp_path / "Cora")
    data = Planetoid(str(tmp_path), "Cora", transform=NormalizeFeatures())[0]
    torch.manual_seed(0)
    lin1 = torch.nn.Linear(data.num_features, 16)
    conv1 = AffinityAttentionConv(requires_grad=False)
    conv2 = AffinityAttentionConv(requires_grad=True)
    lin2 = torch.nn.Linear(16, 7)
    modules = torch.nn.ModuleList([lin1, conv1, conv2, lin2])

    def forward():
        h = F.dropout(data.x, 0.5, modules.training)
        h = F.relu(lin1(h))
        h = conv2(conv1(h, data.edge_index), data.edge_index)
        return lin2(F.dropout(h, 0.5, modules.training))

    optimizer = torch.optim.Adam(modules.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(200):
        modules.train()
        optimizer.zero_grad()
        F.cross_entropy(forward()[data.train_mask], data.y[data.train_mask]).backward()
        optimizer.step()
    modules.eval()
    pred = forward().argmax(dim=1)
    accuracy = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
    print(f"Cora test accuracy {accuracy:.3f}")
    assert accuracy > 0.78, accuracy


# ---------------------------------------------------------------------------
# The fast path for a plain edge_index / GridGraph (issue 17) against the reference
# ---------------------------------------------------------------------------

from graphseg.graph import CSRAdjacency, GridAdjacency  # noqa: E402
from graphseg.nn.conv import affinity_attention_conv as aac  # noqa: E402


@pytest.fixture
def builds(monkeypatch):
    """Counts the layout conversions (``{"csr": n, "grid": m}``), on an empty cache."""
    AffinityAttentionConv.cache_clear()
    counts = {"csr": 0, "grid": 0}

    def counting(kind, build):
        def wrapper(*args):
            counts[kind] += 1
            return build(*args)
        return wrapper

    monkeypatch.setattr(aac, "_build_edge_layout", counting("csr", aac._build_edge_layout))
    monkeypatch.setattr(aac, "_build_grid_layout", counting("grid", aac._build_grid_layout))
    yield counts
    AffinityAttentionConv.cache_clear()


def run_with_grads(conv, x, graph, weight, seed=0):
    """``(out, grad x, grad weight, grad w)`` of a fixed random linear loss."""
    x = x.detach().clone().requires_grad_(True)
    inputs = [x, conv.w]
    if weight is not None:
        weight = weight.detach().clone().requires_grad_(True)
        inputs.append(weight)
    out = conv(x, graph, weight)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed),
                        dtype=out.dtype)
    grads = torch.autograd.grad((out * probe).sum(), inputs)
    return (out.detach(),) + tuple(grads) + ((None,) if weight is None else ())


def assert_same(fast, ref, atol=1e-10):
    names = ("out", "grad x", "grad w", "grad edge weight")
    for name, a, b in zip(names, fast, ref):
        if b is None:
            assert a is None, name
        else:
            assert torch.allclose(a, b, atol=atol, rtol=1e-8), (name, (a - b).abs().max())


def edge_forms(seed=10, n=15):
    """Unsorted duplicate-free edge lists: without self loops, and with some."""
    x, edge_index, weight = random_graph(n=n, e=60, f=6, seed=seed, dtype=torch.float64)
    loops = torch.tensor([[0, 4, 9], [0, 4, 9]])
    return {"no_self_loops": (x, edge_index, weight),
            "self_loops": (x, torch.cat([loops, edge_index], dim=1),
                           torch.cat([torch.tensor([0.3, 0.0, 2.0], dtype=torch.float64),
                                      weight]))}


def make_conv(negative, add_self_loops, impl="auto", w=1.3, **kwargs):
    conv = AffinityAttentionConv(beta=3.0, negative=negative, add_self_loops=add_self_loops,
                                 impl=impl, **kwargs).double()
    with torch.no_grad():
        conv.w.fill_(w)
    return conv


@pytest.mark.parametrize("negative", MODES)
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("form", ["no_self_loops", "self_loops"])
def test_edge_index_fast_path_equals_reference(builds, negative, add_self_loops, weighted,
                                               form):
    x, edge_index, weight = edge_forms()[form]
    assert not bool((edge_index[1, 1:] >= edge_index[1, :-1]).all())  # unsorted
    weight = weight if weighted else None
    fast = make_conv(negative, add_self_loops)
    ref = make_conv(negative, add_self_loops, impl="message_passing")
    assert_same(run_with_grads(fast, x, edge_index, weight),
                run_with_grads(ref, x, edge_index, weight))
    assert builds == {"csr": 1, "grid": 0}  # the fast path ran
    # the attention, outside autograd (where the fast kernels serve it too)
    with torch.no_grad():
        out, (ei, alpha) = fast(x, edge_index, weight, return_attention_weights=True)
        ref_out, (ref_ei, ref_alpha) = ref(x, edge_index, weight,
                                           return_attention_weights=True)
    assert builds["csr"] == 1
    assert torch.allclose(out, ref_out, atol=1e-10)
    dense, ref_dense = torch.zeros(15, 15, dtype=x.dtype), torch.zeros(15, 15, dtype=x.dtype)
    dense[ei[1], ei[0]] = alpha
    ref_dense[ref_ei[1], ref_ei[0]] = ref_alpha
    assert ei.size(1) == ref_ei.size(1)
    assert torch.allclose(dense, ref_dense, atol=1e-10)


def test_edge_index_fast_path_float32_and_int32_indices(builds):
    x, edge_index, weight = random_graph(n=30, e=200, f=16, seed=11)
    fast, ref = AffinityAttentionConv(), AffinityAttentionConv(impl="message_passing")
    assert_same(run_with_grads(fast, x, edge_index.int(), weight),
                run_with_grads(ref, x, edge_index, weight), atol=1e-5)
    assert builds["csr"] == 1


@pytest.mark.parametrize("negative", MODES)
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("window,self_loops", [("disk", True), ("square", False)])
@pytest.mark.parametrize("impl", ["auto", "grid", "csr"])
def test_grid_graph_equals_reference(builds, negative, add_self_loops, weighted, window,
                                     self_loops, impl):
    g = grid_graph(6, 7, radius=2, window=window, self_loops=self_loops)
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(g.num_nodes, 5, generator=gen, dtype=torch.float64)
    weight = torch.rand(g.num_edges, generator=gen, dtype=torch.float64) if weighted else None
    fast = make_conv(negative, add_self_loops, impl=impl)
    ref = make_conv(negative, add_self_loops, impl="message_passing")
    assert_same(run_with_grads(fast, x, g, weight), run_with_grads(ref, x, g.edge_index, weight))
    # auto on the CPU takes the CSR kernels, on the GridGraph's edge_index
    assert builds == ({"csr": 0, "grid": 1} if impl == "grid" else {"csr": 1, "grid": 0})
    # the attention: the GridGraph answers like its edge_index
    with torch.no_grad():
        _, (ei, alpha) = fast(x, g, weight, return_attention_weights=True)
        _, (ref_ei, ref_alpha) = ref(x, g.edge_index, weight, return_attention_weights=True)
    n = g.num_nodes
    dense, ref_dense = torch.zeros(n, n, dtype=x.dtype), torch.zeros(n, n, dtype=x.dtype)
    dense[ei[1], ei[0]] = alpha
    ref_dense[ref_ei[1], ref_ei[0]] = ref_alpha
    assert torch.allclose(dense, ref_dense, atol=1e-10)


def test_grid_graph_with_reference_impls():
    g = grid_graph(4, 5, radius=1)
    x = torch.randn(g.num_nodes, 3)
    expected = AffinityAttentionConv(impl="message_passing")(x, g.edge_index)
    for impl in ("message_passing", "dense"):
        assert torch.allclose(AffinityAttentionConv(impl=impl)(x, g), expected, atol=1e-6)


@pytest.mark.parametrize("negative", MODES)
def test_adjacency_objects_equal_reference(negative):
    """The forms that were fast already: CSRAdjacency and GridAdjacency."""
    g = grid_graph(5, 6, radius=2, window="disk")
    gen = torch.Generator().manual_seed(13)
    x = torch.randn(g.num_nodes, 4, generator=gen, dtype=torch.float64)
    weight = torch.rand(g.num_edges, generator=gen, dtype=torch.float64)
    ref = run_with_grads(make_conv(negative, True, impl="message_passing"), x, g.edge_index,
                         weight)

    def through(build, impl):
        conv = make_conv(negative, True, impl=impl)
        xx = x.clone().requires_grad_(True)
        ww = weight.clone().requires_grad_(True)
        out = conv(xx, build(ww))
        probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(0),
                            dtype=out.dtype)
        return (out.detach(),) + torch.autograd.grad((out * probe).sum(), [xx, conv.w, ww])

    csr = lambda ww: CSRAdjacency.from_edge_index(g.edge_index, ww, g.num_nodes,  # noqa: E731
                                                  add_self_loops=True)
    planes = lambda ww: GridAdjacency.from_edge_index(g.edge_index, ww,  # noqa: E731
                                                      (g.height, g.width), 2, "disk")
    assert_same(through(csr, "auto"), ref)
    assert_same(through(planes, "auto"), ref)
    assert_same(through(planes, "grid"), ref)


def test_cache_is_used_on_the_second_call(builds):
    x, edge_index, weight = random_graph(n=20, e=80, seed=14)
    conv = AffinityAttentionConv()
    first = conv(x, edge_index, weight)
    second = conv(x, edge_index, weight * 0.5)  # new weights, same graph: no conversion
    assert builds["csr"] == 1
    assert torch.allclose(second, AffinityAttentionConv(impl="message_passing")(
        x, edge_index, weight * 0.5), atol=1e-6)
    assert not torch.allclose(first, second)
    # shared by all layers with the same add_self_loops (A2GNN's stack of layers)
    AffinityAttentionConv(negative="mask")(x, edge_index)
    assert builds["csr"] == 1
    AffinityAttentionConv(add_self_loops=False)(x, edge_index)
    assert builds["csr"] == 2
    # a GridGraph: grid_graph's result is cached, so is its layout
    g = grid_graph(4, 4, radius=1)
    conv(torch.randn(16, 3), g)
    conv(torch.randn(16, 3), grid_graph(4, 4, radius=1))
    assert builds["csr"] == 3
    grid_conv = AffinityAttentionConv(impl="grid")
    grid_conv(torch.randn(16, 3), g)
    grid_conv(torch.randn(16, 3), g)
    assert builds["grid"] == 1


def test_cache_is_invalidated_for_another_graph_of_the_same_size(builds):
    x, edge_index, weight = random_graph(n=20, e=80, seed=15)
    _, other, _ = random_graph(n=20, e=80, seed=16)
    assert other.shape == edge_index.shape and not torch.equal(other, edge_index)
    conv, ref = AffinityAttentionConv(), AffinityAttentionConv(impl="message_passing")
    conv(x, edge_index, weight)
    # another tensor of the same shape
    assert torch.allclose(conv(x, other, weight), ref(x, other, weight), atol=1e-6)
    assert builds["csr"] == 2
    # the same tensor edited in place (its version counter moves)
    edge_index.copy_(other.flip(1))
    assert torch.allclose(conv(x, edge_index, weight), ref(x, edge_index, weight), atol=1e-6)
    assert builds["csr"] == 3
    # a view's edit moves the base's counter too
    edge_index[0, :5] = edge_index[1, :5].flip(0)
    edge_index[:, :5] = torch.stack([edge_index[0, :5], (edge_index[0, :5] + 1) % 20])
    assert torch.allclose(conv(x, edge_index, weight), ref(x, edge_index, weight), atol=1e-6)
    assert builds["csr"] == 4
    # a different number of nodes with the same tensor is another layout
    x_big = torch.randn(25, x.size(1))
    assert torch.allclose(conv(x_big, edge_index, weight), ref(x_big, edge_index, weight),
                          atol=1e-6)
    assert builds["csr"] == 5


def test_cache_entries_die_with_their_edge_index(builds):
    x = torch.randn(20, 4)
    conv = AffinityAttentionConv()
    for seed in range(3):  # a loader's batches: each tensor freed before the next
        _, edge_index, _ = random_graph(n=20, e=80, seed=seed)
        expected = AffinityAttentionConv(impl="message_passing")(x, edge_index)
        assert torch.allclose(conv(x, edge_index), expected, atol=1e-6)
        del edge_index
        assert len(aac._LAYOUTS) == 0
    assert builds["csr"] == 3


def test_cache_is_bounded_and_can_be_switched_off(builds):
    x = torch.randn(20, 4)
    graphs = [random_graph(n=20, e=60, seed=seed)[1] for seed in range(10)]
    conv = AffinityAttentionConv()
    for g in graphs:
        conv(x, g)
    assert len(aac._LAYOUTS) == aac._LAYOUTS.maxsize == 8
    conv(x, graphs[-1])
    assert builds["csr"] == 10
    conv(x, graphs[0])  # evicted: rebuilt
    assert builds["csr"] == 11
    uncached = AffinityAttentionConv(cached=False)
    uncached(x, graphs[-1])
    uncached(x, graphs[-1])
    assert builds["csr"] == 13
    with torch.inference_mode():  # no version counter: never cached
        fresh = graphs[1].clone()
        conv(x, fresh)
        conv(x, fresh)
    assert builds["csr"] == 15


def test_fallbacks_to_message_passing(builds):
    x, edge_index, weight = random_graph(n=12, e=40, seed=17)
    conv = AffinityAttentionConv()
    # attention that autograd records: the reference's is differentiable
    xg = x.clone().requires_grad_(True)
    _, (_, alpha) = conv(xg, edge_index, weight, return_attention_weights=True)
    assert alpha.requires_grad
    # half precision: torch's CPU CSR kernels have none
    out = conv(x.bfloat16(), edge_index, weight.bfloat16())
    assert out.shape == x.shape and torch.isfinite(out).all()
    # sparse matrices
    conv(x, sparse_forms(edge_index, weight, 12)["coo"])
    assert builds["csr"] == 0
    # a propagate hook is honoured
    seen = []
    conv.register_propagate_forward_hook(lambda *args: seen.append(1))
    conv(x, edge_index, weight)
    assert seen and builds["csr"] == 0


def test_malformed_edge_index_on_the_fast_path(builds):
    conv = AffinityAttentionConv()
    x = torch.randn(12, 4)
    with pytest.raises(ValueError, match=r"edge_index must have shape \(2, E\), got \(3, 4\)"):
        conv(x, torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"edge_index must have shape \(2, E\)"):
        conv(x, torch.zeros(8, dtype=torch.long))
    with pytest.raises(TypeError, match="edge_index must hold integers"):
        conv(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="edge_index refers to node 12"):
        conv(x, torch.tensor([[0, 1], [12, 0]]))
    with pytest.raises(ValueError, match="edge_index refers to node -1"):
        conv(x, torch.tensor([[0, -1], [1, 0]]))
    with pytest.raises(TypeError, match="edge_index must be a torch.Tensor"):
        conv(x, [[0, 1], [1, 0]])
    edge_index = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"edge_weight must have shape \(2,\)"):
        conv(x, edge_index, torch.ones(3))
    conv(x, edge_index)  # cached now: a bad weight is still refused
    with pytest.raises(ValueError, match="edge_weight must be non-negative"):
        conv(x, edge_index, -torch.ones(2))
    with pytest.raises(ValueError, match=r"the GridGraph has 20 nodes \(4 x 5\) but x has 12"):
        conv(x, grid_graph(4, 5, radius=1))
    with pytest.raises(ValueError, match=r"edge_weight must have shape \(64,\)"):
        conv(torch.randn(16, 3), grid_graph(4, 4, radius=1, window="disk"), torch.ones(3))
    with pytest.raises(ValueError, match="impl='grid' needs a GridAdjacency or GridGraph"):
        AffinityAttentionConv(impl="grid")(x, edge_index)
    with pytest.raises(ValueError, match="edge_index is on meta but x is on cpu"):
        conv(x, edge_index.to("meta"))


def test_cache_never_serves_a_tensor_that_reuses_an_id():
    # CPython reuses a freed object's id() and the allocator its memory; the weak
    # reference tells the tensors apart even if an entry outlived its tensor
    cache = aac._LayoutCache(maxsize=4)
    a, b = torch.tensor([[0, 1], [1, 0]]), torch.tensor([[1, 0], [0, 1]])
    assert cache.get(a, ("k",), lambda: "layout of a") == "layout of a"
    ref, _, layout = cache._entries.pop((id(a), "k"))
    cache._entries[(id(b), "k")] = (ref, aac._stamp(b), layout)  # as if b had a's id
    assert cache.get(b, ("k",), lambda: "layout of b") == "layout of b"
    assert cache.get(b, ("k",), lambda: "rebuilt") == "layout of b"
