"""Reading images and label maps, and writing files atomically.

Image policy (:func:`read_image`): photos come back as ``(H, W, 3)`` uint8 RGB.
Grayscale (``L``, ``LA``), palette (``P``), ``RGBA``, ``CMYK`` and ``YCbCr`` files are
converted to RGB (grey replicated to three channels, palette expanded, alpha
dropped without compositing).  16-bit and floating-point photos (``I;16``, ``I``,
``F``) are rejected: their intensity scale (10, 12 or 16 bits) is not recorded in
the file, so any conversion would be a guess.

Label map policy (:func:`read_label_map`): ``(H, W)`` uint8 class indices,
255 = ignore.  ``L`` and ``P`` files are read as indices (a palette PNG stores the
index; its colours are only for display).  16-bit files are accepted when every
value is <= 255 and rejected otherwise.  Colour (``RGB``/``RGBA``) files are
rejected: colour-coded labels need the dataset's colour table to decode.

Writes go to a temporary file in the destination folder, then ``os.replace``
moves it into place, so a reader never sees half a file and an interrupted run
leaves no truncated output.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

PathLike = Union[str, os.PathLike]

_TO_RGB = {"RGB", "L", "LA", "P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "1", "La"}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")

# read once: os.umask can only be read by setting it, which is not thread-safe
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file next to ``path``; on success move it onto ``path``.

    Args:
        path (str or os.PathLike): destination file.  Its folder is created if
            missing.
        mode (str, optional): ``"wb"`` or ``"w"`` (text, UTF-8). (default: ``"wb"``)

    Yields:
        file object: the open temporary file.  If the ``with`` block raises, the
        temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes it 0600; match a plain open()
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def write_json(path: PathLike, value) -> None:
    """Write ``value`` as indented JSON, atomically."""
    with atomic_open(path, "w") as file:
        json.dump(value, file, indent=2)
        file.write("\n")


def read_checkpoint(path: PathLike, what: str) -> dict:
    """A checkpoint graphseg saved with ``torch.save`` (a dict of plain values and
    tensors), loaded on the CPU without unpickling code (``weights_only=True``).

    Args:
        path (str or os.PathLike): the file.
        what (str): what it should be, for error messages (e.g.
            ``"a graphseg CAM checkpoint"``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a dict checkpoint (damaged, another program's,
            or holding objects other than tensors and plain values: those are refused,
            never unpickled), with the reason in one line.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a foreign or damaged file
        raise ValueError(f"{path}: not {what} ({load_error(error)})") from error
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not {what}")
    return state


def load_error(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line (torch's own
    messages run to several paragraphs)."""
    text = str(error).strip()
    if "Weights only load failed" in text:
        return ("it holds Python objects other than tensors and plain values, which are "
                "never unpickled")
    if not text:
        return type(error).__name__
    return text.splitlines()[0].split(". ")[0].rstrip(".")


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8), atomically."""
    with atomic_open(path, "w") as file:
        file.write(text)


def write_png(path: PathLike, array: np.ndarray,
              palette: Optional[Sequence[int]] = None) -> None:
    """Write a uint8 ``(H, W)`` or ``(H, W, 3)`` array, or a uint16 ``(H, W)`` one
    (16-bit grayscale, e.g. instance ids), as a PNG, atomically.

    Args:
        path (str or os.PathLike): destination ``.png`` file.
        array (numpy.ndarray): the image; uint8 ``(H, W)`` is written as grayscale
            (``L``), or as a palette image (``P``) when ``palette`` is given.
        palette (sequence of int, optional): flat ``[r0, g0, b0, r1, ...]`` colour
            table for uint8 ``(H, W)`` arrays. (default: ``None``)
    """
    array = np.asarray(array)
    sixteen = array.dtype == np.uint16 and array.ndim == 2 and palette is None
    if not sixteen and (array.dtype != np.uint8 or array.ndim not in (2, 3)):
        raise ValueError(f"{path}: expected a uint8 (H, W) or (H, W, 3) array or a uint16 "
                         f"(H, W) one, got {array.dtype} with shape {array.shape}")
    image = Image.fromarray(array)
    if palette is not None:
        if array.ndim != 2:
            raise ValueError(f"{path}: a palette needs an (H, W) array, got {array.shape}")
        image = image.convert("L")
        image.putpalette(list(palette))  # makes it a "P" image with the same indices
    with atomic_open(path, "wb") as file:
        image.save(file, format="PNG")


def _open(path: PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: cannot read as an image ({error})") from error
    return image


def read_image(path: PathLike) -> np.ndarray:
    """Read a photo as ``(H, W, 3)`` uint8 RGB, following the module's policy.

    Args:
        path (str or os.PathLike): image file (any format Pillow reads).

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a readable image, or is 16-bit / floating point.
    """
    image = _open(path)
    if image.mode in _SIXTEEN_BIT:
        raise ValueError(f"{path}: {image.mode} (16-bit or float) photos are not supported; "
                         "convert to 8-bit RGB first, choosing the intensity scale")
    if image.mode not in _TO_RGB:
        raise ValueError(f"{path}: unsupported image mode {image.mode!r}")
    return np.asarray(image.convert("RGB"))


def read_label_map(path: PathLike) -> np.ndarray:
    """Read a label map (class or instance indices) as ``(H, W)`` uint8.

    Args:
        path (str or os.PathLike): PNG (or other lossless) file with ``L``, ``P``
            or 16-bit pixels.

    Returns:
        np.ndarray: ``(H, W)`` uint8, 255 = ignore / unlabelled.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable file, colour file, or 16-bit values above 255.
    """
    image = _open(path)
    if image.mode in ("L", "P"):
        return np.array(image)
    if image.mode in _SIXTEEN_BIT[:-1]:
        values = np.array(image)
        if values.min() < 0 or values.max() > 255:
            raise ValueError(f"{path}: 16-bit label map holds values in "
                             f"[{values.min()}, {values.max()}], expected 0..255")
        return values.astype(np.uint8)
    raise ValueError(f"{path}: label maps must be single-channel index images (L, P or "
                     f"16-bit), got mode {image.mode!r}; colour-coded labels must be "
                     "converted to class indices first")
