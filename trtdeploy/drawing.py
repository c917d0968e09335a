"""Draw detections on an image: readable on light and dark images alike.

Each box is a band of its class colour ``line`` pixels wide whose outer edge runs exactly
through the box's rounded pixel corners (x1, y1) and (x2, y2), framed by one dark pixel on each
side so it stands out on bright and on dark backgrounds. The label ("name 0.87") sits in a
filled tag of the class colour above the box (below or inside it when there is no room or a more
confident tag is there), in black or white, whichever contrasts more with that colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Saturated colours that stay distinct from each other and from typical photo backgrounds.
PALETTE = (
    (255, 56, 56), (50, 205, 50), (30, 144, 255), (255, 178, 29), (207, 68, 255), (0, 212, 212),
    (255, 112, 31), (146, 204, 23), (255, 55, 199), (72, 249, 10), (0, 148, 255), (255, 221, 0),
)
FRAME = (16, 16, 16)  # the dark pixel either side of a colour band


def class_colour(class_id: int) -> tuple[int, int, int]:
    return PALETTE[int(class_id) % len(PALETTE)]


def line_width(width: int, height: int) -> int:
    return max(2, round(min(width, height) / 160))


def _text_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def pixel_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """x1,y1,x2,y2 in (float) pixels -> the integer pixel columns/rows the box edges are drawn on."""
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    clamp_x = lambda v: min(max(v, 0), width - 1)  # noqa: E731 - two one-line clamps
    clamp_y = lambda v: min(max(v, 0), height - 1)  # noqa: E731
    return clamp_x(x1), clamp_y(y1), clamp_x(x2), clamp_y(y2)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_tag(box: tuple[int, int, int, int], tw: int, th: int, line: int, size: tuple[int, int],
               taken: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """Where a tag goes: above the box, else below it, else inside its top (which hides part of a
    small object); the first spot that fits the image and covers no tag placed before (a more
    confident one)."""
    x1, y1, x2, y2 = box
    w, h = size
    tx = min(max(x1 - 1, 0), max(w - tw, 0))
    spots = [y1 - th - 1, y2 + 2, y1 + line + 1]
    fitting = [ty for ty in spots if 0 <= ty and ty + th <= h] or [max(0, min(y1 + line + 1, h - th))]
    for ty in fitting:
        if not any(_overlaps((tx, ty, tx + tw, ty + th), other) for other in taken):
            return tx, ty
    return tx, fitting[0]


def draw_detections(
    image: Image.Image,
    boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    labels: Sequence[str],
) -> Image.Image:
    """A copy of ``image`` (RGB) with every detection drawn; boxes x1,y1,x2,y2 in its pixels.
    Boxes are drawn lowest score first (the most confident on top), then the tags, placed in
    score order so a confident detection's tag is never covered."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    w, h = canvas.size
    line = line_width(w, h)
    font = _font(max(10, round(min(w, h) / 28)))
    descending = [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")]
    rects = {i: pixel_box(boxes[i], w, h) for i in descending}
    for i in reversed(descending):
        x1, y1, x2, y2 = rects[i]
        draw.rectangle((x1 - 1, y1 - 1, x2 + 1, y2 + 1), outline=FRAME, width=line + 2)
        draw.rectangle((x1, y1, x2, y2), outline=class_colour(int(classes[i])), width=line)
    taken: list[tuple[int, int, int, int]] = []
    tags = []
    for i in descending:
        cls = int(classes[i])
        name = labels[cls] if 0 <= cls < len(labels) else f"class {cls}"
        text = f"{name} {float(scores[i]):.2f}"
        left, top, right, bottom = (int(round(v)) for v in draw.textbbox((0, 0), text, font=font))
        tw, th = right - left + 4, bottom - top + 4
        tx, ty = _place_tag(rects[i], tw, th, line, (w, h), taken)
        taken.append((tx, ty, tx + tw, ty + th))
        tags.append((tx, ty, tw, th, left, top, text, class_colour(cls)))
    for tx, ty, tw, th, left, top, text, colour in reversed(tags):
        draw.rectangle((tx, ty, tx + tw - 1, ty + th - 1), fill=colour, outline=FRAME)
        draw.text((tx + 2 - left, ty + 2 - top), text, fill=_text_colour(colour), font=font)
    return canvas
