"""NMS heads on per-class boxes [B,A,C,4] (two-stage detectors), checked against the slow oracle.

EfficientNMS_TRT takes boxes [B,A,C,4] when dim 2 equals the number of classes
(NVIDIA/TensorRT main, plugin/efficientNMSPlugin/efficientNMSPlugin.cpp l. 324-334), and
BatchedNMSDynamic_TRT with shareLocation 0 (release/10.13, plugin/batchedNMSPlugin/
batchedNMSPlugin.cpp l. 394-397). Oracle: per-class NMS over per-class boxes is shared-box NMS
over A*C boxes where box (a, c) scores only in class c (the others are 0, below the threshold),
which the slow oracle of tests/nms/slow_nms.py computes with no per-class code at all.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from tests.nms.slow_nms import slow_batched_nms, slow_efficient_nms
from trtdeploy.deploy_card import NmsParams
from trtdeploy.errors import GraphError, UsageError
from trtdeploy.nms import add_nms_head, make_session

PARAMS = NmsParams(score_threshold=0.4, iou_threshold=0.45, max_detections=10)
LAYOUT = {"efficient": "tfod", "onnx": "tfod", "batched": "batched", "none": "raw"}


def per_class_graph(kind, batch, anchors, classes, box_classes=None, ds_parser=None):
    graph = gs.Graph(opset=17)
    boxes = gs.Variable("in_boxes", np.float32, ["batch", anchors, box_classes or classes, 4])
    scores = gs.Variable("in_scores", np.float32, ["batch", anchors, classes])
    graph.inputs = [boxes, scores]
    spec = add_nms_head(graph, boxes, scores, kind, PARAMS, LAYOUT[kind], (300, 400), ds_parser=ds_parser)
    graph.cleanup().toposort()
    return gs.export_onnx(graph), spec


def inputs(seed, batch=3, anchors=30, classes=3):
    rng = np.random.default_rng(seed)
    y1x1 = rng.uniform(0, 0.7, (batch, anchors, classes, 2))
    size = rng.uniform(0.05, 0.3, (batch, anchors, classes, 2))
    boxes = np.concatenate([y1x1, y1x1 + size], axis=-1).astype(np.float32)
    # clusters: anchor a and a+1 overlap strongly in every class
    boxes[:, 1::2] = boxes[:, 0::2] + 0.01
    scores = rng.uniform(0, 1, (batch, anchors, classes)).astype(np.float32)
    return boxes, scores


def flattened(boxes, scores):
    """[B,A,C,4] + [B,A,C] -> shared boxes [B,A*C,4] + scores [B,A*C,C] one-hot by class."""
    batch, anchors, classes, _ = boxes.shape
    flat_boxes = boxes.reshape(batch, anchors * classes, 4)
    flat_scores = np.zeros((batch, anchors * classes, classes), np.float32)
    for c in range(classes):
        flat_scores[:, c::classes, c] = scores[:, :, c]
    return flat_boxes, flat_scores


def run(model, boxes, scores):
    return make_session(model).run(None, {"in_boxes": boxes, "in_scores": scores})


def assert_same(actual, expected):
    for got, want, what in zip(actual, expected, ("num", "boxes", "scores", "classes"), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape, what
        np.testing.assert_array_equal(got, want, err_msg=what)


@pytest.mark.parametrize("seed", [0, 1])
def test_efficient_head_on_per_class_boxes_matches_oracle(seed):
    boxes, scores = inputs(seed)
    model, spec = per_class_graph("efficient", 3, 30, 3)
    node = next(n for n in model.graph.node if n.op_type == "EfficientNMS_TRT")
    assert list(node.input)[0] == "in_boxes"  # the plugin takes the 4-D boxes as they are
    expected = slow_efficient_nms(*flattened(boxes, scores), 0.4, 0.45, 10)
    assert_same(run(model, boxes, scores), expected)
    assert spec.layout == "tfod" and spec.names[0] == "num_detections"


def test_per_class_boxes_differ_from_shared_boxes():
    """The head really reads each class's own box: class 1's box is elsewhere than class 0's."""
    boxes = np.zeros((1, 1, 2, 4), np.float32)
    boxes[0, 0, 0] = [0.1, 0.1, 0.2, 0.2]
    boxes[0, 0, 1] = [0.5, 0.6, 0.9, 0.8]
    scores = np.array([[[0.9, 0.8]]], np.float32)
    model, _ = per_class_graph("efficient", 1, 1, 2)
    num, out_boxes, _, classes = run(model, boxes, scores)
    assert num[0, 0] == 2 and list(classes[0, :2]) == [0, 1]
    np.testing.assert_array_equal(out_boxes[0, :2], boxes[0, 0])


def test_batched_head_on_per_class_boxes_uses_share_location_0():
    boxes, scores = inputs(3, anchors=20)
    model, spec = per_class_graph("batched", 3, 20, 3)
    node = next(n for n in model.graph.node if n.op_type == "BatchedNMSDynamic_TRT")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["shareLocation"] == 0 and attrs["topK"] == 20
    expected = slow_batched_nms(*flattened(boxes, scores), 0.4, 0.45, top_k=20, keep_top_k=10)
    assert_same(run(model, boxes, scores), expected)
    assert spec.layout == "batched"


def test_batched_per_class_boxes_for_batchednms_are_x1y1x2y2():
    boxes, scores = inputs(4, anchors=20)
    model, spec = per_class_graph("batched", 3, 20, 3, ds_parser="batchednms")
    num, out_boxes, _, _ = run(model, boxes, scores)
    expected = slow_batched_nms(*flattened(boxes, scores), 0.4, 0.45, top_k=20, keep_top_k=10)
    np.testing.assert_array_equal(out_boxes, expected[1][..., [1, 0, 3, 2]])
    assert spec.box_format == "x1y1x2y2" and spec.ds_parser == "batchednms"


def test_none_head_keeps_per_class_boxes_as_the_raw_per_class_contract():
    boxes, scores = inputs(5, batch=2, anchors=8, classes=4)
    model, spec = per_class_graph("none", 2, 8, 4)
    assert spec.layout == "raw_per_class" and spec.names == ["boxes", "scores"]
    assert [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == ["batch", 8, 4, 4]
    out_boxes, out_scores = run(model, boxes, scores)
    np.testing.assert_array_equal(out_boxes, boxes)
    np.testing.assert_array_equal(out_scores, scores)


def test_onnx_head_refuses_class_agnostic_per_class_boxes():
    # per-class boxes are taken by the onnx head since issue 14 (tests/tfod/test_faster_rcnn_passes.py
    # compares it with EfficientNMS's reference); class-agnostic NMS over them is refused
    from dataclasses import replace

    graph = gs.Graph(opset=17)
    boxes = gs.Variable("in_boxes", np.float32, ["batch", 10, 3, 4])
    scores = gs.Variable("in_scores", np.float32, ["batch", 10, 3])
    with pytest.raises(UsageError, match=r"class-agnostic NMS over per-class boxes"):
        add_nms_head(graph, boxes, scores, "onnx", replace(PARAMS, class_agnostic=True), "tfod", (300, 400))


def test_per_class_boxes_must_match_the_class_count():
    with pytest.raises(GraphError, match="one box per class"):
        per_class_graph("efficient", 1, 10, 3, box_classes=2)
