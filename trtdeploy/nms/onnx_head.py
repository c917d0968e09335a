"""The ``onnx`` NMS head: standard ONNX ops whose outputs match EfficientNMS_TRT exactly.

Dataflow (B batch, A boxes, C classes, N selected, K = max_detections):

1. ``NonMaxSuppression(boxes [B,A,4], scores^T [B,C,A])`` -> selected [N,3] = (b, c, a).
   With ``class_agnostic`` the scores are first reduced to the best class per box
   ([B,1,A]) and the class is recovered with ArgMax.
2. The selected scores are scattered into a dense [B, A*C] tensor filled with -inf, at flat
   index ``a*C + c`` (anchor-major, the order EfficientNMS breaks score ties in).
3. ``TopK`` (K' = min(K, A*C)) gives the detections sorted by score; ties by lower flat
   index, as ONNX TopK specifies.
4. box = boxes[b, index // C], class = index % C; entries that came from the -inf fill are
   invalid and zeroed, num_detections counts the valid ones; outputs are zero padded to K
   when A*C < K.

Threshold semantics: ONNX NonMaxSuppression keeps ``score > score_threshold`` and suppresses
``IoU > iou_threshold`` (strict), EfficientNMS keeps ``score >= ...`` and suppresses
``IoU >= ...``. Both thresholds are therefore passed as the next float32 below the requested
value, which makes the strict comparisons inclusive for float32 values.

Per-class boxes [B,A,C,4] (two-stage detectors): each (image, class) pair is one batch entry of
NonMaxSuppression (boxes [B*C,A,4], scores [B*C,1,A]) and the kept box is read at the flat
(anchor, class) index; not with ``class_agnostic``.

Remaining differences from EfficientNMS_TRT: ``max_detections_per_class`` caps each class
here (ONNX requires a value; ignored with ``class_agnostic``) while EfficientNMS has no
per-class cap; EfficientNMS only considers its 4096 best candidates; and with
``class_agnostic`` a zero-area box (IoU 0 even with itself) can appear once per class in
EfficientNMS but only once (best class) here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from trtdeploy.deploy_card import NmsParams
from trtdeploy.errors import GraphError, UsageError
from trtdeploy.graph_passes import add_node, const

MIN_OPSET = 13  # Unsqueeze/ReduceSum take axes as inputs; GatherND has batch_dims (12)
TRT_TOPK_MAX = 3840  # TensorRT's TopK limit on K
_FILL = -np.inf  # dense score for "not selected"
_VALID_ABOVE = -1.0e30  # a score above this is a real detection (also holds if cast to FP16)


class _Builder:
    """Appends nodes named ``nms/onnx/<name>`` to a graph."""

    def __init__(self, graph: gs.Graph) -> None:
        self.graph = graph

    def __call__(
        self, op: str, inputs: list[gs.Tensor], name: str, num_outputs: int = 1, **attrs: Any
    ) -> Any:
        outs = add_node(
            self.graph, op, inputs, f"nms/onnx/{name}", num_outputs=num_outputs, attrs=attrs
        )
        return outs[0] if num_outputs == 1 else outs

    def const(self, name: str, value: Any, dtype: Any) -> gs.Constant:
        return const(f"nms/onnx/{name}", np.array(value, dtype=dtype))

    def axes(self, name: str, axes: list[int]) -> gs.Constant:
        return self.const(f"{name}/axes", axes, np.int64)

    def column(self, table: gs.Tensor, index: int, name: str) -> gs.Variable:
        """table[:, index] of an [N, k] int64 tensor -> [N]."""
        return self("Gather", [table, self.const(f"{name}/index", index, np.int64)], name, axis=1)


def add_onnx_nms(
    graph: gs.Graph,
    boxes: gs.Variable,
    scores: gs.Variable,
    params: NmsParams,
    batch: Any,
    num_anchors: int,
    num_classes: int,
    names: tuple[str, ...],
) -> list[gs.Variable]:
    """Append the head; return [num_detections, boxes, scores, classes] named ``names``.

    The caller has checked that ``names`` are free in ``graph``.
    """
    if graph.opset < MIN_OPSET:
        raise GraphError(
            f"the onnx NMS head needs ONNX opset >= {MIN_OPSET}, the graph has opset {graph.opset}; "
            f"convert with a newer opset (tf2onnx --opset {MIN_OPSET} or later)"
        )
    k = params.max_detections
    k_eff = min(k, num_anchors * num_classes)
    if k_eff > TRT_TOPK_MAX:
        raise UsageError(
            f"the onnx NMS head uses TopK, which TensorRT limits to K <= {TRT_TOPK_MAX}; got {k_eff}"
        )
    op = _Builder(graph)
    sel_batch, sel_anchor, sel_class, sel_score = _select(op, boxes, scores, params)
    dense = _dense_scores(op, scores, (sel_batch, sel_anchor, sel_class, sel_score), num_anchors * num_classes, num_classes)
    tensors = _top_detections(op, boxes, dense, k_eff, num_classes)
    if k_eff < k:  # fewer (box, class) pairs than K: zero pad to K like EfficientNMS
        pad = k - k_eff
        tensors[1] = op(
            "Pad", [tensors[1], op.const("pad3", [0, 0, 0, 0, pad, 0], np.int64)], "pad_boxes"
        )
        tensors[2] = op(
            "Pad", [tensors[2], op.const("pad2s", [0, 0, 0, pad], np.int64)], "pad_scores"
        )
        tensors[3] = op(
            "Pad", [tensors[3], op.const("pad2c", [0, 0, 0, pad], np.int64)], "pad_classes"
        )

    outputs = [
        gs.Variable(names[0], dtype=np.int32, shape=[batch, 1]),
        gs.Variable(names[1], dtype=np.float32, shape=[batch, k, 4]),
        gs.Variable(names[2], dtype=np.float32, shape=[batch, k]),
        gs.Variable(names[3], dtype=np.int32, shape=[batch, k]),
    ]
    for tensor, out in zip(tensors, outputs, strict=True):
        graph.nodes.append(
            gs.Node("Identity", name=f"nms/onnx/out/{out.name}", inputs=[tensor], outputs=[out])
        )
    return outputs


def _select(
    op: _Builder, boxes: gs.Variable, scores: gs.Variable, params: NmsParams
) -> tuple[gs.Variable, gs.Variable, gs.Variable, gs.Variable]:
    """NonMaxSuppression per class (or on the best class): the selected (batch, anchor, class)
    triples [N] each and their scores [N]."""
    # Both thresholds one float32 step lower: strict ONNX comparisons become inclusive.
    score_thr = np.nextafter(np.float32(params.score_threshold), np.float32(-np.inf))
    iou_thr = np.nextafter(np.float32(params.iou_threshold), np.float32(-np.inf))
    # Class-agnostic NMS runs on one merged class, so a per-class cap would cap everything.
    per_class = params.max_detections if params.class_agnostic else params.max_detections_per_class
    nms_args = [
        op.const("max_per_class", [per_class], np.int64),
        op.const("iou_threshold", [iou_thr], np.float32),
        op.const("score_threshold", [score_thr], np.float32),
    ]

    if params.class_agnostic:
        best = _reduce_max(op, scores, axis=2, name="best_score")  # [B,A,1]
        nms_scores = op("Transpose", [best], "best_score_t", perm=[0, 2, 1])  # [B,1,A]
        best_class = op("ArgMax", [scores], "best_class", axis=2, keepdims=0)  # [B,A] int64
        selected = op(
            "NonMaxSuppression", [boxes, nms_scores, *nms_args], "nms", center_point_box=0
        )
        sel_batch = op.column(selected, 0, "sel_batch")
        sel_anchor = op.column(selected, 2, "sel_anchor")
        batch_anchor = op(
            "Concat", [_col(op, sel_batch, "b"), _col(op, sel_anchor, "a")], "sel_ba", axis=1
        )
        sel_class = op("GatherND", [best_class, batch_anchor], "sel_class")
    elif len(boxes.shape) == 4:
        # Per-class boxes [B,A,C,4]: NonMaxSuppression takes boxes shared by its classes, so each
        # (image, class) pair becomes one of its batch entries: boxes [B*C,A,4], scores [B*C,1,A].
        num_anchors, num_classes = boxes.shape[1], boxes.shape[2]
        pair_boxes = op("Reshape", [op("Transpose", [boxes], "boxes_t", perm=[0, 2, 1, 3]),
                                    op.const("pair_boxes_shape", [-1, num_anchors, 4], np.int64)], "pair_boxes")
        nms_scores = op("Reshape", [op("Transpose", [scores], "scores_t", perm=[0, 2, 1]),
                                    op.const("pair_scores_shape", [-1, 1, num_anchors], np.int64)], "pair_scores")
        selected = op(
            "NonMaxSuppression", [pair_boxes, nms_scores, *nms_args], "nms", center_point_box=0
        )
        pair = op.column(selected, 0, "sel_pair")
        sel_batch = op("Div", [pair, op.const("pair_div_c", num_classes, np.int64)], "sel_batch")
        sel_class = op("Mod", [pair, op.const("pair_mod_c", num_classes, np.int64)], "sel_class")
        sel_anchor = op.column(selected, 2, "sel_anchor")
    else:
        nms_scores = op("Transpose", [scores], "scores_t", perm=[0, 2, 1])  # [B,C,A]
        selected = op(
            "NonMaxSuppression", [boxes, nms_scores, *nms_args], "nms", center_point_box=0
        )
        sel_batch = op.column(selected, 0, "sel_batch")
        sel_class = op.column(selected, 1, "sel_class")
        sel_anchor = op.column(selected, 2, "sel_anchor")
    sel_score = op("GatherND", [nms_scores, selected], "sel_score")  # [N]
    return sel_batch, sel_anchor, sel_class, sel_score


def _dense_scores(
    op: _Builder, scores: gs.Variable, selected: tuple[gs.Variable, ...], num_pairs: int, num_classes: int
) -> gs.Variable:
    """Dense [B, A*C] scores: the fill value except at the selected (anchor, class) pairs."""
    sel_batch, sel_anchor, sel_class, sel_score = selected
    flat = op(
        "Add",
        [
            op(
                "Mul",
                [sel_anchor, op.const("num_classes", num_classes, np.int64)],
                "sel_anchor_x_c",
            ),
            sel_class,
        ],
        "sel_flat",
    )
    scatter_idx = op(
        "Concat",
        [_col(op, sel_batch, "scatter_b"), _col(op, flat, "scatter_f")],
        "scatter_idx",
        axis=1,
    )
    batch_dim = op(
        "Slice",
        [
            op("Shape", [scores], "scores_shape"),
            op.const("batch_dim/starts", [0], np.int64),
            op.const("batch_dim/ends", [1], np.int64),
        ],
        "batch_dim",
    )
    dense_shape = op(
        "Concat",
        [batch_dim, op.const("num_pairs", [num_pairs], np.int64)],
        "dense_shape",
        axis=0,
    )
    empty = op("Expand", [op.const("fill", [[_FILL]], np.float32), dense_shape], "dense_empty")
    return op("ScatterND", [empty, scatter_idx, sel_score], "dense_scores")


def _top_detections(
    op: _Builder, boxes: gs.Variable, dense: gs.Variable, k_eff: int, num_classes: int
) -> list[gs.Variable]:
    """The K' best selected pairs as [count i32, boxes, scores, classes i32], zero past the count."""
    top_scores, top_index = op(
        "TopK",
        [dense, op.const("k", [k_eff], np.int64)],
        "topk",
        num_outputs=2,
        axis=1,
        largest=1,
        sorted=1,
    )
    valid = op(
        "Greater", [top_scores, op.const("valid_above", _VALID_ABOVE, np.float32)], "valid"
    )  # [B,K']
    top_anchor = op("Div", [top_index, op.const("div_c", num_classes, np.int64)], "top_anchor")
    top_class = op("Mod", [top_index, op.const("mod_c", num_classes, np.int64)], "top_class")
    if len(boxes.shape) == 4:  # per-class boxes: [B,A,C,4] -> [B,A*C,4] at the flat index a*C + c
        flat_boxes = op("Reshape", [boxes, op.const("flat_boxes_shape", [0, -1, 4], np.int64)], "flat_boxes")
        top_boxes = op("GatherND", [flat_boxes, _unsqueeze_last(op, top_index, "top_pair_idx")], "top_boxes",
                       batch_dims=1)
    else:
        top_boxes = op(
            "GatherND",
            [boxes, _unsqueeze_last(op, top_anchor, "top_anchor_idx")],
            "top_boxes",
            batch_dims=1,
        )

    valid_3d = _unsqueeze_last(op, valid, "valid_3d")
    det_boxes = op(
        "Where", [valid_3d, top_boxes, op.const("zero_box", 0.0, np.float32)], "det_boxes"
    )
    det_scores = op(
        "Where", [valid, top_scores, op.const("zero_score", 0.0, np.float32)], "det_scores"
    )
    det_classes = op(
        "Cast",
        [op("Where", [valid, top_class, op.const("zero_class", 0, np.int64)], "det_classes_i64")],
        "det_classes",
        to=onnx.TensorProto.INT32,
    )
    count = op(
        "ReduceSum",
        [op("Cast", [valid], "valid_f", to=onnx.TensorProto.FLOAT), op.axes("count", [1])],
        "count_f",
        keepdims=1,
    )
    det_num = op("Cast", [count], "det_num", to=onnx.TensorProto.INT32)
    return [det_num, det_boxes, det_scores, det_classes]


def _col(op: _Builder, vector: gs.Tensor, name: str) -> gs.Variable:
    """[N] -> [N,1]."""
    return op("Unsqueeze", [vector, op.axes(f"{name}_col", [1])], f"{name}_col")


def _unsqueeze_last(op: _Builder, tensor: gs.Tensor, name: str) -> gs.Variable:
    """[B,K] -> [B,K,1]."""
    return op("Unsqueeze", [tensor, op.axes(name, [2])], name)


def _reduce_max(op: _Builder, tensor: gs.Tensor, axis: int, name: str) -> gs.Variable:
    """ReduceMax keeping the axis; axes became an input in opset 18."""
    if op.graph.opset >= 18:
        return op("ReduceMax", [tensor, op.axes(name, [axis])], name, keepdims=1)
    return op("ReduceMax", [tensor], name, axes=[axis], keepdims=1)
