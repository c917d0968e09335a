"""Standard-op building blocks shared by the NMS_TRT and BatchedNMS rewrites.

Both plugins run the same kernels after their box decoding (plugin/common/kernels on
NVIDIA/TensorRT release/10.16: sortScoresPerClass.cu, allClassNMS.cu, sortScoresPerImage.cu;
the reference ``trtdeploy.plugin_refs.nms_trt`` restates them with line numbers). Here they
are built from ops TensorRT-RTX can build (no NonMaxSuppression: it has no runner there,
``trtdeploy.engine.capabilities``):

1. per class, TopK (k = topK) over the scores with every invalid entry (background, score
   <= threshold) set to the plugin's placeholder 0: the same sorted candidates, ties by the
   lower prior index (ONNX TopK) as the plugin's stable radix sort;
2. greedy NMS as an ONNX Loop over the k candidates: iteration i recomputes the IoU of
   candidate i against all candidates of its class (allClassNMS.cu ``jaccardOverlap``, the same
   float32 operations in the same order) and clears the later ones it suppresses
   (``IoU > threshold``) when candidate i is still kept; memory stays [B, C, k];
3. per image, TopK over the class-major [C*k] post-NMS scores (suppressed entries 0): ties
   by the lower flat index, i.e. class then rank, as the plugin's stable per-image sort.

Everything stays in opset 11 (Unsqueeze/ReduceSum attribute forms below 13, GatherElements
rather than GatherND with batch_dims).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.errors import UnsupportedModelError

MIN_OPSET = 11
TRT_TOPK_MAX = 3840  # TensorRT's TopK limit on K (trtdeploy.nms.onnx_head)


class Ops:
    """Appends nodes named ``<prefix>/<name>`` to ``graph``; opset-aware where ops changed."""

    def __init__(self, graph: gs.Graph, prefix: str) -> None:
        self.graph = graph
        self.prefix = prefix
        self.opset = int(graph.opset)
        self._count = 0

    def _name(self, name: str) -> str:
        self._count += 1
        return f"{self.prefix}/{name}_{self._count}"

    def __call__(self, op: str, inputs: list[Any], name: str = "", outputs: int = 1, **attrs: Any) -> Any:
        base = self._name(name or op.lower())
        outs = [gs.Variable(base if outputs == 1 else f"{base}_out{i}") for i in range(outputs)]
        self.graph.nodes.append(gs.Node(op=op, name=base, inputs=list(inputs), outputs=outs, attrs=attrs))
        return outs[0] if outputs == 1 else outs

    def into(self, op: str, inputs: list[Any], out: gs.Variable, name: str, **attrs: Any) -> None:
        """A node writing the existing tensor ``out`` (a plugin output kept by name)."""
        node = gs.Node(op=op, name=f"{self.prefix}/{name}", inputs=list(inputs), outputs=[out], attrs=attrs)
        self.graph.nodes.append(node)

    def unsqueeze_into(self, x: Any, axes: list[int], out: gs.Variable, name: str) -> None:
        if self.opset >= 13:
            self.into("Unsqueeze", [x, self.const(axes, np.int64, "axes")], out, name)
        else:
            self.into("Unsqueeze", [x], out, name, axes=axes)

    def const(self, value: Any, dtype: Any = np.float32, name: str = "c") -> gs.Constant:
        return gs.Constant(self._name(name), np.asarray(value, dtype=dtype))

    def unsqueeze(self, x: Any, axes: list[int]) -> Any:
        if self.opset >= 13:
            return self("Unsqueeze", [x, self.const(axes, np.int64, "axes")])
        return self("Unsqueeze", [x], axes=axes)

    def squeeze(self, x: Any, axes: list[int]) -> Any:
        if self.opset >= 13:
            return self("Squeeze", [x, self.const(axes, np.int64, "axes")])
        return self("Squeeze", [x], axes=axes)

    def reduce_sum(self, x: Any, axes: list[int], keepdims: int = 0) -> Any:
        if self.opset >= 13:
            return self("ReduceSum", [x, self.const(axes, np.int64, "axes")], keepdims=keepdims)
        return self("ReduceSum", [x], axes=axes, keepdims=keepdims)

    def reshape(self, x: Any, shape: list[int]) -> Any:
        return self("Reshape", [x, self.const(shape, np.int64, "shape")])

    def coord(self, x: Any, i: int) -> Any:
        """x[..., i] (the last axis dropped)."""
        return self("Gather", [x, self.const(i, np.int64, "index")], axis=-1)

    def stack_last(self, parts: list[Any]) -> Any:
        return self("Concat", [self.unsqueeze(p, [-1]) for p in parts], axis=-1)

    def topk(self, x: Any, k: int, axis: int) -> tuple[Any, Any]:
        vals, idx = self("TopK", [x, self.const([k], np.int64, "k")], outputs=2, axis=axis, largest=1, sorted=1)
        return vals, idx


def check_top_k(op_type: str, name: str, k: int) -> None:
    if k > TRT_TOPK_MAX:
        raise UnsupportedModelError(
            f"{op_type} node {name!r}: topK {k} is above TensorRT's TopK limit {TRT_TOPK_MAX}; lower topK in the export"
        )


def check_threshold(op_type: str, name: str, threshold: float) -> None:
    # A negative threshold lets real scores sort below the plugin's 0 placeholders
    # (sortScoresPerClass.cu l.87-119) and can stop its NMS loop early (allClassNMS.cu l.247).
    if threshold < 0:
        raise UnsupportedModelError(
            f"{op_type} node {name!r}: score threshold {threshold} < 0 is not rewritten (the plugin then orders "
            "real scores below its placeholders); set a threshold >= 0 in the export"
        )


@dataclass(frozen=True)
class IouRule:
    normalized: bool
    caffe_semantics: bool

    @property
    def plus(self) -> float:
        """+1 on the intersection sides (allClassNMS.cu l.138-147)."""
        return 1.0 if (not self.normalized and self.caffe_semantics) else 0.0

    @property
    def one(self) -> float:
        """+1 on each box side for the box sizes (allClassNMS.cu l.37-45)."""
        return 0.0 if self.normalized else 1.0


def _sorted_corners(op: Ops, boxes: Any) -> list[Any]:
    """x1, y1, x2, y2 of [..., 4] boxes with min/max order (getDiagonalMinMaxSortedBox)."""
    a0, a1, a2, a3 = (op.coord(boxes, i) for i in range(4))
    return [op("Min", [a0, a2]), op("Min", [a1, a3]), op("Max", [a0, a2]), op("Max", [a1, a3])]


def _iou_row(op: Ops, ref: list[Any], others: list[Any], rule: IouRule) -> Any:
    """jaccardOverlap(ref, other) for broadcastable corner lists, float32, the reference's order."""
    rx1, ry1, rx2, ry2 = ref
    ox1, oy1, ox2, oy2 = others
    disjoint = op(
        "Or",
        [
            op("Or", [op("Greater", [ox1, rx2]), op("Less", [ox2, rx1])]),
            op("Or", [op("Greater", [oy1, ry2]), op("Less", [oy2, ry1])]),
        ],
    )
    zero, plus, one = op.const(0.0), op.const(rule.plus), op.const(rule.one)
    iw = op("Add", [op("Where", [disjoint, zero, op("Sub", [op("Min", [rx2, ox2]), op("Max", [rx1, ox1])])]), plus])
    ih = op("Add", [op("Where", [disjoint, zero, op("Sub", [op("Min", [ry2, oy2]), op("Max", [ry1, oy1])])]), plus])

    def size(x1: Any, y1: Any, x2: Any, y2: Any) -> Any:
        return op("Mul", [op("Add", [op("Sub", [x2, x1]), one]), op("Add", [op("Sub", [y2, y1]), one])])

    inter = op("Mul", [iw, ih])
    union = op("Sub", [op("Add", [size(*ref), size(*others)]), inter])
    positive = op("And", [op("Greater", [iw, zero]), op("Greater", [ih, zero])])
    # Where evaluates both sides: a 0/0 on the discarded side is harmless.
    return op("Where", [positive, op("Div", [inter, union]), zero])


def per_class_nms(
    op: Ops,
    boxes: Any,
    scores: Any,
    valid: Any,
    *,
    num_classes: int,
    k: int,
    iou_threshold: float,
    rule: IouRule,
) -> tuple[Any, Any, Any]:
    """Candidates and their NMS verdict per class.

    ``boxes`` [B, 1 or C, A, 4], ``scores`` [B, C, A] float, ``valid`` [B, C, A] bool. Returns
    (scores [B, C, k] with 0 for every entry not kept, kept [B, C, k] float 0/1, candidate boxes
    [B, C, k, 4] as given)."""
    masked = op("Where", [valid, scores, op.const(0.0)])
    vals, idx = op.topk(masked, k, axis=2)
    kept0 = op("GatherElements", [op("Cast", [valid], to=1), idx], axis=2)
    every_class = op("Expand", [boxes, op.const([1, num_classes, 1, 1], np.int64, "shape")])
    idx4 = op("Expand", [op.unsqueeze(idx, [3]), op.const([1, 1, 1, 4], np.int64, "shape")])
    cand = op("GatherElements", [every_class, idx4], axis=2)  # [B, C, k, 4]
    kept = _greedy_loop(op, cand, kept0, k, iou_threshold, rule)
    return op("Mul", [vals, kept]), kept, cand


def _greedy_loop(op: Ops, cand: Any, kept0: Any, k: int, iou_threshold: float, rule: IouRule) -> Any:
    """ONNX Loop over i in 0..k-1: kept[j] &= not (kept[i] and j > i and IoU(i, j) > threshold)."""
    corners = _sorted_corners(op, cand)  # outer scope, [B, C, k] each
    positions = op.const(np.arange(k), np.int64, "positions")
    body = gs.Graph(opset=op.opset, name=f"{op.prefix}/nms_loop_body")
    inner = Ops(body, f"{op.prefix}/nms_loop")
    i = gs.Variable(f"{op.prefix}/nms_loop/i", dtype=np.int64, shape=[])
    cond_in = gs.Variable(f"{op.prefix}/nms_loop/cond_in", dtype=np.bool_, shape=[])
    kept_in = gs.Variable(f"{op.prefix}/nms_loop/kept_in", dtype=np.float32)
    body.inputs = [i, cond_in, kept_in]
    ref = [inner.unsqueeze(inner("Gather", [c, i], axis=2), [2]) for c in corners]  # [B, C, 1]
    iou = _iou_row(inner, ref, corners, rule)
    later = inner("Greater", [positions, i])  # [k]
    hit = inner("And", [inner("Greater", [iou, inner.const(np.float32(iou_threshold))]), later])
    ref_kept = inner.unsqueeze(inner("Gather", [kept_in, i], axis=2), [2])  # [B, C, 1]
    suppress = inner("Mul", [inner("Cast", [hit], to=1), ref_kept])
    kept_out = inner("Mul", [kept_in, inner("Sub", [inner.const(1.0), suppress])])
    cond_out = inner("Identity", [cond_in])
    cond_out.dtype, cond_out.shape = np.bool_, []
    kept_out.dtype = np.float32
    body.outputs = [cond_out, kept_out]
    trips = op.const(k, np.int64, "trip_count")
    return op("Loop", [trips, op.const(True, np.bool_, "cond"), kept0], body=body)


@dataclass
class Merged:
    """The per-image merge, padded to ``keep_top_k`` rows: [B, K] and [B, K, 4] tensors."""

    valid: Any  # bool
    scores: Any  # 0 where not valid
    classes: Any  # float class id (any value where not valid)
    boxes: Any  # the candidate box as given (any value where not valid)


def merge_per_image(op: Ops, scores: Any, kept: Any, cand: Any, *, num_classes: int, k: int, keep_top_k: int) -> Merged:
    """TopK over the class-major post-NMS scores of each image, first ``keep_top_k``."""
    flat = num_classes * k
    take = min(keep_top_k, flat)
    vals, idx = op.topk(op.reshape(scores, [0, flat]), take, axis=1)
    valid = op("GatherElements", [op.reshape(kept, [0, flat]), idx], axis=1)
    classes = op("Cast", [op("Div", [idx, op.const(k, np.int64, "k")])], to=1)
    idx4 = op("Expand", [op.unsqueeze(idx, [2]), op.const([1, 1, 4], np.int64, "shape")])
    boxes = op("GatherElements", [op.reshape(cand, [0, flat, 4]), idx4], axis=1)
    if take < keep_top_k:  # fewer entries than rows: placeholder rows at the end
        pad2 = op.const([0, 0, 0, keep_top_k - take], np.int64, "pads")
        pad3 = op.const([0, 0, 0, 0, keep_top_k - take, 0], np.int64, "pads")
        vals, valid, classes = (op("Pad", [t, pad2]) for t in (vals, valid, classes))
        boxes = op("Pad", [boxes, pad3])
    return Merged(op("Greater", [valid, op.const(0.5)]), vals, classes, boxes)


def write_detections(
    op: Ops,
    node: gs.Node,
    selection: Merged,
    *,
    keep: int,
    batch: Any,
    class_dtype: Any,
    class_pad: float,
) -> None:
    """The plugin ``node``'s four outputs (num_detections int32 [B, 1], boxes [B, K, 4], scores
    [B, K], classes [B, K] of ``class_dtype``) written from the padded selection: rows not valid
    get box 0, score 0 and class ``class_pad``. The node is detached from its tensors."""
    num, out_boxes, out_scores, out_classes = list(node.outputs)
    node.outputs.clear()
    node.inputs.clear()
    valid, zero = selection.valid, op.const(0.0)
    count = op.reduce_sum(op("Cast", [valid], to=6), [1])
    op.into("Reshape", [count, op.const([-1, 1], np.int64, "shape")], num, "num")
    op.into("Where", [op.unsqueeze(valid, [2]), selection.boxes, zero], out_boxes, "boxes")
    op.into("Where", [valid, selection.scores, zero], out_scores, "scores")
    op.into("Where", [valid, selection.classes, op.const(class_pad, class_dtype)], out_classes, "classes")
    for tensor, dtype, shape in (
        (num, np.int32, [batch, 1]),
        (out_boxes, np.float32, [batch, keep, 4]),
        (out_scores, np.float32, [batch, keep]),
        (out_classes, class_dtype, [batch, keep]),
    ):
        tensor.dtype, tensor.shape = dtype, shape
