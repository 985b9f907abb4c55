import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from graphseg.graph import ImageToGraph, image_to_graph, label_map_to_nodes


def sample(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (4 * h, 4 * w), generator=g)
    labels[: 2 * h] = 255
    return Data(feature_map=torch.rand(6, h, w, generator=g), label_map=labels,
                image_id=f"img{seed}")


def test_transform_matches_function_and_keeps_other_fields():
    data = sample(5, 7, 0)
    out = ImageToGraph(radius=2, window="disk")(data.clone())
    ref = image_to_graph(data.feature_map, radius=2, window="disk")
    assert torch.equal(out.x, ref.x) and torch.equal(out.edge_index, ref.edge_index)
    assert torch.equal(out.edge_weight, ref.edge_weight)
    assert torch.equal(out.y, label_map_to_nodes(data.label_map, (5, 7)))
    assert out.image_id == "img0"
    assert "feature_map" not in out and "label_map" not in out


def test_graphs_of_different_sizes_batch_with_dataloader():
    transform = ImageToGraph(radius=2)
    graphs = [transform(sample(h, w, i)) for i, (h, w) in enumerate([(4, 5), (6, 6), (3, 8)])]
    batch = next(iter(DataLoader(graphs, batch_size=3)))
    assert batch.num_graphs == 3 and batch.num_nodes == 20 + 36 + 24
    assert batch.grid_size == [(4, 5), (6, 6), (3, 8)]
    assert batch.y.shape == (80,) and batch.edge_weight.shape == (batch.num_edges,)
    # edges stay inside their own graph
    assert torch.equal(batch.batch[batch.edge_index[0]], batch.batch[batch.edge_index[1]])


def test_transform_needs_a_feature_map():
    with pytest.raises(ValueError, match="needs a 'feature_map'"):
        ImageToGraph()(Data(x=torch.rand(3, 2)))
    assert repr(ImageToGraph(3)) == ("ImageToGraph(radius=3, window='square', "
                                     "threshold=0.001, self_loops=True)")
