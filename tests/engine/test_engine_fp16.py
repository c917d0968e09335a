"""FP16 conversion for strongly typed backends, checked with ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.engine.conftest import conv_model
from trtdeploy.engine.fp16 import convert_to_fp16, has_qdq
from trtdeploy.errors import GraphError


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _resize_topk_model() -> onnx.ModelProto:
    """Conv -> Resize (float32-only scales input) -> Sigmoid (an output) -> ReduceMax -> TopK."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.1, "w"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([5], np.int64), "k"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Resize", ["c", "", "scales"], ["r"], mode="nearest", name="resize"),
        helper.make_node("Sigmoid", ["r"], ["s"], name="sig"),
        helper.make_node("ReduceMax", ["s"], ["m"], keepdims=0, axes=[1], name="rmax"),
        helper.make_node("Flatten", ["m"], ["flat"], axis=1, name="flatten"),
        helper.make_node("TopK", ["flat", "k"], ["top_v", "top_i"], name="topk"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [
            helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 8, 16, 16]),
            helper.make_tensor_value_info("top_v", TensorProto.FLOAT, [1, 5]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_fp16_keeps_float32_io_and_schema_bound_inputs():
    model = _resize_topk_model()
    converted, report = convert_to_fp16(model)
    elem = {v.name: v.type.tensor_type.elem_type for v in list(converted.graph.input) + list(converted.graph.output)}
    assert elem == {"x": TensorProto.FLOAT, "s": TensorProto.FLOAT, "top_v": TensorProto.FLOAT}
    inits = {i.name: i.data_type for i in converted.graph.initializer}
    assert inits["w"] == TensorProto.FLOAT16
    assert inits["scales"] == TensorProto.FLOAT  # Resize scales are tensor(float) in every opset
    assert report.kept_nodes == ["topk"] and report.initializers_converted == 1
    by_name = {n.name: n for n in converted.graph.node}
    assert by_name["topk"].input[0].endswith("__to_fp32")  # TopK reads float32 scores
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    ref, got = _run(model, {"x": x}), _run(converted, {"x": x})
    for a, b in zip(ref, got, strict=True):
        assert b.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=2e-3)


def test_named_nodes_stay_float32_and_unknown_names_refused(tmp_path):
    model = onnx.load(str(conv_model(tmp_path / "m.onnx", layers=3)))
    converted, report = convert_to_fp16(model, keep_nodes=["conv2"])
    assert "conv2" in report.kept_nodes
    types = {i.name: i.data_type for i in converted.graph.initializer}
    assert types["w2"] == TensorProto.FLOAT and types["w0"] == TensorProto.FLOAT16
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_run(model, {"images": x})[0], _run(converted, {"images": x})[0], atol=2e-3)
    with pytest.raises(GraphError, match="not in the ONNX: \\['nope'\\]"):
        convert_to_fp16(model, keep_nodes=["nope"])


def test_large_weights_are_clipped_to_the_fp16_range(tmp_path):
    model = onnx.load(str(conv_model(tmp_path / "m.onnx", layers=1)))
    weight = model.graph.initializer[0]
    array = numpy_helper.to_array(weight).copy()
    array.flat[0] = 1e6
    weight.CopyFrom(numpy_helper.from_array(array, weight.name))
    converted, report = convert_to_fp16(model)
    assert report.clipped_values == 1
    assert np.isfinite(numpy_helper.to_array(converted.graph.initializer[0])).all()


def test_has_qdq(tmp_path):
    from tests.engine.conftest import qdq_conv_model

    assert has_qdq(onnx.load(str(qdq_conv_model(tmp_path / "q.onnx"))))
    assert not has_qdq(onnx.load(str(conv_model(tmp_path / "f.onnx"))))
