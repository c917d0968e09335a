"""Real engine builds with TensorRT-RTX on this CPU (ahead-of-time, no GPU needed)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.engine.conftest import conv_model, files_in, qdq_conv_model, rtx_backend, with_extra_node, write_card
from trtdeploy.cli.main import app
from trtdeploy.engine import BuildError, BuildOptions, build_engine, load_sidecar
from trtdeploy.engine.builder import dtype_name
from trtdeploy.engine.machine import probe_gpus
from trtdeploy.errors import InputError

pytestmark = pytest.mark.rtx


def _rtx(**kwargs) -> BuildOptions:
    rtx_backend()  # skips when tensorrt_rtx is missing
    return BuildOptions(backend="tensorrt_rtx", **kwargs)


def _reference_io(onnx_path: Path, engine_path: Path) -> list[tuple[str, str, list[int], str]]:
    """I/O as TensorRT-RTX reports it, found independently of build_engine: from the
    deserialized engine when a GPU is present, otherwise (this CPU machine: deserializing
    needs a CUDA device) from a fresh parse of the same ONNX."""
    trt = rtx_backend().module
    logger = trt.Logger(trt.Logger.ERROR)
    _, gpus = probe_gpus()
    if gpus:
        engine = trt.Runtime(logger).deserialize_cuda_engine(engine_path.read_bytes())
        return [
            (
                name,
                dtype_name(engine.get_tensor_dtype(name)),
                list(engine.get_tensor_shape(name)),
                "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output",
            )
            for name in (engine.get_tensor_name(i) for i in range(engine.num_io_tensors))
        ]
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes())
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    return [(t.name, dtype_name(t.dtype), list(t.shape), "input") for t in inputs] + [
        (t.name, dtype_name(t.dtype), list(t.shape), "output") for t in outputs
    ]


def _sidecar_io(sidecar) -> list[tuple[str, str, list[int], str]]:
    return [(t.name, t.dtype, t.shape, t.mode) for t in sidecar.tensors]


def test_fp32_static_batch(tmp_path):
    onnx_path = conv_model(tmp_path / "model.onnx", batch=2)
    result = build_engine(onnx_path, _rtx(precision="fp32"))
    assert result.engine_path == tmp_path / "model.onnx_b2_gpu0_fp32.engine"
    assert files_in(tmp_path) == [
        "model.onnx",
        "model.onnx_b2_gpu0_fp32.engine",
        "model.onnx_b2_gpu0_fp32.engine.json",
    ]
    sidecar = load_sidecar(result.engine_path)
    assert sidecar == result.sidecar
    assert _sidecar_io(sidecar) == _reference_io(onnx_path, result.engine_path)
    assert _sidecar_io(sidecar) == [
        ("images", "float32", [2, 3, 16, 16], "input"),
        ("scores", "float32", [2, 16, 16, 16], "output"),
    ]
    assert sidecar.profiles == [] and sidecar.backend == "tensorrt_rtx" and sidecar.strongly_typed
    assert sidecar.precision["label"] == "fp32" and sidecar.engine_bytes == result.engine_path.stat().st_size
    assert sidecar.target_compute_capabilities and sidecar.backend_version == rtx_backend().caps.version


def test_fp16_dynamic_profile_from_batch(tmp_path):
    onnx_path = conv_model(tmp_path / "model.onnx")
    result = build_engine(onnx_path, _rtx(precision="fp16", batch=4))
    assert result.engine_path.name == "model.onnx_b4_gpu0_fp16.engine"
    sidecar = result.sidecar
    assert sidecar.profiles == [{"images": {"min": [1, 3, 16, 16], "opt": [4, 3, 16, 16], "max": [4, 3, 16, 16]}}]
    # I/O stays float32 after the FP16 conversion; the batch stays dynamic.
    assert _sidecar_io(sidecar) == _reference_io(onnx_path, result.engine_path)
    assert [t.shape[0] for t in sidecar.tensors] == [-1, -1]
    assert sidecar.precision["convert_fp16"] and sidecar.built_onnx_sha256 != sidecar.onnx_sha256


def test_several_profiles_and_compute_capability_target(tmp_path):
    onnx_path = conv_model(tmp_path / "model.onnx")
    specs = ["images:1x3x16x16:1x3x16x16:2x3x16x16", "images:4x3x16x16:8x3x16x16:8x3x16x16"]
    result = build_engine(onnx_path, _rtx(precision="fp32", profiles=specs, compute_capabilities=["8.6"]))
    assert result.engine_path.name == "model.onnx_b8_gpu0_fp32.engine"
    assert [p["images"]["max"][0] for p in result.sidecar.profiles] == [2, 8]
    assert result.sidecar.target_compute_capabilities == ["8.6"]


def test_fp16_halves_the_serialized_weights(tmp_path):
    # ~9.4 MB of float32 weights on a 4x4 image: weights dominate the engine size.
    onnx_path = conv_model(tmp_path / "big.onnx", batch=1, channels=256, width=256, size=4, layers=4)
    fp32 = build_engine(onnx_path, _rtx(precision="fp32")).sidecar.engine_bytes
    fp16 = build_engine(onnx_path, _rtx(precision="fp16")).sidecar.engine_bytes
    assert abs(fp16 / fp32 - 0.5) <= 0.05, (fp32, fp16)  # within 10% of one half


def test_qdq_onnx_builds_as_int8(tmp_path):
    float_path = conv_model(tmp_path / "float.onnx", batch=1, channels=256, width=256, size=4, layers=1)
    qdq_path = qdq_conv_model(tmp_path / "qdq.onnx", channels=256, width=256, size=4)
    fp32 = build_engine(float_path, _rtx(precision="fp32")).sidecar.engine_bytes
    result = build_engine(qdq_path, _rtx(precision="int8"))
    assert result.engine_path.name == "qdq.onnx_b1_gpu0_int8.engine"
    assert result.sidecar.precision["int8_source"] == "qdq" and result.sidecar.precision["builder_flags"] == []
    # int8 weights: a quarter of the float32 engine's weight bytes (plus fixed overhead).
    assert result.sidecar.engine_bytes < 0.4 * fp32, (fp32, result.sidecar.engine_bytes)


def test_deploy_card_defaults_and_embedding(tmp_path):
    onnx_path = conv_model(tmp_path / "model.onnx", batch="N", size=16)
    card = write_card(onnx_path)
    result = build_engine(onnx_path, _rtx(precision="fp32"))
    assert result.engine_path.name == "model.onnx_b1_gpu0_fp32.engine"  # dynamic batch, default 1
    assert result.sidecar.deploy_card == card.to_dict()


def test_stale_deploy_card_refused(tmp_path):
    onnx_path = conv_model(tmp_path / "model.onnx")
    write_card(onnx_path, name="image_tensor")
    with pytest.raises(Exception, match="describes input 'image_tensor' .* the card is stale"):
        build_engine(onnx_path, _rtx(precision="fp32"))
    assert files_in(tmp_path) == ["model.deploy.json", "model.onnx"]


def test_progress_and_tensorrt_log_routed_into_our_logger(tmp_path, caplog):
    onnx_path = conv_model(tmp_path / "model.onnx", batch=1)
    seen: list[tuple[str, int, int]] = []
    with caplog.at_level(logging.DEBUG, logger="trtdeploy"):
        build_engine(onnx_path, _rtx(precision="fp32", progress=lambda *a: seen.append(a)))
    assert seen and all(total >= done for _, done, total in seen)
    trt_lines = [r for r in caplog.records if r.name == "trtdeploy.engine.tensorrt"]
    assert trt_lines, "TensorRT's own log lines should arrive through trtdeploy.engine.tensorrt"
    assert any(r.name == "trtdeploy.engine" and "built" in r.getMessage() for r in caplog.records)


def test_parser_errors_name_the_nodes(tmp_path):
    base = conv_model(tmp_path / "base.onnx", batch=1)
    bad = with_extra_node(base, tmp_path / "bad.onnx", "Celu", alpha=1.0)
    model_file = bad.read_bytes()
    # Unknown op in a custom domain: no schema, no plugin, so the parser must fail on it.
    import onnx

    model = onnx.load(str(bad))
    model.graph.node[-1].op_type = "MadeUpOp"
    model.graph.node[-1].domain = "com.example"
    model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    onnx.save(model, str(bad))
    assert bad.read_bytes() != model_file
    with pytest.raises(BuildError, match="could not parse bad.onnx .*my_celu \\(MadeUpOp\\)"):
        build_engine(bad, _rtx(precision="fp32"))
    assert not any(name.endswith((".engine", ".json")) for name in files_in(tmp_path))


def test_cli_build_engine(tmp_path):
    rtx_backend()
    onnx_path = conv_model(tmp_path / "model.onnx")
    args = [
        "build-engine",
        str(onnx_path),
        "--backend",
        "tensorrt_rtx",
        "-p",
        "fp16",
        "--profile",
        "images:1x3x16x16:2x3x16x16:2x3x16x16",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model.onnx_b2_gpu0_fp16.engine.json").is_file()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "exists; pass --force" in again.output
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0


def _calibration_images(folder: Path, count: int = 8) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


def test_int8_from_images_through_the_calibration_package(tmp_path):
    calibration = pytest.importorskip("calibration")
    if not hasattr(calibration, "make_qdq_onnx"):
        pytest.skip("this calibration package has no make_qdq_onnx")
    onnx_path = conv_model(tmp_path / "m.onnx", width=32)
    write_card(onnx_path)
    images = _calibration_images(tmp_path / "imgs")
    options = _rtx(precision="int8", calib_images=images, calib_num=8, calib_batch=4, calib_cache=tmp_path / "m.cache")
    result = build_engine(onnx_path, options)
    assert result.engine_path.name == "m.onnx_b1_gpu0_int8.engine"
    assert result.sidecar.precision["int8_source"] == "qdq_from_calibration"
    assert result.sidecar.built_onnx_sha256 != result.sidecar.onnx_sha256  # the Q/DQ graph was built
    assert (tmp_path / "m.cache").is_file()


def test_calibration_errors_become_one_line_errors(tmp_path):
    calibration = pytest.importorskip("calibration")
    if not hasattr(calibration, "make_qdq_onnx"):
        pytest.skip("this calibration package has no make_qdq_onnx")
    onnx_path = conv_model(tmp_path / "m.onnx")
    write_card(onnx_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="^calibration: "):
        build_engine(onnx_path, _rtx(precision="int8", calib_images=tmp_path / "empty"))
    assert not any(name.endswith(".engine") for name in files_in(tmp_path))
