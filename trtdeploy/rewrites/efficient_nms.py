"""EfficientNMS_TRT (TAO 5 EfficientDet, trtdeploy's ``--nms efficient`` head) rewritten into
standard ONNX ops with the plugin's four outputs.

Semantics: ``trtdeploy.nms.reference.efficient_nms`` (the CPU reference), read from NVIDIA/TensorRT
release/10.16 plugin/efficientNMSPlugin:

* candidates are the (anchor, class) pairs whose score passes ``score >= score_threshold``
  (efficientNMSInference.cu l.414 ``gte_mp``; with ``score_activation`` the sigmoid of the score),
  ``background_class`` skipped; they are ranked by the raw score, descending, ties by the flat
  index ``anchor * C + class`` (the reference's order: ONNX TopK puts the lower index first);
* only the first 4096 ranked candidates take part (efficientNMSParameters.h l.43
  ``numSelectedBoxes = 4096``; TensorRT's TopK stops at K = 3840, so above that a second TopK
  over the scores left ranks the last 256 after ScatterElements has removed the first 3840);
* greedy NMS in rank order (one ONNX Loop, no NonMaxSuppression: TensorRT-RTX has no runner for
  it): a kept candidate suppresses every later one of its class (any class with
  ``class_agnostic``) with ``IoU >= iou_threshold`` (efficientNMSInference.cu l.330, inclusive);
  IoU on min/max-ordered corners, no +1, 0 when the intersection or the union is not positive
  (l.31-50 ``IOU``, efficientNMSInference.cuh l.188-201 BoxCorner ``area``);
* the first ``max_output_boxes`` kept, in rank order, zero padded: num_detections int32 [B, 1],
  detection_boxes [B, K, 4] (decoded, corners in the input's axis order, not reordered, not
  clipped), detection_scores [B, K] (sigmoid applied with ``score_activation``),
  detection_classes int32 [B, K].

Boxes [B, A, 4] (shared) or [B, A, C, 4] (per class); with the anchors input [1 or B, A, 4] the
boxes are deltas: box_coding 0 adds the anchor corners, box_coding 1 decodes centre-size
(efficientNMSInference.cuh l.230-234 ``decode``: ``c = d_c * anchor_size + anchor_c``,
``size = anchor_size * exp(d_size)``) and converts to corners (l.249-254, half sizes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy import plugins
from trtdeploy.errors import UnsupportedModelError
from trtdeploy.nms.reference import EFFICIENT_NMS_MAX_CANDIDATES
from trtdeploy.rewrites import Rewrite
from trtdeploy.rewrites._nms_core import (
    MIN_OPSET,
    TRT_TOPK_MAX,
    Merged,
    Ops,
    _sorted_corners,
    check_top_k,
    write_detections,
)


def _static_dims(node: gs.Node) -> tuple[int, int, bool]:
    """(anchors A, classes C, per-class boxes) from the inputs' static shapes."""
    boxes, scores = node.inputs[0], node.inputs[1]
    shape = scores.shape
    if shape is None or len(shape) != 3 or not all(isinstance(d, int) for d in shape[1:]):
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: the scores input {scores.name} must be [B, A, C] with static A and C, "
            f"got shape {shape}; export with fixed input sizes"
        )
    num_anchors, num_classes = int(shape[1]), int(shape[2])
    bshape = boxes.shape
    per_class = bshape is not None and len(bshape) == 4 and bshape[2] == num_classes and num_classes > 1
    if bshape is None or len(bshape) not in (3, 4) or bshape[-1] != 4 or bshape[1] != num_anchors:
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: the boxes input {boxes.name} must be [B, {num_anchors}, 4] or "
            f"[B, {num_anchors}, {num_classes}, 4], got shape {bshape}"
        )
    return num_anchors, num_classes, per_class


def _ge(op: Ops, a: Any, b: Any) -> Any:
    """a >= b (GreaterOrEqual is opset 12; Or of Greater and Equal is the same, NaN false)."""
    if op.opset >= 12:
        return op("GreaterOrEqual", [a, b])
    return op("Or", [op("Greater", [a, b]), op("Equal", [a, b])])


def _last(op: Ops, x: Any, start: int, stop: int) -> Any:
    """x[..., start:stop]."""
    consts = [op.const([v], np.int64, n) for v, n in ((start, "start"), (stop, "stop"), (-1, "axis"))]
    return op("Slice", [x, *consts])


def _sigmoid(op: Ops, x: Any) -> Any:
    """1 / (1 + exp(-x)) in float32, the reference's formula (not ONNX Sigmoid, whose kernels differ)."""
    one = op.const(1.0)
    return op("Div", [one, op("Add", [one, op("Exp", [op("Neg", [x])])])])


def _decode(op: Ops, boxes: Any, anchors: Any | None, box_coding: int) -> Any:
    """[B, A, P, 4] deltas or boxes -> corners, the reference's float32 operations in its order."""
    if anchors is not None:
        anc = op.unsqueeze(anchors, [2])  # [1 or B, A, 1, 4]
        if box_coding == 1:
            anc_c, anc_s = _last(op, anc, 0, 2), _last(op, anc, 2, 4)
            centre = op("Add", [op("Mul", [_last(op, boxes, 0, 2), anc_s]), anc_c])
            size = op("Mul", [anc_s, op("Exp", [_last(op, boxes, 2, 4)])])
            boxes = op("Concat", [centre, size], axis=-1)
        else:
            boxes = op("Add", [boxes, anc])
    if box_coding == 1:
        centre, half = _last(op, boxes, 0, 2), op("Mul", [_last(op, boxes, 2, 4), op.const(0.5)])
        boxes = op("Concat", [op("Sub", [centre, half]), op("Add", [centre, half])], axis=-1)
    return boxes


def _rank(op: Ops, masked: Any, valid: Any, total: int) -> tuple[Any, Any, int]:
    """The first min(4096, total) entries of ``masked`` [B, total] in descending order, ties by
    index: (flat indices [B, n] int64, validity [B, n] float 0/1, n)."""
    n = min(EFFICIENT_NMS_MAX_CANDIDATES, total)
    first = min(n, TRT_TOPK_MAX)
    _, idx = op.topk(masked, first, axis=1)
    valid_f = op("Cast", [valid], to=1)
    cand_valid = op("GatherElements", [valid_f, idx], axis=1)
    if n == first:
        return idx, cand_valid, n
    # The rest after the first TopK's picks are taken out: their scores -inf, their validity 0
    # (a pick may come back among the -inf ties of the second TopK, then as an invalid row).
    rest = n - first
    batch = op("Slice", [op("Shape", [idx]), op.const([0], np.int64), op.const([1], np.int64)])
    shape = op("Concat", [batch, op.const([first], np.int64)], axis=0)
    minus_inf = op("Expand", [op.const([[-np.inf]]), shape])
    zeros = op("Expand", [op.const([[0.0]]), shape])
    masked2 = op("ScatterElements", [masked, idx, minus_inf], axis=1)
    valid2 = op("ScatterElements", [valid_f, idx, zeros], axis=1)
    _, idx2 = op.topk(masked2, rest, axis=1)
    idx_all = op("Concat", [idx, idx2], axis=1)
    valid_all = op("Concat", [cand_valid, op("GatherElements", [valid2, idx2], axis=1)], axis=1)
    return idx_all, valid_all, n


def _iou_row(op: Ops, ref: list[Any], ref_area: Any, others: list[Any], areas: Any) -> Any:
    """EfficientNMS IoU (reference ``_iou_efficient``) of one box per image [B, 1] against all [B, n]."""
    zero = op.const(0.0)
    ih = op("Sub", [op("Min", [ref[2], others[2]]), op("Max", [ref[0], others[0]])])
    iw = op("Sub", [op("Min", [ref[3], others[3]]), op("Max", [ref[1], others[1]])])
    touching = op("And", [op("Greater", [ih, zero]), op("Greater", [iw, zero])])
    inter = op("Where", [touching, op("Mul", [ih, iw]), zero])
    union = op("Sub", [op("Add", [ref_area, areas]), inter])
    positive = op("And", [op("Greater", [inter, zero]), op("Greater", [union, zero])])
    return op("Where", [positive, op("Div", [inter, union]), zero])  # both sides evaluated: 0/0 harmless


def _area(op: Ops, c: list[Any]) -> Any:
    zero = op.const(0.0)
    h, w = op("Sub", [c[2], c[0]]), op("Sub", [c[3], c[1]])
    return op("Where", [op("And", [op("Greater", [h, zero]), op("Greater", [w, zero])]), op("Mul", [h, w]), zero])


def _greedy_loop(
    op: Ops,
    cand: Any,
    kept0: Any,
    classes: Any | None,
    *,
    n: int,
    iou_threshold: float,
    keep: int,
) -> Any:
    """ONNX Loop over the ranked candidates i = 0..n-1: kept[j] = 0 for every later j of the same
    class (``classes`` None: any class) with IoU(i, j) >= threshold when candidate i is kept.

    Candidate i's verdict is final once iteration i starts (only earlier ones suppress it), so the
    loop stops as soon as every image has ``keep`` kept among its first i + 1 candidates or has no
    valid candidate left: the first ``keep`` kept are the same as after all n iterations."""
    corners = _sorted_corners(op, cand)  # [B, n] each
    areas = _area(op, corners)
    num_valid = op.reduce_sum(kept0, [1])  # [B]: valid candidates come first in rank order
    positions = op.const(np.arange(n), np.int64, "positions")
    prefix = f"{op.prefix}/nms_loop"
    body = gs.Graph(opset=op.opset, name=f"{prefix}_body")
    inner = Ops(body, prefix)
    i = gs.Variable(f"{prefix}/i", dtype=np.int64, shape=[])
    cond_in = gs.Variable(f"{prefix}/cond_in", dtype=np.bool_, shape=[])
    kept_in = gs.Variable(f"{prefix}/kept_in", dtype=np.float32)
    body.inputs = [i, cond_in, kept_in]

    def at_i(x: Any) -> Any:  # x[:, i] as [B, 1]
        return inner.unsqueeze(inner("Gather", [x, i], axis=1), [1])

    iou = _iou_row(inner, [at_i(c) for c in corners], at_i(areas), corners, areas)
    later = inner("Greater", [positions, i])  # [n]
    hit = inner("And", [_ge(inner, iou, inner.const(np.float32(iou_threshold))), later])
    if classes is not None:
        hit = inner("And", [hit, inner("Equal", [classes, at_i(classes)])])
    suppress = inner("Mul", [inner("Cast", [hit], to=1), at_i(kept_in)])
    kept_out = inner("Mul", [kept_in, inner("Sub", [inner.const(1.0), suppress])])
    decided = inner("Cast", [inner("Not", [later])], to=1)  # positions <= i
    count = inner.reduce_sum(inner("Mul", [kept_out, decided]), [1])  # [B]
    next_pos = inner("Cast", [inner("Add", [i, inner.const(1, np.int64)])], to=1)
    more = inner("And", [inner("Less", [count, inner.const(float(keep))]), inner("Less", [next_pos, num_valid])])
    cond_out = inner("Greater", [inner.reduce_sum(inner("Cast", [more], to=1), [0]), inner.const(0.5)])
    cond_out.dtype, cond_out.shape = np.bool_, []
    kept_out.dtype = np.float32
    body.outputs = [cond_out, kept_out]
    return op("Loop", [op.const(n, np.int64, "trip_count"), op.const(True, np.bool_, "cond"), kept0], body=body)


def _check(node: gs.Node, a: dict[str, Any]) -> None:
    if len(node.inputs) not in (2, 3) or len(node.outputs) != 4:
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: needs inputs (boxes, scores[, anchors]) and 4 outputs, got "
            f"{len(node.inputs)} input(s) and {len(node.outputs)} output(s)"
        )
    if int(a["box_coding"]) not in (0, 1):
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: box_coding {a['box_coding']} is not 0 or 1 (the only codings the plugin has)"
        )
    if int(a["max_output_boxes"]) < 1:
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: max_output_boxes {a['max_output_boxes']} must be >= 1"
        )


def _candidates(op: Ops, node: gs.Node, a: dict[str, Any]) -> dict[str, Any]:
    """Decoded boxes, ranked candidates and their validity, boxes, raw scores and classes."""
    num_anchors, num_classes, per_class = _static_dims(node)
    boxes_in, scores_in = node.inputs[0], node.inputs[1]
    anchors_in = node.inputs[2] if len(node.inputs) == 3 else None
    total, parts = num_anchors * num_classes, (num_classes if per_class else 1)
    boxes = _decode(op, op.reshape(boxes_in, [0, num_anchors, parts, 4]), anchors_in, int(a["box_coding"]))
    passing = _sigmoid(op, scores_in) if a["score_activation"] else scores_in
    valid = _ge(op, passing, op.const(np.float32(a["score_threshold"])))  # [B, A, C]
    background = int(a["background_class"])
    if 0 <= background < num_classes:
        not_bg = np.ones((1, 1, num_classes), dtype=bool)
        not_bg[0, 0, background] = False
        valid = op("And", [valid, op.const(not_bg, np.bool_, "not_background")])
    scores, valid = op.reshape(scores_in, [0, total]), op.reshape(valid, [0, total])
    idx, kept0, n = _rank(op, op("Where", [valid, scores, op.const(-np.inf)]), valid, total)
    c = op.const(num_classes, np.int64, "classes")
    anchor_idx = op("Div", [idx, c])
    idx3 = op("Expand", [op.unsqueeze(idx if per_class else anchor_idx, [2]), op.const([1, 1, 4], np.int64, "shape")])
    return {
        "n": n,
        "kept0": kept0,
        "boxes": op("GatherElements", [op.reshape(boxes, [0, num_anchors * parts, 4]), idx3], axis=1),  # [B, n, 4]
        "scores": op("GatherElements", [scores, idx], axis=1),
        "classes": op("Sub", [idx, op("Mul", [anchor_idx, c])]),  # int64 [B, n]
    }


def _first_kept(op: Ops, cand: dict[str, Any], kept: Any, *, keep: int, activation: bool) -> Merged:
    """The first ``keep`` kept in rank order (TopK over kept * (n - position): no ties), padded."""
    n = cand["n"]
    take = min(keep, n)
    rank_key = op("Mul", [kept, op.const(np.arange(n, 0, -1), np.float32, "rank_key")])
    key, sel = op.topk(rank_key, take, axis=1)
    valid = op("Cast", [op("Greater", [key, op.const(0.5)])], to=1)
    sel4 = op("Expand", [op.unsqueeze(sel, [2]), op.const([1, 1, 4], np.int64, "shape")])
    boxes = op("GatherElements", [cand["boxes"], sel4], axis=1)
    scores = op("GatherElements", [cand["scores"], sel], axis=1)
    if activation:
        scores = _sigmoid(op, scores)
    classes = op("Cast", [op("GatherElements", [cand["classes"], sel], axis=1)], to=6)
    if take < keep:  # fewer candidates than rows: zero rows at the end
        pad2 = op.const([0, 0, 0, keep - take], np.int64, "pads")
        valid, scores, classes = (op("Pad", [t, pad2]) for t in (valid, scores, classes))
        boxes = op("Pad", [boxes, op.const([0, 0, 0, 0, keep - take, 0], np.int64, "pads")])
    return Merged(op("Greater", [valid, op.const(0.5)]), scores, classes, boxes)


def _apply(graph: gs.Graph, node: gs.Node) -> None:
    plugin = plugins.get(node.op)
    assert plugin is not None
    a = plugin.resolved_attrs(dict(node.attrs), node.name)
    _check(node, a)
    keep = int(a["max_output_boxes"])
    op = Ops(graph, f"rewrite/{node.name or node.op}")
    batch = node.inputs[1].shape[0] if node.inputs[1].shape else None
    cand = _candidates(op, node, a)
    check_top_k(node.op, node.name, min(keep, cand["n"]))
    classes = None if a["class_agnostic"] else op("Cast", [cand["classes"]], to=1)
    kept = _greedy_loop(
        op, cand["boxes"], cand["kept0"], classes, n=cand["n"], iou_threshold=float(a["iou_threshold"]), keep=keep
    )
    selection = _first_kept(op, cand, kept, keep=keep, activation=bool(a["score_activation"]))
    write_detections(op, node, selection, keep=keep, batch=batch, class_dtype=np.int32, class_pad=0)


_DIFFERENCES = (
    "equal scores are ranked by the flat index anchor*C+class (the CPU reference's order; the plugin's "
    "GPU filter collects candidates with atomics, so its order of exact ties is unspecified); with "
    "score_activation or box_coding 1 the graph's Exp (and the plugin's __expf) may differ from NumPy's "
    "in the last bits: scores and decoded boxes within a few ulp, and a score within an ulp of the "
    "threshold may pass in one and not the other; the plugin's dense-path quirk (below-threshold entries "
    "output when score_threshold < 0.007 and few pass) is not reproduced; otherwise float32 results are "
    "identical to the reference (measured: tests/tao/test_efficient_nms_rewrite.py, docs/tao_plugins.md)"
)
_SOURCE = "NVIDIA/TensorRT release/10.16 plugin/efficientNMSPlugin (trtdeploy/nms/reference.py efficient_nms)"

REWRITES = [Rewrite("EfficientNMS_TRT", _apply, MIN_OPSET, _DIFFERENCES, _SOURCE)]
