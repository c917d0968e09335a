"""AutoML EfficientDet through create-onnx: every head against TensorFlow (the predict
signature's raw heads + the same hard NMS), static batch 1 and dynamic batch; the raw graph
builds with TensorRT-RTX; and how far AutoML's own soft-NMS serving signature is from ours."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest

from tests.automl.conftest import NUM_IMAGES, SCORE_THRESHOLD
from tfod_trt.create_onnx import attach_head
from trtdeploy.deploy_card import card_path_for
from trtdeploy.exact import SCORE_FLOOR
from trtdeploy.runners import OnnxRuntimeRunner
from trtdeploy.verify import Tolerance, compare, run_batched

pytestmark = [pytest.mark.slow, pytest.mark.tf]

MIN_MATCHED = 0.99


def write(automl_cache, dynamic: bool, nms: str, layout: str, path):
    prepared, core = automl_cache.core(dynamic)
    model, card = attach_head(core, prepared, nms, layout)
    onnx.save(model, str(path))
    card.save(card_path_for(path))
    return model, card


def score_bound(automl_cache, measured: float) -> float:
    """verify's floor when the measured difference is within it; else the bound derived in this
    run from the float64 evaluation of the converted network (trtdeploy/exact.py)."""
    if measured <= SCORE_FLOOR:
        return SCORE_FLOOR
    from trtdeploy.exact import exact_errors

    _, core = automl_cache.core(False)
    pixels = automl_cache.pixels()[:2]
    raw = automl_cache.runner().infer(pixels)
    report = exact_errors(core.model, pixels, {"boxes": raw["raw_detection_boxes"], "scores": raw["raw_detection_scores"]})
    assert not report.suspects, report
    return report.score_tolerance()


@pytest.mark.parametrize(("nms", "dynamic", "batches"), [
    ("efficient", False, [1]), ("onnx", False, [1]), ("none", False, [1]),
    ("efficient", True, [4]), ("onnx", True, [4]), ("none", True, [4]),
], ids=["efficient-batch1", "onnx-batch1", "none-batch1", "efficient-dynamic", "onnx-dynamic", "none-dynamic"])
def test_heads_match_tensorflow(nms, dynamic, batches, automl_cache, tmp_path):
    """>= 99% of TensorFlow's detections matched (same class, IoU >= 0.99, noise-aware score bound)
    on 8 photos; the dynamic graphs run at batch 4."""
    _, card = write(automl_cache, dynamic, nms, "tfod", tmp_path / "model.onnx")
    assert card.nms.score_threshold == SCORE_THRESHOLD and card.provenance.model_family == "automl_efficientdet"
    assert card.input.shape == [-1 if dynamic else 1, 512, 512, 3] and card.preprocess.resize == "letterbox"
    reference = automl_cache.reference()
    assert sum(len(d) for d in reference) >= 8 * NUM_IMAGES, "TensorFlow found too little to compare"
    runner = OnnxRuntimeRunner(tmp_path / "model.onnx", card)
    tol = Tolerance(iou=0.99, min_matched=MIN_MATCHED, score=1.0, score_threshold=SCORE_THRESHOLD)
    for batch in batches:
        stats = compare(reference, run_batched(runner.detections, automl_cache.pixels(), batch), tol)
        assert stats.matched_fraction >= MIN_MATCHED and stats.matched >= MIN_MATCHED * stats.candidate, (batch, stats)
        assert stats.max_score_diff <= score_bound(automl_cache, stats.max_score_diff), (batch, stats)




def test_batched_head_matches_tensorflow(automl_cache, tmp_path):
    """`--nms batched` (BatchedNMS_TRT, run by its CPU reference) on 2 photos (its reference takes
    ~4 s a photo; all 8 measured once: 800/800 matched, max score difference 1.1e-5)."""
    _, card = write(automl_cache, False, "batched", "batched", tmp_path / "model.onnx")
    reference = automl_cache.reference()[:2]
    runner = OnnxRuntimeRunner(tmp_path / "model.onnx", card)
    stats = compare(reference, run_batched(runner.detections, automl_cache.pixels()[:2], 1),
                    Tolerance(iou=0.99, min_matched=MIN_MATCHED, score=1.0, score_threshold=SCORE_THRESHOLD))
    assert stats.reference >= 100 and stats.matched_fraction >= MIN_MATCHED, stats
    assert stats.max_score_diff <= score_bound(automl_cache, stats.max_score_diff), stats


@pytest.mark.rtx
def test_raw_graph_builds_with_tensorrt_rtx_and_onnx_nms_is_refused(automl_cache, tmp_path):
    """`--nms none` builds in FP32 and FP16 (dynamic profile up to 2); `--nms onnx` is refused
    before the build by the preflight (TensorRT-RTX has no NMS layer), naming `--nms none`."""
    from trtdeploy.engine import BuildOptions, build_engine
    from trtdeploy.errors import UnsupportedModelError

    write(automl_cache, True, "none", "raw", tmp_path / "raw.onnx")
    sizes = {}
    for precision in ("fp32", "fp16"):
        result = build_engine(tmp_path / "raw.onnx", BuildOptions(precision=precision, backend="tensorrt_rtx", batch=2))
        outputs = {t.name: t for t in result.sidecar.outputs}
        assert outputs["scores"].shape == [-1, 49104, 90] and outputs["boxes"].shape == [-1, 49104, 4]
        assert result.sidecar.inputs[0].dtype == "float32"
        sizes[precision] = result.sidecar.engine_bytes
    assert sizes["fp16"] < 0.9 * sizes["fp32"], sizes  # measured 17.4 MB vs 25.1 MB (TensorRT-RTX 1.x, CPU)
    write(automl_cache, True, "onnx", "tfod", tmp_path / "nms.onnx")
    with pytest.raises(UnsupportedModelError, match="--nms none"):
        build_engine(tmp_path / "nms.onnx", BuildOptions(precision="fp32", backend="tensorrt_rtx", batch=2))


def test_serving_signature_soft_nms_against_ours(automl_cache):
    """AutoML's serving signature (soft-NMS, gaussian sigma 0.5, score 0.001) on the same whole
    pixels against the reference our heads match (hard NMS, IoU 0.5): the first detection of each
    image is the same (soft-NMS only re-scores the boxes after it), and soft-NMS never raises a
    score, so a serving detection matched to one of ours scores at most as high. The figures are
    printed for docs/automl.md."""
    runner = automl_cache.runner()
    pixels = automl_cache.pixels()
    serving = runner.serving_detections(pixels)
    ours = automl_cache.reference()
    for mine, theirs in zip(ours, serving, strict=True):
        assert len(theirs) and len(mine)
        assert theirs.classes[0] == mine.classes[0]
        np.testing.assert_allclose(theirs.boxes[0], mine.boxes[0], atol=1e-4)
        assert abs(float(theirs.scores[0]) - float(mine.scores[0])) <= SCORE_FLOOR
    for threshold in (SCORE_THRESHOLD, 0.3, 0.5):
        stats = compare(ours, serving, Tolerance(iou=0.5, score=1.0, score_threshold=threshold))
        print(f"score >= {threshold}: ours {stats.reference}, serving {stats.candidate}, matched {stats.matched} "
              f"({stats.matched_fraction:.1%}), max score difference {stats.max_score_diff:.3f}")
    lower = replace(Tolerance(), iou=0.99, score_threshold=SCORE_THRESHOLD)
    for mine, theirs in zip(ours, serving, strict=True):
        for i in range(len(theirs.scores)):
            same = (mine.classes == theirs.classes[i]) & (_iou(mine.boxes, theirs.boxes[i]) >= lower.iou)
            if same.any():
                assert theirs.scores[i] <= mine.scores[same].max() + SCORE_FLOOR


def _iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    tl, br = np.maximum(boxes[:, :2], box[:2]), np.minimum(boxes[:, 2:], box[2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) + np.prod(box[2:] - box[:2])
    return inter / np.maximum(area - inter, 1e-12)


def test_deepstream_layout_passes_ds_run_against_tensorflow(automl_cache, tmp_path, monkeypatch):
    """create-onnx route: the deepstream layout (default parser variant), gen-ds-config, then
    `ds-run --compare-saved-model` on 4 photos at their own sizes: the nvinfer dry run matched
    against the AutoML reference on the very pixels it inferred on (the session's runner stands in
    for the one ds-run would load)."""
    from typer.testing import CliRunner

    import tfod_trt.runner
    from tests.automl.conftest import saved_model
    from trtdeploy.cli.main import app
    from trtdeploy.deepstream.check import check_ds_config
    from trtdeploy.deepstream.generate import DsOptions, gen_ds_config
    from trtdeploy.deploy_card import DeployCard

    path = tmp_path / "model" / "automl.onnx"
    path.parent.mkdir()
    write(automl_cache, False, "efficient", "deepstream", path)
    ini = gen_ds_config(DeployCard.load(card_path_for(path)), path, tmp_path / "ds", DsOptions(name="automl")).paths[0]
    assert [p.message for p in check_ds_config(ini) if p.level == "error"] == []
    runner = automl_cache.runner()  # loaded before the stand-in is patched in
    monkeypatch.setattr(tfod_trt.runner, "AutomlRunner", lambda path, nms: runner)
    result = CliRunner().invoke(app, ["ds-run", str(ini), "--num", "4", "--compare-saved-model", str(saved_model())])
    assert result.exit_code == 0, result.output
    assert "matched" in result.output and "nothing was compared" not in result.output, result.output


def test_verify_command_on_an_automl_model(automl_cache, tmp_path, monkeypatch):
    """`trtdeploy verify --saved-model` picks the AutoML reference for an AutoML export (the runner
    the session already loaded stands in for a fresh one) and checks the card's saved-model hashes."""
    from typer.testing import CliRunner

    import tfod_trt.runner
    from trtdeploy.cli.main import app

    runner = automl_cache.runner()
    built = []
    monkeypatch.setattr(tfod_trt.runner, "AutomlRunner", lambda path, nms: built.append(nms) or runner)
    write(automl_cache, False, "onnx", "tfod", tmp_path / "model.onnx")
    from tests.automl.conftest import saved_model

    result = CliRunner().invoke(app, ["verify", "--saved-model", str(saved_model()), "--onnx",
                                      str(tmp_path / "model.onnx"), "--num", "2"])
    assert result.exit_code == 0, result.output
    assert "200/200" in result.output and built and built[0].score_threshold == SCORE_THRESHOLD
