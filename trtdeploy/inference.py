"""Batch image files through a runner and map the detections back to the original images.

Threads decode and preprocess the next batch (with the runner's deploy card, through the
calibration package's preprocessing) while the runner works on the current one (PIL releases
the GIL while it decodes and resizes). A last partial batch is padded by repeating
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
from trtdeploy.runners import CardRunner, Frame, frame_for, preprocess_spec

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

    spec = preprocess_spec(runner.card)

    def load(chunk: Sequence[Path]) -> tuple[list[Image.Image], np.ndarray, list[Frame]]:
        # decode and preprocess each image in a worker thread, straight into its batch slot
        size = batch if static is not None else len(chunk)
        tensor = np.empty(spec.shape(size), spec.dtype)

        def one(i: int) -> tuple[Image.Image, Frame]:
            image = open_rgb(chunk[i])
            spec.tensor_into(image, tensor[i])
            return image, frame_for(spec, *image.size)

        loaded = list(pool.map(one, range(len(chunk))))
        for i in range(len(chunk), size):  # a static batch's padding repeats the last image
            tensor[i] = tensor[len(chunk) - 1]
        return [image for image, _ in loaded], tensor, [frame for _, frame in loaded]

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


@dataclass
class InferSummary:
    images: int
    detections: int
    seconds: float
    tsv: Path

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


TSV_COLUMNS = ("image", "class_id", "label", "score", "x1", "y1", "x2", "y2")


def output_stem(path: Path, root: Path) -> str:
    """A flat, unique output name for an input image: its path under ``root`` with '/' -> '__'."""
    relative = path.relative_to(root) if root.is_dir() and path.is_relative_to(root) else Path(path.name)
    return "__".join(relative.with_suffix("").parts)


def infer_images(
    runner: CardRunner,
    source: Path,
    out_dir: Path,
    threshold: float = 0.3,
    batch: int | None = None,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> InferSummary:
    """Run ``runner`` on an image or folder; write per image ``<name>.png`` (detections drawn) and
    ``<name>.json``, and one ``detections.tsv`` (boxes in original-image pixels) into ``out_dir``."""
    import json
    import time

    from trtdeploy.drawing import draw_detections
    from trtdeploy.files import atomic_path, check_output, write_text_atomic

    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold must be in 0..1, got {threshold}")
    source, out_dir = Path(source), Path(out_dir)
    paths = image_files(source)
    stems = [output_stem(p, source) for p in paths]
    if len(set(stems)) < len(stems):  # a.jpg and a.png: keep the suffix in the name
        stems = [f"{stem}_{p.suffix.lstrip('.').lower()}" for stem, p in zip(stems, paths, strict=True)]
    tsv = out_dir / "detections.tsv"
    for stem in stems:
        for suffix in (".png", ".json"):
            check_output(out_dir / f"{stem}{suffix}", force, paths)
    check_output(tsv, force, paths)
    if on_start is not None:
        on_start(len(paths))
    labels = runner.card.labels
    rows = ["\t".join(TSV_COLUMNS)]
    total = 0
    start = time.perf_counter()
    for stem, result in zip(stems, run_files(runner, paths, batch, keep_images=True, on_batch=on_batch),
                            strict=True):
        keep = result.scores >= threshold
        boxes, scores, classes = result.boxes[keep], result.scores[keep], result.classes[keep]
        total += len(scores)
        entries = []
        for box, score, cls in zip(boxes.tolist(), scores.tolist(), classes.tolist(), strict=True):
            label = labels[cls] if 0 <= cls < len(labels) else f"class_{cls}"
            entries.append({"class_id": int(cls), "label": label, "score": round(float(score), 6),
                            "box": [round(v, 2) for v in box]})
            rows.append("\t".join([str(result.path), str(cls), label, f"{score:.6f}", *(f"{v:.2f}" for v in box)]))
        document = {"image": str(result.path), "width": result.frame.width, "height": result.frame.height,
                    "threshold": threshold, "box_format": "x1,y1,x2,y2 pixels", "detections": entries}
        write_text_atomic(out_dir / f"{stem}.json", json.dumps(document, indent=1) + "\n")
        assert result.image is not None
        # the drawn boxes are the rounded JSON boxes, so file and picture agree to the pixel
        drawn = draw_detections(result.image, np.array([e["box"] for e in entries]).reshape(-1, 4),
                                classes, scores, labels)
        with atomic_path(out_dir / f"{stem}.png") as tmp:
            drawn.save(tmp, format="PNG")
    write_text_atomic(tsv, "\n".join(rows) + "\n")
    return InferSummary(len(paths), total, time.perf_counter() - start, tsv)
