import pytest
import torch

from graphseg.graph import CSRAdjacency, image_to_graph
from graphseg.nn import A2GNN
from graphseg.nn.models.a2gnn_batch import BatchedA2GNN


def graph(h, w, seed):
    torch.manual_seed(seed)
    data = image_to_graph(torch.rand(4, h, w), radius=1, edge_features=torch.rand(3, h, w))
    return data.x, CSRAdjacency.from_edge_index(data.edge_index, data.edge_weight,
                                                data.num_nodes, add_self_loops=True)


def test_batched_models_compute_each_models_own_output():
    graphs = [graph(4, 5, 0), graph(3, 6, 1)]
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = A2GNN(4, 3, hidden_channels=8, num_layers=2).eval()
        with torch.no_grad():
            for conv, w in zip(model.convs, (0.5 + seed, 2.0 - seed)):
                conv.w.fill_(w)  # different w per model and layer
        models.append(model)
    batched = BatchedA2GNN(models).eval()
    adj = CSRAdjacency.block_diagonal([g for _, g in graphs])
    ptr = [0, 20, 38]
    edge_model = (adj.row >= 20).long()
    logits, features = batched(torch.cat([x for x, _ in graphs]), adj, ptr, edge_model)
    for b, ((x, g), model) in enumerate(zip(graphs, models)):
        expected = model(x, g)
        assert torch.allclose(logits[ptr[b]:ptr[b + 1]], expected.logits, atol=1e-6)
        assert torch.allclose(features[ptr[b]:ptr[b + 1]], expected.features, atol=1e-6)
    assert repr(batched) == "BatchedA2GNN(2 x A2GNN(4, 3, hidden_channels=8, num_layers=2))"


def test_dropout_follows_each_photos_generator():
    x, g = graph(4, 5, 0)
    torch.manual_seed(0)
    batched = BatchedA2GNN([A2GNN(4, 2, hidden_channels=8)] * 2).train()
    adj = CSRAdjacency.block_diagonal([g, g])
    edge_model = (adj.row >= 20).long()

    def run(seeds):
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        return batched(torch.cat([x, x]), adj, [0, 20, 40], edge_model, generators).logits

    a, b = run([5, 6]), run([5, 7])
    assert torch.equal(a[:20], b[:20]) and not torch.equal(a[20:], b[20:])


def test_models_must_agree():
    with pytest.raises(ValueError, match="at least one model"):
        BatchedA2GNN([])
    with pytest.raises(ValueError, match="same settings"):
        BatchedA2GNN([A2GNN(4, 2, hidden_channels=8), A2GNN(4, 2, hidden_channels=16)])
    with pytest.raises(ValueError, match="not 'gcn'"):
        BatchedA2GNN([A2GNN(4, 2, layer="gcn")])
    with pytest.raises(ValueError, match="add_self_loops=True"):
        BatchedA2GNN([A2GNN(4, 2, add_self_loops=False)])
