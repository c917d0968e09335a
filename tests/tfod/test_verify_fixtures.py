"""Issue 2 acceptance: every fixture, every NMS head, static batch 1 and dynamic batch (run at
1 and 4), matches TensorFlow's detections on 8 real photos: >= 99% matched (same class,
IoU >= 0.99), matched score difference within verify's tolerance.

The score tolerance is derived in the run, not tuned on one CPU (issue 9): 1e-4 when the
measured difference is within it, else max(1e-4, K_SCORE x TensorFlow's own float32 error on
the same photos) with K_SCORE = 2 (trtdeploy/exact.py: TF-vs-ONNX <= TF-vs-exact + ONNX-vs-exact,
and ours is checked to be no further from the float64 value than TensorFlow's). On the two plain
MobileNet v2 fixtures TensorFlow's float32 scores are 1e-4..3e-4 from the exact value depending on
the CPU, so 1e-4 itself is not reachable there on every machine.
"""

from __future__ import annotations

from dataclasses import replace

import onnx
import pytest

from tests.tfod.conftest import FIXTURE_NAMES
from tfod_trt.create_onnx import attach_head
from trtdeploy.deploy_card import card_path_for
from trtdeploy.runners import OnnxRuntimeRunner
from trtdeploy.verify import Tolerance, compare, run_batched

pytestmark = [pytest.mark.slow, pytest.mark.tf]

TOLERANCE = Tolerance(iou=0.99, min_matched=0.99, score=1e-4)
# The fixtures' pipeline.config threshold is 1e-8, which turns every anchor x class into an NMS
# candidate (4.4M on EfficientDet-D0) and makes the CPU NMS take minutes. Greedy NMS never lets
# a lower score suppress a higher one, so the detections above 0.05 are the same with either
# threshold; the matrix compares those (the CLI test of the demo keeps the 1e-8 default).
SCORE_THRESHOLD = 0.05


@pytest.mark.parametrize("dynamic", [False, True], ids=["batch1", "dynamic"])
@pytest.mark.parametrize("nms", ["efficient", "onnx", "batched"])
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_onnx_matches_tensorflow(name, nms, dynamic, tfod_cache, tmp_path, tmp_path_factory):
    prepared, core = tfod_cache.core(name, dynamic, tmp_path_factory.mktemp("cores"))
    prepared = replace(prepared, nms_params=replace(prepared.nms_params, score_threshold=SCORE_THRESHOLD))
    model, card = attach_head(core, prepared, nms, "tfod")
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    card.save(card_path_for(path))

    pixels = tfod_cache.photos(name, prepared)
    reference = tfod_cache.tf_detections(name, pixels)
    assert sum(len(d) for d in reference) > 0, "TensorFlow found nothing: the comparison would be empty"
    tol = Tolerance(TOLERANCE.iou, TOLERANCE.min_matched, TOLERANCE.score, SCORE_THRESHOLD)
    runner = OnnxRuntimeRunner(path, card)
    # The dynamic graph runs at 4 on every photo and at 1 on the first DYNAMIC_AT_1 (a batch-1
    # run of all 8 is the static case's; the first photos are enough to catch a batch-1 bug of
    # the dynamic graph at half the cost).
    for batch, count in ([(1, DYNAMIC_AT_1), (4, len(pixels))] if dynamic else [(1, len(pixels))]):
        stats = compare(reference[:count], run_batched(runner.detections, pixels[:count], batch), tol)
        assert stats.reference >= NUM_MIN_DETECTIONS * count // len(pixels), stats
        assert stats.matched_fraction >= tol.min_matched, (batch, stats)
        bound = tfod_cache.score_tolerance(name, stats.max_score_diff, tmp_path_factory.mktemp("cores"))
        assert stats.max_score_diff <= bound, (batch, stats, bound)


NUM_MIN_DETECTIONS = 8
DYNAMIC_AT_1 = 2


@pytest.mark.parametrize("name", ["ssd_mobilenet_v2_035_5class_300"])
def test_deepstream_layout_is_tfod_layout_in_pixels(name, tfod_cache, tmp_path, tmp_path_factory):
    """The deepstream layout carries the same detections, as pixel y1,x1,y2,x2 and float classes."""
    import numpy as np

    prepared, core = tfod_cache.core(name, False, tmp_path_factory.mktemp("cores"))
    pixels = tfod_cache.photos(name, prepared)[:1]
    outputs = {}
    for layout in ("tfod", "deepstream"):
        model, card = attach_head(core, prepared, "efficient", layout, "sdk-efficientdet" if layout == "deepstream" else None)
        path = tmp_path / f"{layout}.onnx"
        onnx.save(model, str(path))
        outputs[layout] = (OnnxRuntimeRunner(path, card).run(pixels), card)
    (tfod, _tcard), (ds, dcard) = outputs["tfod"], outputs["deepstream"]
    assert dcard.output.names[0].endswith("num_detections") and dcard.output.class_dtype == "float32"
    n = int(tfod["num_detections"][0, 0])
    assert n > 0 and int(ds[dcard.output.names[0]][0, 0]) == n
    h, w = prepared.height, prepared.width
    expected = tfod["detection_boxes"][0, :n] * np.array([h, w, h, w], np.float32)
    np.testing.assert_allclose(ds[dcard.output.names[1]][0, :n], expected, rtol=1e-5, atol=1e-3)
    assert ds[dcard.output.names[3]].dtype == np.float32
    np.testing.assert_array_equal(ds[dcard.output.names[3]][0, :n], tfod["detection_classes"][0, :n].astype(np.float32))


@pytest.mark.parametrize("name", ["ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8"])
def test_raw_outputs_with_reference_nms_match_tensorflow(name, tfod_cache, tmp_path, tmp_path_factory):
    """`--nms none`: decoded boxes and scores, clustered by the EfficientNMS reference with the
    card's parameters and clipped afterwards, give TensorFlow's detections."""
    prepared, core = tfod_cache.core(name, True, tmp_path_factory.mktemp("cores"))
    prepared = replace(prepared, nms_params=replace(prepared.nms_params, score_threshold=SCORE_THRESHOLD))
    model, card = attach_head(core, prepared, "none", "tfod")
    assert card.output.layout == "raw" and card.output.names == ["boxes", "scores"]
    path = tmp_path / "raw.onnx"
    onnx.save(model, str(path))
    pixels = tfod_cache.photos(name, prepared)
    tol = Tolerance(TOLERANCE.iou, TOLERANCE.min_matched, TOLERANCE.score, SCORE_THRESHOLD)
    stats = compare(tfod_cache.tf_detections(name, pixels), OnnxRuntimeRunner(path, card).detections(pixels), tol)
    tol.score = tfod_cache.score_tolerance(name, stats.max_score_diff, tmp_path_factory.mktemp("cores"))
    assert stats.reference >= NUM_MIN_DETECTIONS and tol.accepts(stats), stats
