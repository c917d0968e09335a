"""Real photos for checks that need images but were given none, and model-input resizing.

The photos come from scikit-image's bundled data (no download). Grey images are turned
into RGB; each photo also appears mirrored so there are enough distinct images.
``write_photo_jpegs`` cuts the colour ones into a folder of JPEGs (calibration tests and
benchmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from trtdeploy.errors import InputError

if TYPE_CHECKING:
    from calibration import PreprocessSpec
    from trtdeploy.runners import Frame

# Bundled with scikit-image (no network); the colour photos first.
NUM_COLOUR_PHOTOS = 6
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "camera", "coins", "moon", "page", "grass", "gravel", "brick", "clock", "text",
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def _photos(names: tuple[str, ...]) -> list[tuple[str, Image.Image]]:
    from skimage import data

    photos = []
    for name in names:
        array = getattr(data, name)()
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        photos.append((name, Image.fromarray(array[..., :3].astype(np.uint8))))
    return photos


def sample_photos(count: int) -> list[tuple[str, Image.Image]]:
    """``count`` distinct RGB photos (name, image) from scikit-image's bundled data."""
    photos = _photos(PHOTOS)
    mirrored = [(f"{name}_mirrored", img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)) for name, img in photos]
    pool = photos + mirrored
    if count > len(pool):
        raise InputError(f"only {len(pool)} bundled sample photos; pass --images DIR for more")
    return pool[:count]


def load_folder(folder: Path, count: int) -> list[tuple[str, Image.Image]]:
    """The first ``count`` images of a folder (sorted by name), as RGB."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"image folder {folder} not found")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no .jpg/.png/.bmp images in {folder}")
    images = []
    for path in files[:count]:
        try:
            with Image.open(path) as img:
                images.append((path.name, img.convert("RGB")))
        except OSError as exc:
            raise InputError(f"cannot read image {path}: {exc}") from exc
    return images


def resize_for_model(image: Image.Image, height: int, width: int, mode: str) -> np.ndarray:
    """RGB pixels as float32 [H,W,3] 0-255 at the model's input size: ``stretch`` or
    ``letterbox`` (top-left, zero padding, as TFOD's keep_aspect_ratio_resizer pads), done by
    the calibration package's preprocessing so verify and calibration resize identically."""
    return _model_spec(height, width, mode).tensor(image.convert("RGB"))


def place_for_model(image: Image.Image, height: int, width: int, mode: str) -> Frame:
    """Where :func:`resize_for_model` puts ``image`` in the network input."""
    from trtdeploy.runners import frame_for

    return frame_for(_model_spec(height, width, mode), *image.size)


def _model_spec(height: int, width: int, mode: str) -> PreprocessSpec:
    from calibration import PreprocessSpec

    return PreprocessSpec(height=height, width=width, layout="NHWC", resize=mode, pad_corner="top_left")


JPEG_SIZES = ((640, 480), (480, 640), (320, 240), (301, 167), (97, 211), (500, 500), (1024, 300))


def write_photo_jpegs(
    folder: Path, count: int, seed: int = 0, sizes: tuple[tuple[int, int], ...] = JPEG_SIZES
) -> list[Path]:
    """Write ``count`` JPEGs (quality 88) cut at random from the colour photos and resized to
    ``sizes`` in turn: varied, deterministic real images for calibration tests and benchmarks."""
    rng = np.random.default_rng(seed)
    photos = [image for _, image in _photos(PHOTOS[:NUM_COLOUR_PHOTOS])]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)]
        w, h = photo.size
        cw, ch = int(w * rng.uniform(0.4, 1.0)), int(h * rng.uniform(0.4, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        path = folder / f"photo_{i:03d}.jpg"
        photo.crop((x, y, x + cw, y + ch)).resize(sizes[i % len(sizes)], Image.Resampling.BILINEAR).save(path, quality=88)
        paths.append(path)
    return paths
