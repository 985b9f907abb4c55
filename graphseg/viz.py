"""Side-by-side pictures: image, weak labels, prediction and ground truth.

Class colours are the hues of the PASCAL VOC colour map
(:func:`graphseg.data.voc_colormap`, the palette of the PNGs graphseg writes) at full
brightness, background white (:func:`display_colours`): VOC's dark red object on a
red carpet is barely readable, so overlays dim the background, tint the objects and
outline every object region with a double contour (black outside, white inside)
that stays visible on dark and bright photos alike.  Pixels labelled 255
(ignore / unlabelled) are left uncoloured in overlays.  Drawn with Pillow only.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from graphseg.data.classes import voc_colormap
from graphseg.data.sample import check_boxes
from graphseg.utils.constants import IGNORE
from graphseg.utils.io import write_png

_TITLE = 22  # pixels above each panel for its title
_GAP = 6     # pixels between panels


def _font(size: int = 14):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


_DIM = 0.5  # brightness of the background in overlays


def display_colours() -> np.ndarray:
    """``(256, 3)`` uint8 colours of the pictures: every VOC colour with its largest
    channel raised to 255 (same hue, full brightness), and white for VOC's black
    background (class 0).

    >>> from graphseg.viz import display_colours
    >>> display_colours()[[0, 1, 15]].tolist()
    [[255, 255, 255], [255, 0, 0], [255, 170, 170]]
    """
    colours = voc_colormap().astype(np.float64)
    peak = colours.max(axis=1, keepdims=True)
    colours = np.where(peak > 0, colours * 255 / np.maximum(peak, 1), 255)
    return colours.round().astype(np.uint8)


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.5,
            background: int = 0, outline: bool = True) -> np.ndarray:
    """Show a label map on an image: background dimmed, objects tinted and outlined.

    Background pixels keep the image at half brightness, object pixels blend in
    their class colour (:func:`display_colours`), and with ``outline`` every
    object region gets a double contour, a 1-pixel black line outside it and a
    2-pixel white line inside, visible on any photo; 255 pixels keep the image.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8.
        label (numpy.ndarray): ``(H, W)`` class indices, 255 = none.
        alpha (float, optional): colour weight in ``[0, 1]``. (default: ``0.5``)
        background (int, optional): the class that is dimmed instead of tinted.
            (default: ``0``)
        outline (bool, optional): draw the contours. (default: ``True``)

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    label = _check_map(label, image.shape[:2], "label")
    colours = display_colours()[label].astype(np.float64)
    out = image.astype(np.float64)
    back = label == background
    objects = (label != IGNORE) & ~back
    out[back] *= _DIM
    out[objects] = (1 - alpha) * out[objects] + alpha * colours[objects]
    out = out.round().astype(np.uint8)
    if outline:
        inner = []
        for cls in np.unique(label[objects]):
            region = label == cls
            # border_value=1: a region cut by the photo's edge is not outlined along it
            core = ndimage.binary_erosion(region, iterations=2, border_value=1)
            out[ndimage.binary_dilation(region) & ~region] = 0
            inner.append(region & ~core)
        for ring in inner:  # white last, so a neighbour's black line cannot cover it
            out[ring] = 255
    return out


def _check_map(value, shape: Tuple[int, int], name: str) -> np.ndarray:
    value = np.asarray(value)
    if value.shape != tuple(shape):
        raise ValueError(f"{name} is {value.shape[::-1]} (W x H) but the image is "
                         f"{tuple(shape)[::-1]}")
    if value.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 class indices, got {value.dtype}")
    return value


def draw_weak_labels(image: np.ndarray, seeds: Optional[np.ndarray] = None, boxes=None,
                     seed_radius: int = 2) -> np.ndarray:
    """The image, dimmed, with seeds painted and box outlines drawn in class colours
    (:func:`display_colours`), each edged in black so it shows on any photo.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8.
        seeds (numpy.ndarray, optional): ``(H, W)`` scribbles / points
            (255 = unlabelled). (default: ``None``)
        boxes (array-like, optional): ``(N, 5)`` half-open boxes.
            (default: ``None``)
        seed_radius (int, optional): seeds are thickened by this many pixels so
            single clicks show. (default: ``2``)

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8.
    """
    colours = display_colours()
    canvas = (image.astype(np.float64) * 0.6).round().astype(np.uint8)
    if seeds is not None:
        seeds = _check_map(seeds, image.shape[:2], "seeds")
        # paint larger classes first so a thickened click stays on top of a scribble
        for cls in sorted(np.unique(seeds[seeds != IGNORE]),
                          key=lambda c: -int((seeds == c).sum())):
            mask = seeds == cls
            if seed_radius:
                mask = ndimage.binary_dilation(mask, iterations=seed_radius)
            canvas[ndimage.binary_dilation(mask) & ~mask] = 0
            canvas[mask] = colours[cls]
    picture = Image.fromarray(canvas)
    if boxes is not None and len(boxes):
        draw = ImageDraw.Draw(picture)
        for cls, x1, y1, x2, y2 in check_boxes(boxes, image.shape[:2], "boxes").tolist():
            # black, 3 pixels of colour, black: the box shows on any photo
            draw.rectangle([x1 - 1, y1 - 1, x2, y2], outline="black", width=5)
            draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=tuple(colours[cls].tolist()),
                           width=3)
    return np.asarray(picture)


def render_panels(image: np.ndarray, seeds: Optional[np.ndarray] = None, boxes=None,
                  prediction: Optional[np.ndarray] = None,
                  ground_truth: Optional[np.ndarray] = None,
                  class_names: Optional[Sequence[str]] = None, alpha: float = 0.5,
                  iou: Optional[float] = None, background: int = 0) -> np.ndarray:
    """Image, weak labels, prediction and ground truth side by side, with a legend.

    Panels for missing inputs are left out.  The legend lists every class that
    appears in the seeds, boxes, prediction or ground truth.  Overlays dim the
    background and outline the objects (:func:`overlay`); with ``iou`` the
    prediction's title reads e.g. ``prediction  IoU 0.950``.

    Args:
        image (numpy.ndarray): ``(H, W, 3)`` uint8 RGB.
        seeds (numpy.ndarray, optional): ``(H, W)`` uint8 scribbles or points,
            255 = unlabelled. (default: ``None``)
        boxes (array-like, optional): ``(N, 5)`` ``(class, x1, y1, x2, y2)``
            half-open boxes. (default: ``None``)
        prediction (numpy.ndarray, optional): ``(H, W)`` uint8 predicted classes.
            (default: ``None``)
        ground_truth (numpy.ndarray, optional): ``(H, W)`` uint8 true classes,
            255 = ignore. (default: ``None``)
        class_names (sequence of str, optional): class names for the legend.
            (default: ``None``, indices)
        alpha (float, optional): overlay colour weight in ``[0, 1]``.
            (default: ``0.5``)
        iou (float, optional): the prediction's IoU against the ground truth,
            written into its title. (default: ``None``)
        background (int, optional): the class overlays dim instead of tint.
            (default: ``0``)

    Returns:
        np.ndarray: ``(H', W', 3)`` uint8 picture.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
    panels: List[Tuple[str, np.ndarray]] = [("image", image)]
    if seeds is not None or (boxes is not None and len(boxes)):
        panels.append(("weak labels", draw_weak_labels(image, seeds, boxes)))
    if prediction is not None:
        title = "prediction" if iou is None else f"prediction  IoU {iou:.3f}"
        panels.append((title, overlay(image, prediction, alpha, background)))
    if ground_truth is not None:
        panels.append(("ground truth", overlay(image, ground_truth, alpha, background)))
    present = set()
    for value in (seeds, prediction, ground_truth):
        if value is not None:
            present.update(int(c) for c in np.unique(value) if c != IGNORE)
    if boxes is not None and len(boxes):
        present.update(int(c) for c in np.asarray(boxes)[:, 0])
    return _compose(panels, sorted(present), class_names)


def _compose(panels, present: Sequence[int], class_names: Optional[Sequence[str]]) -> np.ndarray:
    height, width = panels[0][1].shape[:2]
    font, colours = _font(), display_colours()
    names = [class_names[c] if class_names is not None and c < len(class_names) else str(c)
             for c in present]
    entries = [(tuple(colours[c].tolist()), name) for c, name in zip(present, names)]
    total_width = len(panels) * width + (len(panels) - 1) * _GAP
    # lay the legend out in rows that fit the picture's width
    rows, row, x = [], [], 8
    for colour, name in entries:
        entry_width = 24 + int(font.getlength(name)) + 16
        if row and x + entry_width > total_width:
            rows.append(row)
            row, x = [], 8
        row.append((x, colour, name))
        x += entry_width
    if row:
        rows.append(row)
    legend_height = 10 + 22 * len(rows)
    canvas = Image.new("RGB", (total_width, _TITLE + height + legend_height), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (title, panel) in enumerate(panels):
        left = i * (width + _GAP)
        canvas.paste(Image.fromarray(panel), (left, _TITLE))
        draw.text((left + 4, 3), title, fill="black", font=font)
    for r, entries_in_row in enumerate(rows):
        top = _TITLE + height + 6 + 22 * r
        for x, colour, name in entries_in_row:
            draw.rectangle([x, top, x + 16, top + 16], fill=colour, outline="black")
            draw.text((x + 22, top), name, fill="black", font=font)
    return np.asarray(canvas)


def save_panels(path, image: np.ndarray, **kwargs) -> None:
    """:func:`render_panels` written to ``path`` as a PNG (atomically).

    Args:
        path (str or os.PathLike): destination ``.png``.
        image (numpy.ndarray): ``(H, W, 3)`` uint8.
        **kwargs (optional): as for :func:`render_panels`.
    """
    write_png(path, render_panels(image, **kwargs))
