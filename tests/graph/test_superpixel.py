
import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from graphseg.graph.superpixel import (
    _touching_pairs,
    pixels_to_superpixels,
    superpixel_graph,
    superpixels_to_pixels,
)

# Top-left black, top-right red, bottom-left green, bottom-right blue.
QUADRANT_COLOURS = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]


def quadrants(size=32):
    image = np.zeros((size, size, 3), dtype=np.uint8)
    half = size // 2
    image[:half, :half] = QUADRANT_COLOURS[0]
    image[:half, half:] = QUADRANT_COLOURS[1]
    image[half:, :half] = QUADRANT_COLOURS[2]
    image[half:, half:] = QUADRANT_COLOURS[3]
    return image


def brute_force_pairs(segments, self_loops=False):
    seg = segments.tolist()
    h, w = len(seg), len(seg[0])
    pairs = set()
    for y in range(h):
        for x in range(w):
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and seg[ny][nx] != seg[y][x]:
                    pairs.add((seg[ny][nx], seg[y][x]))
    if self_loops:
        pairs |= {(s, s) for s in range(max(max(row) for row in seg) + 1)}
    return sorted(pairs, key=lambda e: (e[1], e[0]))


def check_graph_structure(data):
    edges = data.edge_index.t().tolist()
    assert data.edge_index.dtype == torch.int64
    assert edges == sorted(edges, key=lambda e: (e[1], e[0]))  # target-major
    assert len(set(map(tuple, edges))) == len(edges)  # no duplicates
    assert {(s, t) for s, t in edges} == {(t, s) for s, t in edges}  # symmetric


def test_quadrants_graph_structure():
    data = superpixel_graph(quadrants(), n_segments=16)
    assert data.num_nodes >= 4
    assert data.segments.dtype == torch.int64 and data.segments.shape == (32, 32)
    assert data.segments.unique().tolist() == list(range(data.num_nodes))  # consecutive
    assert data.x.shape == (data.num_nodes, 5) and data.x.dtype == torch.float32
    assert data.pos.shape == (data.num_nodes, 2) and data.pos.dtype == torch.float32
    assert "edge_weight" not in data
    check_graph_structure(data)
    assert not bool((data.edge_index[0] == data.edge_index[1]).any())
    # SLIC is deterministic
    again = superpixel_graph(quadrants(), n_segments=16)
    assert torch.equal(again.edge_index, data.edge_index)
    assert torch.equal(again.segments, data.segments)


def test_self_loops_added_once_per_node():
    plain = superpixel_graph(quadrants(), n_segments=16)
    looped = superpixel_graph(quadrants(), n_segments=16, self_loops=True)
    check_graph_structure(looped)
    loops = looped.edge_index[0] == looped.edge_index[1]
    assert sorted(looped.edge_index[0, loops].tolist()) == list(range(plain.num_nodes))
    assert torch.equal(looped.edge_index[:, ~loops], plain.edge_index)


@pytest.mark.parametrize("self_loops", [False, True])
def test_touching_pairs_matches_brute_force(self_loops):
    rng = np.random.default_rng(0)
    # Blocky random map so that regions have real borders, plus a 1-pixel row.
    blocks = rng.integers(0, 6, size=(4, 5)).repeat(2, axis=0).repeat(2, axis=1)
    for segments in (blocks, rng.integers(0, 6, size=(7, 6)), np.array([[0, 1, 1, 2, 0]])):
        seg = torch.as_tensor(segments, dtype=torch.long)
        edges = [tuple(e) for e in _touching_pairs(seg, self_loops).t().tolist()]
        assert edges == brute_force_pairs(seg, self_loops)


def test_touching_pairs_ignores_diagonal_contact():
    seg = torch.tensor([[0, 1], [2, 3]])
    edges = _touching_pairs(seg).t().tolist()
    assert edges == [[1, 0], [2, 0], [0, 1], [3, 1], [0, 2], [3, 2], [1, 3], [2, 3]]
    assert _touching_pairs(torch.zeros(3, 4, dtype=torch.long)).shape == (2, 0)


def test_quadrants_mean_colour_and_position_by_hand():
    # With 4 segments SLIC's initial centres sit at the quadrant centres and
    # the quadrants are exactly the superpixels.
    data = superpixel_graph(quadrants(32), n_segments=4)
    assert data.num_nodes == 4
    ids = [int(data.segments[y, x]) for y, x in ((0, 0), (0, 31), (31, 0), (31, 31))]
    assert sorted(ids) == [0, 1, 2, 3]
    centres = [(7.5, 7.5), (23.5, 7.5), (7.5, 23.5), (23.5, 23.5)]  # (column, row)
    for node, colour, (cx, cy) in zip(ids, QUADRANT_COLOURS, centres):
        expected = [c / 255 for c in colour] + [cx / 32, cy / 32]
        assert data.x[node].tolist() == pytest.approx(expected)
        assert data.pos[node].tolist() == pytest.approx([cx, cy])
    assert sorted(tuple(e) for e in data.edge_index.t().tolist()) == sorted(
        [(ids[0], ids[1]), (ids[1], ids[0]), (ids[0], ids[2]), (ids[2], ids[0]),
         (ids[1], ids[3]), (ids[3], ids[1]), (ids[2], ids[3]), (ids[3], ids[2])])


def test_mean_colour_and_position_match_loops():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
    data = superpixel_graph(image, n_segments=12, compactness=20.0)
    seg = data.segments.numpy()
    rows, cols = np.mgrid[0:20, 0:24]
    for s in range(data.num_nodes):
        inside = seg == s
        colour = image[inside].mean(axis=0) / 255
        cx, cy = cols[inside].mean(), rows[inside].mean()
        assert data.x[s].numpy() == pytest.approx(
            np.concatenate([colour, [cx / 24, cy / 20]]), abs=1e-6)
        assert data.pos[s].numpy() == pytest.approx([cx, cy], abs=1e-4)


def test_tensor_image_gives_same_graph():
    image = quadrants()
    a = superpixel_graph(image, n_segments=16)
    b = superpixel_graph(torch.from_numpy(image), n_segments=16)
    assert torch.equal(a.segments, b.segments) and torch.equal(a.x, b.x)


def test_feature_map_path():
    image = quadrants(32)
    constant = torch.full((7, 5, 3), 0.25)
    data = superpixel_graph(image, n_segments=16, features=constant)
    assert data.x.shape == (data.num_nodes, 7) and data.x.dtype == torch.float32
    assert torch.allclose(data.x, torch.full_like(data.x, 0.25))
    # A full-resolution map is averaged as is: the image itself gives mean colour.
    rgb = torch.from_numpy(image).permute(2, 0, 1).double() / 255
    plain = superpixel_graph(image, n_segments=16)
    from_map = superpixel_graph(image, n_segments=16, features=rgb)
    assert torch.allclose(from_map.x, plain.x[:, :3], atol=1e-6)


def test_round_trip_is_exact_on_piecewise_constant_labels():
    data = superpixel_graph(quadrants(), n_segments=16)
    seg = data.segments
    node_labels = torch.arange(data.num_nodes) % 3
    gt = node_labels[seg]
    assert torch.equal(pixels_to_superpixels(gt.numpy(), seg), node_labels)
    assert torch.equal(superpixels_to_pixels(pixels_to_superpixels(gt, seg), seg), gt)


def test_superpixels_to_pixels_shapes():
    seg = torch.tensor([[0, 0, 1], [2, 1, 1]])
    values = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    out = superpixels_to_pixels(values, seg)
    assert out.shape == (2, 2, 3)  # channel first
    assert out[0].tolist() == [[1.0, 1.0, 2.0], [3.0, 2.0, 2.0]]
    assert out[1].tolist() == [[10.0, 10.0, 20.0], [30.0, 20.0, 20.0]]
    assert superpixels_to_pixels(values[:, 0], seg.numpy()).shape == (2, 3)


def test_pixels_to_superpixels_majority_ignore_and_ties():
    seg = torch.tensor([[0, 0, 0, 1, 1],
                        [0, 2, 2, 1, 1],
                        [3, 3, 3, 3, 3]])
    labels = np.array([[4, 4, 1, 2, 2],
                       [255, 255, 255, 1, 255],
                       [255, 255, 255, 255, 255]])
    out = pixels_to_superpixels(labels, seg)
    assert out.dtype == torch.int64
    # 0: 4 beats 1, unlabelled pixels do not vote; 1: 2 beats 1; 2, 3: nothing labelled
    assert out.tolist() == [4, 2, 255, 255]
    seg2 = torch.tensor([[0, 0, 0, 0]])  # a 2-2 tie goes to the smaller label
    assert pixels_to_superpixels(np.array([[5, 2, 5, 2]]), seg2).tolist() == [2]
    assert pixels_to_superpixels(np.full((1, 4), 7), seg2, ignore_index=7).tolist() == [7]


@pytest.mark.parametrize("image,error,match", [
    ([[[0, 0, 0]]], TypeError, "image must be a numpy.ndarray or torch.Tensor, got list"),
    (np.zeros((8, 8, 3), np.float32), TypeError, "image must have dtype uint8, got float32"),
    (torch.zeros(8, 8, 3), TypeError, "image must have dtype uint8"),
    (np.zeros((8, 8), np.uint8), ValueError,
     r"image must be an RGB image of shape \(H, W, 3\), got \(8, 8\)"),
    (np.zeros((8, 8, 1), np.uint8), ValueError, r"got \(8, 8, 1\)"),
    (np.zeros((8, 8, 4), np.uint8), ValueError, r"RGB image .* got \(8, 8, 4\)"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, r"image is empty: shape \(0, 8, 3\)"),
])
def test_superpixel_graph_bad_image(image, error, match):
    with pytest.raises(error, match=match):
        superpixel_graph(image)


def test_superpixel_graph_bad_arguments():
    image = quadrants(8)
    with pytest.raises(ValueError, match="n_segments must be >= 1, got 0"):
        superpixel_graph(image, n_segments=0)
    with pytest.raises(TypeError, match="n_segments must be an int"):
        superpixel_graph(image, n_segments=4.5)
    with pytest.raises(ValueError, match="compactness must be a finite number > 0"):
        superpixel_graph(image, compactness=0)
    with pytest.raises(ValueError, match="features contains 1 non-finite"):
        bad = torch.zeros(2, 4, 4)
        bad[0, 1, 1] = float("nan")
        superpixel_graph(image, features=bad)
    with pytest.raises(ValueError, match=r"features must have shape \(C, H, W\)"):
        superpixel_graph(image, features=torch.zeros(1, 2, 4, 4))
    with pytest.raises(TypeError, match="features must be a torch.Tensor"):
        superpixel_graph(image, features=np.zeros((2, 4, 4)))


def test_mapping_bad_arguments():
    seg = torch.tensor([[0, 1], [2, 2]])
    with pytest.raises(ValueError, match="segments refers to superpixel 2, but values has only 2"):
        superpixels_to_pixels(torch.zeros(2), seg)
    with pytest.raises(ValueError, match=r"values must have shape \(S,\) or \(S, C\)"):
        superpixels_to_pixels(torch.zeros(3, 1, 1), seg)
    with pytest.raises(TypeError, match="values must be a torch.Tensor"):
        superpixels_to_pixels([0, 1, 2], seg)
    with pytest.raises(ValueError, match=r"segments must have shape \(H, W\)"):
        superpixels_to_pixels(torch.zeros(3), seg[None])
    with pytest.raises(TypeError, match="segments must hold integer labels"):
        superpixels_to_pixels(torch.zeros(3), seg.float())
    with pytest.raises(ValueError, match="segments must hold values >= 0"):
        superpixels_to_pixels(torch.zeros(3), -seg)
    with pytest.raises(ValueError, match=r"label_map has shape \(2, 3\) but segments has "
                                         r"shape \(2, 2\)"):
        pixels_to_superpixels(np.zeros((2, 3), np.int64), seg)
    with pytest.raises(TypeError, match="label_map must hold integer labels"):
        pixels_to_superpixels(np.zeros((2, 2)), seg)
    with pytest.raises(ValueError, match="label_map must hold values >= 0"):
        pixels_to_superpixels(np.full((2, 2), -1), seg)


def test_flower_graph_is_connected_and_follows_the_mask(data_kit):
    root = data_kit / "grabcut"
    image_path, mask_path = root / "images" / "flower.jpg", root / "masks" / "flower.png"
    if not (image_path.is_file() and mask_path.is_file()):
        pytest.skip(f"GrabCut flower image or mask not found under {root}")
    from PIL import Image

    image = np.asarray(Image.open(image_path).convert("RGB"))
    mask = (np.asarray(Image.open(mask_path).convert("L")) > 127).astype(np.int64)
    data = superpixel_graph(image)
    check_graph_structure(data)
    s = data.num_nodes
    adjacency = coo_matrix((np.ones(data.num_edges), data.edge_index.numpy()), shape=(s, s))
    assert connected_components(adjacency, directed=False)[0] == 1

    back = superpixels_to_pixels(pixels_to_superpixels(mask, data.segments),
                                 data.segments).numpy()
    iou = np.logical_and(back == 1, mask == 1).sum() / np.logical_or(back == 1, mask == 1).sum()
    assert iou >= 0.9
