"""ProposalDynamic / Proposal (TAO FasterRCNN's RPN) rewritten into standard ONNX ops.

The semantics are the CPU reference's (``trtdeploy.plugin_refs.proposal``, cited line by line
in NVIDIA/TensorRT release/10.16): decode in the kernel's float32 order, clip, min-size boxes
scored -inf, a stable descending sort, greedy NMS over the first pre_nms_top_n with the +1
pixel IoU, at most post_nms_top_n rows, zeros after the kept ones, rows as normalised
(y1, x1, y2, x2), output (N, post_nms_top_n, 4, 1) under the plugin's own output name.

No TopK: TensorRT's TopK takes K <= 3840 and TAO's default pre_nms_top_n is 6000
(tao_specs faster_rcnn default_spec_*.txt ``rpn_pre_nms_top_N: 6000``). The greedy NMS is an
ONNX Loop of post_nms_top_n iterations; each picks the best still-alive proposal (max score,
ties to the lower index = the plugin's stable sort order), suppresses the alive ones it
overlaps (IoU > threshold) and is valid only while the pick's rank in the full sort is below
pre_nms_top_n. That is the plugin's result: greedy picks come in sort order, and a pick ranked
>= pre_nms_top_n means every proposal of the first pre_nms_top_n is already kept or suppressed
(where the plugin's loop ends).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy import plugins
from trtdeploy.plugin_refs.proposal import SOURCE, anchor_table
from trtdeploy.rewrites import Rewrite
from trtdeploy.rewrites._nms_core import Ops

MIN_OPSET = 11

# Measured by tests/tao/test_tao_frcnn_proposal.py (ONNX Runtime, the rewrite vs the reference):
_DIFFERENCES = (
    "same kept proposals in the same order; coordinates within a few float32 ulp: exp() is computed by the "
    "backend (ONNX Runtime's differs from NumPy's in 1 ulp for ~40% of inputs, the plugin uses CUDA __expf "
    "and fused multiply-adds); "
    "a box whose IoU or side length lies within such an ulp of nms_iou_threshold / roi_min_size can flip"
)


def _reduce(op: Ops, kind: str, x: Any, axes: list[int], keepdims: int = 1) -> Any:
    """ReduceMax/ReduceSum with axes as attribute or input, as the opset wants."""
    as_input = op.opset >= (18 if kind == "ReduceMax" else 13)
    if as_input:
        return op(kind, [x, op.const(axes, np.int64, "axes")], keepdims=keepdims)
    return op(kind, [x], axes=axes, keepdims=keepdims)


def _anchor_grid(op: Ops, scores: Any, stride: int) -> tuple[Any, Any]:
    """Anchor centres cx, cy as [1, 1, H*W] float32 ((i + 0.5) * stride), from the score map's H, W."""
    shape = op("Shape", [scores])
    hw = op("Gather", [shape, op.const([2, 3], np.int64, "hw")], axis=0)
    half, step = op.const(0.5), op.const(np.float32(stride))

    def centres(axis: int, unsq: int) -> Any:
        size = op("Cast", [op("Gather", [shape, op.const(axis, np.int64, "axis")], axis=0)], to=1)
        ramp = op("Range", [op.const(0.0), size, op.const(1.0)])
        line = op.unsqueeze(op("Mul", [op("Add", [ramp, half]), step]), [unsq])
        return op.reshape(op("Expand", [line, hw]), [1, 1, -1])

    return centres(3, 0), centres(2, 1)  # cx varies along W (last), cy along H


def _decode(op: Ops, scores: Any, deltas: Any, a: dict[str, Any], anchors: int) -> tuple[list[Any], Any]:
    """Corners x1, y1, x2, y2 [N, R] and scores [N, R] (-inf under the min size), in the
    reference's float32 operations and (a, y, x) order."""
    widths, heights = anchor_table(list(a["anchor_sizes"]), list(a["anchor_ratios"]))
    aw, ah = op.const(widths.reshape(1, -1, 1)), op.const(heights.reshape(1, -1, 1))
    d = op.reshape(deltas, [0, anchors, 4, -1])  # [N, A, 4, H*W]; STD_SCALING is 1.0
    tx, ty, tw, th = (op("Gather", [d, op.const(i, np.int64, "k")], axis=2) for i in range(4))
    cx, cy = _anchor_grid(op, scores, int(a["rpn_stride"]))
    centre_x, centre_y = op("Add", [cx, op("Mul", [aw, tx])]), op("Add", [cy, op("Mul", [ah, ty])])
    box_w, box_h = op("Mul", [op("Exp", [tw]), aw]), op("Mul", [op("Exp", [th]), ah])
    two = op.const(2.0)
    x1, y1 = op("Sub", [centre_x, op("Div", [box_w, two])]), op("Sub", [centre_y, op("Div", [box_h, two])])
    x2, y2 = op("Add", [box_w, x1]), op("Add", [box_h, y1])
    zero = op.const(0.0)
    max_x, max_y = op.const(np.float32(a["input_width"] - 1.0)), op.const(np.float32(a["input_height"] - 1.0))
    x1, x2 = (op("Clip", [v, zero, max_x]) for v in (x1, x2))
    y1, y2 = (op("Clip", [v, zero, max_y]) for v in (y1, y2))
    least = op.const(np.float32(a["roi_min_size"]))
    small = op("Or", [op("LessOrEqual", [op("Sub", [x2, x1]), least]), op("LessOrEqual", [op("Sub", [y2, y1]), least])])
    fg = op("Where", [small, op.const(-np.inf), op.reshape(scores, [0, anchors, -1])])
    corners = [op.reshape(v, [0, -1]) for v in (x1, y1, x2, y2)]
    return corners, op.reshape(fg, [0, -1])


def _iou(op: Ops, ref: list[Any], boxes: list[Any]) -> Any:
    """plugin_refs.proposal.pixel_iou in graph ops: the same float32 operations, the same order."""
    one, zero = op.const(1.0), op.const(0.0)
    left, right = op("Max", [ref[0], boxes[0]]), op("Min", [ref[2], boxes[2]])
    top, bottom = op("Max", [ref[1], boxes[1]]), op("Min", [ref[3], boxes[3]])
    iw = op("Max", [op("Add", [op("Sub", [right, left]), one]), zero])
    ih = op("Max", [op("Add", [op("Sub", [bottom, top]), one]), zero])
    inter = op("Mul", [iw, ih])

    def area(b: list[Any]) -> Any:
        return op("Mul", [op("Add", [op("Sub", [b[2], b[0]]), one]), op("Add", [op("Sub", [b[3], b[1]]), one])])

    return op("Div", [inter, op("Sub", [op("Add", [area(ref), area(boxes)]), inter])])


def _greedy_loop(op: Ops, corners: list[Any], fg: Any, a: dict[str, Any]) -> tuple[Any, Any]:
    """(picked boxes [T, N, 4] as x1, y1, x2, y2, valid [T, N, 1] float) for T = post_nms_top_n."""
    shape = op("Shape", [fg])
    count = op("Gather", [shape, op.const(1, np.int64, "r")], axis=0)
    positions = op("Range", [op.const(0, np.int64, "start"), count, op.const(1, np.int64, "delta")])  # [R]
    alive0 = op("Expand", [op.const(1.0), shape])  # [N, R]: every proposal alive
    body = gs.Graph(opset=op.opset, name=f"{op.prefix}/loop_body")
    inner = Ops(body, f"{op.prefix}/loop")
    i = gs.Variable(f"{op.prefix}/loop/i", dtype=np.int64, shape=[])
    cond_in = gs.Variable(f"{op.prefix}/loop/cond_in", dtype=np.bool_, shape=[])
    alive_in = gs.Variable(f"{op.prefix}/loop/alive_in", dtype=np.float32)
    body.inputs = [i, cond_in, alive_in]
    alive = inner("Greater", [alive_in, inner.const(0.5)])
    best = _reduce(inner, "ReduceMax", inner("Where", [alive, fg, inner.const(-np.inf)]), [1])  # [N, 1]
    ties = inner("Cast", [inner("And", [alive, inner("Equal", [fg, best])])], to=1)
    pick = inner("ArgMax", [ties], axis=1, keepdims=1)  # first maximum: the lowest index among ties
    ref = [inner("GatherElements", [c, pick], axis=1) for c in corners]  # [N, 1] each
    before = inner(
        "Or",
        [inner("Greater", [fg, best]), inner("And", [inner("Equal", [fg, best]), inner("Less", [positions, pick])])],
    )
    rank = _reduce(inner, "ReduceSum", inner("Cast", [before], to=1), [1])  # exact below 2**24 proposals
    anything = inner("Greater", [_reduce(inner, "ReduceMax", alive_in, [1]), inner.const(0.5)])
    valid = inner("And", [anything, inner("Less", [rank, inner.const(np.float32(a["pre_nms_top_n"]))])])
    gone = inner(
        "Or",
        [
            inner("Greater", [_iou(inner, ref, corners), inner.const(np.float32(a["nms_iou_threshold"]))]),
            inner("Equal", [positions, pick]),
        ],
    )
    alive_out = inner("Mul", [alive_in, inner("Sub", [inner.const(1.0), inner("Cast", [gone], to=1)])])
    picked = inner("Concat", ref, axis=1)  # [N, 4]
    valid_f = inner("Cast", [valid], to=1)  # [N, 1]
    cond_out = inner("Identity", [inner.const(True, np.bool_, "true")])  # not cond_in: the loop has no condition
    cond_out.dtype, cond_out.shape = np.bool_, []
    alive_out.dtype, picked.dtype, valid_f.dtype = np.float32, np.float32, np.float32
    body.outputs = [cond_out, alive_out, picked, valid_f]
    trips = op.const(int(a["post_nms_top_n"]), np.int64, "trip_count")
    # A trip count only (no condition input): TensorRT's parser warns that scan outputs may be
    # mis-shaped when both are given.
    _, boxes, valids = op("Loop", [trips, gs.Variable.empty(), alive0], outputs=3, body=body)
    return boxes, valids


def _apply(graph: gs.Graph, node: gs.Node) -> None:
    plugin = plugins.get(node.op)
    assert plugin is not None
    a = plugin.resolved_attrs(dict(node.attrs), node.name)
    op = Ops(graph, node.name or node.op)
    anchors = len(a["anchor_sizes"]) * len(a["anchor_ratios"])
    scores, deltas = node.inputs[0], node.inputs[1]
    corners, fg = _decode(op, scores, deltas, a, anchors)
    boxes, valids = _greedy_loop(op, corners, fg, a)
    boxes = op("Transpose", [boxes], perm=[1, 0, 2])  # [N, T, 4]
    valids = op("Transpose", [valids], perm=[1, 0, 2])  # [N, T, 1]
    rows = op("Where", [op("Greater", [valids, op.const(0.5)]), boxes, op.const(0.0)])
    yx = op("Gather", [rows, op.const([1, 0, 3, 2], np.int64, "yx")], axis=2)
    scale = np.array([a["input_height"] - 1.0, a["input_width"] - 1.0] * 2, dtype=np.float32)
    normalised = op("Div", [yx, op.const(scale)])
    out = node.outputs[0]
    node.outputs.clear()
    node.inputs.clear()
    out.dtype = np.float32
    # The Loop's scan outputs stop ONNX shape inference: declare the plugin's output shape
    # (proposalPlugin.cpp l.264-280) so the nodes below (CropAndResizeDynamic) see it.
    batch = scores.shape[0] if scores.shape else None
    out.shape = [batch if isinstance(batch, (int, str)) else "N", int(a["post_nms_top_n"]), 4, 1]
    op.unsqueeze_into(normalised, [3], out, "rois")


REWRITES = [Rewrite(name, _apply, MIN_OPSET, _DIFFERENCES, SOURCE) for name in ("ProposalDynamic", "Proposal")]
