"""A tiny ONNX "detector" with fixed outputs and its deploy card, made in the test.

Its outputs (tfod layout: num_detections, detection_boxes normalised y1,x1,y2,x2 on the network
input, detection_scores, detection_classes int32) do not depend on the pixels, so a test knows
exactly which boxes the model reports and can compute by hand where they land on the original
image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trtdeploy.deploy_card import DeployCard, InputSpec, NmsParams, OutputSpec, Preprocess, card_path_for

NAMES = ["num_detections", "detection_boxes", "detection_scores", "detection_classes"]


def write_tiny_detector(
    path: Path,
    boxes: list[list[float]],
    scores: list[float],
    classes: list[int],
    labels: list[str],
    size: tuple[int, int] = (64, 64),  # height, width
    resize: str = "stretch",
    pad_corner: str = "center",
    max_detections: int = 8,
    batch: int = 1,
) -> Path:
    """Write ``path`` (.onnx) and its deploy card; returns ``path``."""
    n = len(scores)
    pad = max_detections - n
    h, w = size
    box_values = np.array(boxes + [[0, 0, 0, 0]] * pad, np.float32)[None].repeat(batch, 0)
    consts = {
        "c_num": np.full((batch, 1), n, np.int32),
        "c_boxes": box_values,
        "c_scores": np.array(scores + [0.0] * pad, np.float32)[None].repeat(batch, 0),
        "c_classes": np.array(classes + [0] * pad, np.int32)[None].repeat(batch, 0),
    }
    nodes = [
        # a dependency on the input, so the graph is a function of it (ONNX Runtime runs it)
        helper.make_node("ReduceMax", ["input_tensor"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Reshape", ["z", "shape1"], ["z_b"]),
        helper.make_node("Add", ["c_scores", "z_b"], ["detection_scores"]),
        helper.make_node("Identity", ["c_num"], ["num_detections"]),
        helper.make_node("Identity", ["c_boxes"], ["detection_boxes"]),
        helper.make_node("Identity", ["c_classes"], ["detection_classes"]),
    ]
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    inits += [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array([1, 1], np.int64), "shape1")]
    graph = helper.make_graph(
        nodes, "tiny_detector",
        [helper.make_tensor_value_info("input_tensor", TensorProto.FLOAT, [batch, h, w, 3])],
        [
            helper.make_tensor_value_info("num_detections", TensorProto.INT32, [batch, 1]),
            helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [batch, max_detections, 4]),
            helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [batch, max_detections]),
            helper.make_tensor_value_info("detection_classes", TensorProto.INT32, [batch, max_detections]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    card = DeployCard(
        input=InputSpec(name="input_tensor", shape=[batch, h, w, 3], layout="NHWC"),
        preprocess=Preprocess(resize=resize, pad_corner=pad_corner),
        output=OutputSpec(nms="efficient", layout="tfod", names=list(NAMES), num_classes=len(labels),
                          max_detections=max_detections),
        labels=list(labels),
        nms=NmsParams(score_threshold=0.01, max_detections=max_detections),
    )
    card.save(card_path_for(path))
    return path
