"""gen-ds-config / check-ds-config refuse what cannot work: a parser that would misread the
model's outputs, an engine of another model, a batch the model cannot run, unsafe names, and
they write DeepStream's files readable by other users."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.deepstream.ds_helpers import write_engine_sidecar
from tests.deepstream.test_check_ds_config import _tfod_card, ds_onnx
from trtdeploy.cli.main import app
from trtdeploy.deepstream import DsOptions, check_ds_config, gen_ds_config
from trtdeploy.deploy_card import card_path_for
from trtdeploy.errors import UnsupportedModelError, UsageError


def _float_class_model(tmp_path: Path) -> Path:
    """What `create-onnx --output-layout deepstream` wrote before --ds-parser: float32 classes."""
    model = ds_onnx(tmp_path / "ds.onnx", class_dtype="float32")
    _tfod_card("deepstream").save(card_path_for(model))
    return model


def test_float_classes_with_tao_apps_parser_refused_by_gen(tmp_path: Path) -> None:
    # deepstream_tao_apps >= release/tao4.0_ds6.3ga reads detection_classes BY NAME as int32
    # (post_processor/nvdsinfer_custombboxparser_tao.cpp; see trtdeploy/deepstream/parsers.py).
    model = _float_class_model(tmp_path)
    out = tmp_path / "ds"
    with pytest.raises(UnsupportedModelError) as info:
        gen_ds_config(_tfod_card("deepstream"), model, out, DsOptions(name="ds", ds_parser="tao-efficientdet"))
    message = str(info.value)
    assert "detection_classes" in message and "float32" in message and "int32" in message
    assert not out.exists() or not any(out.iterdir())
    result = CliRunner().invoke(app, ["gen-ds-config", str(model), "--ds-parser", "tao-efficientdet", "-o", str(out)])
    assert result.exit_code == 1 and "detection_classes" in result.output


def test_float_classes_with_tao_apps_parser_refused_by_check(tmp_path: Path) -> None:
    model = _float_class_model(tmp_path)
    # a config the SDK variant accepts (it reads float32 classes by position) ...
    config = gen_ds_config(_tfod_card("deepstream"), model, tmp_path / "ds", DsOptions(name="ds")).paths[0]
    assert [p for p in check_ds_config(config) if p.level == "error"] == []
    # ... pointed at deepstream_tao_apps' library: its newest variant reads int32 by name
    text = config.read_text().replace(
        "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so",
        "/opt/tao_apps/post_processor/libnvds_infercustomparser_tao.so",
    )
    config.write_text(text)
    for kwargs in ({}, {"ds_parser": "tao-efficientdet"}):
        errors = [p.message for p in check_ds_config(config, **kwargs) if p.level == "error"]
        wrong = [e for e in errors if "detection_classes is float32" in e and "int32" in e]
        assert wrong, errors
    result = CliRunner().invoke(app, ["check-ds-config", str(config)])
    assert result.exit_code == 1 and "detection_classes" in result.output


def test_int32_classes_are_right_for_tao_apps_and_wrong_for_the_sdk(tmp_path: Path) -> None:
    model = ds_onnx(tmp_path / "m.onnx", class_dtype="int32")
    card = _tfod_card("deepstream")
    card.output.class_dtype = "int32"
    card.save(card_path_for(model))
    ok = gen_ds_config(card, model, tmp_path / "a", DsOptions(name="m", ds_parser="tao-efficientdet"))
    assert "libnvds_infercustomparser_tao.so" in ok.config.properties["custom-lib-path"]
    with pytest.raises(UnsupportedModelError, match="detection_classes .*int32.*float32"):
        gen_ds_config(card, model, tmp_path / "b", DsOptions(name="m", ds_parser="sdk-efficientdet"))


def test_unknown_ds_parser_is_bad_usage(tmp_path: Path) -> None:
    model = _float_class_model(tmp_path)
    result = CliRunner().invoke(app, ["gen-ds-config", str(model), "--ds-parser", "nope", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "nope" in result.output


@pytest.mark.parametrize("name", ["../../evil", "a/b", "..", "x\\y"])
def test_name_with_path_parts_is_refused(tmp_path: Path, name: str) -> None:
    model = _float_class_model(tmp_path)
    out = tmp_path / "deep" / "er"
    result = CliRunner().invoke(app, ["gen-ds-config", str(model), "--name", name, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "--name" in result.output
    assert not list(tmp_path.rglob("*evil*")) and not out.exists()


def _sidecar(engine: Path, onnx_sha: str, outputs: list[tuple[str, str, list[int]]], max_batch: int) -> None:
    tensors = [("input_tensor", "float32", [-1, 300, 300, 3], "input")] + [(n, d, s, "output") for n, d, s in outputs]
    engine.write_bytes(b"engine")
    profiles = [{"input_tensor": {"min": [1, 300, 300, 3], "opt": [max_batch, 300, 300, 3], "max": [max_batch, 300, 300, 3]}}]
    write_engine_sidecar(engine, tensors, "fp16", profiles, onnx_sha)


def test_engine_of_another_model_is_refused(tmp_path: Path) -> None:
    model = _float_class_model(tmp_path)
    engine = tmp_path / "other.onnx_b4_gpu0_fp16.engine"
    _sidecar(engine, "0" * 64, [("boxes", "float32", [-1, 100, 4]), ("scores", "float32", [-1, 100, 2])], 4)
    result = CliRunner().invoke(app, ["gen-ds-config", str(model), "--engine", str(engine), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output
    assert "does not belong to ds.onnx" in result.output and "another model" in result.output
    assert not (tmp_path / "o").exists()


def test_batch_size_above_a_static_batch_is_refused(tmp_path: Path) -> None:
    model = _float_class_model(tmp_path)  # input_tensor [1, 300, 300, 3]
    result = CliRunner().invoke(app, ["gen-ds-config", str(model), "--batch-size", "4", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "static batch of 1" in result.output
    dynamic = ds_onnx(tmp_path / "dyn.onnx", batch="N")
    card = _tfod_card("deepstream")
    card.input.shape[0] = -1
    card.save(card_path_for(dynamic))
    ok = gen_ds_config(card, dynamic, tmp_path / "d", DsOptions(name="dyn", batch_size=4))
    assert ok.config.properties["batch-size"] == "4"
    assert ok.config.properties["model-engine-file"].endswith("dyn.onnx_b4_gpu0_fp16.engine")


def test_unknown_arch_is_bad_usage(tmp_path: Path) -> None:
    spec = tmp_path / "spec.txt"
    spec.write_text("x: 1\n")
    result = CliRunner().invoke(app, ["gen-ds-config", "--tao-spec", str(spec), "--arch", "yolo_v9", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "yolo_v9" in result.output


def test_deepstream_files_are_0644_whatever_the_umask(tmp_path: Path) -> None:
    model = _float_class_model(tmp_path)
    old = os.umask(0o077)
    try:
        result = gen_ds_config(_tfod_card("deepstream"), model, tmp_path / "ds", DsOptions(name="ds"))
    finally:
        os.umask(old)
    assert [oct(p.stat().st_mode & 0o777) for p in result.paths] == ["0o644"] * 3


def test_name_check_is_in_the_library_too(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--name"):
        gen_ds_config(_tfod_card("deepstream"), tmp_path / "m.onnx", tmp_path, DsOptions(name="../x"))


def _tfssd_model(tmp_path: Path) -> tuple[Path, object]:
    """What create-onnx --ds-parser sdk-tfssd records: float32 count and classes, normalised boxes."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = 4
    outputs = [
        ("num_detections", np.full((1,), k, np.float32)),
        ("detection_boxes", np.zeros((1, k, 4), np.float32)),
        ("detection_scores", np.zeros((1, k), np.float32)),
        ("detection_classes", np.zeros((1, k), np.float32)),
    ]
    graph = helper.make_graph(
        [helper.make_node("Constant", [], [n], value=numpy_helper.from_array(v, f"{n}_v")) for n, v in outputs],
        "tfssd",
        [helper.make_tensor_value_info("input_tensor", TensorProto.FLOAT, [1, 300, 300, 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape)) for n, v in outputs],
    )
    model = tmp_path / "tfssd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(model))
    card = _tfod_card("deepstream")
    card.output.box_units, card.output.class_dtype = "normalized", "float32"
    card.output.ds_parser, card.output.count_dtype = "sdk-tfssd", "float32"
    card.save(card_path_for(model))
    return model, card


def test_the_cards_parser_variant_is_the_default(tmp_path: Path) -> None:
    model, card = _tfssd_model(tmp_path)
    result = gen_ds_config(card, model, tmp_path / "ds", DsOptions(name="tfssd"))
    props = result.config.properties
    assert props["parse-bbox-func-name"] == "NvDsInferParseCustomTfSSD"
    assert props["custom-lib-path"] == "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so"
    assert [p.message for p in check_ds_config(result.paths[0]) if p.level == "error"] == []
    # the same normalised-box outputs handed to the pixel-box SDK EfficientDetTAO: count is float32
    with pytest.raises(UnsupportedModelError, match="num_detections .*float32.*int32"):
        gen_ds_config(card, model, tmp_path / "b", DsOptions(name="t", ds_parser="sdk-efficientdet"))


def test_check_finds_an_engine_of_another_model_and_reads_dtypes_from_its_sidecar(tmp_path: Path) -> None:
    """Issue 11: a config whose engine came from another model passed check-ds-config."""
    model = _float_class_model(tmp_path)
    config = gen_ds_config(_tfod_card("deepstream"), model, tmp_path / "ds", DsOptions(name="ds")).paths[0]
    engine = tmp_path / "ds.onnx_b1_gpu0_fp16.engine"  # where the config says, and nvinfer saves
    outputs = [("num_detections", "int32", [-1, 1]), ("detection_boxes", "float32", [-1, 4, 4]),
               ("detection_scores", "float32", [-1, 4]), ("detection_classes", "float32", [-1, 4])]  # fmt: skip
    _sidecar(engine, "0" * 64, outputs, 1)
    errors = [p.message for p in check_ds_config(config) if p.level == "error"]
    assert any("was not built from onnx-file=../ds.onnx" in e and "sha256" in e for e in errors), errors
    # the parser check reads the engine's outputs (its sidecar) when the engine is there
    errors = [p.message for p in check_ds_config(config, ds_parser="tao-efficientdet") if p.level == "error"]
    assert any("(engine sidecar)" in e and "detection_classes is float32" in e for e in errors), errors
