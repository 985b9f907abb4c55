import numpy as np
import pytest
import torch

from graphseg.graph import GridAdjacency, image_to_graph, label_map_to_nodes, nodes_to_label_map
from graphseg.losses import boxes_to_grid
from graphseg.nn import A2GNN
from graphseg.propagation import A2GNNConfig, PhotoGraph, train_a2gnn, train_a2gnn_batch

SMALL = dict(hidden_channels=16, stage1_epochs=15, stage2_epochs=15)


def two_region_graph(h=8, w=10):
    colour = torch.full((3, h, w), 0.1)
    colour[2, :, : w // 2] = 0.9  # left blue
    colour[0, :, w // 2:] = 0.9  # right red
    data = image_to_graph(colour * 5, radius=2, edge_features=colour * 5)
    labels = torch.full((h * w,), 255)
    labels[0] = 0
    labels[h * w - 1] = 1
    return data, colour, labels


@pytest.mark.parametrize("layer", ["a2gnn", "gcn", "gat", "agnn"])
def test_every_layer_propagates_two_seeds_to_two_regions(layer):
    data, colour, labels = two_region_graph()
    config = A2GNNConfig(layer=layer, **SMALL)
    probs = train_a2gnn(data.x, GridAdjacency.from_data(data), labels, 2, data.grid_size,
                        colour=colour, config=config, seed=0)
    assert probs.shape == (80, 2) and torch.allclose(probs.sum(1), torch.ones(80))
    pred = probs.argmax(1).view(8, 10)
    assert (pred[:, :5] == 0).float().mean() > 0.9 and (pred[:, 5:] == 1).float().mean() > 0.9


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    data, colour, labels = two_region_graph()
    adj = GridAdjacency.from_data(data)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = train_a2gnn(data.x, adj, labels, 2, data.grid_size, colour=colour,
                    config=A2GNNConfig(**SMALL), seed=7)
    assert torch.equal(torch.rand(1), before)
    b = train_a2gnn(data.x, adj, labels, 2, data.grid_size, colour=colour,
                    config=A2GNNConfig(**SMALL), seed=7)
    assert torch.equal(a, b)


def test_bad_input():
    data, colour, labels = two_region_graph()
    adj = GridAdjacency.from_data(data)
    with pytest.raises(ValueError, match="no labelled node"):
        train_a2gnn(data.x, adj, torch.full((80,), 255), 2, data.grid_size)
    with pytest.raises(ValueError, match="labels holds class 1 but num_classes is 1"):
        train_a2gnn(data.x, adj, labels, 1, data.grid_size)
    with pytest.raises(ValueError, match=r"x must have shape \(80, D\)"):
        train_a2gnn(data.x[:10], adj, labels, 2, data.grid_size)
    with pytest.raises(ValueError, match="supervision must be one of"):
        A2GNNConfig.release("clicks")
    assert A2GNNConfig.release("boxes").stage1_epochs == 150
    assert A2GNNConfig.release("scribbles", lr=0.1).lr == 0.1


def test_a2gnn_layers_accept_adjacency_objects():
    data, _, _ = two_region_graph()
    adj = GridAdjacency.from_data(data)
    for layer in ("gcn", "gat", "agnn"):
        model = A2GNN(3, 2, hidden_channels=8, layer=layer).eval()
        out = model(data.x, adj).logits
        ref = model(data.x, data.edge_index, data.edge_weight).logits
        assert torch.allclose(out, ref, atol=1e-5), layer
    assert "layer='gat'" in repr(A2GNN(3, 2, layer="gat"))


def test_boxes_with_mp_loss_on_a_real_photo(data_kit, grabcut, colour_position_features):
    # Only "outside the box is background" as seeds: the MP loss alone must find the
    # object inside the box (teddy: a tight box around a distinct object).
    image, mask, _ = grabcut("teddy")
    x1, y1, x2, y2 = map(int, (data_kit / "grabcut" / "boxes" / "teddy.txt").read_text().split())
    feats = colour_position_features(image, 12)
    data = image_to_graph(feats, radius=3, edge_features=feats[:3] * 10)
    seeds = np.zeros(mask.shape, np.int64)
    seeds[y1:y2, x1:x2] = 255
    labels = label_map_to_nodes(seeds, data.grid_size)
    boxes = boxes_to_grid([[1, x1, y1, x2, y2]], mask.shape, data.grid_size)
    config = A2GNNConfig(hidden_channels=32, stage1_epochs=40, stage2_epochs=40)
    probs = train_a2gnn(data.x, GridAdjacency.from_data(data), labels, 2, data.grid_size,
                        colour=feats[:3], boxes=boxes, config=config)
    pred = nodes_to_label_map(probs, data.grid_size, size=mask.shape, logits=False).numpy()
    iou = ((pred == 1) & (mask == 1)).sum() / ((pred == 1) | (mask == 1)).sum()
    box = np.zeros_like(mask)
    box[y1:y2, x1:x2] = 1
    box_iou = ((box == 1) & (mask == 1)).sum() / ((box == 1) | (mask == 1)).sum()
    assert iou > box_iou + 0.1, (iou, box_iou)


def _photo(h, w, shift, boxes=False):
    """A two-region photo graph (the regions' border ``shift`` columns from the middle)."""
    colour = torch.full((3, h, w), 0.1)
    colour[2, :, : w // 2 + shift] = 0.9
    colour[0, :, w // 2 + shift:] = 0.9
    data = image_to_graph(colour * 5, radius=2, edge_features=colour * 5)
    labels = torch.full((h * w,), 255)
    labels[0], labels[h * w - 1] = 0, 1
    grid_boxes = boxes_to_grid([[1, w // 2, 0, w, h]], (h, w), (h, w)) if boxes else None
    return PhotoGraph(data.x, GridAdjacency.from_data(data), labels, data.grid_size,
                      colour, grid_boxes)


@pytest.mark.parametrize("boxes", [False, True])
def test_batched_training_gives_every_photo_its_one_photo_result(boxes):
    # different sizes, seeds and seed maps; the box run also exercises the MP loss and
    # consistency checking, which change a photo's seeds during training
    photos = [_photo(8, 10, 0, boxes), _photo(6, 12, 2, boxes), _photo(9, 7, -1, boxes)]
    config = A2GNNConfig(**SMALL)
    together = train_a2gnn_batch(photos, 2, config=config, seeds=[3, 4, 5])
    for photo, seed, result in zip(photos, [3, 4, 5], together):
        alone = train_a2gnn(photo.x, photo.graph, photo.labels, 2, photo.grid_size,
                            colour=photo.colour, boxes=photo.boxes, config=config, seed=seed)
        assert torch.allclose(result, alone, atol=1e-5), (result - alone).abs().max()
    # a photo's result does not depend on its neighbours in the batch
    pair = train_a2gnn_batch(photos[1:], 2, config=config, seeds=[4, 5])
    assert torch.allclose(pair[0], together[1], atol=1e-5)
    other_seed = train_a2gnn_batch(photos, 2, config=config, seeds=[3, 9, 5])
    assert not torch.allclose(other_seed[1], together[1], atol=1e-4)


def test_batched_training_takes_every_graph_form_and_layer():
    photo = _photo(8, 10, 0)
    config = A2GNNConfig(**SMALL)
    edge_index, edge_weight = photo.graph.to_edge_index()
    forms = [photo, photo._replace(graph=photo.graph.to_csr()),
             photo._replace(graph=edge_index, edge_weight=edge_weight)]
    results = train_a2gnn_batch(forms, 2, config=config, seeds=[1, 1, 1])
    for result in results[1:]:
        assert torch.allclose(result, results[0], atol=1e-5)
    gcn = train_a2gnn_batch([photo, _photo(6, 12, 2)], 2,
                            config=A2GNNConfig(layer="gcn", **SMALL), seeds=[1, 2])
    alone = train_a2gnn(photo.x, photo.graph, photo.labels, 2, photo.grid_size,
                        colour=photo.colour, config=A2GNNConfig(layer="gcn", **SMALL), seed=1)
    assert torch.allclose(gcn[0], alone, atol=1e-5)


def test_batched_training_names_the_bad_photo():
    good, bad = _photo(8, 10, 0), _photo(6, 12, 2)
    bad = bad._replace(labels=torch.full_like(bad.labels, 255))
    with pytest.raises(ValueError, match="photo 1: labels has no labelled node"):
        train_a2gnn_batch([good, bad], 2, config=A2GNNConfig(**SMALL))
    with pytest.raises(ValueError, match="seeds has 1 entries for 2 photos"):
        train_a2gnn_batch([good, good], 2, seeds=[0])
    with pytest.raises(ValueError, match="photos is empty"):
        train_a2gnn_batch([], 2)
    narrow = good._replace(x=good.x[:, :2])
    with pytest.raises(ValueError, match="photo 1: x has 2 features on cpu, photo 0 3"):
        train_a2gnn_batch([good, narrow], 2)
