"""Shared helpers: reference caches, tiny ONNX conv nets built in the test, detection matching."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data import reference_path


def reference_cache(name: str) -> Path:
    """A cache file under reference/calibration_caches (skip or fail when absent)."""
    return reference_path("calibration_caches", name)


def conv_net(path: Path, *, size: int = 32, batch: int | str = "N", seed: int = 0, with_decode: bool = False) -> Path:
    """A small float conv net: Conv-Relu-Conv(stride 2)-Relu-depthwise Conv-GAP-MatMul, optionally
    followed by a box-decoding-like float tail (Sigmoid, Mul by constants, Exp)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = {
        "W1": rng.normal(0, 0.25, (8, 3, 3, 3)),
        "b1": rng.normal(0, 0.1, 8),
        "W2": rng.normal(0, 0.2, (16, 8, 3, 3)),
        "b2": rng.normal(0, 0.1, 16),
        "Wd": rng.normal(0, 0.3, (16, 1, 3, 3)),
        "Wf": rng.normal(0, 0.2, (16, 12)),
    }
    nodes = [
        helper.make_node("Conv", ["x", "W1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "W2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "Wd"], ["c3"], pads=[1, 1, 1, 1], group=16, name="dwconv"),
        helper.make_node("GlobalAveragePool", ["c3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "Wf"], ["y"], name="fc"),
    ]
    output = "y"
    if with_decode:
        inits["anchor_scale"] = rng.uniform(0.5, 1.5, 12)
        nodes += [
            helper.make_node("Sigmoid", ["y"], ["s"], name="decode_sigmoid"),
            helper.make_node("Mul", ["s", "anchor_scale"], ["m"], name="decode_mul"),
            helper.make_node("Exp", ["m"], ["boxes"], name="decode_exp"),
        ]
        output = "boxes"
    graph = helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, 12])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one [y1, x1, y2, x2] box with many."""
    y1, x1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    y2, x2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(y2 - y1, 0, None) * np.clip(x2 - x1, 0, None)

    def area(b: np.ndarray) -> np.ndarray:
        return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)

    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def detections(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.5, iou: float = 0.6, top: int = 100) -> list:
    """Plain per-class greedy NMS on one image: [(score, class, box)], best first."""
    found = []
    for cls in range(scores.shape[1]):
        order = np.flatnonzero(scores[:, cls] > threshold)
        order = order[np.argsort(-scores[order, cls], kind="stable")]
        while len(order):
            best, order = order[0], order[1:]
            found.append((float(scores[best, cls]), cls, boxes[best]))
            if len(order):
                order = order[box_iou(boxes[best], boxes[order]) < iou]
    found.sort(key=lambda d: -d[0])
    return found[:top]


def matched(reference: list, candidate: list, min_iou: float = 0.5) -> int:
    """How many reference detections have a same-class candidate with IoU >= min_iou (one-to-one)."""
    used: set[int] = set()
    count = 0
    for _, cls, box in reference:
        options = [j for j, d in enumerate(candidate) if d[1] == cls and j not in used]
        if not options:
            continue
        ious = box_iou(box, np.array([candidate[j][2] for j in options]))
        k = int(np.argmax(ious))
        if ious[k] >= min_iou:
            used.add(options[k])
            count += 1
    return count
