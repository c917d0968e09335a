"""Paths that only full TensorRT 10/11 (and a GPU) can run. Skipped on this CPU machine:
these have never been run here; their API use is type-checked by test_engine_mypy.py."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.engine.conftest import conv_model, files_in
from trtdeploy.cli.main import app
from trtdeploy.engine import BuildOptions, build_engine
from trtdeploy.engine.backend import select_backend
from trtdeploy.engine.machine import load_module, probe_gpus


def _tensorrt():
    module = load_module("tensorrt")
    if module is None:
        pytest.skip("needs the full TensorRT module 'tensorrt' (10.x/11.x), not installable here")
    if not probe_gpus()[1]:
        pytest.skip("needs an NVIDIA GPU")
    return select_backend("tensorrt")


@pytest.mark.trt
@pytest.mark.gpu
def test_fp16_build_and_sidecar_from_the_deserialized_engine(tmp_path):
    backend = _tensorrt()
    onnx_path = conv_model(tmp_path / "m.onnx")
    result = build_engine(
        onnx_path, BuildOptions(precision="fp16", batch=4, timing_cache=tmp_path / "t.cache"), backend
    )
    sidecar = result.sidecar
    assert sidecar.io_source == "engine" and sidecar.gpu is not None
    assert sidecar.precision["builder_flags"] == (["FP16"] if backend.caps.weak_typing else [])
    assert [t.name for t in sidecar.tensors] == ["images", "scores"]
    assert (tmp_path / "t.cache").is_file()  # timing cache saved
    assert files_in(tmp_path)[0] == "m.onnx"


@pytest.mark.trt
@pytest.mark.gpu
def test_int8_cache_replay_on_tensorrt_10(tmp_path):
    backend = _tensorrt()
    if not backend.caps.int8_calibrator:
        pytest.skip("TensorRT 11 has no calibrator API")
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    version = "".join(f"{int(p):02d}" for p in backend.caps.version.split(".")[1:3])
    major = backend.caps.version.split(".")[0]
    cache = tmp_path / "m.cache"
    names = ["images", "conv0_out", "relu0_out", "conv1_out", "scores"]
    cache.write_text(f"TRT-{major}{version}-EntropyCalibration2\n" + "".join(f"{n}: 3c010204\n" for n in names))
    result = build_engine(onnx_path, BuildOptions(precision="int8", calib_cache=cache), backend)
    assert result.engine_path.name == "m.onnx_b1_gpu0_int8.engine"


@pytest.mark.trt
def test_inspect_says_usable_right_after_a_build(tmp_path):
    _tensorrt()
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    result = build_engine(onnx_path, BuildOptions(precision="fp32", backend="tensorrt"))
    out = CliRunner().invoke(app, ["inspect", str(result.engine_path)])
    assert out.exit_code == 0 and "usable here" in out.output
