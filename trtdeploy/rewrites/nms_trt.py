"""NMS_TRT / NMSDynamic_TRT (TAO SSD, DSSD, RetinaNet) rewritten into standard ONNX ops.

The rewrite decodes the boxes with element-wise ops in the kernel's float32 order
(``trtdeploy.plugin_refs.nms_trt.decode_boxes``), then runs ``_nms_core`` (TopK per class, a
Loop for the greedy NMS, TopK per image) and writes the plugin's two outputs under their own
names: detections float32 [B, 1, keepTopK, 7] and the keep count [B, 1, 1, 1].

The keep count is DECLARED int32 in the rewritten graph: the plugin declares it float but
writes int32 bytes (nmsPlugin.cpp l.468-470, gatherTopDetections.cu l.52), and
NvDsInferParseCustomNMSTLT reads those bytes as int (trtdeploy.deepstream.parser_emulation
``_nmstlt``). Standard ONNX has no bit cast, so the output that carries the same bytes is an
int32 one; a float32 count would be read as 1077936128 for 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy import plugins
from trtdeploy.errors import UnsupportedModelError
from trtdeploy.rewrites import Rewrite
from trtdeploy.rewrites._nms_core import (
    MIN_OPSET,
    IouRule,
    Ops,
    check_threshold,
    check_top_k,
    merge_per_image,
    per_class_nms,
)


def _static(tensor: Any, axis: int, what: str, node: gs.Node) -> int:
    shape = tensor.shape
    if shape is None or len(shape) <= axis or not isinstance(shape[axis], int):
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: {what} ({tensor.name}) needs a static dim {axis}, got shape {shape}; "
            "export with fixed input sizes"
        )
    return int(shape[axis])


def _decode(op: Ops, loc: Any, prior: Any, var: Any, code_type: int, in_target: bool) -> Any:
    """decodeBBoxes.cu in graph ops, operation for operation as plugin_refs.nms_trt.decode_boxes."""
    if code_type == 0:
        return op("Add", [prior, loc if in_target else op("Mul", [loc, var])])
    p = [op.coord(prior, i) for i in range(4)]
    pw, ph = op("Sub", [p[2], p[0]]), op("Sub", [p[3], p[1]])
    if code_type == 2:
        size = op.stack_last([pw, ph, pw, ph])
        return op("Add", [prior, op("Mul", [loc if in_target else op("Mul", [loc, var]), size])])
    two = op.const(2.0)
    pcx, pcy = op("Div", [op("Add", [p[0], p[2]]), two]), op("Div", [op("Add", [p[1], p[3]]), two])
    lc = [op.coord(loc, i) for i in range(4)]
    v = [op.coord(var, i) for i in range(4)]
    if code_type == 1:
        if not in_target:
            lc = [op("Mul", [v[i], lc[i]]) for i in range(4)]
        cx, cy = op("Add", [op("Mul", [lc[0], pw]), pcx]), op("Add", [op("Mul", [lc[1], ph]), pcy])
        w, h = op("Mul", [op("Exp", [lc[2]]), pw]), op("Mul", [op("Exp", [lc[3]]), ph])
    else:  # TF_CENTER: (y, x, h, w), variances always applied
        cx = op("Add", [op("Mul", [op("Mul", [v[0], lc[1]]), pw]), pcx])
        cy = op("Add", [op("Mul", [op("Mul", [v[1], lc[0]]), ph]), pcy])
        w = op("Mul", [op("Exp", [op("Mul", [v[2], lc[3]])]), pw])
        h = op("Mul", [op("Exp", [op("Mul", [v[3], lc[2]])]), ph])
    hw, hh = op("Div", [w, two]), op("Div", [h, two])
    return op.stack_last([op("Sub", [cx, hw]), op("Sub", [cy, hh]), op("Add", [cx, hw]), op("Add", [cy, hh])])


def _apply(graph: gs.Graph, node: gs.Node, batch_agnostic_attr: bool) -> None:
    plugin = plugins.get(node.op)
    assert plugin is not None
    a = plugin.resolved_attrs(dict(node.attrs), node.name)
    order = [int(i) for i in a["inputOrder"]]
    loc, conf, prior = (node.inputs[i] for i in order)
    num_classes, top_k, keep_top_k = int(a["numClasses"]), int(a["topK"]), int(a["keepTopK"])
    code_type = int(a["codeType"])
    if code_type not in (0, 1, 2, 3):
        raise UnsupportedModelError(f"{node.op} node {node.name!r}: codeType {code_type} is not 0..3")
    if keep_top_k > top_k:
        raise UnsupportedModelError(
            f"{node.op} node {node.name!r}: keepTopK {keep_top_k} > topK {top_k}, for which the plugin writes "
            "no detections (gatherTopDetections.cu l.56); fix the export"
        )
    check_threshold(node.op, node.name, float(a["confidenceThreshold"]))
    num_priors = _static(prior, 2, "the prior input", node) // 4
    k = min(top_k, num_priors)
    check_top_k(node.op, node.name, k)
    share = bool(a["shareLocation"])
    loc_classes = 1 if share else num_classes
    op = Ops(graph, f"rewrite/{node.name or node.op}")

    priors = op.reshape(prior, [0, 2, num_priors, 4])
    if batch_agnostic_attr and a["isBatchAgnostic"]:  # decodeBBoxes.cu l.131: the first prior set
        priors = op("Slice", [priors, *(op.const([v], np.int64, "s") for v in (0, 1, 0))])
    p_corner = op.unsqueeze(op("Gather", [priors, op.const(0, np.int64, "ch")], axis=1), [2])  # [Bp, A, 1, 4]
    p_var = op.unsqueeze(op("Gather", [priors, op.const(1, np.int64, "ch")], axis=1), [2])
    boxes = _decode(
        op,
        op.reshape(loc, [0, num_priors, loc_classes, 4]),
        p_corner,
        p_var,
        code_type,
        bool(a["varianceEncodedInTarget"]),
    )  # [B, A, L, 4]
    boxes = op("Transpose", [boxes], perm=[0, 2, 1, 3])  # [B, L, A, 4]
    scores = op("Transpose", [op.reshape(conf, [0, num_priors, num_classes])], perm=[0, 2, 1])  # [B, C, A]
    if a["confSigmoid"]:  # permuteData.cu l.39: exp(x) / (1 + exp(x))
        e = op("Exp", [scores])
        scores = op("Div", [e, op("Add", [op.const(1.0), e])])
    valid = op("Greater", [scores, op.const(np.float32(a["confidenceThreshold"]))])
    background = int(a["backgroundLabelId"])
    if 0 <= background < num_classes:
        not_bg = np.ones((1, num_classes, 1), dtype=bool)
        not_bg[0, background, 0] = False
        valid = op("And", [valid, op.const(not_bg, np.bool_, "not_background")])
    rule = IouRule(normalized=bool(a["isNormalized"]), caffe_semantics=True)  # detectionForward.cu l.175
    kept_scores, kept, cand = per_class_nms(
        op, boxes, scores, valid, num_classes=num_classes, k=k, iou_threshold=float(a["nmsThreshold"]), rule=rule
    )
    m = merge_per_image(op, kept_scores, kept, cand, num_classes=num_classes, k=k, keep_top_k=keep_top_k)

    zero = op.const(0.0)
    label = op("Where", [m.valid, m.classes, op.const(-1.0)])
    clipped = op("Clip", [m.boxes, zero, op.const(1.0)])  # __saturatef (gatherTopDetections.cu l.100-106)
    box = op("Where", [op.unsqueeze(m.valid, [2]), clipped, zero])
    # image id column: 0..B-1 on every row, placeholders included (l.76, l.90)
    batch = op("Gather", [op("Shape", [m.scores]), op.const(0, np.int64, "axis")], axis=0)
    ids = op("Range", [op.const(0, np.int64, "start"), batch, op.const(1, np.int64, "step")])
    ids = op("Cast", [op.reshape(ids, [-1, 1])], to=1)
    image = op("Expand", [ids, op("Shape", [m.scores])])  # [B, K]: the id on every row
    rows = op("Concat", [op.unsqueeze(image, [2]), op.unsqueeze(label, [2]), op.unsqueeze(m.scores, [2]), box], axis=2)
    count = op.reduce_sum(op("Cast", [m.valid], to=6), [1], keepdims=0)

    detections, keep_count = node.outputs[0], node.outputs[1]
    node.outputs.clear()
    node.inputs.clear()
    op.unsqueeze_into(rows, [1], detections, "detections")
    op.into("Reshape", [count, op.const([-1, 1, 1, 1], np.int64, "shape")], keep_count, "keep_count")
    batch_dim = detections.shape[0] if detections.shape else None
    detections.dtype, detections.shape = np.float32, [batch_dim, 1, keep_top_k, 7]
    keep_count.dtype, keep_count.shape = np.int32, [batch_dim, 1, 1, 1]


_DIFFERENCES = (
    "boxes and sigmoid scores use the backend's exp (float32 results within a few ulp of the plugin's); "
    "equal scores are ordered by prior index within a class and by class across classes, as the plugin's "
    "stable radix sorts (TensorRT's TopK on a GPU may order exact ties otherwise); scoreBits (FP16 sort "
    "precision) is not modelled: FP16 engines of the plugin may rank near-equal scores differently; the keep "
    "count is declared int32 (the plugin declares float and writes int32: the bytes are the same); NaN box "
    "coordinates stay NaN (the plugin's __saturatef gives 0); a negative confidenceThreshold is refused"
)
_SOURCE = "NVIDIA/TensorRT release/10.16 plugin/nmsPlugin, plugin/common/kernels (trtdeploy/plugin_refs/nms_trt.py)"

REWRITES = [
    Rewrite("NMS_TRT", lambda g, n: _apply(g, n, True), MIN_OPSET, _DIFFERENCES, _SOURCE),
    Rewrite("NMSDynamic_TRT", lambda g, n: _apply(g, n, False), MIN_OPSET, _DIFFERENCES, _SOURCE),
]
