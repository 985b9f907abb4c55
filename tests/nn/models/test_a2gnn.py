import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from graphseg.graph import image_to_graph, label_map_to_nodes, nodes_to_label_map
from graphseg.nn import A2GNN, AffinityAttentionConv


def small_graph(seed=0, size=(6, 7)):
    torch.manual_seed(seed)
    return image_to_graph(torch.rand(5, *size), radius=2)


def test_outputs_and_architecture():
    data = small_graph()
    model = A2GNN(5, 3, hidden_channels=16, num_layers=3).eval()
    out = model(data.x, data.edge_index, data.edge_weight)
    logits, features = out
    assert out.logits is logits and logits.shape == (42, 3) and features.shape == (42, 16)
    assert torch.allclose(logits, model.classifier(features))
    # embedding without bias -> ReLU -> three attention layers with nothing in between
    assert model.embedding.bias is None
    h = F.relu(model.embedding(data.x))
    for conv in model.convs:
        assert isinstance(conv, AffinityAttentionConv)
        h = conv(h, data.edge_index, data.edge_weight)
    assert torch.allclose(h, features)
    assert repr(model) == "A2GNN(5, 3, hidden_channels=16, num_layers=3)"


def test_dropout_only_in_training():
    data = small_graph()
    model = A2GNN(5, 2, hidden_channels=64)
    torch.manual_seed(1)
    a = model(data.x, data.edge_index, data.edge_weight).logits
    b = model(data.x, data.edge_index, data.edge_weight).logits
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(data.x, data.edge_index).logits,
                       model(data.x, data.edge_index).logits)


def test_batch_equals_single_graphs():
    graphs = [small_graph(seed, size) for seed, size in enumerate([(4, 5), (6, 3), (5, 5)])]
    batch = Batch.from_data_list(graphs)
    model = A2GNN(5, 4, hidden_channels=8, negative="mask").eval()
    out = model(batch.x, batch.edge_index, batch.edge_weight).logits
    separate = torch.cat([model(g.x, g.edge_index, g.edge_weight).logits for g in graphs])
    assert torch.allclose(out, separate, atol=1e-6)


def test_reset_parameters():
    model = A2GNN(5, 2, hidden_channels=8)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    model.reset_parameters()
    assert all(conv.w.item() == 1.0 for conv in model.convs)
    assert not torch.all(model.embedding.weight == 3.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="in_channels must be >= 1"):
        A2GNN(0, 2)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        A2GNN(4, 2, dropout=1.0)
    with pytest.raises(ValueError, match="negative must be one of"):
        A2GNN(4, 2, negative="clip")


def propagate_scribbles(colour_position_features, image, scribbles, mask, num_layers, epochs=100,
                        stride=10):
    """Train on scribbled nodes of one photo, return the IoU of the object vs ground truth."""
    feats = colour_position_features(image, stride)
    seeds = np.full(scribbles.shape, 255)
    seeds[scribbles == 1], seeds[scribbles == 2] = 1, 0
    data = image_to_graph(feats, radius=3, edge_features=feats[:3] * 10)
    y = label_map_to_nodes(seeds, data.grid_size)
    known = y != 255
    torch.manual_seed(0)
    model = A2GNN(feats.size(0), 2, hidden_channels=32, num_layers=num_layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03, weight_decay=5e-4)
    for _ in range(epochs):
        optimizer.zero_grad()
        logits = model(data.x, data.edge_index, data.edge_weight).logits
        F.cross_entropy(logits[known], y[known]).backward()
        optimizer.step()
    with torch.no_grad():
        logits = model.eval()(data.x, data.edge_index, data.edge_weight).logits
    pred = nodes_to_label_map(logits, data.grid_size, size=mask.shape).numpy()
    return ((pred == 1) & (mask == 1)).sum() / ((pred == 1) | (mask == 1)).sum()


def test_propagation_from_real_scribbles_beats_no_graph(grabcut, colour_position_features):
    # GrabCut photos with human scribbles; the same model without attention
    # layers (an MLP on colour and position) is the no-propagation baseline.
    with_graph, without = [], []
    for name in ("teddy", "sheep", "banana1"):
        image, mask, scribbles = grabcut(name)
        with_graph.append(propagate_scribbles(colour_position_features, image, scribbles, mask,
                                                num_layers=3))
        without.append(propagate_scribbles(colour_position_features, image, scribbles, mask,
                                                num_layers=0))
    assert all(a >= b for a, b in zip(with_graph, without)), (with_graph, without)
    assert np.mean(with_graph) > np.mean(without) + 0.05
    assert np.mean(with_graph) > 0.7
