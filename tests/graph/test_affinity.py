import math

import pytest
import torch

from graphseg.graph import grid_affinity, l1_normalize, window_offsets


@pytest.mark.parametrize("window", ["square", "disk"])
@pytest.mark.parametrize("self_loops", [True, False])
def test_grid_affinity_matches_definition(window, self_loops):
    torch.manual_seed(0)
    f = torch.rand(5, 6, 7, dtype=torch.float64)
    planes = grid_affinity(f, 3, window, self_loops)
    offsets = window_offsets(3, window, self_loops).tolist()
    assert planes.shape == (len(offsets), 6, 7)
    for k, (dy, dx) in enumerate(offsets):
        for y in range(6):
            for x in range(7):
                sy, sx = y + dy, x + dx
                if 0 <= sy < 6 and 0 <= sx < 7:
                    expected = math.exp(-(f[:, y, x] - f[:, sy, sx]).abs().mean().item())
                else:
                    expected = 0.0
                assert planes[k, y, x].item() == pytest.approx(expected, abs=1e-12)


def test_grid_affinity_self_loop_is_one_and_range():
    planes = grid_affinity(torch.randn(3, 4, 4), 1)
    centre = window_offsets(1).tolist().index([0, 0])
    assert torch.all(planes[centre] == 1)
    assert torch.all((planes >= 0) & (planes <= 1))


def test_grid_affinity_bad_input():
    with pytest.raises(ValueError, match=r"features must have shape \(C, H, W\)"):
        grid_affinity(torch.rand(4, 4), 1)
    with pytest.raises(ValueError, match="features contains 1 non-finite"):
        f = torch.rand(2, 3, 3)
        f[0, 1, 1] = float("nan")
        grid_affinity(f, 1)
    with pytest.raises(TypeError, match="features must be a floating tensor"):
        grid_affinity(torch.ones(2, 3, 3, dtype=torch.long), 1)


def test_l1_normalize():
    x = torch.tensor([[1.0, 3.0], [0.0, 0.0], [-1.0, 1.0]])
    assert torch.allclose(l1_normalize(x), torch.tensor([[0.25, 0.75], [0, 0], [-0.5, 0.5]]))
