"""evaluate throughput (images/s) against a plain loop, in one run, with the ratio.

The plain loop is what a user writes first: for each image, PIL open + resize to the model's
input, one ONNX Runtime session.run, boxes to COCO results; pycocotools at the end. `evaluate`
(trtdeploy.evaluation.evaluate_model) decodes and preprocesses in threads ahead of the model.
Both run the same converted model (the trained fixture, create-onnx --nms onnx --dynamic-batch,
so a plain onnxruntime.InferenceSession runs it) on the same images, in interleaved rounds; the
best round of each is reported (the machine is shared) and both mAPs are printed to show they
computed the same thing.

Examples:
    python benchmarks/evaluate.py
    python benchmarks/evaluate.py --rounds 3 --batch 8 --max-images 100
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# This script is named like the module it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRTDEPLOY_TEST_DATA", REPO.parent / "shared"))
FIXTURE = DATA / "fixtures" / "ssd_mobilenet_v2_035_shapes_256"


def plain_loop(onnx_path: Path, coco_set, labels: list[str]) -> tuple[float, float]:
    """images/s and mAP of the one-image-at-a-time loop."""
    import onnxruntime
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    _, height, width, _ = session.get_inputs()[0].shape
    ids = {c["name"]: c["id"] for c in coco_set.data["categories"]}
    results = []
    start = time.perf_counter()
    for image_id, path in zip(coco_set.image_ids, coco_set.files, strict=True):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        pixels = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), np.float32)[None]
        count, boxes, scores, classes = session.run(None, {name: pixels})
        for k in range(int(count[0, 0])):
            y1, x1, y2, x2 = boxes[0, k].tolist()
            results.append({"image_id": image_id, "category_id": ids[labels[int(classes[0, k])]],
                            "bbox": [x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h], "score": float(scores[0, k])})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco_set.data
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.params.imgIds = list(coco_set.image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return len(coco_set.files) / (time.perf_counter() - start), float(evaluator.stats[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1, help="evaluate's batch (the loop always runs 1)")
    parser.add_argument("--max-images", type=int, default=None)
    args = parser.parse_args()
    if not FIXTURE.is_dir():
        sys.exit(f"fixture {FIXTURE} not found (set TRTDEPLOY_TEST_DATA)")

    from tfod_trt.create_onnx import CreateOnnxOptions, create_onnx
    from trtdeploy.evaluation import evaluate_runner, load_coco
    from trtdeploy.runners import open_runner

    val = FIXTURE / "val"
    coco_set = load_coco(val / "instances_val.json", val, args.max_images)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "shapes.onnx"
        create_onnx(CreateOnnxOptions(saved_model=FIXTURE / "saved_model", output=onnx_path,
                                      label_map=FIXTURE / "label_map.pbtxt", nms="onnx", dynamic_batch=True))
        runner = open_runner(onnx_path)
        loop_best = eval_best = 0.0
        loop_map = eval_map = 0.0
        for _ in range(args.rounds):
            rate, loop_map = plain_loop(onnx_path, coco_set, runner.card.labels)
            loop_best = max(loop_best, rate)
            start = time.perf_counter()
            result = evaluate_runner(runner, coco_set, args.batch)
            eval_best = max(eval_best, len(coco_set.files) / (time.perf_counter() - start))
            eval_map = result["AP"]
    load = os.getloadavg()[0]
    print(f"{len(coco_set.files)} images, best of {args.rounds} rounds, load average {load:.1f}, {os.cpu_count()} CPUs")
    print(f"plain loop (PIL + ONNX Runtime, 1 image at a time): {loop_best:6.1f} images/s  mAP {loop_map:.4f}")
    print(f"trtdeploy evaluate (batch {args.batch}):                 {eval_best:6.1f} images/s  mAP {eval_map:.4f}")
    print(f"ratio evaluate / plain loop: {eval_best / loop_best:.2f}x")


if __name__ == "__main__":
    main()
