"""COCO box mAP of any model the runners take, with pycocotools.

pycocotools is the COCO team's own evaluator: the numbers papers and NVIDIA's samples report
(``eval_coco.py``) come from it, it is maintained on PyPI with wheels for current Pythons, and it
is already the ``[eval]`` extra. faster-coco-eval is faster on large sets but a second
implementation whose results are checked against pycocotools; at a few hundred images the
evaluation itself takes well under a second, so the reference is the better choice.

Category ids: class ``i`` of the model is the annotation category whose ``name`` equals
``labels[i]`` (the deploy card's labels, the label map for a saved model). Classes with no
category of that name are left out (and reported); no category match at all is an error.

Score threshold: the model is evaluated with every detection it emits, i.e. down to its own NMS
score threshold (the deploy card's ``nms.score_threshold``). COCO AP integrates precision over
recall, so dropping low-score detections can only cut the recall end of each curve: a model
converted with ``--score-threshold 0.3`` scores lower than the same model at 0.01, though its
confident detections are identical. Compare models at the same (low) threshold.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trtdeploy.errors import InputError, MissingDependencyError
from trtdeploy.files import read_json_object
from trtdeploy.log import get_logger

log = get_logger("evaluate")

# The 12 numbers of COCOeval.summarize(), in its order.
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
METRIC_TITLES = {
    "AP": "AP @[IoU=0.50:0.95 | area=all | maxDets=100]",
    "AP50": "AP @[IoU=0.50 | area=all | maxDets=100]",
    "AP75": "AP @[IoU=0.75 | area=all | maxDets=100]",
    "APs": "AP @[IoU=0.50:0.95 | area=small | maxDets=100]",
    "APm": "AP @[IoU=0.50:0.95 | area=medium | maxDets=100]",
    "APl": "AP @[IoU=0.50:0.95 | area=large | maxDets=100]",
    "AR1": "AR @[IoU=0.50:0.95 | area=all | maxDets=1]",
    "AR10": "AR @[IoU=0.50:0.95 | area=all | maxDets=10]",
    "AR100": "AR @[IoU=0.50:0.95 | area=all | maxDets=100]",
    "ARs": "AR @[IoU=0.50:0.95 | area=small | maxDets=100]",
    "ARm": "AR @[IoU=0.50:0.95 | area=medium | maxDets=100]",
    "ARl": "AR @[IoU=0.50:0.95 | area=large | maxDets=100]",
}


@dataclass
class CocoSet:
    """The annotations and which image files of the folder they describe."""

    path: Path
    data: dict[str, Any]
    files: list[Path]  # image files found, in annotation order
    image_ids: list[int]

    @property
    def categories(self) -> dict[str, int]:
        return {str(c["name"]): int(c["id"]) for c in self.data.get("categories", [])}


def load_coco(annotations: Path, images_dir: Path, max_images: int | None = None) -> CocoSet:
    """Read an instances JSON and find its images (by ``file_name``) under ``images_dir``."""
    annotations, images_dir = Path(annotations), Path(images_dir)
    data = read_json_object(annotations, "COCO annotations")
    if not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise InputError(f"{annotations} is not a COCO instances file (needs 'images' and 'annotations' lists)")
    if not data.get("categories"):
        raise InputError(f"{annotations} has no 'categories'; category names map the model's labels to ids")
    if not images_dir.is_dir():
        raise InputError(f"--images {images_dir} is not a folder")
    if max_images is not None and max_images < 1:
        raise InputError(f"--max-images must be >= 1, got {max_images}")
    entries = sorted(data["images"], key=lambda e: int(e["id"]))
    files, ids, missing = [], [], []
    for entry in entries:
        path = images_dir / str(entry["file_name"])
        if path.is_file():
            files.append(path)
            ids.append(int(entry["id"]))
        else:
            missing.append(str(entry["file_name"]))
        if max_images is not None and len(files) == max_images:
            break
    if not files:
        raise InputError(f"none of the {len(entries)} images in {annotations.name} is in {images_dir} "
                         f"(first file_name: {entries[0]['file_name'] if entries else '-'})")
    if missing:
        log.warning("%d annotated images are not in %s and are left out (e.g. %s)", len(missing), images_dir,
                    missing[0])
    return CocoSet(annotations, data, files, ids)


def category_map(labels: list[str], categories: dict[str, int]) -> dict[int, int]:
    """Model class index -> COCO category id, by name."""
    mapping = {i: categories[name] for i, name in enumerate(labels) if name in categories}
    if not mapping:
        raise InputError(
            f"no model label matches a category name of the annotations (labels {labels[:5]}, categories "
            f"{list(categories)[:5]}); give the model its label map (create-onnx --label-map)"
        )
    unmatched = [name for name in labels if name not in categories]
    if unmatched:
        log.warning("model labels with no annotation category are not evaluated: %s", ", ".join(unmatched[:10]))
    return mapping


def coco_results(image_id: int, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                 mapping: dict[int, int]) -> list[dict[str, Any]]:
    """One image's detections (x1,y1,x2,y2 original pixels) as COCO result entries."""
    rows = []
    for (x1, y1, x2, y2), score, cls in zip(boxes.tolist(), scores.tolist(), classes.tolist(), strict=True):
        if int(cls) in mapping:
            rows.append({"image_id": image_id, "category_id": mapping[int(cls)],
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return rows


def coco_map(coco_set: CocoSet, results: list[dict[str, Any]]) -> dict[str, float]:
    """The 12 COCOeval bbox numbers over the evaluated images (pycocotools, output silenced)."""
    try:
        from pycocotools.coco import COCO  # type: ignore[import-untyped]
        from pycocotools.cocoeval import COCOeval  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("evaluate needs pycocotools: pip install 'trtdeploy[eval]'") from exc
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress; the library stays quiet
        gt = COCO()
        gt.dataset = coco_set.data
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.imgIds = list(coco_set.image_ids)
        if results:
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
    if not results:
        return dict.fromkeys(METRICS, 0.0)
    return {name: float(value) for name, value in zip(METRICS, evaluator.stats, strict=True)}


def evaluate_runner(runner: Any, coco_set: CocoSet, batch: int | None = None,
                    on_batch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run ``runner`` over the set's images and score its detections."""
    from trtdeploy.inference import run_files

    mapping = category_map(list(runner.card.labels), coco_set.categories)
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    count = 0
    for image_id, result in zip(coco_set.image_ids, run_files(runner, coco_set.files, batch, on_batch=on_batch),
                                strict=True):
        results.extend(coco_results(image_id, result.boxes, result.scores, result.classes, mapping))
        count += len(result.scores)
    seconds = time.perf_counter() - start
    metrics = coco_map(coco_set, results)
    return {
        **metrics,
        "model": runner.name,
        "images": len(coco_set.files),
        "detections": count,
        "score_threshold": float(runner.card.nms.score_threshold),
        "seconds": seconds,
        "images_per_second": len(coco_set.files) / seconds if seconds > 0 else 0.0,
        "categories": {runner.card.labels[i]: cid for i, cid in mapping.items()},
    }


def evaluate_model(model_path: Path, images_dir: Path, annotations_json: Path, max_images: int | None = None,
                   batch: int | None = None) -> dict[str, Any]:
    """COCO box mAP of a saved model folder, an .onnx (deploy card next to it) or an engine.

    Returns the 12 COCO numbers under ``METRICS`` keys (``"AP"`` is mAP@[.5:.95], ``"AP50"``,
    ``"AP75"``, ...) plus ``images``, ``detections``, ``score_threshold``, ``seconds``,
    ``images_per_second`` and ``categories`` (label -> category id used).
    """
    from trtdeploy.runners import open_runner

    coco_set = load_coco(annotations_json, images_dir, max_images)
    return evaluate_runner(open_runner(Path(model_path)), coco_set, batch)
