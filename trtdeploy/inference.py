"""Batch image files through a runner and map the detections back to the original images.

Threads decode and preprocess the next batch while the runner works on the current one (PIL
releases the GIL while it decodes and resizes). A last partial batch is padded by repeating
its last image when the model has a static batch, and the padding's detections are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trtdeploy.detections import Detections
from trtdeploy.errors import InputError
from trtdeploy.runners import CardRunner, Frame

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class ImageResult:
    path: Path
    frame: Frame
    detections: Detections  # normalised y1,x1,y2,x2 on the network input, as the runner read them
    boxes: np.ndarray  # [N,4] float64 x1,y1,x2,y2 in original-image pixels
    image: Image.Image | None = None  # the decoded original, when asked for (drawing)

    @property
    def scores(self) -> np.ndarray:
        return self.detections.scores

    @property
    def classes(self) -> np.ndarray:
        return self.detections.classes


def image_files(source: Path, limit: int | None = None) -> list[Path]:
    """One image file, or every image in a folder (recursively, sorted by relative path)."""
    from calibration import CalibrationError, list_images

    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise InputError(f"--images {source} not found (give an image file or a folder of images)")
    try:
        paths = list_images(source)
    except CalibrationError as exc:
        raise InputError(str(exc)) from exc
    return paths[:limit] if limit is not None else paths


def open_rgb(path: Path) -> Image.Image:
    """An image file as 8-bit RGB with its EXIF orientation applied (the calibration package's
    reader, so calibration and inference decode identically)."""
    from calibration import CalibrationError
    from calibration.images import open_image, to_8bit

    try:
        return to_8bit(open_image(path), False, path)
    except CalibrationError as exc:
        raise InputError(str(exc)) from exc


def _batches(paths: Sequence[Path], batch: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(paths), batch):
        yield paths[start : start + batch]


def run_files(
    runner: CardRunner,
    paths: Sequence[Path],
    batch: int | None = None,
    keep_images: bool = False,
    on_batch: Callable[[int], None] | None = None,
    workers: int = 3,
) -> Iterator[ImageResult]:
    """Yield one ImageResult per path, in order. ``batch`` defaults to the model's static batch
    (1 for a dynamic one); a static batch other than ``batch`` is refused."""
    static = runner.static_batch
    if batch is None:
        batch = static or 1
    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    if static is not None and batch != static:
        raise InputError(f"{runner.name} has a static batch of {static}; run it with batch {static}, not {batch}")

    def load(chunk: Sequence[Path]) -> tuple[list[Image.Image], np.ndarray, list[Frame]]:
        images = list(pool.map(open_rgb, chunk))
        padded = images + [images[-1]] * (batch - len(images)) if static is not None else images
        tensor, frames = runner.prepare(padded)
        return images, tensor, frames

    with ThreadPoolExecutor(max_workers=workers) as pool, ThreadPoolExecutor(max_workers=1) as ahead:
        chunks = list(_batches(paths, batch))
        pending = ahead.submit(load, chunks[0]) if chunks else None
        for index, chunk in enumerate(chunks):
            assert pending is not None
            images, tensor, frames = pending.result()
            pending = ahead.submit(load, chunks[index + 1]) if index + 1 < len(chunks) else None
            detections = runner.read(runner.infer(tensor))
            for path, image, frame, dets in zip(chunk, images, frames, detections, strict=False):
                yield ImageResult(path, frame, dets, frame.to_pixels(dets.boxes), image if keep_images else None)
            if on_batch is not None:
                on_batch(len(chunk))
