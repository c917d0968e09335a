"""The TensorRT runner: type-checked against tensorrt-stubs here; run only where a GPU is."""

from __future__ import annotations

import pytest

from tests.engine.test_engine_mypy import REPO, _mypy, stubs  # noqa: F401 - stubs is a fixture


def test_tensorrt_runner_type_checks(stubs, tmp_path):  # noqa: F811
    result = _mypy(stubs, [REPO / "trtdeploy" / "runners_trt.py"], tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_tensorrt_call_fails_the_check(stubs, tmp_path):  # noqa: F811
    """The check sees TensorRT's types in runners_trt (not Any): a misspelled engine call fails."""
    source = (REPO / "trtdeploy" / "runners_trt.py").read_text()
    broken = source.replace("engine.get_tensor_mode(", "engine.get_tensor_mod(", 1)
    assert broken != source
    bad = tmp_path / "runners_trt_broken.py"
    bad.write_text(broken)
    result = _mypy(stubs, [bad], tmp_path / "cache")
    assert result.returncode == 1
    assert 'has no attribute "get_tensor_mod"' in result.stdout


@pytest.mark.trt
@pytest.mark.gpu
def test_engine_detections_match_onnx_runtime(tmp_path):
    """On a GPU with TensorRT: an FP32 engine of a tiny ONNX detector gives ONNX Runtime's detections."""
    pytest.importorskip("tensorrt", reason="needs TensorRT 10/11 and a GPU")
    from trtdeploy.engine.machine import current_machine

    if not current_machine().gpus:
        pytest.skip("no GPU: a TensorRT engine cannot run here")
    pytest.skip("not run on this machine: no GPU; see trtdeploy/runners_trt.py")
