"""The TensorRT runner: type-checked against tensorrt-stubs here; run only where a GPU is."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.engine.test_engine_mypy import REPO, _mypy, stubs  # noqa: F401 - stubs is a fixture
from tests.inference.tiny_model import write_tiny_detector
from trtdeploy.cli.main import app
from trtdeploy.engine.machine import current_machine, load_module
from trtdeploy.runners import open_runner


def test_tensorrt_runner_type_checks(stubs, tmp_path):  # noqa: F811
    """runners_trt.py type-checks against TensorRT's stubs, and the check can fail: a copy with
    one misspelled engine call, checked in the same mypy run, is the only file with an error."""
    source = (REPO / "trtdeploy" / "runners_trt.py").read_text()
    broken = source.replace("engine.get_tensor_mode(", "engine.get_tensor_mod(", 1)
    assert broken != source
    bad = tmp_path / "runners_trt_broken.py"
    bad.write_text(broken)
    result = _mypy(stubs, [REPO / "trtdeploy" / "runners_trt.py", bad], tmp_path / "cache")
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert errors[0].startswith(str(bad)) and 'has no attribute "get_tensor_mod"' in errors[0]


def _tiny_engine(tmp_path, backend: str):
    """The tiny detector and an FP32 engine of it built by ``backend``."""
    onnx_path = write_tiny_detector(tmp_path / "m.onnx", [[0.1, 0.2, 0.5, 0.6]], [0.8], [1], ["a", "b"])
    engine = tmp_path / "m.engine"
    built = CliRunner().invoke(app, ["build-engine", str(onnx_path), "-p", "fp32", "--backend", backend,
                                     "-o", str(engine)])
    assert built.exit_code == 0, built.output
    return onnx_path, engine


@pytest.mark.trt
@pytest.mark.gpu
def test_engine_detections_match_onnx_runtime(tmp_path):
    """Where TensorRT 10/11 and a GPU are: an FP32 engine of the tiny detector gives exactly the
    detections ONNX Runtime gives, through the same protocol (prepare/infer/read)."""
    # not importorskip: tensorrt-stubs leave an importable empty `tensorrt` namespace package
    if load_module("tensorrt") is None:
        pytest.skip("needs the full TensorRT 10/11 module (not installable here)")
    if not current_machine().gpus:
        pytest.skip("no NVIDIA GPU: a TensorRT engine cannot be built or run here")
    onnx_path, engine = _tiny_engine(tmp_path, "tensorrt")
    images = [Image.new("RGB", (90, 70), (200, 30, 30))]
    expected = open_runner(onnx_path)
    got = open_runner(engine)
    assert type(got).__name__ == "TensorRtRunner"
    ref = expected.read(expected.infer(expected.prepare(images)[0]))[0]
    dets = got.read(got.infer(got.prepare(images)[0]))[0]
    np.testing.assert_array_equal(dets.classes, ref.classes)
    np.testing.assert_allclose(dets.boxes, ref.boxes, atol=1e-6)
    np.testing.assert_allclose(dets.scores, ref.scores, atol=1e-6)


@pytest.mark.rtx
def test_an_engine_this_machine_cannot_run_is_refused_in_one_line(tmp_path):
    """A TensorRT-RTX engine built here (CPU, ahead of time) is refused by infer with the
    sidecar's reason, before anything tries to deserialize it."""
    if load_module("tensorrt_rtx") is None:
        pytest.skip("tensorrt_rtx not installed (pip install 'trtdeploy[rtx]')")
    if current_machine().gpus:
        pytest.skip("this machine has a GPU: the engine may well be usable here")
    _, engine = _tiny_engine(tmp_path, "tensorrt_rtx")
    (tmp_path / "img").mkdir()
    Image.new("RGB", (30, 20)).save(tmp_path / "img" / "a.png")
    result = CliRunner().invoke(app, ["infer", str(engine), "--images", str(tmp_path / "img"), "-o",
                                      str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "not usable here" in result.output and "no NVIDIA GPU" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "a.png").exists()
