"""Compare models on the same images: matched detections per pair and, with annotations, mAP.

Each model runs on the same image files through its own deploy card (so models with different
input sizes or resize modes compare fairly); detections are compared in original-image
coordinates (normalised by the image size) with verify's matching (same class, IoU >= ``iou``,
greedy in the reference's score order). Every model is compared against the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trtdeploy.detections import Detections, MatchStats, match
from trtdeploy.errors import InputError
from trtdeploy.log import get_logger
from trtdeploy.verify import Tolerance, compare

log = get_logger("compare")


@dataclass
class ModelRun:
    name: str
    path: Path
    labels: list[str]
    score_threshold: float  # the model's own NMS threshold (what evaluate sees)
    detections: list[Detections]  # per image, normalised y1,x1,y2,x2 on the ORIGINAL image
    seconds: float
    metrics: dict[str, float] | None = None


@dataclass
class PairResult:
    reference: str
    candidate: str
    stats: MatchStats
    disagreeing_images: list[int] = field(default_factory=list)  # indices into the image list
    map_reference: float | None = None
    map_candidate: float | None = None

    @property
    def map_delta(self) -> float | None:
        if self.map_reference is None or self.map_candidate is None:
            return None
        return self.map_candidate - self.map_reference

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference, "candidate": self.candidate, **asdict(self.stats),
            "matched_fraction": self.stats.matched_fraction, "disagreeing_images": len(self.disagreeing_images),
            "map_reference": self.map_reference, "map_candidate": self.map_candidate, "map_delta": self.map_delta,
        }


def original_normalised(boxes_px: np.ndarray, width: int, height: int, dets: Detections) -> Detections:
    """x1,y1,x2,y2 original pixels -> Detections with y1,x1,y2,x2 normalised by the image size."""
    scale = np.array([height, width, height, width], np.float64)
    boxes = (np.asarray(boxes_px, np.float64)[:, [1, 0, 3, 2]] / scale).astype(np.float32)
    return Detections(boxes, dets.scores, dets.classes)


def run_model(path: Path, files: Sequence[Path], batch: int | None = None,
              on_batch: Callable[[int], None] | None = None, image_ids: Sequence[int] | None = None,
              coco_set: Any = None) -> ModelRun:
    """Run one model over ``files``; with a COCO set, also its mAP from the same detections."""
    import time

    from trtdeploy.evaluation import category_map, coco_map, coco_results
    from trtdeploy.inference import run_files
    from trtdeploy.runners import open_runner

    runner = open_runner(Path(path))
    mapping = category_map(list(runner.card.labels), coco_set.categories) if coco_set is not None else {}
    start = time.perf_counter()
    detections, results = [], []
    for index, result in enumerate(run_files(runner, files, batch, on_batch=on_batch)):
        detections.append(original_normalised(result.boxes, result.frame.width, result.frame.height,
                                              result.detections))
        if coco_set is not None and image_ids is not None:
            results.extend(coco_results(image_ids[index], result.boxes, result.scores, result.classes, mapping))
    seconds = time.perf_counter() - start
    metrics = coco_map(coco_set, results) if coco_set is not None else None
    return ModelRun(runner.name, Path(path), list(runner.card.labels), float(runner.card.nms.score_threshold),
                    detections, seconds, metrics)


def compare_runs(reference: ModelRun, candidate: ModelRun, iou: float, threshold: float) -> PairResult:
    """Match the candidate's detections against the reference's, image by image."""
    if reference.labels != candidate.labels:
        log.warning("%s and %s have different labels; classes are compared by index", reference.name,
                    candidate.name)
    tol = Tolerance(iou=iou, score_threshold=threshold)
    stats = compare(reference.detections, candidate.detections, tol)
    disagreeing = [
        i for i, (ref, cand) in enumerate(zip(reference.detections, candidate.detections, strict=True))
        if _disagree(match(ref.above(threshold), cand.above(threshold), iou))
    ]
    pair = PairResult(reference.name, candidate.name, stats, disagreeing)
    if reference.metrics is not None and candidate.metrics is not None:
        pair.map_reference, pair.map_candidate = reference.metrics["AP"], candidate.metrics["AP"]
    return pair


def _disagree(stats: MatchStats) -> bool:
    return stats.matched < stats.reference or stats.matched < stats.candidate


def compare_models(
    models: Sequence[Path],
    images_dir: Path,
    annotations: Path | None = None,
    max_images: int | None = None,
    iou: float = 0.5,
    threshold: float = 0.3,
    batch: int | None = None,
    on_model: Callable[[str, int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[list[ModelRun], list[PairResult], list[Path]]:
    """Run every model on the same images and compare each with the first.

    Returns (runs, pairs, image files). Without ``annotations`` the images are the folder's
    (the first ``max_images``); with them, the annotated images found in the folder.
    """
    from trtdeploy.evaluation import load_coco
    from trtdeploy.inference import image_files

    if len(models) < 2:
        raise InputError(f"compare needs at least two models, got {len(models)}")
    if not 0.0 < iou <= 1.0:
        raise InputError(f"--iou must be in (0, 1], got {iou}")
    coco_set = load_coco(annotations, images_dir, max_images) if annotations is not None else None
    files = coco_set.files if coco_set is not None else image_files(images_dir, max_images)
    ids = coco_set.image_ids if coco_set is not None else None
    runs = []
    for path in models:
        if on_model is not None:
            on_model(Path(path).name, len(files))
        runs.append(run_model(path, files, batch, on_batch, ids, coco_set))
    pairs = [compare_runs(runs[0], run, iou, threshold) for run in runs[1:]]
    return runs, pairs, files


def side_by_side(path: Path, reference: ModelRun, candidate: ModelRun, index: int, threshold: float) -> Any:
    """One image with the reference's detections on the left and the candidate's on the right."""
    from PIL import Image, ImageDraw

    from trtdeploy.drawing import FRAME, draw_detections
    from trtdeploy.inference import open_rgb

    image = open_rgb(path)
    w, h = image.size
    panels = []
    for run in (reference, candidate):
        dets = run.detections[index].above(threshold)
        boxes = dets.boxes.astype(np.float64)[:, [1, 0, 3, 2]] * np.array([w, h, w, h], np.float64)
        panel = draw_detections(image, boxes, dets.classes, dets.scores, run.labels)
        ImageDraw.Draw(panel).text((4, h - 16), run.name, fill=(255, 255, 255), stroke_width=2, stroke_fill=FRAME)
        panels.append(panel)
    canvas = Image.new("RGB", (2 * w + 4, h), FRAME)
    canvas.paste(panels[0], (0, 0))
    canvas.paste(panels[1], (w + 4, 0))
    return canvas


def write_disagreements(out_dir: Path, runs: list[ModelRun], pairs: list[PairResult], files: Sequence[Path],
                        threshold: float, limit: int, force: bool) -> list[Path]:
    """Side-by-side PNGs of up to ``limit`` disagreeing images per pair, under OUT/<a>_vs_<b>/."""
    from trtdeploy.files import atomic_path, check_output, check_output_name

    written = []
    for number, (candidate, pair) in enumerate(zip(runs[1:], pairs, strict=True), start=1):
        name = f"{number}_{Path(pair.reference).stem}_vs_{Path(pair.candidate).stem}"
        folder = Path(out_dir) / check_output_name(name, "model names")
        for index in pair.disagreeing_images[:limit]:
            target = folder / f"{Path(files[index]).stem}.png"
            check_output(target, force, files)
            picture = side_by_side(files[index], runs[0], candidate, index, threshold)
            with atomic_path(target) as tmp:
                picture.save(tmp, format="PNG")
            written.append(target)
    return written
