"""Tiny ONNX graphs made in the test, and helpers for the engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtdeploy.deploy_card import DeployCard, InputSpec, OutputSpec, Preprocess, card_path_for
from trtdeploy.engine.backend import Backend
from trtdeploy.engine.capabilities import capabilities_for
from trtdeploy.engine.machine import load_module


def _save(nodes, inputs, outputs, initializers, path: Path, opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def conv_model(
    path: Path,
    *,
    batch: int | str = "N",
    channels: int = 3,
    width: int = 16,
    size: int = 16,
    layers: int = 2,
    input_name: str = "images",
    seed: int = 0,
) -> Path:
    """Conv -> Relu -> ... -> Conv; ``width`` output channels; batch static (int) or dynamic (str)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    current, cin = input_name, channels
    for index in range(layers):
        weight = rng.standard_normal((width, cin, 3, 3)).astype(np.float32) * 0.1
        bias = rng.standard_normal(width).astype(np.float32) * 0.1
        inits += [
            numpy_helper.from_array(weight, f"w{index}"),
            numpy_helper.from_array(bias, f"b{index}"),
        ]
        out = f"conv{index}_out"
        nodes.append(
            helper.make_node(
                "Conv",
                [current, f"w{index}", f"b{index}"],
                [out],
                pads=[1, 1, 1, 1],
                name=f"conv{index}",
            )
        )
        current, cin = out, width
        if index < layers - 1:
            nodes.append(helper.make_node("Relu", [current], [f"relu{index}_out"], name=f"relu{index}"))
            current = f"relu{index}_out"
    nodes.append(helper.make_node("Sigmoid", [current], ["scores"], name="sigmoid"))
    inp = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, channels, size, size])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, width, size, size])
    return _save(nodes, [inp], [out], inits, path)


def with_extra_node(base: Path, path: Path, op_type: str, **attrs) -> Path:
    """Append a node of ``op_type`` (e.g. a plugin) reading the model output; output kept too."""
    model = onnx.load(str(base))
    node = helper.make_node(op_type, ["scores"], ["extra"], name=f"my_{op_type.lower()}", **attrs)
    model.graph.node.append(node)
    model.graph.output.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, None))
    onnx.save(model, str(path))
    return path


def nms_model(path: Path) -> Path:
    """boxes [1,8,4], scores [1,1,8] -> ONNX NonMaxSuppression."""
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 8, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 8])
    out = helper.make_tensor_value_info("selected", TensorProto.INT64, [-1, 3])
    inits = [
        numpy_helper.from_array(np.array([4], np.int64), "max_out"),
        numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
        numpy_helper.from_array(np.array([0.1], np.float32), "score_thr"),
    ]
    node = helper.make_node(
        "NonMaxSuppression",
        ["boxes", "scores", "max_out", "iou", "score_thr"],
        ["selected"],
        name="nms",
    )
    return _save([node], [boxes, scores], [out], inits, path)


def qdq_conv_model(path: Path, batch: int = 1, channels: int = 3, width: int = 16, size: int = 16) -> Path:
    """Explicitly quantized Conv: Q/DQ on the input and per-channel weights, float32 I/O."""
    rng = np.random.default_rng(1)
    weight = rng.integers(-127, 128, size=(width, channels, 3, 3)).astype(np.int8)
    w_scale = (rng.random(width).astype(np.float32) + 0.5) * 0.01
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "x_zero"),
        numpy_helper.from_array(weight, "w_q"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(width, np.int8), "w_zero"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["images", "x_scale", "x_zero"], ["x_q"], name="q_in"),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_dq"], axis=0, name="dq_w"),
        helper.make_node("Conv", ["x_dq", "w_dq"], ["scores"], pads=[1, 1, 1, 1], name="conv"),
    ]
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, channels, size, size])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, width, size, size])
    return _save(nodes, [inp], [out], inits, path, opset=17)


def write_card(onnx_path: Path, *, name: str = "images", shape=(-1, 3, 16, 16)) -> DeployCard:
    card = DeployCard(
        input=InputSpec(name=name, shape=list(shape), layout="NCHW"),
        preprocess=Preprocess(offsets=[0.0, 0.0, 0.0]),
        output=OutputSpec(nms="none", layout="raw", names=["scores"], num_classes=2),
        labels=["a", "b"],
    )
    card.save(card_path_for(onnx_path))
    return card


def rtx_backend() -> Backend:
    module = load_module("tensorrt_rtx")
    if module is None:
        pytest.skip("tensorrt_rtx is not installed (pip install 'trtdeploy[rtx]')")
    return Backend(module, capabilities_for("tensorrt_rtx", module.__version__))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
