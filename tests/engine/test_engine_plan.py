"""Pure planning logic: capabilities, profiles, precision plan, engine naming (no TensorRT)."""

from __future__ import annotations

import pytest

from trtdeploy.engine.capabilities import capabilities_for, version_tuple
from trtdeploy.engine.naming import (
    default_engine_path,
    engine_file_name,
    parse_engine_name,
    sidecar_path,
)
from trtdeploy.engine.precision import (
    INT8_CACHE,
    INT8_CALIBRATOR,
    INT8_QDQ,
    INT8_QDQ_FROM_CALIBRATION,
    parse_layer_precisions,
    plan_precision,
)
from trtdeploy.engine.profiles import (
    OnnxInput,
    ShapeRange,
    group_profiles,
    max_batch,
    parse_profile_spec,
    plan_profiles,
)
from trtdeploy.errors import UsageError

TRT10 = capabilities_for("tensorrt", "10.16.0.72")
TRT11 = capabilities_for("tensorrt", "11.4.0.106")
RTX = capabilities_for("tensorrt_rtx", "1.7.1.116")


# --- capabilities -------------------------------------------------------------------------


def test_capabilities_table_matches_the_generations():
    assert TRT10.weak_typing and TRT10.int8_calibrator and TRT10.plugins and TRT10.dla
    assert TRT11.strongly_typed and not TRT11.int8_calibrator and TRT11.nms_layer
    assert TRT11.unavailable_plugin("BatchedNMS_TRT") and TRT11.unavailable_plugin("NMS_TRT")
    assert not TRT11.unavailable_plugin("EfficientNMS_TRT")  # deprecated but still shipped in 11
    assert not TRT10.unavailable_plugin("BatchedNMS_TRT")
    assert RTX.strongly_typed and not RTX.plugins and not RTX.nms_layer and RTX.ahead_of_time
    assert RTX.unavailable_plugin("EfficientNMS_TRT") and not RTX.unavailable_plugin("ROIAlign_TRT")
    assert TRT10.label == "TensorRT 10" and TRT11.label == "TensorRT 11"


def test_old_tensorrt_and_unknown_backend_refused():
    with pytest.raises(UsageError, match="TensorRT 8.6.1 is not supported"):
        capabilities_for("tensorrt", "8.6.1")
    with pytest.raises(UsageError, match="unknown backend 'onnxruntime'"):
        capabilities_for("onnxruntime", "1.0")


def test_version_tuple():
    assert version_tuple("10.16.0.72") == (10, 16, 0, 72)
    assert version_tuple("11.0.0rc1") == (11, 0, 0)


# --- profiles ------------------------------------------------------------------------------

DYN = [OnnxInput("images", (-1, 3, 300, 300), "float32")]


def test_profile_spec_parsing_allows_colons_in_names():
    name, rng = parse_profile_spec("input_1:0:1x3x300x300:4x3x300x300:8x3x300x300")
    assert name == "input_1:0"
    assert rng == ShapeRange((1, 3, 300, 300), (4, 3, 300, 300), (8, 3, 300, 300))
    assert str(rng) == "1x3x300x300:4x3x300x300:8x3x300x300"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("images:1x3x300x300:4x3x300x300", "is not NAME:MIN:OPT:MAX"),
        ("images:1x3x300:4x3x300x300:8x3x300x300", "same rank"),
        ("images:4x3x300x300:2x3x300x300:8x3x300x300", "MIN <= OPT <= MAX"),
        ("images:0x3x300x300:2x3x300x300:8x3x300x300", "must be positive"),
        ("images:ax3:1x3:1x3", "not a shape"),
    ],
)
def test_bad_profile_specs(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_profile_spec(spec)


def test_repeated_profiles_for_one_input_make_several_profiles():
    profiles = group_profiles(
        ["images:1x3x300x300:1x3x300x300:2x3x300x300", "images:4x3x300x300:8x3x300x300:8x3x300x300"]
    )
    assert len(profiles) == 2 and profiles[1]["images"].max == (8, 3, 300, 300)
    assert max_batch(profiles, DYN) == 8


def test_batch_gives_dynamic_range_and_static_graph_needs_no_profile():
    (profile,) = plan_profiles(DYN, batch=4)
    assert profile["images"] == ShapeRange((1, 3, 300, 300), (4, 3, 300, 300), (4, 3, 300, 300))
    static = [OnnxInput("images", (2, 3, 300, 300), "float32")]
    assert plan_profiles(static) == []
    assert plan_profiles(static, batch=2) == []
    assert max_batch([], static) == 2


def test_default_profile_is_batch_one_and_card_fills_dynamic_spatial_dims():
    spatial = [OnnxInput("images", (-1, 3, -1, -1), "float32")]
    (profile,) = plan_profiles(spatial, card_shape={"images": (-1, 3, 320, 320)})
    assert profile["images"].max == (1, 3, 320, 320)
    with pytest.raises(UsageError, match="dynamic dimension 2 .* pass --profile images:MIN:OPT:MAX"):
        plan_profiles(spatial)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (
            ["image:1x3x300x300:1x3x300x300:1x3x300x300"],
            "names input 'image' but the ONNX inputs are: 'images'",
        ),
        (["images:1x3x300:1x3x300:1x3x300"], "rank 3 but the ONNX input is \\?x3x300x300"),
        (["images:1x3x320x320:1x3x320x320:1x3x320x320"], "changes static dimension 2"),
    ],
)
def test_profile_not_matching_the_onnx_is_refused(specs, message):
    with pytest.raises(UsageError, match=message):
        plan_profiles(DYN, specs)


def test_batch_against_static_batch_and_both_options_refused():
    static = [OnnxInput("images", (1, 3, 300, 300), "float32")]
    with pytest.raises(UsageError, match="static batch of 1"):
        plan_profiles(static, batch=4)
    with pytest.raises(UsageError, match="either --batch or --profile"):
        plan_profiles(DYN, ["images:1x3x300x300:1x3x300x300:1x3x300x300"], batch=1)


# --- precision plan ------------------------------------------------------------------------


def test_fp16_is_a_flag_on_10_and_a_conversion_on_strongly_typed():
    p10 = plan_precision(TRT10, "fp16")
    assert p10.builder_flags == ("FP16",) and not p10.convert_fp16 and p10.label == "fp16"
    for caps in (TRT11, RTX):
        plan = plan_precision(caps, "fp16")
        assert plan.convert_fp16 and plan.builder_flags == () and plan.strongly_typed


def test_int8_sources_per_backend():
    assert plan_precision(TRT10, "int8", calib_images=True).int8_source == INT8_CALIBRATOR
    assert plan_precision(TRT10, "int8", calib_cache=True).int8_source == INT8_CACHE
    assert plan_precision(TRT10, "int8", calib_cache=True).builder_flags == ("INT8",)
    assert plan_precision(TRT11, "int8", calib_images=True).int8_source == INT8_QDQ_FROM_CALIBRATION
    qdq = plan_precision(RTX, "int8", has_qdq=True)
    assert qdq.int8_source == INT8_QDQ and qdq.label == "int8" and qdq.builder_flags == ()
    best10 = plan_precision(TRT10, "best", calib_images=True)
    assert set(best10.builder_flags) == {"INT8", "FP16"} and best10.label == "int8"


def test_best_without_int8_data_says_it_builds_fp16():
    plan = plan_precision(RTX, "best")
    assert plan.label == "fp16" and plan.convert_fp16
    assert any("INT8 is off" in note for note in plan.notes)


def test_int8_without_data_and_qdq_with_float_precision_refused():
    for caps in (TRT10, TRT11, RTX):
        with pytest.raises(UsageError, match="INT8 needs calibration data"):
            plan_precision(caps, "int8")
    with pytest.raises(UsageError, match="QuantizeLinear/DequantizeLinear.*use --precision int8"):
        plan_precision(RTX, "fp16", has_qdq=True)
    with pytest.raises(UsageError, match="drop --calib-images"):
        plan_precision(TRT10, "int8", has_qdq=True, calib_images=True)
    with pytest.raises(UsageError, match="not one of"):
        plan_precision(TRT10, "int4")


def test_layer_precisions_per_backend():
    assert parse_layer_precisions(["a=b=fp32", "conv=FP16"]) == {"a=b": "fp32", "conv": "fp16"}
    with pytest.raises(UsageError, match="not NAME=fp32"):
        parse_layer_precisions(["conv:fp32"])
    p10 = plan_precision(TRT10, "fp16", layer_precisions={"head": "fp32"})
    assert "OBEY_PRECISION_CONSTRAINTS" in p10.builder_flags
    rtx = plan_precision(RTX, "fp16", layer_precisions={"head": "fp32"})
    assert rtx.layer_precisions == {"head": "fp32"} and rtx.builder_flags == ()
    with pytest.raises(UsageError, match="only NAME=fp32 is honoured"):
        plan_precision(RTX, "fp16", layer_precisions={"head": "fp16"})
    with pytest.raises(UsageError, match="only has an effect with --precision fp16"):
        plan_precision(TRT11, "fp32", layer_precisions={"head": "fp32"})


# --- naming --------------------------------------------------------------------------------


def test_engine_names_follow_deepstream(tmp_path):
    assert engine_file_name("model.onnx", 4, "fp16") == "model.onnx_b4_gpu0_fp16.engine"
    assert engine_file_name("/a/b/ssd.onnx", 1, "int8", dla_core=1) == "ssd.onnx_b1_dla1_int8.engine"
    assert engine_file_name("m.onnx", 2, "fp32", gpu_id=3) == "m.onnx_b2_gpu3_fp32.engine"
    path = default_engine_path(tmp_path / "model.onnx", 8, "fp32")
    assert path == tmp_path / "model.onnx_b8_gpu0_fp32.engine"
    assert sidecar_path(path).name == "model.onnx_b8_gpu0_fp32.engine.json"
    assert parse_engine_name(path.name) == {
        "model": "model.onnx",
        "batch": 8,
        "device": "gpu",
        "index": 0,
        "precision": "fp32",
    }
    assert parse_engine_name("model.engine") is None
    # A misspelt precision label is not an engine name nvinfer writes, unless a checker asks for it.
    assert parse_engine_name("m.onnx_b2_dla1_in8.engine") is None
    assert parse_engine_name("m.onnx_b2_dla1_in8.engine", any_precision=True) == {
        "model": "m.onnx",
        "batch": 2,
        "device": "dla",
        "index": 1,
        "precision": "in8",
    }
    with pytest.raises(UsageError):
        engine_file_name("m.onnx", 1, "best")
