"""Synthetic calibration images like the trained shapes fixture's data (NOT its val images).

Each image is a random crop of one of scikit-image's bundled photos (no download), scaled to
``size`` x ``size``, with 1..6 filled shapes in random colours drawn on it: circles, squares
rotated by a random angle, and triangles (equilateral, rotated), 18..120 px across, as in
``ssd_mobilenet_v2_035_shapes_256/val``. Written as JPEGs with their own seed, so they are
distinct from the fixture's validation set.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Photos bundled with scikit-image 0.26 (textures of the kind the fixture's images show).
TEXTURES = (
    "astronaut", "camera", "coins", "moon", "page", "grass", "gravel", "brick", "retina",
    "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "text", "clock",
    "cell",
)
SHAPES = ("circle", "square", "triangle")  # label-map ids 1, 2, 3


def _textures() -> list[Image.Image]:
    from skimage import data

    images = []
    for name in TEXTURES:
        array = getattr(data, name)()
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        images.append(Image.fromarray(array[..., :3].astype(np.uint8)))
    return images


def _background(texture: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    w, h = texture.size
    side = int(rng.uniform(0.4, 1.0) * min(w, h))
    left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    crop = texture.crop((left, top, left + side, top + side))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return crop.resize((size, size), Image.Resampling.BILINEAR)


def _polygon(kind: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    corners = 4 if kind == "square" else 3
    return [
        (cx + radius * math.cos(angle + 2 * math.pi * k / corners), cy + radius * math.sin(angle + 2 * math.pi * k / corners))
        for k in range(corners)
    ]


def draw_shapes(image: Image.Image, rng: np.random.Generator) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Draw 1..6 shapes on ``image`` in place; return (kind, (x, y, w, h)) per shape."""
    draw = ImageDraw.Draw(image)
    size = min(image.size)
    drawn = []
    for _ in range(int(rng.integers(1, 7))):
        kind = SHAPES[int(rng.integers(0, 3))]
        extent = rng.uniform(18, 120)  # bounding box side in pixels
        radius = extent / 2
        cx, cy = rng.uniform(radius, size - radius, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if kind == "circle":
            box = (cx - radius, cy - radius, cx + radius, cy + radius)
            draw.ellipse(box, fill=colour)
        else:
            points = _polygon(kind, cx, cy, radius, rng.uniform(0, 2 * math.pi))
            draw.polygon(points, fill=colour)
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            box = (min(xs), min(ys), max(xs), max(ys))
        drawn.append((kind, (box[0], box[1], box[2] - box[0], box[3] - box[1])))
    return drawn


def write_shapes_jpegs(folder: Path, count: int, seed: int = 1000, size: int = 320) -> list[Path]:
    """``count`` JPEGs ``shapes_<i>.jpg`` of ``size`` x ``size`` in ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    textures = _textures()
    paths = []
    for i in range(count):
        image = _background(textures[int(rng.integers(0, len(textures)))], size, rng)
        draw_shapes(image, rng)
        path = folder / f"shapes_{i:05d}.jpg"
        image.save(path, quality=int(rng.integers(80, 96)))
        paths.append(path)
    return paths
