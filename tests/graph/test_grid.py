import pytest
import torch

from graphseg.graph import grid_graph, grid_positions, window_offsets


def brute_force_edges(h, w, r, window, self_loops):
    edges = []
    for ty in range(h):
        for tx in range(w):
            for sy in range(h):
                for sx in range(w):
                    dy, dx = sy - ty, sx - tx
                    inside = max(abs(dy), abs(dx)) <= r if window == "square" \
                        else dy * dy + dx * dx <= r * r
                    if inside and (self_loops or (dy, dx) != (0, 0)):
                        edges.append((sy * w + sx, ty * w + tx))
    return edges


@pytest.mark.parametrize("window,radius,count", [("square", 4, 81), ("disk", 5, 81),
                                                 ("square", 1, 9), ("disk", 1, 5)])
def test_window_offset_counts(window, radius, count):
    offsets = window_offsets(radius, window)
    assert offsets.shape == (count, 2)
    assert offsets.tolist() == sorted(offsets.tolist())
    assert torch.equal(offsets.flip(0), -offsets)  # mirrored offset of k is K - 1 - k
    assert window_offsets(radius, window, self_loops=False).shape == (count - 1, 2)


@pytest.mark.parametrize("window", ["square", "disk"])
@pytest.mark.parametrize("self_loops", [True, False])
@pytest.mark.parametrize("h,w,r", [(4, 5, 1), (5, 3, 2), (1, 6, 3), (3, 3, 4)])
def test_grid_graph_matches_brute_force_and_is_target_sorted(h, w, r, window, self_loops):
    g = grid_graph(h, w, r, window, self_loops)
    edges = [tuple(e) for e in g.edge_index.t().tolist()]
    expected = brute_force_edges(h, w, r, window, self_loops)
    # documented order: by target, then by source
    assert edges == sorted(expected, key=lambda e: (e[1], e[0]))
    # every edge's source is its target plus its offset
    dy, dx = g.offsets[g.edge_offset].unbind(1)
    target = g.edge_index[1]
    assert torch.equal(g.edge_index[0], (target // w + dy) * w + target % w + dx)
    assert g.num_nodes == h * w


def test_grid_graph_is_cached_and_positions_are_row_major():
    assert grid_graph(6, 7, 2, "disk") is grid_graph(6, 7, 2, "disk")
    assert grid_graph(6, 7, 2, "disk") is not grid_graph(6, 7, 2, "square")
    pos = grid_positions(2, 3)
    assert pos.tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]]
    assert torch.equal(grid_graph(2, 3, 1).pos, pos)


def test_grid_graph_bad_arguments():
    with pytest.raises(ValueError, match="radius must be >= 1"):
        grid_graph(4, 4, 0)
    with pytest.raises(ValueError, match="height must be >= 1"):
        grid_graph(0, 4, 1)
    with pytest.raises(TypeError, match="radius must be an int"):
        grid_graph(4, 4, 1.5)
    with pytest.raises(ValueError, match="window must be one of"):
        grid_graph(4, 4, 1, window="circle")
