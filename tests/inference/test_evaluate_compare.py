"""evaluate / compare / benchmark on tiny ONNX detectors whose detections are known exactly."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.inference.tiny_model import write_tiny_detector
from trtdeploy.cli.main import app
from trtdeploy.evaluation import METRICS, evaluate_model

LABELS = ["cat", "dog"]
BOXES = [[0.30, 0.10, 0.70, 0.40], [0.35, 0.55, 0.65, 0.90]]  # y1,x1,y2,x2 normalised
SCORES = [0.9, 0.6]
CLASSES = [0, 1]
# the same boxes as COCO [x, y, w, h] on a 200x100 image (stretch): x*200, y*100
GT_BOXES = [[20.0, 30.0, 60.0, 40.0], [110.0, 35.0, 70.0, 30.0]]


def _coco(tmp_path, boxes=GT_BOXES, num_images=2):
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    entries, annotations = [], []
    for i in range(num_images):
        Image.new("RGB", (200, 100), (120, 110, 100)).save(images / f"im{i}.png")
        entries.append({"id": 10 + i, "file_name": f"im{i}.png", "width": 200, "height": 100})
        # category ids are NOT 1..N in label order: "dog" is 3, "cat" is 7
        for box, cat in zip(boxes, (7, 3), strict=True):
            annotations.append({"id": len(annotations) + 1, "image_id": 10 + i, "category_id": cat, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
    data = {"images": entries, "annotations": annotations,
            "categories": [{"id": 3, "name": "dog"}, {"id": 7, "name": "cat"}, {"id": 9, "name": "fish"}]}
    path = images / "instances.json"
    path.write_text(json.dumps(data))
    return images, path


def test_evaluate_maps_categories_by_name(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS)
    images, annotations = _coco(tmp_path)
    result = evaluate_model(model, images, annotations)
    assert set(METRICS) <= set(result)
    # every detection lies exactly on a ground-truth box of its category: AP 1 at every IoU
    assert result["AP"] == pytest.approx(1.0) and result["AP50"] == pytest.approx(1.0)
    assert result["categories"] == {"cat": 7, "dog": 3}
    assert result["images"] == 2 and result["detections"] == 4


def test_evaluate_sees_a_misplaced_box(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS)
    # the cat's ground truth moved by 30 px (IoU with the detection 1/3): that class scores 0
    moved = [[50.0, 30.0, 60.0, 40.0], GT_BOXES[1]]
    images, annotations = _coco(tmp_path, moved)
    result = evaluate_model(model, images, annotations, max_images=1)
    assert result["images"] == 1
    assert result["AP"] == pytest.approx(0.5)  # mean of cat 0 and dog 1 (fish has no ground truth)


def test_evaluate_cli_json_and_no_label_match(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, ["car", "bus"])
    images, annotations = _coco(tmp_path)
    result = CliRunner().invoke(app, ["evaluate", str(model), "--images", str(images), "--annotations",
                                      str(annotations)])
    assert result.exit_code == 1 and "no model label matches" in result.output

    model = write_tiny_detector(tmp_path / "ok.onnx", BOXES, SCORES, CLASSES, LABELS)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["evaluate", str(model), "-i", str(images), "-a", str(annotations),
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "AP @[IoU=0.50:0.95 | area=all | maxDets=100]" in result.output
    assert json.loads(out.read_text())["AP"] == pytest.approx(1.0)


def test_compare_counts_matches_and_map_deltas(tmp_path):
    images, annotations = _coco(tmp_path)
    a = write_tiny_detector(tmp_path / "a.onnx", BOXES, SCORES, CLASSES, LABELS)
    # b: the same first detection, the second moved far right (no match at IoU 0.5)
    b = write_tiny_detector(tmp_path / "b.onnx", [BOXES[0], [0.35, 0.70, 0.65, 1.0]], SCORES, CLASSES, LABELS)
    out = tmp_path / "cmp.json"
    pictures = tmp_path / "pictures"
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--images", str(images), "-a", str(annotations),
                                      "--json", str(out), "-o", str(pictures)])
    assert result.exit_code == 0, result.output
    pair = json.loads(out.read_text())["pairs"][0]
    assert (pair["reference"], pair["matched"], pair["candidate"]) == (4, 2, 4)
    assert pair["matched_fraction"] == pytest.approx(0.5)
    assert pair["disagreeing_images"] == 2
    assert pair["map_reference"] == pytest.approx(1.0) and pair["map_delta"] < -0.3
    side_by_side = sorted(pictures.rglob("*.png"))
    assert len(side_by_side) == 2
    assert Image.open(side_by_side[0]).size == (2 * 200 + 4, 100)


def test_benchmark_prints_the_summary(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["benchmark", str(model), "-n", "5", "-w", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Throughput:" in result.output and "percentile(99%)" in result.output
    data = json.loads(out.read_text())
    assert data["iterations"] == 5 and data["batch"] == 1
    lat = data["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    refused = CliRunner().invoke(app, ["benchmark", str(model), "--cuda-graph"])
    assert refused.exit_code == 2 and "TensorRT engines only" in refused.output


def test_latency_statistics_follow_trtexec():
    from trtdeploy.benchmarking import latency_stats

    # 10 timings 1..10 ms, shuffled. trtexec (NVIDIA/TensorRT samples/common/sampleReporting.cpp,
    # findPercentile): element n-1-int((1-p/100)*n) of the sorted list, in C++ float arithmetic:
    # p90 -> (1 - 0.9f) * 10 = 1.00000024 -> index 8 -> 9 ms; p99 -> int(0.1) = 0 -> index 9 -> 10 ms;
    # findMedian of an even count: (5 + 6) / 2
    stats = latency_stats([t / 1000 for t in (7, 3, 10, 1, 5, 9, 2, 8, 6, 4)])
    assert stats["min"] == pytest.approx(1) and stats["max"] == pytest.approx(10)
    assert stats["p50"] == pytest.approx(5.5) and stats["mean"] == pytest.approx(5.5)
    assert stats["p90"] == pytest.approx(9) and stats["p99"] == pytest.approx(10)
    assert latency_stats([0.002, 0.001, 0.003])["p50"] == pytest.approx(2)
