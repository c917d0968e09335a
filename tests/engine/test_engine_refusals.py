"""Every refusal happens before building, names the node/option and the fix, and leaves no file.

TensorRT 10/11 refusals are decided from the capability table before the TensorRT module is
touched, so they are tested here with a backend whose module is absent (None).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.conftest import conv_model, files_in, nms_model, rtx_backend, with_extra_node
from trtdeploy.engine import BuildOptions, build_engine, int8
from trtdeploy.engine.backend import Backend
from trtdeploy.engine.capabilities import capabilities_for
from trtdeploy.engine.preflight import check_dla_available
from trtdeploy.errors import (
    InputError,
    OutputExistsError,
    TrtDeployError,
    UnsupportedModelError,
    UsageError,
)

TRT10 = Backend(None, capabilities_for("tensorrt", "10.16.0.72"))
TRT11 = Backend(None, capabilities_for("tensorrt", "11.4.0.106"))
RTX_NO_MODULE = Backend(None, capabilities_for("tensorrt_rtx", "1.7.1.116"))  # refusals need no module


def _refused(
    tmp_path: Path,
    onnx_path: Path,
    options: BuildOptions,
    backend: Backend | None,
    error,
    match: str,
):
    before = files_in(tmp_path)
    with pytest.raises(error, match=match):
        build_engine(onnx_path, options, backend=backend)
    assert files_in(tmp_path) == before, "a refused build must not leave files behind"


def _plugin_refused(tmp_path: Path, plugin: str, backend: Backend, match: str) -> None:
    """A small model with one ``plugin`` node named ``my_<plugin>`` is refused with ``match``."""
    onnx_path = with_extra_node(conv_model(tmp_path / "base.onnx", batch=1), tmp_path / "m.onnx", plugin)
    _refused(tmp_path, onnx_path, BuildOptions(precision="fp32"), backend, UnsupportedModelError, match)


# Plugins without a standard-op rewrite (trtdeploy.rewrites): BatchedNMS_TRT, NMS_TRT and
# EfficientNMS_TRT are rewritten now (tests/tao/test_plugin_rewrites.py,
# tests/tao/test_efficient_nms_rewrite.py), so they are no longer refused.
@pytest.mark.rtx
@pytest.mark.parametrize("plugin", ["EfficientNMS_ONNX_TRT"])
def test_plugin_ops_on_rtx(tmp_path, plugin):
    _plugin_refused(
        tmp_path,
        plugin,
        rtx_backend(),
        f"TensorRT-RTX has no plugins, but the ONNX uses plugin node\\(s\\) 'my_{plugin.lower()}' \\({plugin}\\); "
        "re-export with `trtdeploy create-onnx --nms none`",
    )


@pytest.mark.parametrize("plugin", ["EfficientNMS_ONNX_TRT"])
def test_removed_nms_plugins_on_tensorrt_11(tmp_path, plugin):
    _plugin_refused(
        tmp_path,
        plugin,
        TRT11,
        f"TensorRT 11 11.4.0.106 removed the plugin\\(s\\) used by 'my_{plugin.lower()}' \\({plugin}\\); "
        "re-export with `trtdeploy create-onnx --nms onnx`",
    )


def test_tensorrt_11_keeps_efficient_nms_and_10_keeps_batched_nms(tmp_path):
    import onnx

    from trtdeploy.engine.preflight import check_graph_ops

    base = conv_model(tmp_path / "base.onnx", batch=1)
    check_graph_ops(onnx.load(str(with_extra_node(base, tmp_path / "e.onnx", "EfficientNMS_TRT"))), TRT11.caps)
    check_graph_ops(onnx.load(str(with_extra_node(base, tmp_path / "b.onnx", "BatchedNMS_TRT"))), TRT10.caps)


@pytest.mark.rtx
def test_nms_layer_on_rtx(tmp_path):
    onnx_path = nms_model(tmp_path / "nms.onnx")
    _refused(
        tmp_path,
        onnx_path,
        BuildOptions(precision="fp32"),
        rtx_backend(),
        UnsupportedModelError,
        "TensorRT-RTX cannot build the NMS layer made from ONNX NonMaxSuppression node\\(s\\) 'nms' "
        "\\(NonMaxSuppression\\); re-export with `trtdeploy create-onnx --nms none`",
    )


@pytest.mark.parametrize("backend_name", ["trt10", "trt11", "rtx"])
def test_int8_without_data_or_cache(tmp_path, backend_name):
    backend = {"trt10": TRT10, "trt11": TRT11}.get(backend_name) or rtx_backend()
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    _refused(
        tmp_path,
        onnx_path,
        BuildOptions(precision="int8"),
        backend,
        UsageError,
        "INT8 needs calibration data: pass --calib-images DIR",
    )


def test_int8_cache_that_does_not_exist(tmp_path):
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    _refused(
        tmp_path,
        onnx_path,
        BuildOptions(precision="int8", calib_cache=tmp_path / "none.cache"),
        TRT10,
        InputError,
        "--calib-cache .*none.cache does not exist",
    )


@pytest.mark.rtx
def test_int8_on_strongly_typed_needs_the_qdq_producer(tmp_path, monkeypatch):
    monkeypatch.setattr(int8, "_calibration_function", lambda name: None)  # calibration not ready
    images = tmp_path / "imgs"
    images.mkdir()
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    _refused(
        tmp_path,
        onnx_path,
        BuildOptions(precision="int8", calib_images=images),
        rtx_backend(),
        UnsupportedModelError,
        "INT8 on TensorRT 11 / RTX needs a Q/DQ ONNX: TensorRT-RTX has no calibrator API",
    )


@pytest.mark.rtx
def test_int8_on_strongly_typed_uses_the_qdq_producer(tmp_path, monkeypatch):
    from tests.engine.conftest import qdq_conv_model

    calls = {}

    def fake_producer(**kwargs):
        calls.update(kwargs)
        return qdq_conv_model(kwargs["output"])

    monkeypatch.setattr(
        int8,
        "_calibration_function",
        lambda name: fake_producer if name == int8.QDQ_PRODUCER else None,
    )
    images = tmp_path / "imgs"
    images.mkdir()
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    result = build_engine(onnx_path, BuildOptions(precision="int8", calib_images=images, calib_num=7), rtx_backend())
    assert calls["images"] == images and calls["num_images"] == 7 and calls["onnx_path"] == onnx_path
    assert result.engine_path.name == "m.onnx_b1_gpu0_int8.engine"
    assert result.sidecar.precision["int8_source"] == "qdq_from_calibration"
    assert result.sidecar.built_onnx_sha256 != result.sidecar.onnx_sha256


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            BuildOptions(profiles=["input:1x3x16x16:1x3x16x16:1x3x16x16"]),
            "names input 'input' but the ONNX inputs are: 'images'",
        ),
        (
            BuildOptions(profiles=["images:1x3x16:1x3x16:1x3x16"]),
            "rank 3 but the ONNX input is \\?x3x16x16",
        ),
        (
            BuildOptions(profiles=["images:1x3x32x32:1x3x32x32:1x3x32x32"]),
            "changes static dimension 2",
        ),
    ],
)
def test_profile_not_matching_the_onnx(tmp_path, options, match):
    onnx_path = conv_model(tmp_path / "m.onnx")
    _refused(tmp_path, onnx_path, options, TRT10, UsageError, match)


@pytest.mark.parametrize(
    ("options", "backend", "match"),
    [
        (BuildOptions(dla_core=0), RTX_NO_MODULE, "TensorRT-RTX cannot build for DLA"),
        (BuildOptions(gpu_fallback=True), TRT10, "--gpu-fallback only applies with --dla-core"),
        (BuildOptions(plugin_libs=[Path("libx.so")]), RTX_NO_MODULE, "cannot load plugin libraries"),
        (BuildOptions(compute_capabilities=["8.6"]), TRT10, "for TensorRT-RTX ahead-of-time"),
        (BuildOptions(compute_capabilities=["9.0"]), RTX_NO_MODULE, "TensorRT-RTX targets 7.5, 8.0"),
    ],
    ids=["rtx-dla", "fallback-without-dla", "rtx-plugin-libs", "trt-compute-capability", "rtx-unknown-cc"],
)
def test_option_refusals(tmp_path, options, backend, match):
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    _refused(tmp_path, onnx_path, options, backend, UsageError, match)


def test_dla_core_checked_against_the_machine():
    # The machine has no DLA (asked from the builder, before building):
    with pytest.raises(UsageError, match="--dla-core 0: this machine has no DLA"):
        check_dla_available(TRT10.caps, 0, num_dla_cores=0)
    with pytest.raises(UsageError, match="has 2 DLA core\\(s\\) \\(0..1\\)"):
        check_dla_available(TRT10.caps, 2, num_dla_cores=2)
    check_dla_available(TRT10.caps, 1, num_dla_cores=2)


def test_missing_or_unreadable_onnx(tmp_path):
    _refused(tmp_path, tmp_path / "missing.onnx", BuildOptions(), TRT10, InputError, "not found")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all \xff\xfe")
    _refused(
        tmp_path,
        tmp_path / "junk.onnx",
        BuildOptions(),
        TRT10,
        InputError,
        "not a readable ONNX model",
    )


def test_existing_engine_not_overwritten_without_force(tmp_path):
    onnx_path = conv_model(tmp_path / "m.onnx", batch=1)
    engine = tmp_path / "m.onnx_b1_gpu0_fp16.engine"
    engine.write_bytes(b"precious")
    _refused(tmp_path, onnx_path, BuildOptions(), TRT10, OutputExistsError, "exists; pass --force")
    assert engine.read_bytes() == b"precious"


def test_no_tensorrt_at_all_is_one_clear_error(monkeypatch):
    from trtdeploy.engine import backend as backend_module

    monkeypatch.setattr(backend_module, "load_module", lambda name: None)
    with pytest.raises(TrtDeployError, match="no TensorRT found: install TensorRT 10/11 .*trtdeploy\\[rtx\\]"):
        backend_module.select_backend("auto")
    with pytest.raises(TrtDeployError, match="--backend tensorrt: the Python module 'tensorrt' is not installed"):
        backend_module.select_backend("tensorrt")
    with pytest.raises(UsageError, match="--backend 'trt'"):
        backend_module.select_backend("trt")
