"""The standard ONNX NonMaxSuppression op rewritten into other standard ops, ONNX Runtime's result.

Meant for backends that parse NonMaxSuppression but cannot build it (TensorRT-RTX:
``Capabilities.nms_layer``). Measured with tensorrt_rtx 1.7.1.116: the rewritten graph does not
build there either, because its variable-length output needs NonZero, which RTX's ONNX parser
imports as a ``NonZero`` plugin its registry does not have (RTX registers only
MyelinWeightsTransformPlugin and ROIAlign_TRT); a data-dependent TopK K, Slice end or Loop trip
count is refused by its shape analyser too. So build-engine does not apply it by itself (the
preflight check still refuses NonMaxSuppression on RTX); ``rewrite_plugins(model,
only={"NonMaxSuppression"})`` applies it. Semantics read from the ONNX operator spec and its
reference implementation, a port of ONNX Runtime's CPU kernel (onnx 1.x installed package,
onnx/reference/ops/op_non_max_suppression.py):

* per batch and class, a box is a candidate when ``score > score_threshold`` (strict, l.226;
  every box when the input is absent), visited by descending score, equal scores by the lower box
  index first (``BoxInfo.__lt__`` l.119-122, popped from the end): ONNX TopK's tie order;
* a candidate is selected unless an already selected box of its class suppresses it, until
  ``max_output_boxes_per_class`` are selected (l.240-266; absent or <= 0 selects nothing, l.137);
* suppression (``suppress_by_iou`` l.44-111): corners min/max ordered (center_point_box 0: boxes
  [y1, x1, y2, x2]; 1: [xc, yc, w, h] with ``c -/+ size / 2``), no suppression when the
  intersection is empty on an axis (``max <= min``), when the intersection area, either area or
  the union is <= 0; otherwise ``inter / (area1 + area2 - inter) > iou_threshold`` (strict);
* selected_indices int64 [K, 3] = (batch, class, box), batch-major, then class, then selection
  order.

Built as: TopK over the masked scores of every class (k = N), an ONNX Loop doing the greedy pass
over the k candidates (kept[j] cleared for later j the kept candidate i suppresses), CumSum for
the per-class limit, NonZero over [B, C, k] (row-major: ONNX's output order) and GatherND back to
the box index. The number of boxes N must be static and at most TensorRT's TopK limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.errors import UnsupportedModelError
from trtdeploy.rewrites import Rewrite
from trtdeploy.rewrites._nms_core import MIN_OPSET, Ops, check_top_k

OP_TYPE = "NonMaxSuppression"


def _optional(node: gs.Node, index: int) -> Any | None:
    """Input ``index`` of ``node``, None when absent (missing or the empty name)."""
    if index >= len(node.inputs) or not node.inputs[index].name:
        return None
    return node.inputs[index]


def _scalar(op: Ops, x: Any, dtype: int) -> Any:
    """A [] or [1] input as a scalar of ONNX type ``dtype``."""
    return op("Cast", [op("Reshape", [x, op.const([], np.int64, "scalar")])], to=dtype)


def _static_dims(node: gs.Node) -> tuple[int, int]:
    """(classes C, boxes N) from the inputs' static shapes."""
    boxes, scores = node.inputs[0], node.inputs[1]
    shape, bshape = scores.shape, boxes.shape
    if shape is None or len(shape) != 3 or not all(isinstance(d, int) for d in shape[1:]):
        raise UnsupportedModelError(
            f"{OP_TYPE} node {node.name!r}: the scores input {scores.name} must be [B, C, N] with static C and N, "
            f"got shape {shape}; export with fixed input sizes"
        )
    num_classes, num_boxes = int(shape[1]), int(shape[2])
    if bshape is None or len(bshape) != 3 or bshape[2] != 4 or bshape[1] != num_boxes:
        raise UnsupportedModelError(
            f"{OP_TYPE} node {node.name!r}: the boxes input {boxes.name} must be [B, {num_boxes}, 4], got shape {bshape}"
        )
    return num_classes, num_boxes


def _extents(op: Ops, boxes: Any, center_point_box: int) -> list[Any]:
    """(x_min, x_max, y_min, y_max) of [..., 4] boxes, the reference's float32 operations."""
    a0, a1, a2, a3 = (op.coord(boxes, i) for i in range(4))
    if center_point_box == 0:  # [y1, x1, y2, x2]
        return [op("Min", [a1, a3]), op("Max", [a1, a3]), op("Min", [a0, a2]), op("Max", [a0, a2])]
    two = op.const(2.0)
    half_w, half_h = op("Div", [a2, two]), op("Div", [a3, two])
    return [op("Sub", [a0, half_w]), op("Add", [a0, half_w]), op("Sub", [a1, half_h]), op("Add", [a1, half_h])]


def _suppressed(op: Ops, ref: list[Any], ref_area: Any, others: list[Any], areas: Any, iou_threshold: Any) -> Any:
    """suppress_by_iou(ref, other) as a bool tensor (ref broadcast against all others)."""
    zero = op.const(0.0)
    ix_min, ix_max = op("Max", [ref[0], others[0]]), op("Min", [ref[1], others[1]])
    iy_min, iy_max = op("Max", [ref[2], others[2]]), op("Min", [ref[3], others[3]])
    inter = op("Mul", [op("Sub", [ix_max, ix_min]), op("Sub", [iy_max, iy_min])])
    union = op("Sub", [op("Add", [ref_area, areas]), inter])
    checks = [
        op("Greater", [ix_max, ix_min]),
        op("Greater", [iy_max, iy_min]),
        op("Greater", [inter, zero]),
        op("Greater", [ref_area, zero]),
        op("Greater", [areas, zero]),
        op("Greater", [union, zero]),
        op("Greater", [op("Div", [inter, union]), iou_threshold]),  # Div on the discarded side is harmless
    ]
    hit = checks[0]
    for check in checks[1:]:
        hit = op("And", [hit, check])
    return hit


def _greedy(op: Ops, extents: list[Any], kept0: Any, k: int, iou_threshold: Any) -> Any:
    """ONNX Loop over candidates i = 0..k-1 of every (batch, class): a kept i clears every later j
    it suppresses. A candidate's verdict is final when its turn comes, as in the reference."""
    areas = op("Mul", [op("Sub", [extents[1], extents[0]]), op("Sub", [extents[3], extents[2]])])
    positions = op.const(np.arange(k), np.int64, "positions")
    prefix = f"{op.prefix}/greedy"
    body = gs.Graph(opset=op.opset, name=f"{prefix}_body")
    inner = Ops(body, prefix)
    i = gs.Variable(f"{prefix}/i", dtype=np.int64, shape=[])
    cond_in = gs.Variable(f"{prefix}/cond_in", dtype=np.bool_, shape=[])
    kept_in = gs.Variable(f"{prefix}/kept_in", dtype=np.float32)
    body.inputs = [i, cond_in, kept_in]

    def at_i(x: Any) -> Any:  # x[:, :, i] as [B, C, 1]
        return inner.unsqueeze(inner("Gather", [x, i], axis=2), [2])

    hit = _suppressed(inner, [at_i(e) for e in extents], at_i(areas), extents, areas, iou_threshold)
    hit = inner("And", [hit, inner("Greater", [positions, i])])
    clear = inner("Mul", [inner("Cast", [hit], to=1), at_i(kept_in)])
    kept_out = inner("Mul", [kept_in, inner("Sub", [inner.const(1.0), clear])])
    cond_out = inner("Identity", [cond_in])
    cond_out.dtype, cond_out.shape = np.bool_, []
    kept_out.dtype = np.float32
    body.outputs = [cond_out, kept_out]
    return op("Loop", [op.const(k, np.int64, "trip_count"), op.const(True, np.bool_, "cond"), kept0], body=body)


def _apply(graph: gs.Graph, node: gs.Node) -> None:
    if len(node.inputs) < 2 or len(node.outputs) != 1:
        raise UnsupportedModelError(f"{OP_TYPE} node {node.name!r}: needs inputs (boxes, scores, ...) and one output")
    center = int(node.attrs.get("center_point_box", 0))
    if center not in (0, 1):
        raise UnsupportedModelError(f"{OP_TYPE} node {node.name!r}: center_point_box {center} is not 0 or 1")
    num_classes, k = _static_dims(node)
    check_top_k(OP_TYPE, node.name, k)
    op = Ops(graph, f"rewrite/{node.name or OP_TYPE}")
    boxes, scores = node.inputs[0], node.inputs[1]
    max_in, iou_in, score_in = (_optional(node, i) for i in (2, 3, 4))
    max_out = op.const(0.0) if max_in is None else _scalar(op, max_in, 1)  # counts compared in float32
    iou_thr = op.const(0.0) if iou_in is None else _scalar(op, iou_in, 1)
    if score_in is None:
        valid = op("Equal", [scores, scores])  # every box but NaN scores (no place in a descending order)
    else:
        valid = op("Greater", [scores, _scalar(op, score_in, 1)])
    masked = op("Where", [valid, scores, op.const(-np.inf)])
    _, idx = op.topk(masked, k, axis=2)  # [B, C, k]: descending, ties by the lower box index
    kept0 = op("GatherElements", [op("Cast", [valid], to=1), idx], axis=2)
    every_class = op("Expand", [op.unsqueeze(boxes, [1]), op.const([1, num_classes, 1, 1], np.int64, "shape")])
    idx4 = op("Expand", [op.unsqueeze(idx, [3]), op.const([1, 1, 1, 4], np.int64, "shape")])
    cand = op("GatherElements", [every_class, idx4], axis=2)  # [B, C, k, 4]
    kept = _greedy(op, _extents(op, cand, center), kept0, k, iou_thr)
    rank = op("CumSum", [kept, op.const(2, np.int64, "axis")])  # 1-based selection order per class
    within = op("Cast", [op("Not", [op("Greater", [rank, max_out])])], to=1)
    where = op("Transpose", [op("NonZero", [op("Mul", [kept, within])])], perm=[1, 0])  # [K, 3] (b, c, r)
    box = op("GatherND", [idx, where])  # [K]
    b, c = (op("Gather", [where, op.const(j, np.int64, "column")], axis=1) for j in (0, 1))
    out = node.outputs[0]
    node.outputs.clear()
    node.inputs.clear()
    op.into("Concat", [op.unsqueeze(t, [1]) for t in (b, c, box)], out, "selected_indices", axis=1)
    out.dtype = np.int64
    if out.shape is None or len(out.shape) != 2:
        out.shape = [f"{node.name or OP_TYPE}_selected", 3]


_DIFFERENCES = (
    "none measured under ONNX Runtime: the same selected_indices as its NonMaxSuppression kernel on random, "
    "tied and threshold-edge inputs (tests/nms/test_non_max_suppression_rewrite.py); NaN scores are never "
    "selected; needs static box and class counts, at most 3840 boxes (TensorRT's TopK); the output's "
    "variable length needs NonZero, which TensorRT-RTX cannot build"
)
_SOURCE = "ONNX operator spec NonMaxSuppression; onnx/reference/ops/op_non_max_suppression.py (port of ONNX Runtime's CPU kernel)"

REWRITES = [Rewrite(OP_TYPE, _apply, MIN_OPSET, _DIFFERENCES, _SOURCE, standard=True)]
