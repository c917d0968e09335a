"""Graph passes that rebuild TFOD Faster R-CNN's glue between its two converted networks.

The converted core (``tf_cut``) has inputs ``input_tensor`` and ``crops`` and outputs
``feature_map`` [B,h,w,D], ``rpn_box_encodings`` [B,A,1,4], ``rpn_class_logits`` [B,A,2],
``second_box_encodings`` [B,N,q,4], ``second_scores`` [B,N,C+1]. What TFOD computes between
them (faster_rcnn_meta_arch.py ``_postprocess_rpn``, ``_compute_second_stage_input_feature_maps``
and ``_postprocess_box_classifier``, tensorflow/models research/object_detection):

1. ``first_stage``: objectness = softmax(logits)[..., 1]; proposal boxes = the RPN deltas
   decoded against the anchors (input pixels) with the first stage's box-coder scales.
2. ``proposals``: class-agnostic NMS (first_stage_nms_iou/score_threshold, at most
   first_stage_max_proposals = N) on the unclipped boxes, sorted by score, then clipped to the
   network input and padded to N with zero boxes; padding rows are not valid proposals.
3. ``crop``: crop-and-resize of the feature map at the proposals normalised by the input size
   (initial_crop_size), fed to the second network in place of the ``crops`` input.
4. ``second_stage``: the refined deltas decoded against the proposals (second-stage scales),
   normalised by the input size; the background column dropped; padding proposals' scores -1
   (TFOD gives them float32 min: ``num_valid_boxes``), so no NMS keeps them.
5. then the SSD family's ``nms_head`` pass: per-class NMS over (boxes, scores) with the second
   stage's post-processing, boxes clipped to [0, 1] after NMS as TFOD clips after its NMS.

``--nms efficient`` uses EfficientNMS_TRT for the proposals and the CropAndResizeDynamic
plugin for the crop; ``onnx`` uses ONNX NonMaxSuppression (TensorRT's NMS layer) and
``none`` a greedy NMS Loop of plain ops (TensorRT-RTX has no NMS layer), both with the
GridSample crop (``trtdeploy.rewrites.crop_and_resize``), so they need no plugins.

A Mask R-CNN core also has the input ``mask_crops`` and the output ``mask_logits``
[B*K,1,C,mask_h,mask_w]; ``MASK_PASSES`` are the head passes with an NMS head that makes TFOD's
four tensors whatever the layout asked for (``nms_head_beside_masks``), then:

6. ``masks``: the feature map cropped at the final detection boxes with the head's crop op,
   fed to ``mask_crops`` (faster_rcnn_meta_arch.py ``_predict_third_stage``), then the per-class
   logits [B,K,C,mask_h,mask_w] shaped by ``trtdeploy.masks``: TFOD's ``detection_masks`` (the
   ``tfod-masks`` contract) or the ``ds/mrcnn`` tensors of NvDsInferParseCustomMrcnnTLTV2
   (``--output-layout deepstream``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from tfod_trt.families.faster_rcnn import MASK_HEADS
from tfod_trt.passes.decode_boxes import decode_boxes
from tfod_trt.passes.nms_head import nms_head
from tfod_trt.passes.stable_names import stable_names
from tfod_trt.two_stage.tf_cut import CROPS_NAME, MASK_CROPS_NAME, MASK_OUTPUT, OUTPUT_NAMES
from trtdeploy.contracts import TFOD_NAMES
from trtdeploy.errors import GraphError, UsageError
from trtdeploy.graph_passes import PassContext, add_node, const
from trtdeploy.rewrites.crop_and_resize import add_crop_and_resize

LOOP_CANDIDATES = 3840  # TensorRT's TopK limit (trtdeploy.rewrites._nms_core.TRT_TOPK_MAX)
INVALID_SCORE = -1.0  # below any score threshold in [0, 1]: a padding proposal never survives NMS


class _Ops:
    def __init__(self, graph: gs.Graph, scope: str) -> None:
        self.graph, self.scope = graph, scope

    def __call__(self, op: str, inputs: list[Any], name: str, num_outputs: int = 1, **attrs: Any) -> Any:
        outs = add_node(self.graph, op, inputs, f"{self.scope}/{name}", num_outputs=num_outputs, attrs=attrs)
        return outs[0] if num_outputs == 1 else outs

    def c(self, name: str, value: Any, dtype: Any = None) -> gs.Constant:
        return const(f"{self.scope}/{name}", np.asarray(value, dtype=dtype))


def _outputs(graph: gs.Graph) -> dict[str, gs.Variable]:
    return {t.name: t for t in graph.outputs}


def name_two_stage_io(graph: gs.Graph, ctx: PassContext) -> None:
    masks = bool(ctx.facts.get("masks"))
    names = (*OUTPUT_NAMES, MASK_OUTPUT) if masks else OUTPUT_NAMES
    if len(graph.inputs) != 2 + masks or len(graph.outputs) != len(names):
        raise GraphError(f"{ctx.family}: expected inputs (image, crops{', mask_crops' if masks else ''}) and "
                         f"{len(names)} outputs from the cut, "
                         f"found {[t.name for t in graph.inputs]} -> {[t.name for t in graph.outputs]}")

    def role(tensor: gs.Tensor) -> int:  # tf2onnx keeps the placeholders' names (with a :0)
        return 0 if tensor.name.startswith("input_tensor") else 2 if tensor.name.startswith(MASK_CROPS_NAME) else 1

    image, crops, *mask_crops = sorted(graph.inputs, key=role)
    image.name, crops.name = "input_tensor", CROPS_NAME
    batch = ctx.facts["batch"]
    dim0 = batch if batch is not None else "batch"
    image.shape = [dim0, *image.shape[1:]]
    crops.shape = [batch * ctx.facts["num_proposals"] if batch else "batch_x_proposals", *crops.shape[1:]]
    for tensor, name in zip(graph.outputs, names, strict=True):
        tensor.name = name
        tensor.shape = [dim0, *tensor.shape[1:]]
    if masks:  # one row per detection of every image: B*K rows, K known once the head is chosen
        mask_crops[0].name = MASK_CROPS_NAME
        mask_crops[0].shape = ["batch_x_detections", *mask_crops[0].shape[1:]]
        graph.outputs[-1].shape = ["batch_x_detections", *graph.outputs[-1].shape[1:]]


def first_stage(graph: gs.Graph, ctx: PassContext) -> None:
    """RPN deltas -> decoded proposal boxes ``rpn_boxes`` [B,A,4] (input pixels, unclipped),
    objectness logits -> ``rpn_scores`` [B,A,1] (the softmax's object column)."""
    outs = _outputs(graph)
    op = _Ops(graph, "first_stage")
    encodings = outs["rpn_box_encodings"]
    num_anchors = len(ctx.facts["anchors"])
    (flat,) = add_node(graph, "Reshape", [encodings, const("first_stage/flat_shape", np.array([0, -1, 4]))],
                       "raw_box_encodings", dtypes=[np.float32])
    flat.shape = [encodings.shape[0], num_anchors, 4]
    probs = op("Softmax", [outs["rpn_class_logits"]], "objectness_softmax", axis=2)
    (scores,) = add_node(graph, "Slice", [probs, op.c("s", [1]), op.c("e", [2]), op.c("a", [2])], "rpn_scores",
                         dtypes=[np.float32])
    scores.shape = [encodings.shape[0], num_anchors, 1]
    graph.outputs = [flat if t is encodings else scores if t is outs["rpn_class_logits"] else t for t in graph.outputs]
    sub = PassContext(ctx.family, {"anchors": ctx.facts["anchors"], "box_coder_scales": ctx.facts["first_scales"]})
    decode_boxes(graph, sub)  # the SSD decode: raw_box_encodings -> boxes, against constant anchors
    boxes = _outputs(graph)["boxes"]
    boxes.name = "rpn_boxes"


def proposals(graph: gs.Graph, ctx: PassContext) -> None:
    """``proposal_boxes`` [B,N,4] (input pixels, sorted by objectness, clipped, zero padded) and
    ``proposal_valid`` [B,N] bool."""
    outs = _outputs(graph)
    boxes, scores = outs["rpn_boxes"], outs["rpn_scores"]
    n = ctx.facts["num_proposals"]
    op = _Ops(graph, "proposals")
    if ctx.facts["nms"] == "efficient":
        picked, valid = _proposals_efficient(graph, op, boxes, scores, ctx)
    elif ctx.facts["nms"] == "none":
        picked, valid = _proposals_loop(graph, boxes, scores, ctx)
    else:
        picked, valid = _proposals_onnx(op, boxes, scores, ctx)
    upper = _clip_window(graph, op, ctx) if ctx.facts.get("letterbox") else op.c(
        "window", np.array([*ctx.facts["input_hw"]] * 2, np.float32).reshape(1, 1, 4))  # as clip_window is declared
    clipped = op("Min", [op("Max", [picked, op.c("zero", np.float32(0.0))], "clip_low"), upper], "clip_high")
    zero = op.c("pad_box", np.float32(0.0))
    (out,) = add_node(graph, "Where", [op("Unsqueeze", [valid, op.c("v_axes", [2])], "valid_3d"), clipped, zero],
                      "proposal_boxes", dtypes=[np.float32])
    out.shape = [boxes.shape[0], n, 4]
    (valid_out,) = add_node(graph, "Identity", [valid], "proposal_valid", dtypes=[np.bool_])
    valid_out.shape = [boxes.shape[0], n]
    (window,) = add_node(graph, "Identity", [upper], "clip_window", dtypes=[np.float32])
    window.shape = [boxes.shape[0] if ctx.facts.get("letterbox") else 1, 1, 4]
    if ctx.facts.get("letterbox"):  # the final boxes are clipped to it too (tfod_trt.passes.nms_head)
        ctx.facts["clip_window"] = window.name
    graph.outputs = [t for t in graph.outputs if t.name not in ("rpn_boxes", "rpn_scores")] + [out, valid_out, window]


def _clip_window(graph: gs.Graph, op: _Ops, ctx: PassContext) -> gs.Variable:
    """[B,1,4] (h, w, h, w): the true image area of each padded input, where TFOD clips the
    proposals (its first-stage clip window is the resized image before padding, from
    ``true_image_shapes``). keep_aspect_ratio_resizer pads the bottom/right with zero pixels, so
    the area ends after the last row and the last column holding a non-zero pixel (a photo whose
    own border rows are exactly black is clipped a little tighter than TFOD clips it); a black
    image keeps the whole input."""
    image = next(t for t in graph.inputs if t.name == "input_tensor")
    height, width = ctx.facts["input_hw"]
    lit = op("Greater", [_reduce_max(op, image, 3, "pixel_max", keepdims=0),
                         op.c("black", np.float32(0.0))], "lit")  # [B,H,W]
    lit = op("Cast", [lit], "lit_f", to=1)

    def extent(axis: int, size: int, name: str) -> gs.Variable:
        # rows (or columns) that hold a lit pixel, times their 1-based index: the largest is the extent
        any_lit = _reduce_max(op, lit, 3 - axis, f"{name}_lit", keepdims=0)  # [B,size]
        index = op.c(f"{name}_index", np.arange(1, size + 1, dtype=np.float32).reshape(1, size))
        last = _reduce_max(op, op("Mul", [any_lit, index], f"{name}_indexed"), 1, f"{name}_last", keepdims=1)
        return op("Where", [op("Greater", [last, op.c(f"{name}_none", np.float32(0.0))], f"{name}_found"), last,
                            op.c(f"{name}_full", np.float32(size))], f"{name}_extent")  # [B,1]

    h, w = extent(1, height, "rows"), extent(2, width, "cols")
    window = op("Concat", [h, w, h, w], "window_2d", axis=1)  # [B,4]
    return op("Unsqueeze", [window, op.c("window_axes", [1], np.int64)], "window")


def _reduce_max(op: _Ops, tensor: Any, axis: int, name: str, keepdims: int) -> gs.Variable:
    """ReduceMax over one axis; the axes became an input in opset 18."""
    if op.graph.opset >= 18:
        return op("ReduceMax", [tensor, op.c(f"{name}_axes", [axis], np.int64)], name, keepdims=keepdims)
    return op("ReduceMax", [tensor], name, axes=[axis], keepdims=keepdims)


def _proposals_onnx(op: _Ops, boxes: gs.Variable, scores: gs.Variable, ctx: PassContext) -> tuple[Any, Any]:
    """ONNX NonMaxSuppression with TFOD's (strict) thresholds, then the selected boxes in score
    order: their scores scattered into a dense [B,A] (-inf elsewhere), TopK N."""
    n, num_anchors = ctx.facts["num_proposals"], len(ctx.facts["anchors"])
    scores_t = op("Transpose", [scores], "scores_t", perm=[0, 2, 1])  # [B,1,A]
    selected = op("NonMaxSuppression", [
        boxes, scores_t, op.c("max_out", [n], np.int64),
        op.c("iou", [ctx.facts["first_stage_iou"]], np.float32),
        op.c("score", [ctx.facts["first_stage_score"]], np.float32),
    ], "nms", center_point_box=0)  # [K,3] (batch, 0, anchor)
    ba = op("Gather", [selected, op.c("ba_cols", [0, 2], np.int64)], "sel_batch_anchor", axis=1)  # [K,2]
    sel_scores = op("GatherND", [op("Squeeze", [scores, op.c("sq", [2], np.int64)], "scores_2d"), ba], "sel_scores")
    shape = op("Shape", [scores], "scores_shape")
    dense_shape = op("Slice", [shape, op.c("ds_s", [0], np.int64), op.c("ds_e", [2], np.int64)], "dense_shape")
    empty = op("Expand", [op.c("fill", [[-np.inf]], np.float32), dense_shape], "dense_empty")
    dense = op("ScatterND", [empty, ba, sel_scores], "dense_scores")  # [B,A]
    top_scores, top_index = op("TopK", [dense, op.c("k", [min(n, num_anchors)], np.int64)], "topk", num_outputs=2,
                               axis=1, largest=1, sorted=1)
    valid = op("Greater", [top_scores, op.c("valid_above", np.float32(-1.0e30))], "valid")
    picked = op("GatherND", [boxes, op("Unsqueeze", [top_index, op.c("ti_axes", [2], np.int64)], "top_index_3d")],
                "picked", batch_dims=1)
    return picked, valid


def _proposals_loop(graph: gs.Graph, boxes: gs.Variable, scores: gs.Variable, ctx: PassContext) -> tuple[Any, Any]:
    """Greedy NMS as an ONNX Loop (``trtdeploy.rewrites._nms_core``, no NonMaxSuppression, which
    TensorRT-RTX cannot build) over the LOOP_CANDIDATES best-scoring anchors (TensorRT's TopK
    limit): TFOD runs its NMS over every anchor, so a proposal past that rank is missed (none on
    the fixture's photos: its 300 proposals end far earlier). Same IoU (no +1 pixel) and strict
    thresholds as TensorFlow's NonMaxSuppression."""
    from trtdeploy.rewrites._nms_core import IouRule, Ops, merge_per_image, per_class_nms

    n, num_anchors = ctx.facts["num_proposals"], len(ctx.facts["anchors"])
    k = min(LOOP_CANDIDATES, num_anchors)
    op = Ops(graph, "proposals/loop")
    scores_c = op("Transpose", [scores], perm=[0, 2, 1])  # [B,1,A]
    valid = op("Greater", [scores_c, op.const(np.float32(ctx.facts["first_stage_score"]))])
    kept_scores, kept, cand = per_class_nms(
        op, op.unsqueeze(boxes, [1]), scores_c, valid, num_classes=1, k=k,
        iou_threshold=float(ctx.facts["first_stage_iou"]), rule=IouRule(normalized=True, caffe_semantics=False),
    )
    merged = merge_per_image(op, kept_scores, kept, cand, num_classes=1, k=k, keep_top_k=n)
    return merged.boxes, merged.valid


def _proposals_efficient(graph: gs.Graph, op: _Ops, boxes: gs.Variable, scores: gs.Variable,
                         ctx: PassContext) -> tuple[Any, Any]:
    """One EfficientNMS_TRT node (class-agnostic single class); valid = row < num_detections.
    EfficientNMS keeps score >= threshold and suppresses IoU >= threshold, TFOD > and >: both
    thresholds go in one float32 step up."""
    n = ctx.facts["num_proposals"]
    batch = boxes.shape[0]
    outputs = [gs.Variable("proposals/num", np.int32, [batch, 1]),
               gs.Variable("proposals/boxes", np.float32, [batch, n, 4]),
               gs.Variable("proposals/scores", np.float32, [batch, n]),
               gs.Variable("proposals/classes", np.int32, [batch, n])]
    attrs = {
        "plugin_version": "1",
        "score_threshold": float(np.nextafter(np.float32(ctx.facts["first_stage_score"]), np.float32(np.inf))),
        "iou_threshold": float(np.nextafter(np.float32(ctx.facts["first_stage_iou"]), np.float32(np.inf))),
        "max_output_boxes": int(n), "background_class": -1, "score_activation": 0, "class_agnostic": 1,
        "box_coding": 0,
    }
    graph.nodes.append(gs.Node("EfficientNMS_TRT", "proposals/EfficientNMS_TRT", attrs=attrs, inputs=[boxes, scores],
                               outputs=outputs))
    rows = op.c("rows", np.arange(n, dtype=np.int32).reshape(1, n))
    valid = op("Less", [rows, outputs[0]], "valid")
    return outputs[1], valid


def crop(graph: gs.Graph, ctx: PassContext) -> None:
    """The feature map cropped at the normalised proposals, as the second network's ``crops``."""
    outs = _outputs(graph)
    features, boxes = outs["feature_map"], outs["proposal_boxes"]
    crops = next((t for t in graph.inputs if t.name == CROPS_NAME), None)
    if crops is None:
        raise GraphError(f"{ctx.family}: crop expects the graph input {CROPS_NAME!r}")
    height, width = ctx.facts["input_hw"]
    op = _Ops(graph, "crop")
    rois = op("Div", [boxes, op.c("input_size", np.array([height, width, height, width], np.float32))], "rois")
    rois.shape, rois.dtype = list(boxes.shape), np.float32
    _crop_into(graph, op, features, rois, crops, ctx)
    graph.inputs = [t for t in graph.inputs if t is not crops]
    graph.outputs = [t for t in graph.outputs if t is not features]


def _crop_into(graph: gs.Graph, op: _Ops, features: gs.Tensor, rois: gs.Tensor, target: gs.Tensor,
               ctx: PassContext) -> None:
    """The NHWC feature map [B,h,w,D] cropped at ``rois`` [B,N,4] (normalised on the map) to
    ``target`` [B*N,crop,crop,D]: the CropAndResizeDynamic plugin with ``--nms efficient``, else
    the GridSample crop (TFOD's matmul crop repeats the border, its native one samples)."""
    size = ctx.facts["crop_size"]
    nchw = op("Transpose", [features], "features_nchw", perm=[0, 3, 1, 2])
    b, h, w, d = features.shape
    nchw.shape, nchw.dtype = [b, d, h, w], np.float32
    if ctx.facts["nms"] == "efficient":
        (regions,) = add_node(graph, "CropAndResizeDynamic", [nchw, rois], f"{op.scope}/CropAndResizeDynamic",
                              dtypes=[np.float32],
                              attrs={"plugin_version": "2", "crop_width": int(size), "crop_height": int(size)})
        regions.shape = [b, rois.shape[1], d, size, size]
    else:
        extrapolation = "neighbor" if ctx.facts["matmul_crop"] else "sample"
        regions = add_crop_and_resize(graph, nchw, rois, size, size, extrapolation, name=f"{op.scope}/standard")
    nhwc = op("Transpose", [regions], "regions_nhwc", perm=[0, 1, 3, 4, 2])  # [B,N,n,n,D]
    graph.nodes.append(gs.Node("Reshape", f"{op.scope}/flatten",
                               inputs=[nhwc, op.c("flat", [-1, size, size, d], np.int64)], outputs=[target]))


def second_stage(graph: gs.Graph, ctx: PassContext) -> None:
    """Refined boxes ``boxes`` [B,N,4] (or [B,N,C,4] per class) normalised on the input and
    class scores ``scores`` [B,N,C] (background dropped, padding proposals -1)."""
    outs = _outputs(graph)
    enc, proposals_px, valid = outs["second_box_encodings"], outs["proposal_boxes"], outs["proposal_valid"]
    batch, n, q = enc.shape[0], enc.shape[1], enc.shape[2]
    num_classes = ctx.facts["num_classes"]
    if q not in (1, num_classes):
        raise GraphError(f"{ctx.family}: {q} box encodings per proposal; expected 1 (shared) or {num_classes}")
    op = _Ops(graph, "second_stage")
    scales = np.asarray(ctx.facts["second_scales"], np.float32)
    anchors = op("Unsqueeze", [proposals_px, op.c("anchor_axes", [2], np.int64)], "anchors")  # [B,N,1,4]
    a_low = op("Slice", [anchors, op.c("s0", [0]), op.c("e0", [2]), op.c("ax", [3])], "anchor_low")
    a_high = op("Slice", [anchors, op.c("s1", [2]), op.c("e1", [4]), op.c("ax1", [3])], "anchor_high")
    a_size = op("Sub", [a_high, a_low], "anchor_size")
    a_centre = op("Div", [op("Add", [a_low, a_high], "anchor_sum"), op.c("two", np.float32(2.0))], "anchor_centre")
    t = op("Div", [enc, op.c("scales", scales)], "scaled")
    t_centre = op("Slice", [t, op.c("s2", [0]), op.c("e2", [2]), op.c("ax2", [3])], "t_centre")
    t_size = op("Slice", [t, op.c("s3", [2]), op.c("e3", [4]), op.c("ax3", [3])], "t_size")
    centre = op("Add", [op("Mul", [t_centre, a_size], "centre_mul"), a_centre], "centre")
    half = op("Div", [op("Mul", [op("Exp", [t_size], "exp"), a_size], "size"), op.c("two2", np.float32(2.0))], "half")
    corners = op("Concat", [op("Sub", [centre, half], "low"), op("Add", [centre, half], "high")], "corners", axis=3)
    height, width = ctx.facts["input_hw"]
    normalised = op("Div", [corners, op.c("input_size", np.array([height, width, height, width], np.float32))],
                    "normalised")  # [B,N,q,4]
    visible = _visible(op, corners, outs["clip_window"])  # [B,N,q]
    shape = [0, n, 4] if q == 1 else [0, n, q, 4]
    boxes = gs.Variable("boxes", dtype=np.float32)
    graph.nodes.append(gs.Node("Reshape", "second_stage/boxes", inputs=[normalised, op.c("box_shape", shape, np.int64)],
                               outputs=[boxes]))
    boxes.shape = [batch, n, 4] if q == 1 else [batch, n, q, 4]
    class_scores = op("Slice", [outs["second_scores"], op.c("cs", [1]), op.c("ce", [num_classes + 1]), op.c("ca", [2])],
                      "class_scores")
    invalid = np.float32(INVALID_SCORE if ctx.facts["nms"] != "none" else 0.0)
    keep = op("And", [op("Unsqueeze", [valid, op.c("v_axes", [2], np.int64)], "valid_3d"), visible], "keep")
    (scores,) = add_node(graph, "Where", [keep, class_scores, op.c("invalid", invalid)], "scores", dtypes=[np.float32])
    scores.shape = [batch, n, num_classes]
    ctx.facts["background"] = "column 0 of the second-stage class predictions (background) dropped"
    graph.outputs = [boxes, scores, *(t for t in graph.outputs if t.name == MASK_OUTPUT)]


def _visible(op: _Ops, corners: gs.Tensor, window: gs.Tensor) -> gs.Variable:
    """[B,N,q] whether a decoded box keeps some area once clipped to the true image area: TFOD
    clips its second-stage detections to that window and, its second-stage NMS not padding
    (batch_non_max_suppression.use_static_shapes is false), drops the ones left with no area
    before taking max_total_detections (post_processing.py ``_clip_window_prune_boxes``). Here
    they are dropped before the NMS (a dropped box no longer suppresses a visible one; rare,
    as it lies in the padding)."""
    win = op("Unsqueeze", [window, op.c("win_axes", [2], np.int64)], "window_4d")  # [B,1,1,4]
    clipped = op("Min", [op("Max", [corners, op.c("zero", np.float32(0.0))], "vis_low"), win], "vis_clip")
    low = op("Slice", [clipped, op.c("vs0", [0]), op.c("ve0", [2]), op.c("vax0", [3])], "vis_low_corner")
    high = op("Slice", [clipped, op.c("vs1", [2]), op.c("ve1", [4]), op.c("vax1", [3])], "vis_high_corner")
    extent = op("Sub", [high, low], "vis_extent")  # [B,N,q,2]
    ext_y = op("Slice", [extent, op.c("vs2", [0]), op.c("ve2", [1]), op.c("vax2", [3])], "vis_height")
    ext_x = op("Slice", [extent, op.c("vs3", [1]), op.c("ve3", [2]), op.c("vax3", [3])], "vis_width")
    area = op("Squeeze", [op("Mul", [ext_y, ext_x], "vis_area_4d"), op.c("vis_sq", [3], np.int64)], "vis_area")
    return op("Greater", [area, op.c("no_area", np.float32(0.0))], "visible")


def nms_head_beside_masks(graph: gs.Graph, ctx: PassContext) -> None:
    """A Mask R-CNN's NMS head: TFOD's four tensors whatever the layout asked for (``masks``
    shapes them with the masks into it), the mask network's output kept beside them.
    ``--nms none`` has no final boxes to crop the masks at."""
    if ctx.facts["nms"] not in MASK_HEADS:
        raise UsageError(f"{ctx.family}: --nms {ctx.facts['nms']} has no final detection boxes to crop the masks at; "
                         f"Mask R-CNN needs --nms {' or '.join(MASK_HEADS)}")
    layout = ctx.facts["output_layout"]
    if layout not in ("tfod", "deepstream"):
        raise UsageError(f"{ctx.family}: output layout {layout!r}: Mask R-CNN makes tfod (tfod-masks) or deepstream "
                         "(ds/mrcnn) outputs")
    ctx.facts["mask_layout"] = layout
    ctx.facts["output_layout"], ctx.facts["ds_parser"] = "tfod", None
    kept = [t for t in graph.outputs if t.name == MASK_OUTPUT]
    graph.outputs = [t for t in graph.outputs if t.name != MASK_OUTPUT]
    nms_head(graph, ctx)
    graph.outputs = [*graph.outputs, *kept]


def _mask_crop(graph: gs.Graph, ctx: PassContext) -> None:
    """The feature map cropped at the final detection boxes as the mask network's ``mask_crops``.

    TFOD crops at its ``detection_boxes`` (tensorflow/models research/object_detection, TFOD
    2.8.0 meta_architectures/faster_rcnn_meta_arch.py: ``predict`` passes true_image_shapes to
    ``_predict_third_stage`` l.833-834, which post-processes with them l.1226-1231 and crops at
    the result l.1240-1242): boxes clipped to the true image area and normalised on it
    (``_postprocess_box_classifier``: ``clip_window`` from those shapes l.2106,
    ``change_coordinate_frame=True`` l.2130), which the crop reads as normalised on the whole
    (padded) feature map. Ours are normalised on
    the network input, so they go to pixels, are clipped to the clip window and divided by it:
    the same numbers (with fixed_shape_resizer the window is the input and nothing changes)."""
    tensors = graph.tensors()
    outs = _outputs(graph)
    boxes = outs["detection_boxes"]
    target = next((t for t in graph.inputs if t.name == MASK_CROPS_NAME), None)
    if target is None or "feature_map" not in tensors or "clip_window" not in tensors:
        raise GraphError(f"{ctx.family}: mask_crop expects the input {MASK_CROPS_NAME!r} and the tensors feature_map "
                         "and clip_window")
    height, width = ctx.facts["input_hw"]
    op = _Ops(graph, "mask_crop")
    pixels = op("Mul", [boxes, op.c("input_size", np.array([height, width, height, width], np.float32))], "pixels")
    window = tensors["clip_window"]  # [B or 1, 1, 4] (h, w, h, w) of the true image area
    clipped = op("Min", [op("Max", [pixels, op.c("zero", np.float32(0.0))], "clip_low"), window], "clip_high")
    rois = op("Div", [clipped, window], "rois")
    rois.shape, rois.dtype = list(boxes.shape), np.float32
    _crop_into(graph, op, tensors["feature_map"], rois, target, ctx)
    graph.inputs = [t for t in graph.inputs if t is not target]


def masks(graph: gs.Graph, ctx: PassContext) -> None:
    """The mask crop (``_mask_crop``), then ``mask_logits`` [B*K,1,C,h,w] -> [B,K,C,h,w] and the
    ``tfod-masks`` outputs (TFOD's four tensors + detection_masks) or the ``ds/mrcnn`` pair, and
    the card's output section to match."""
    from trtdeploy.masks import add_deepstream_masks, add_tfod_masks, ds_output_spec, tfod_output_spec

    _mask_crop(graph, ctx)
    outs = _outputs(graph)
    logits = outs[MASK_OUTPUT]
    count, boxes, scores, classes = (outs[n] for n in TFOD_NAMES)
    num_masks, mask_h, mask_w = ctx.facts["mask_shape"]
    k = boxes.shape[1]
    op = _Ops(graph, "masks")
    (per_class,) = add_node(graph, "Reshape", [logits, op.c("shape", [-1, k, num_masks, mask_h, mask_w], np.int64)],
                            "masks/per_class", dtypes=[np.float32])
    per_class.shape = [boxes.shape[0], k, num_masks, mask_h, mask_w]
    num_classes = ctx.facts["num_classes"]
    spec = ctx.facts["output_spec"]
    if ctx.facts["mask_layout"] == "deepstream":
        if num_masks == 1 and num_classes > 1:  # class-agnostic masks: the parser picks block class_id of C
            (per_class,) = add_node(graph, "Expand", [per_class, op.c("classes", [1, 1, num_classes, 1, 1], np.int64)],
                                    "masks/every_class", dtypes=[np.float32])
            per_class.shape = [boxes.shape[0], k, num_classes, mask_h, mask_w]
        graph.outputs = add_deepstream_masks(graph, count, boxes, scores, classes, per_class, ctx.facts["input_hw"],
                                             "logits", ctx.family)
        ctx.facts["output_spec"] = ds_output_spec(spec)
    else:
        detection_masks = add_tfod_masks(graph, per_class, classes, "logits", family=ctx.family)
        graph.outputs = [count, boxes, scores, classes, detection_masks]
        ctx.facts["output_spec"] = tfod_output_spec(spec)


CORE_PASSES = [
    ("stable_names", stable_names),
    ("name_two_stage_io", name_two_stage_io),
    ("first_stage", first_stage),
]
HEAD_PASSES = [
    ("proposals", proposals),
    ("crop", crop),
    ("second_stage", second_stage),
    ("nms_head", nms_head),
]

MASK_PASSES = [
    *((name, nms_head_beside_masks if name == "nms_head" else graph_pass) for name, graph_pass in HEAD_PASSES),
    ("masks", masks),
]

__all__ = ["CORE_PASSES", "HEAD_PASSES", "MASK_HEADS", "MASK_PASSES"]
