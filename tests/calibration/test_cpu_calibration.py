"""CPU calibration with ONNX Runtime, the cache it writes, and the Q/DQ ONNX (ORT + TensorRT-RTX)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from calibration import (
    CacheKey,
    CalibrationError,
    ImageBatcher,
    PreprocessSpec,
    calibrate_onnx,
    insert_qdq,
    make_qdq_onnx,
    quantize_onnx,
    read_cache,
    reuse_problem,
    write_qdq_onnx,
)
from calibration.ranges import AbsHistogram, amax_from
from tests.calibration.calib_helpers import conv_net

SPEC = PreprocessSpec(32, 32, scale=1 / 127.5, offsets=(127.5, 127.5, 127.5))


def _activations(onnx_path: Path, batch: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    model = onnx.load(str(onnx_path))
    for name in names:
        model.graph.output.append(onnx.ValueInfoProto(name=name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(names, {"x": batch}), strict=True))


def test_calibration_ranges_match_direct_statistics(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    model = conv_net(tmp_path / "net.onnx")
    paths = photo_jpegs[:24]
    for method in ("entropy", "minmax", "percentile"):
        result = calibrate_onnx(model, paths, SPEC, method, batch_size=8, percentile=99.0)
        assert list(result.amax) == ["x", "c1", "r1", "c2", "r2", "c3", "g", "f", "y"]  # graph order, floats only
        assert result.num_images == 24
    batch = np.concatenate(list(ImageBatcher(paths, SPEC, 8)))
    acts = _activations(model, batch, ["c1", "r2", "y"])
    minmax = calibrate_onnx(model, paths, SPEC, "minmax").amax
    for name, value in acts.items():
        assert minmax[name] == pytest.approx(float(np.abs(value).max()), rel=1e-6)
    entropy = calibrate_onnx(model, paths, SPEC, "entropy", range_stride=1).amax
    sampled = calibrate_onnx(model, paths, SPEC, "entropy", batch_size=4).amax  # range from every 4th batch
    assert np.median([sampled[n] / entropy[n] for n in entropy]) == pytest.approx(1.0, abs=0.1)
    for name, value in acts.items():
        hist = AbsHistogram(fixed_range=float(np.abs(value).max()))
        hist.add(value)
        assert entropy[name] == pytest.approx(amax_from(hist, "entropy"), rel=1e-5)  # type: ignore[arg-type]
        assert 0 < entropy[name] <= minmax[name] * (1 + 1e-6)


def test_fixed_batch_model_drops_partial_batch_and_single_input_is_required(tmp_path: Path, photo_jpegs) -> None:
    model = conv_net(tmp_path / "fixed.onnx", batch=4)
    result = calibrate_onnx(model, photo_jpegs[:10], SPEC, "minmax", batch_size=8)
    assert result.num_images == 8
    two = onnx.load(str(model))
    two.graph.input.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [1]))
    onnx.save(two, str(tmp_path / "two.onnx"))
    with pytest.raises(CalibrationError, match="one image input, this one has 2"):
        calibrate_onnx(tmp_path / "two.onnx", photo_jpegs[:4], SPEC)
    with pytest.raises(CalibrationError, match="not found"):
        calibrate_onnx(tmp_path / "missing.onnx", photo_jpegs[:4], SPEC)


def test_wrong_preprocessing_shape_is_a_clear_error(tmp_path: Path, photo_jpegs) -> None:
    model = conv_net(tmp_path / "net.onnx")
    with pytest.raises(CalibrationError, match="does the preprocessing match the model"):
        calibrate_onnx(model, photo_jpegs[:4], PreprocessSpec(32, 32, layout="NHWC"))


def test_quantize_onnx_writes_cache_sidecar_and_qdq_graph(tmp_path: Path, photo_jpegs) -> None:
    model = conv_net(tmp_path / "net.onnx", with_decode=True)
    cache, report = quantize_onnx(
        model, tmp_path / "net_int8.onnx", photo_jpegs[:32], SPEC, cache_path=tmp_path / "net.cache", trt_version="10.3"
    )
    assert cache.header == "TRT-100300-EntropyCalibration2"
    assert read_cache(tmp_path / "net.cache").bits == cache.bits
    side = json.loads((tmp_path / "net.cache.json").read_text())
    assert side["trt_version"] == "10.3.0" and side["preprocess"] == SPEC.to_dict() and side["num_images"] == 32
    assert report is not None and sorted(report.quantized) == ["conv1", "conv2", "dwconv", "fc"]
    qdq = onnx.load(str(tmp_path / "net_int8.onnx"))
    ops = [n.op_type for n in qdq.graph.node]
    assert ops.count("QuantizeLinear") == 4 and ops.count("DequantizeLinear") == 8  # 4 activations + 4 weights
    # the decoding tail stays float: nothing quantized feeds or follows it
    for node in qdq.graph.node:
        if node.name.startswith("decode_"):
            assert not any(i.endswith("_dequantized") for i in node.input)
    # weights are stored as int8 with per-channel scales on the right axis
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in qdq.graph.initializer}
    assert inits["W2_int8"].dtype == np.int8 and inits["W2_qdq_scale"].shape == (16,)
    assert inits["Wf_qdq_scale"].shape == (12,)  # MatMul weight [K, N]: axis 1
    assert "W2" not in inits  # the float copy is gone
    dq_axes = {n.input[0]: n.attribute[0].i for n in qdq.graph.node if n.op_type == "DequantizeLinear" and n.attribute}
    assert dq_axes == {"W1_int8": 0, "W2_int8": 0, "Wd_int8": 0, "Wf_int8": 1}
    # activation scales come from the cache
    scales = cache.scales
    assert float(inits["r1_qdq_scale"]) == pytest.approx(scales["r1"], rel=1e-6)
    # the quantized model runs in ONNX Runtime and stays close to float
    batch = np.concatenate(list(ImageBatcher(photo_jpegs[32:48], SPEC, 16)))
    ref = ort.InferenceSession(str(model)).run(None, {"x": batch})[0]
    got = ort.InferenceSession(str(tmp_path / "net_int8.onnx")).run(None, {"x": batch})[0]
    assert np.abs(got - ref).mean() < 0.03 * np.abs(ref).mean()


def test_qdq_shares_one_pair_per_tensor_and_honours_exclusions(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "W")
    w2 = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "W2")
    small = numpy_helper.from_array(np.ones((3, 2), np.float32), "small")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W"], ["a"], name="left"),
            helper.make_node("Conv", ["x", "W2"], ["b"], name="right"),
            helper.make_node("Conv", ["x", "W"], ["c"], name="skipme"),
            helper.make_node("ReduceMean", ["a"], ["m"], axes=[2, 3], keepdims=0, name="mean"),
            helper.make_node("MatMul", ["m", "small"], ["tiny"], name="coords"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4, 4, 4]),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4, 4, 4]),
            helper.make_tensor_value_info("tiny", TensorProto.FLOAT, [1, 2]),
        ],
        [w, w2, small],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    qdq, report = insert_qdq(model, {"x": 1.0, "a": 2.0, "m": 1.0}, exclude=["skipme"])
    ops = [n.op_type for n in qdq.graph.node]
    assert ops.count("QuantizeLinear") == 1  # x quantized once for both convs
    assert report.quantized == ["left", "right"]
    assert report.skipped == {"skipme": "excluded", "coords": "MatMul without a constant 2-D weight of at least 8x8"}
    assert "W" in {t.name for t in qdq.graph.initializer}  # still read by the excluded conv
    onnx.checker.check_model(qdq)
    old = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    with pytest.raises(CalibrationError, match="opset >= 13"):
        insert_qdq(old, {"x": 1.0})


def test_make_qdq_onnx_reuses_a_matching_cache_and_explains_mismatches(tmp_path: Path, photo_jpegs) -> None:
    model = conv_net(tmp_path / "net.onnx")
    cache = tmp_path / "net.cache"
    card = {
        "input": {"shape": [-1, 3, 32, 32], "layout": "NCHW"},
        "preprocess": {"scale": 1 / 127.5, "offsets": [127.5] * 3},
    }
    make_qdq_onnx(
        onnx_path=model,
        output=tmp_path / "a.onnx",
        images=photo_jpegs[:16],
        cache=cache,
        num_images=16,
        batch_size=8,
        card=card,
    )
    assert cache.is_file()
    before = cache.stat().st_mtime_ns
    # no images: the matching cache is enough
    make_qdq_onnx(onnx_path=model, output=tmp_path / "b.onnx", images=None, cache=cache, card=card)
    assert cache.stat().st_mtime_ns == before
    assert onnx.load(str(tmp_path / "a.onnx")) == onnx.load(str(tmp_path / "b.onnx"))
    other = dict(card, preprocess={"scale": 1 / 255, "offsets": [0, 0, 0]})
    with pytest.raises(CalibrationError, match=r"preprocessing changed \(offsets, scale\)"):
        make_qdq_onnx(onnx_path=model, output=tmp_path / "c.onnx", images=None, cache=cache, card=other)
    spec = PreprocessSpec.from_card_dict(card)
    key = CacheKey(
        json.loads((tmp_path / "net.cache.json").read_text())["onnx_sha256"],
        spec.to_dict(),
        "EntropyCalibration2",
        "10.16.0",
    )
    assert reuse_problem(cache, key) is None
    assert "TensorRT version changed" in reuse_problem(
        cache, CacheKey(key.onnx_sha256, key.preprocess, key.algorithm, "10.3.0")
    )
    assert "ONNX model changed" in reuse_problem(
        cache, CacheKey("0" * 64, key.preprocess, key.algorithm, key.trt_version)
    )
    (tmp_path / "net.cache.json").unlink()
    assert "no sidecar" in reuse_problem(cache, key)


def test_write_qdq_onnx_refuses_a_model_without_quantizable_nodes(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "relu.onnx"))
    with pytest.raises(CalibrationError, match="no Conv/MatMul/Gemm"):
        write_qdq_onnx(tmp_path / "relu.onnx", tmp_path / "out.onnx", {"x": 1.0})
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.rtx
def test_qdq_onnx_builds_with_tensorrt_rtx(tmp_path: Path, photo_jpegs) -> None:
    trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx is not installed")
    model = conv_net(tmp_path / "net.onnx", size=32)
    quantize_onnx(model, tmp_path / "int8.onnx", photo_jpegs[:16], SPEC)
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # strongly typed: precision comes from the Q/DQ nodes
    parser = trt.OnnxParser(network, logger)
    assert parser.parse((tmp_path / "int8.onnx").read_bytes()), [parser.get_error(i) for i in range(parser.num_errors)]
    layer_types = {network.get_layer(i).type for i in range(network.num_layers)}
    assert trt.LayerType.QUANTIZE in layer_types and trt.LayerType.DEQUANTIZE in layer_types
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    assert engine is not None and engine.nbytes > 0


def test_trt_plugin_head_is_left_out_of_calibration_but_kept_in_qdq(tmp_path: Path, photo_jpegs) -> None:
    from onnx import TensorProto, helper

    model = onnx.load(str(conv_net(tmp_path / "net.onnx")))
    model.graph.node.append(
        helper.make_node("EfficientNMS_TRT", ["y"], ["num", "nmsed"], name="nms/EfficientNMS_TRT", score_threshold=0.5)
    )
    model.graph.node.append(helper.make_node("Identity", ["nmsed"], ["after"], name="after_nms"))
    del model.graph.output[:]
    model.graph.output.extend(
        [
            helper.make_tensor_value_info("num", TensorProto.INT32, [-1, 1]),
            helper.make_tensor_value_info("after", TensorProto.FLOAT, [-1, 10, 4]),
        ]
    )
    onnx.save(model, str(tmp_path / "head.onnx"))
    result = calibrate_onnx(tmp_path / "head.onnx", photo_jpegs[:8], SPEC, "minmax")
    assert "y" in result.amax and "nmsed" not in result.amax and "after" not in result.amax
    report = write_qdq_onnx(tmp_path / "head.onnx", tmp_path / "head_int8.onnx", result.cache())
    qdq = onnx.load(str(tmp_path / "head_int8.onnx"))
    assert [n.op_type for n in qdq.graph.node][-2:] == ["EfficientNMS_TRT", "Identity"]
    assert len(report.quantized) == 4
