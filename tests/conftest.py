from pathlib import Path

import numpy as np
import pytest

from graphseg.data import kit_root

# The shared data kit sits beside the checkout (a user's clone has none);
# GRAPHSEG_DATA points elsewhere.
DATA_DIR = kit_root()


@pytest.fixture
def data_kit() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"data kit not found at {DATA_DIR}")
    return DATA_DIR


def load_grabcut(data_kit: Path, name: str):
    """RGB image, binary ground truth (1 = object) and scribbles (1 object, 2 background)."""
    from PIL import Image

    root = data_kit / "grabcut"
    image = np.asarray(Image.open(root / "images" / f"{name}.jpg").convert("RGB"))
    mask = (np.asarray(Image.open(root / "masks" / f"{name}.png")) > 127).astype(np.int64)
    scribbles = np.asarray(Image.open(root / "scribbles1" / f"{name}.png")).astype(np.int64)
    return image, mask, scribbles
