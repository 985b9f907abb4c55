import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphseg.data import kit_root, write_label_png
from graphseg.data.weak_labels import scribbles_from_labels
from graphseg.utils.io import write_png

# The shared data kit sits beside the checkout (a user's clone has none);
# GRAPHSEG_DATA points elsewhere.
DATA_DIR = kit_root()


@pytest.fixture
def data_kit() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"data kit not found at {DATA_DIR}")
    return DATA_DIR


@pytest.fixture
def grabcut(data_kit: Path):
    """``grabcut(name)``: a GrabCut photo of the kit as RGB image, binary ground truth
    (1 = object) and scribbles (1 object, 2 background)."""
    from PIL import Image

    def load(name: str):
        root = data_kit / "grabcut"
        image = np.asarray(Image.open(root / "images" / f"{name}.jpg").convert("RGB"))
        mask = (np.asarray(Image.open(root / "masks" / f"{name}.png")) > 127).astype(np.int64)
        scribbles = np.asarray(Image.open(root / "scribbles1" / f"{name}.png")).astype(np.int64)
        return image, mask, scribbles

    return load


@pytest.fixture
def colour_position_features():
    """``f(image, stride)``: mean RGB in [0, 1] and position per stride x stride cell, a
    backbone-free ``(5, h, w)`` node feature map (simpler than the library's)."""
    def features(image: np.ndarray, stride: int) -> torch.Tensor:
        img = torch.from_numpy(image.copy()).permute(2, 0, 1).float().unsqueeze(0) / 255
        rgb = F.avg_pool2d(img, stride, ceil_mode=True)[0]
        h, w = rgb.shape[1:]
        ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        return torch.cat([rgb, ys[None], xs[None]])

    return features


@pytest.fixture
def restore_threads():
    """Put torch's thread count back after a test that changes it (``--threads``)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_thread(restore_threads):
    """One torch thread: on shared cores OpenMP's spinning makes tiny models up to a
    hundred times slower with two; one thread also fixes the order of float sums."""
    torch.set_num_threads(1)


@pytest.fixture
def tagged_squares():
    """``tagged_squares(count=8, size=32, seed=0)``: grey images with a red square
    (class 1), a blue square (class 2) or both, and their tags."""
    def make(count=8, size=32, seed=0):
        rng = np.random.default_rng(seed)
        images, tags = [], []
        for i in range(count):
            image = np.full((size, size, 3), 128, dtype=np.uint8)
            present = [(1,), (2,), (1, 2)][i % 3]
            for cls in present:
                y, x = rng.integers(0, size // 2, 2)
                colour = (230, 20, 20) if cls == 1 else (20, 20, 230)
                image[y:y + size // 3, x:x + size // 3] = colour
            images.append(image)
            tags.append(present)
        return images, tags

    return make


@pytest.fixture
def tiny():
    """The smallest segmenter settings that still learn (tests run on two shared cores)."""
    return {"backbone": "small-cnn", "pretrained": False, "width": 8, "crop": 40,
            "batch_size": 4, "lr": 1e-3, "head_lr": 10.0}


@pytest.fixture
def squares_folder(tmp_path):
    """``squares_folder(count=12, size=48, seed=0)``: a folder with ``images/`` (grey
    noise with a red square, class 1, and/or a blue one, class 2), ``labels/`` (their
    masks, 0 = background), ``scribbles/`` (one-pixel strokes along each region's
    skeleton, 255 elsewhere: about 5 % of the pixels) and ``tags.json``; returns the
    folder."""
    def make(count=12, size=48, seed=0, root=None):
        root = root or tmp_path / "squares"
        rng = np.random.default_rng(seed)
        tags = {}
        for i in range(count):
            image = rng.normal(128, 12, (size, size, 3)).clip(0, 255).astype(np.uint8)
            label = np.zeros((size, size), np.uint8)
            present = [(1,), (2,), (1, 2)][i % 3]
            for cls in present:
                side = int(rng.integers(size // 4, size // 2))
                y, x = rng.integers(0, size - side, 2)
                image[y:y + side, x:x + side] = (220, 30, 30) if cls == 1 else (30, 30, 220)
                label[y:y + side, x:x + side] = cls
            name = f"sq{i:02d}"
            write_png(root / "images" / f"{name}.png", image)
            write_label_png(root / "labels" / f"{name}.png", label)
            write_label_png(root / "scribbles" / f"{name}.png",
                            scribbles_from_labels(label, width=1, min_area=4, seed=i))
            tags[name] = list(present)
        (root / "tags.json").write_text(json.dumps(tags))
        (root / "classes.txt").write_text("background\nred\nblue\n")
        return root

    return make
