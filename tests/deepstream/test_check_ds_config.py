"""check-ds-config: no false errors on NVIDIA's reference configs; finds seeded mistakes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.deepstream.ds_helpers import NVINFER, need_reference, write_engine_sidecar
from trtdeploy.cli.main import app
from trtdeploy.deepstream import DsConfigError, DsOptions, check_ds_config, gen_ds_config, read_config
from trtdeploy.deepstream.generate import GeneratedConfig
from trtdeploy.deploy_card import (
    DeployCard,
    InputSpec,
    NmsParams,
    OutputSpec,
    Preprocess,
    card_path_for,
)
from trtdeploy.errors import TrtDeployError, UnsupportedModelError

# Real mistakes in the reference folder, each verified by hand (the test fails if we stop
# finding them or find anything else).
KNOWN_TRUE_ERRORS = {
    # YAML says network-mode 1 (INT8) while the engine file and the .txt twin are FP16.
    "efficientdet_tao/pgie_d0_512_tao_config.yml": ["fp16 engine but network-mode=1"],
    # Labels saved with CRLF: nvinfer keeps '\r' in the label text.
    "unet_tao/pgie_unet_tao_config.txt": ["CRLF"],
    "unet_tao/pgie_unet_tao_config.yml": ["CRLF"],
    "peopleSemSegNet_tao/shuffle/pgie_peopleSemSegShuffleUnet_tao_config.txt": ["CRLF"],
    # ... and the YAML twin names the engine "..._shuffleseg_onnx_b1_gpu0_int8.engine" while nvinfer
    # saves it as "<onnx-file>_b1_gpu0_int8.engine" = "..._shuffleseg.onnx_b1_gpu0_int8.engine" (the
    # .txt twin has it right): rebuilt at every start. Rule: hiennguyen9874/deepstream-sources 6.3,
    # sources/libs/nvdsinfer/nvdsinfer_model_builder.cpp lines 713 and 723-724.
    "peopleSemSegNet_tao/shuffle/pgie_peopleSemSegShuffleUnet_tao_config.yml": ["CRLF", "rebuilt at every start"],
    "peopleSemSegNet_tao/vanilla/pgie_peopleSemSegVanillaUnet_tao_config.yml": ["CRLF"],
    # 'onnx-file:=' is a typo nvinfer ignores, and the engine is named "_in8" for INT8.
    "peopleSemSegNet_tao/vanilla/pgie_peopleSemSegVanillaUnet_tao_config.txt": [
        "onnx-file:",
        "CRLF",
        "in8 engine",
    ],
}


def _nvinfer_configs() -> list[Path]:
    configs = []
    for path in sorted(NVINFER.rglob("*")):
        if path.suffix not in (".txt", ".yml") or "labels" in path.name:
            continue
        try:
            read_config(path)
        except TrtDeployError:
            continue  # app/model configs of custom samples, nvdspreprocess configs
        configs.append(path)
    return configs


def test_reference_configs_have_no_false_errors() -> None:
    need_reference()
    configs = _nvinfer_configs()
    assert len(configs) > 40
    for path in configs:
        rel = path.relative_to(NVINFER).as_posix()
        errors = [p.message for p in check_ds_config(path) if p.level == "error"]
        expected = KNOWN_TRUE_ERRORS.get(rel, [])
        assert len(errors) == len(expected), (rel, errors)
        for needle in expected:
            assert any(needle in e for e in errors), (rel, needle, errors)


def _copy_ssd(tmp_path: Path) -> Path:
    src = NVINFER / "ssd_tao"
    dst = tmp_path / "ssd"
    shutil.copytree(src, dst)
    return dst / "pgie_ssd_tao_config.txt"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("seed", "needle"),
    [
        ("class_count", "num-detected-classes=4 but the labels file has 5"),
        ("blank_line", "blank line"),
        ("crlf", "CRLF"),
        ("offsets_order", "ImageNet means in RGB order"),
        ("engine_precision", "fp16 engine but network-mode=1"),
    ],
)
def test_seeded_mistakes_are_found(tmp_path: Path, seed: str, needle: str) -> None:
    need_reference()
    config = _copy_ssd(tmp_path)
    labels = config.parent / "ssd_labels.txt"
    if seed == "class_count":
        _edit(config, "num-detected-classes=5", "num-detected-classes=4")
    elif seed == "blank_line":
        _edit(labels, "bicycle\n", "bicycle\n\n")
    elif seed == "crlf":
        labels.write_bytes(labels.read_bytes().replace(b"\n", b"\r\n"))
    elif seed == "offsets_order":
        _edit(config, "offsets=103.939;116.779;123.68", "offsets=123.68;116.779;103.939")
    elif seed == "engine_precision":
        _edit(config, "_b1_gpu0_int8.engine", "_b1_gpu0_fp16.engine")
    errors = [p.message for p in check_ds_config(config) if p.level == "error"]
    assert any(needle in e for e in errors), errors
    result = CliRunner().invoke(app, ["check-ds-config", str(config)])
    assert result.exit_code == 1


def ds_onnx(path: Path, class_dtype: str = "float32", batch: int | str = 1) -> Path:
    """A tiny ONNX with the four EfficientNMS-shaped outputs (constants): count int32, boxes and
    scores float32, classes ``class_dtype``; input NHWC 300x300 (``batch`` may be symbolic)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = 4
    types = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32}
    outputs = [
        ("num_detections", np.full((1, 1), k, np.int32)),
        ("detection_boxes", np.zeros((1, k, 4), np.float32)),
        ("detection_scores", np.zeros((1, k), np.float32)),
        ("detection_classes", np.zeros((1, k), np.dtype(class_dtype))),
    ]
    nodes = [
        helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, f"{name}_v"))
        for name, value in outputs
    ]
    graph = helper.make_graph(
        nodes,
        "ds_tiny",
        [helper.make_tensor_value_info("input_tensor", TensorProto.FLOAT, [batch, 300, 300, 3])],
        [
            helper.make_tensor_value_info(name, types[str(value.dtype)], list(value.shape))
            for name, value in outputs
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _tfod_card(layout: str) -> DeployCard:
    deepstream = layout == "deepstream"
    return DeployCard(
        input=InputSpec("input_tensor", [1, 300, 300, 3], "NHWC"),
        preprocess=Preprocess("RGB", 1.0, [0.0, 0.0, 0.0]),
        output=OutputSpec(
            nms="efficient",
            layout=layout,
            names=["num_detections", "detection_boxes", "detection_scores", "detection_classes"],
            num_classes=2,
            # What NvDsInferParseCustomEfficientDetTAO reads (see trtdeploy/deepstream/parsers.py).
            box_format="y1x1y2x2",
            box_units="pixels" if deepstream else "normalized",
            class_dtype="float32" if deepstream else "int32",
        ),
        labels=["cat", "dog"],
        nms=NmsParams(score_threshold=0.3, iou_threshold=0.6),
    )


def test_tfod_deepstream_layout_gives_a_config_check_accepts(tmp_path: Path) -> None:
    model = ds_onnx(tmp_path / "ssd.onnx")
    card = _tfod_card("deepstream")
    card.save(card_path_for(model))
    result = gen_ds_config(card, model, tmp_path / "ds", DsOptions(name="ssd"))
    props = result.config.properties
    assert props["parse-bbox-func-name"] == "NvDsInferParseCustomEfficientDetTAO"
    assert props["network-input-order"] == "1" and props["cluster-mode"] == "4"
    assert props["num-detected-classes"] == "2"
    assert [p for p in check_ds_config(result.paths[0]) if p.level == "error"] == []
    runner = CliRunner().invoke(app, ["check-ds-config", str(result.paths[1])])
    assert runner.exit_code == 0, runner.output


def test_tfod_layout_is_refused_for_efficientnms_parser(tmp_path: Path) -> None:
    model = tmp_path / "ssd.onnx"
    card = _tfod_card("tfod")
    with pytest.raises(UnsupportedModelError, match="--output-layout deepstream"):
        gen_ds_config(card, model, tmp_path / "ds", DsOptions(name="ssd"))
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())


def test_parser_layout_mismatch_found_by_check(tmp_path: Path) -> None:
    """A config naming EfficientDetTAO over a model whose deploy card says 'tfod'."""
    model = tmp_path / "ssd.onnx"
    good = gen_ds_config(_tfod_card("deepstream"), model, tmp_path, DsOptions(name="ssd")).paths[0]
    _tfod_card("tfod").save(card_path_for(model))
    errors = [p.message for p in check_ds_config(good) if p.level == "error"]
    assert any("--output-layout deepstream" in e for e in errors), errors


def test_x1y1x2y2_deepstream_card_is_refused_for_efficientdettao(tmp_path: Path) -> None:
    """EfficientDetTAO reads boxes as y1,x1,y2,x2 (left = box[1]); x1y1x2y2 float-class
    outputs fit no stock parser."""
    card = _tfod_card("deepstream")
    card.output.box_format = "x1y1x2y2"
    with pytest.raises(UnsupportedModelError, match="no stock DeepStream parser"):
        gen_ds_config(card, tmp_path / "m.onnx", tmp_path, DsOptions(name="m"))


def test_raw_layout_refused_without_own_parser(tmp_path: Path) -> None:
    card = _tfod_card("deepstream")
    card.output.layout, card.output.nms, card.output.names = "raw", "none", ["boxes", "scores"]
    with pytest.raises(UnsupportedModelError, match="--parse-func"):
        gen_ds_config(card, tmp_path / "m.onnx", tmp_path, DsOptions(name="m"))
    result = gen_ds_config(
        card,
        tmp_path / "m.onnx",
        tmp_path,
        DsOptions(name="m", parse_func="MyParse", custom_lib="/x.so"),
    )
    assert result.config.properties["cluster-mode"] == "2"
    assert result.config.class_attrs["nms-iou-threshold"] == "0.6"


def test_engine_sidecar_and_calibration_header_checked(tmp_path: Path) -> None:
    model = tmp_path / "ssd.onnx"
    engine = tmp_path / "ssd.onnx_b4_gpu0_int8.engine"
    engine.write_bytes(b"x")
    write_engine_sidecar(engine, [], "int8", [{"input_tensor": {"min": [1, 300, 300, 3], "opt": [4, 300, 300, 3], "max": [4, 300, 300, 3]}}])
    cache = tmp_path / "cal.bin"

    card = _tfod_card("deepstream")
    card.input.shape[0] = -1  # dynamic batch, as the engine's profile (1..4) says

    def generate(out: str, batch_size: int | None = None) -> GeneratedConfig:
        options = DsOptions(name="s", batch_size=batch_size)
        return gen_ds_config(card, model, tmp_path / out, options, engine=engine, calib_cache=cache)

    cache.write_text("TRT-8601-EntropyCalibration2\nx: 3c010204\n")
    with pytest.raises(TrtDeployError, match="TRT-100300"):
        generate("a")
    cache.write_text("TRT-100300-EntropyCalibration2\nx: 3c010204\n")
    with pytest.raises(TrtDeployError, match="exceeds the engine's max batch 4"):
        generate("b", batch_size=8)
    ok = generate("c")
    assert ok.config.properties["network-mode"] == "1" and ok.config.properties["batch-size"] == "4"
    with pytest.raises(TrtDeployError, match="exists"):
        generate("c")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("garbage\nx: 3c010204\n", "line 1: missing header, expected 'TRT-<version>-<Algorithm>'"),
        ("TRT-100300-EntropyCalibration2\nx: 3c01\n", "line 2: truncated scale '3c01' for tensor 'x'"),
    ],
)
def test_malformed_calibration_cache_is_one_problem_line(tmp_path: Path, text: str, needle: str) -> None:
    """The calibration package parses the cache; what it rejects is a listed problem, not a traceback."""
    cache = tmp_path / "cal.bin"
    cache.write_text(text)
    out = tmp_path / "ds"
    with pytest.raises(DsConfigError) as info:
        gen_ds_config(_tfod_card("deepstream"), tmp_path / "ssd.onnx", out, DsOptions(name="s"), calib_cache=cache)
    errors = [p.message for p in info.value.problems if p.level == "error"]
    assert len(errors) == 1 and errors[0].startswith(f"int8-calib-file: {cache} {needle}"), errors
    assert "\n" not in errors[0]
    assert not out.exists()


def test_check_reports_a_malformed_calibration_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cal.bin"
    cache.write_text("TRT-100300-EntropyCalibration2\nx: 3c010204\n")
    config = gen_ds_config(
        _tfod_card("deepstream"), tmp_path / "ssd.onnx", tmp_path / "ds", DsOptions(name="s"), calib_cache=cache
    ).paths[0]
    assert [p for p in check_ds_config(config) if p.level == "error"] == []
    cache.write_text("TRT-100300-EntropyCalibration2\nx: zz\n")
    errors = [p.message for p in check_ds_config(config) if p.level == "error"]
    assert len(errors) == 1 and "line 2: bad scale 'zz' for tensor 'x'" in errors[0], errors
    result = CliRunner().invoke(app, ["check-ds-config", str(config)])
    assert result.exit_code == 1 and "bad scale 'zz'" in result.output and "Traceback" not in result.output
    cache.write_text("not a TensorRT cache\n")  # another kind of cache: not ours to judge
    assert [p for p in check_ds_config(config) if p.level == "error"] == []
