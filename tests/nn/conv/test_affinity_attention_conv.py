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
    ours, theirs = AffinityAttentionConv(), AGNNConv()
    with torch.no_grad():
        ours.w.fill_(1.7)
        theirs.beta.fill_(1.7)
    a, b = ours(x, g.edge_index), theirs(x, g.edge_index)
    assert torch.equal(a, b)
    grad_a, = torch.autograd.grad(a.square().sum(), x)
    grad_b, = torch.autograd.grad(b.square().sum(), x)
    assert torch.equal(grad_a, grad_b)
    # and with a fixed w, against AGNNConv(requires_grad=False)
    fixed = AffinityAttentionConv(requires_grad=False)
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
