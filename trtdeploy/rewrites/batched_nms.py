"""BatchedNMS_TRT / BatchedNMSDynamic_TRT (TAO YOLOv3/v4/v4-tiny, EfficientDet-TAO legacy)
rewritten into standard ONNX ops with the same four outputs.

The plugin (NVIDIA/TensorRT release/10.16 plugin/batchedNMSPlugin/batchedNMSInference.cu
l.26-140) runs the same per-class sort, NMS and per-image sort kernels as NMS_TRT on the boxes
as given (no decoding, no sigmoid: ``confSigmoid`` is false for these creators), with
``caffeSemantics`` from the node (l.120-122). ``_nms_core`` builds those; the outputs
(gatherNMSOutputs.cu; ``trtdeploy.nms.reference.batched_nms``) are num_detections int32
[B, 1], nmsed_boxes [B, K, 4] (clamped to [0, 1] when ``clipBoxes``), nmsed_scores [B, K] and
nmsed_classes float [B, K]; padding rows have box 0, score 0, class -1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy import plugins
from trtdeploy.errors import UnsupportedModelError
from trtdeploy.nms.reference import BATCHED_NMS_MAX_TOP_K
from trtdeploy.rewrites import Rewrite
from trtdeploy.rewrites._nms_core import (
    MIN_OPSET,
    IouRule,
    Merged,
    Ops,
    check_threshold,
    check_top_k,
    merge_per_image,
    per_class_nms,
    write_detections,
)


def _num_boxes(scores: Any, node: gs.Node) -> int:
    shape = scores.shape
    if shape is None or len(shape) < 3 or not isinstance(shape[1], int):
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: the scores input {scores.name} needs a static number of boxes "
            f"(dim 1), got shape {shape}; export with fixed input sizes"
        )
    return int(shape[1])


def _apply(graph: gs.Graph, node: gs.Node) -> None:
    plugin = plugins.get(node.op)
    assert plugin is not None
    a = plugin.resolved_attrs(dict(node.attrs), node.name)
    boxes_in, scores_in = node.inputs[0], node.inputs[1]
    num_classes, top_k, keep_top_k = int(a["numClasses"]), int(a["topK"]), int(a["keepTopK"])
    num_boxes = _num_boxes(scores_in, node)
    # the reference refuses what the plugin mishandles (trtdeploy/nms/reference.py batched_nms)
    if top_k > BATCHED_NMS_MAX_TOP_K or top_k > num_boxes or keep_top_k > top_k:
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: topK {top_k}, keepTopK {keep_top_k} for {num_boxes} boxes: the plugin "
            f"needs keepTopK <= topK <= min(boxes, {BATCHED_NMS_MAX_TOP_K}); fix the export"
        )
    check_top_k(node.op, node.name, top_k)
    check_threshold(node.op, node.name, float(a["scoreThreshold"]))
    share = bool(a["shareLocation"])
    op = Ops(graph, f"rewrite/{node.name or node.op}")

    boxes = op("Transpose", [op.reshape(boxes_in, [0, num_boxes, 1 if share else num_classes, 4])], perm=[0, 2, 1, 3])
    scores = op("Transpose", [op.reshape(scores_in, [0, num_boxes, num_classes])], perm=[0, 2, 1])  # [B, C, A]
    valid = op("Greater", [scores, op.const(np.float32(a["scoreThreshold"]))])
    background = int(a["backgroundLabelId"])
    if 0 <= background < num_classes:
        not_bg = np.ones((1, num_classes, 1), dtype=bool)
        not_bg[0, background, 0] = False
        valid = op("And", [valid, op.const(not_bg, np.bool_, "not_background")])
    rule = IouRule(normalized=bool(a["isNormalized"]), caffe_semantics=bool(a["caffeSemantics"]))
    kept_scores, kept, cand = per_class_nms(
        op, boxes, scores, valid, num_classes=num_classes, k=top_k, iou_threshold=float(a["iouThreshold"]), rule=rule
    )
    m = merge_per_image(op, kept_scores, kept, cand, num_classes=num_classes, k=top_k, keep_top_k=keep_top_k)

    box = op("Clip", [m.boxes, op.const(0.0), op.const(1.0)]) if a["clipBoxes"] else m.boxes
    num, out_boxes = node.outputs[0], node.outputs[1]
    batch = num.shape[0] if num.shape else (out_boxes.shape[0] if out_boxes.shape else None)
    # scores are already 0 where not valid; classes -1 there (gatherNMSOutputs.cu)
    selection = Merged(m.valid, m.scores, m.classes, box)
    write_detections(op, node, selection, keep=keep_top_k, batch=batch, class_dtype=np.float32, class_pad=-1.0)


_DIFFERENCES = (
    "equal scores are ordered by box index within a class and by class across classes, as the plugin's "
    "stable radix sorts (TensorRT's TopK on a GPU may order exact ties otherwise); scoreBits (FP16 sort "
    "precision) is not modelled: FP16 engines of the plugin may rank near-equal scores differently; "
    "a negative scoreThreshold is refused; otherwise float32 results are identical (measured: tests/tao)"
)
_SOURCE = "NVIDIA/TensorRT release/10.16 plugin/batchedNMSPlugin (trtdeploy/nms/reference.py batched_nms)"

REWRITES = [
    Rewrite("BatchedNMS_TRT", _apply, MIN_OPSET, _DIFFERENCES, _SOURCE),
    Rewrite("BatchedNMSDynamic_TRT", _apply, MIN_OPSET, _DIFFERENCES, _SOURCE),
]
