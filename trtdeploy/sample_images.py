"""Real photos for checks that need images but were given none, and model-input resizing.

The photos come from scikit-image's bundled data (no download). Grey images are turned
into RGB; each photo also appears mirrored so there are enough distinct images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trtdeploy.errors import InputError

# Bundled with scikit-image (no network); colour photos first.
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "camera", "coins", "moon", "page", "grass", "gravel", "brick", "clock", "text",
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def sample_photos(count: int) -> list[tuple[str, Image.Image]]:
    """``count`` distinct RGB photos (name, image) from scikit-image's bundled data."""
    from skimage import data

    photos = []
    for name in PHOTOS:
        array = getattr(data, name)()
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        array = array[..., :3].astype(np.uint8)
        photos.append((name, Image.fromarray(array)))
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
    from calibration import PreprocessSpec

    spec = PreprocessSpec(height=height, width=width, layout="NHWC", resize=mode, pad_corner="top_left")
    return spec.tensor(image.convert("RGB"))
