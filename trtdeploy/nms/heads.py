"""NMS heads: append non-maximum suppression with a fixed output contract to a detector graph.

``add_nms_head`` takes decoded boxes and activated per-class scores and appends one of:

* ``efficient``: one EfficientNMS_TRT plugin node (TensorRT 8.x-10.x; deprecated in 11).
* ``batched``: one BatchedNMSDynamic_TRT plugin node (TensorRT <= 10). The dynamic-shape
  variant of BatchedNMS_TRT is emitted because only it takes an explicit (and possibly
  dynamic) batch dimension; both have the same attributes and outputs.
* ``onnx``: standard ONNX NonMaxSuppression plus plain ops, padded to exactly the
  EfficientNMS outputs (TensorRT builds it with its NMS layer; ONNX Runtime runs it natively).
* ``none``: no NMS; decoded boxes and scores become the outputs (DeepStream clusters them).

Output contracts (trtdeploy.contracts; B = batch, K = ``params.max_detections``, A boxes,
C classes), chosen by ``layout`` (+ ``ds_parser``) and the boxes' shape:

* ``tfod`` (efficient, onnx): ``num_detections`` int32 [B,1], ``detection_boxes`` float32
  [B,K,4] normalised y1,x1,y2,x2, ``detection_scores`` float32 [B,K], ``detection_classes``
  int32 [B,K], 0-based; rows past num_detections are zero.
* ``deepstream`` (efficient, onnx): the four tensors one DeepStream bbox parser variant reads
  (``ds_parser``, a key of ``contracts.ds_contracts()``): names, order, count dtype, box order
  and units and class dtype exactly as that parser's source reads them. Without a variant:
  ``sdk-efficientdet`` (what this layout always was).
* ``batched`` (batched): ``num_detections`` int32 [B,1], ``nmsed_boxes`` float32 [B,K,4]
  normalised y1,x1,y2,x2 clipped to [0,1], ``nmsed_scores`` float32 [B,K], ``nmsed_classes``
  float32 [B,K]; padding rows have class -1. With ``ds_parser="batchednms"`` the boxes are
  x1,y1,x2,y2 (the order NvDsInferParseCustomBatchedNMSTLT reads).
* ``raw`` (none): ``boxes`` float32 [B,A,4], ``scores`` float32 [B,A,C]; with per-class boxes
  the ``raw-per-class`` contract: ``boxes`` [B,A,C,4].

Boxes may be shared by all classes [B,A,4] or one per class [B,A,C,4] (two-stage detectors):
every head takes both (EfficientNMS_TRT: shareLocation is boxes d[2] == 1, else d[2] must be
numClasses, NVIDIA/TensorRT release/10.16 plugin/efficientNMSPlugin/efficientNMSPlugin.cpp
l.330-336; the onnx head runs one
NonMaxSuppression batch entry per image and class), except class-agnostic onnx NMS.

Every node and intermediate tensor this module adds is named ``nms/...``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from trtdeploy import contracts
from trtdeploy.contracts import BATCHED_NAMES, TFOD_NAMES, OutputContract
from trtdeploy.deploy_card import NmsParams, OutputSpec
from trtdeploy.errors import GraphError, UsageError
from trtdeploy.graph_passes import add_node, const
from trtdeploy.nms.onnx_head import add_onnx_nms
from trtdeploy.nms.reference import BATCHED_NMS_MAX_TOP_K

NMS_KINDS = ("efficient", "batched", "onnx", "none")

# Which output layouts each kind can produce (from the contract registry); the first is the
# default. Per-class boxes pick their own contract, so they are not a choice here.
KIND_LAYOUTS: dict[str, tuple[str, ...]] = {
    kind: tuple(dict.fromkeys(c.layout for c in contracts.for_head(kind) if not c.per_class_boxes))
    for kind in NMS_KINDS
}

RAW_NAMES = contracts.RAW_NAMES
# The heads that take per-class boxes [B,A,C,4] (see the module docstring).
PER_CLASS_KINDS = ("efficient", "batched", "onnx", "none")
# The heads whose box outputs are already clipped to [0, 1] (BatchedNMS: clipBoxes 1).
SELF_CLIPPING_HEADS = ("batched",)


def ds_variants_for(kind: str) -> list[str]:
    """The DeepStream parser variants an NMS head can produce outputs for."""
    return contracts.ds_variants_for(kind)


def add_nms_head(
    graph: gs.Graph,
    boxes: gs.Variable,
    scores: gs.Variable,
    kind: str,
    params: NmsParams,
    layout: str,
    input_hw: tuple[int, int],
    ds_parser: str | None = None,
) -> OutputSpec:
    """Append an NMS head of ``kind`` to ``graph`` and make its outputs the graph outputs.

    ``boxes``: float32 [B,A,4] (or per class [B,A,C,4]) decoded, normalised y1,x1,y2,x2 in
    [0,1]; ``scores``: float32 [B,A,C] activated, background removed. B may be dynamic; A and
    C must be static. ``layout`` must be one of ``KIND_LAYOUTS[kind]``; ``input_hw`` (network
    input height, width) scales boxes to pixels for the pixel-box DeepStream contracts. ``ds_parser``
    (a DeepStream parser variant key) shapes the outputs for that parser; it must match
    ``kind`` and ``layout``. Returns the OutputSpec of the new outputs. Raises UsageError for
    bad options and GraphError for bad tensors.
    """
    out = _choose_contract(kind, layout, ds_parser)
    batch, num_anchors, num_classes, per_class = _check_inputs(boxes, scores)
    if per_class and kind not in PER_CLASS_KINDS:
        raise UsageError(
            f"the {kind} NMS head takes boxes shared by all classes [B,A,4] (ONNX NonMaxSuppression has no "
            f"per-class boxes), got {boxes.name!r} {boxes.shape}; use --nms {' or '.join(PER_CLASS_KINDS[:2])}"
        )
    if per_class and kind == "onnx" and params.class_agnostic:
        raise UsageError("the onnx NMS head cannot do class-agnostic NMS over per-class boxes; use --nms efficient")
    if per_class and kind == "none":
        out = contracts.contract("raw-per-class")
    _check_params(params, kind)
    if out.box_units == "pixels":
        _check_input_hw(input_hw)

    if kind == "none":
        shapes = out.shapes(batch, params.max_detections, num_anchors, num_classes)
        graph.outputs = [
            _identity(graph, boxes, RAW_NAMES[0], np.float32, shapes[0]),
            _identity(graph, scores, RAW_NAMES[1], np.float32, shapes[1]),
        ]
    elif kind == "batched":
        if out.box_format == "x1y1x2y2":
            # The plugin's IoU and clipping are the same in either order; the parser is not.
            boxes = _swap_xy(graph, boxes, "nms/boxes_x1y1x2y2")
        graph.outputs = _batched_head(graph, boxes, scores, params, batch, num_anchors, num_classes)
    else:
        graph.outputs = _nms_then_shape(graph, boxes, scores, kind, params, out, input_hw,
                                        (batch, num_anchors, num_classes))
    return OutputSpec(
        nms=kind,  # type: ignore[arg-type]
        layout=out.layout,
        names=list(out.names),
        num_classes=num_classes,
        box_format=out.box_format,
        box_units=out.box_units,
        class_dtype=out.class_dtype,
        max_detections=params.max_detections,
        count_dtype=out.count_dtype,
        ds_parser=out.ds_parser,
        contract=out.key,
    )


def _choose_contract(kind: str, layout: str, ds_parser: str | None) -> OutputContract:
    """The registered contract for (kind, layout, ds_parser); UsageError for a bad combination."""
    if kind not in NMS_KINDS:
        raise UsageError(f"unknown NMS kind {kind!r}; choose one of {', '.join(NMS_KINDS)}")
    if layout not in KIND_LAYOUTS[kind]:
        raise UsageError(
            f"NMS kind {kind!r} cannot produce output layout {layout!r}; it supports {', '.join(KIND_LAYOUTS[kind])}"
        )
    if ds_parser is None:  # a deepstream layout without a variant is the legacy one (contracts)
        return contracts.contract_for_output(layout)
    shaped = contracts.ds_contracts().get(ds_parser)
    if shaped is None:
        known = ", ".join(contracts.ds_contracts())
        raise UsageError(f"unknown DeepStream parser variant {ds_parser!r}; choose one of {known}")
    if kind not in shaped.heads or layout != shaped.layout:
        raise UsageError(
            f"DeepStream parser variant {ds_parser} needs --nms {' or '.join(shaped.heads)}; "
            f"--nms {kind} can feed {', '.join(ds_variants_for(kind)) or 'no DeepStream parser'}"
        )
    return shaped


def _nms_then_shape(
    graph: gs.Graph,
    boxes: gs.Variable,
    scores: gs.Variable,
    kind: str,
    params: NmsParams,
    out: OutputContract,
    input_hw: tuple[int, int],
    dims: tuple[Any, int, int],
) -> list[gs.Variable]:
    """The EfficientNMS-shaped heads (efficient, onnx), reshaped for a DeepStream parser."""
    batch, num_anchors, num_classes = dims
    # For a DeepStream contract the NMS outputs are intermediate tensors named nms/...
    nms_names = TFOD_NAMES if not out.ds_parser else tuple(f"nms/{name}" for name in TFOD_NAMES)
    for name in nms_names + (out.names if out.ds_parser else ()):
        _refuse_taken_name(graph, name)
    if kind == "efficient":
        outputs = _efficient_head(graph, boxes, scores, params, batch, nms_names)
    else:
        outputs = add_onnx_nms(graph, boxes, scores, params, batch, num_anchors, num_classes, nms_names)
    if out.ds_parser:
        outputs = to_deepstream(graph, outputs, input_hw, batch, params.max_detections, out)
    return outputs


def _check_inputs(boxes: gs.Variable, scores: gs.Variable) -> tuple[Any, int, int, bool]:
    """Validate shapes; return (batch dim for output shapes, A, C, per-class boxes)."""
    per_class = boxes.shape is not None and len(boxes.shape) == 4
    for tensor, what, rank in ((boxes, "boxes [B,A,4] or [B,A,C,4]", 4 if per_class else 3),
                               (scores, "scores [B,A,C]", 3)):
        if tensor.shape is None or len(tensor.shape) != rank:
            raise GraphError(
                f"NMS head: {what} input {tensor.name!r} must be {rank}-D, got shape {tensor.shape}"
            )
        if tensor.dtype is not None and np.dtype(tensor.dtype) != np.float32:
            raise GraphError(
                f"NMS head: {what} input {tensor.name!r} must be float32, got {tensor.dtype}"
            )
    num_anchors, last = boxes.shape[1], boxes.shape[-1]
    num_classes = scores.shape[2]
    if last != 4:
        raise GraphError(
            f"NMS head: boxes {boxes.name!r} must end in 4 coordinates, got shape {boxes.shape}"
        )
    for value, what in ((num_anchors, "number of boxes A"), (num_classes, "number of classes C")):
        if not isinstance(value, int) or value <= 0:
            raise GraphError(
                f"NMS head: the {what} must be static, got {value!r} (boxes {boxes.shape}, scores {scores.shape}); "
                "fix the input shape before surgery"
            )
    if scores.shape[1] != num_anchors:
        raise GraphError(
            f"NMS head: boxes {boxes.shape} and scores {scores.shape} disagree on the number of boxes"
        )
    if per_class and boxes.shape[2] != num_classes:
        raise GraphError(
            f"NMS head: per-class boxes {boxes.shape} must have one box per class of scores {scores.shape}"
        )
    batch = boxes.shape[0]
    if not (isinstance(batch, str) or (isinstance(batch, int) and batch > 0)):
        batch = "batch"
    return batch, num_anchors, num_classes, per_class


def _check_params(params: NmsParams, kind: str) -> None:
    if params.max_detections < 1:
        raise UsageError(f"max_detections must be >= 1, got {params.max_detections}")
    if not 0.0 <= params.iou_threshold <= 1.0:
        raise UsageError(f"iou_threshold must be in [0, 1], got {params.iou_threshold}")
    if kind == "onnx" and params.max_detections_per_class < 1:
        raise UsageError(
            f"max_detections_per_class must be >= 1 for the onnx head (0 would select nothing), "
            f"got {params.max_detections_per_class}"
        )


def _check_input_hw(input_hw: tuple[int, int]) -> None:
    if len(input_hw) != 2 or not all(isinstance(v, int) and v > 0 for v in input_hw):
        raise UsageError(
            f"input_hw must be (height, width) in pixels for the deepstream layout, got {input_hw!r}"
        )


def _output(name: str, dtype: Any, shape: list[Any]) -> gs.Variable:
    return gs.Variable(name, dtype=dtype, shape=shape)


def _identity(
    graph: gs.Graph, tensor: gs.Variable, name: str, dtype: Any, shape: list[Any]
) -> gs.Variable:
    """``tensor`` exposed under ``name`` (through an Identity unless it already has that name)."""
    if tensor.name == name and tensor not in graph.inputs:
        tensor.dtype, tensor.shape = dtype, shape
        return tensor
    _refuse_taken_name(graph, name)
    out = _output(name, dtype, shape)
    graph.nodes.append(gs.Node("Identity", name=f"nms/{name}", inputs=[tensor], outputs=[out]))
    return out


def _refuse_taken_name(graph: gs.Graph, name: str) -> None:
    if name in graph.tensors():
        raise GraphError(
            f"NMS head: the graph already has a tensor named {name!r}; rename it before adding the head"
        )


def _detection_outputs(
    names: tuple[str, ...], batch: Any, k: int, class_dtype: Any
) -> list[gs.Variable]:
    return [
        _output(names[0], np.int32, [batch, 1]),
        _output(names[1], np.float32, [batch, k, 4]),
        _output(names[2], np.float32, [batch, k]),
        _output(names[3], class_dtype, [batch, k]),
    ]


def _efficient_head(
    graph: gs.Graph,
    boxes: gs.Variable,
    scores: gs.Variable,
    params: NmsParams,
    batch: Any,
    names: tuple[str, ...],
) -> list[gs.Variable]:
    """One EfficientNMS_TRT node. It has no per-class limit: max_detections_per_class is unused."""
    outputs = _detection_outputs(names, batch, params.max_detections, np.int32)
    attrs = {
        "plugin_version": "1",
        "score_threshold": float(params.score_threshold),
        "iou_threshold": float(params.iou_threshold),
        "max_output_boxes": int(params.max_detections),
        "background_class": -1,
        "score_activation": 0,
        "class_agnostic": int(bool(params.class_agnostic)),
        "box_coding": 0,
    }
    graph.nodes.append(
        gs.Node(
            "EfficientNMS_TRT",
            name="nms/EfficientNMS_TRT",
            attrs=attrs,
            inputs=[boxes, scores],
            outputs=outputs,
        )
    )
    return outputs


def _batched_head(
    graph: gs.Graph,
    boxes: gs.Variable,
    scores: gs.Variable,
    params: NmsParams,
    batch: Any,
    num_anchors: int,
    num_classes: int,
) -> list[gs.Variable]:
    """Boxes -> [B,A,1,4], then one BatchedNMSDynamic_TRT node.

    topK (candidates per class fed to NMS) = min(4096, A): the plugin refuses more than 4096
    and reads past the class when topK > A. keepTopK = K must not exceed topK, or the plugin
    writes no outputs.
    """
    if params.class_agnostic:
        raise UsageError(
            "the batched NMS head cannot do class-agnostic NMS; use --nms efficient or onnx"
        )
    top_k = min(BATCHED_NMS_MAX_TOP_K, num_anchors)
    if params.max_detections > top_k:
        raise UsageError(
            f"batched NMS keeps at most topK = min(4096, boxes) = {top_k} detections but max_detections is "
            f"{params.max_detections}; lower max_detections"
        )
    for name in BATCHED_NAMES:
        _refuse_taken_name(graph, name)
    # Shared boxes become [B,A,1,4] (shareLocation 1); per-class boxes [B,A,C,4] go in as they are.
    share = len(boxes.shape) == 3
    boxes4 = _unsqueeze(graph, boxes, axis=2, name="nms/boxes_per_class") if share else boxes
    outputs = _detection_outputs(BATCHED_NAMES, batch, params.max_detections, np.float32)
    attrs = {
        "plugin_version": "1",
        "shareLocation": int(share),
        "backgroundLabelId": -1,
        "numClasses": int(num_classes),
        "topK": int(top_k),
        "keepTopK": int(params.max_detections),
        "scoreThreshold": float(params.score_threshold),
        "iouThreshold": float(params.iou_threshold),
        "isNormalized": 1,
        "clipBoxes": 1,
        # Default; only FP16 engines look at it (values 1..10 sort fewer mantissa bits).
        "scoreBits": 16,
    }
    graph.nodes.append(
        gs.Node(
            "BatchedNMSDynamic_TRT",
            name="nms/BatchedNMSDynamic_TRT",
            attrs=attrs,
            inputs=[boxes4, scores],
            outputs=outputs,
        )
    )
    return outputs


def _unsqueeze(graph: gs.Graph, tensor: gs.Tensor, axis: int, name: str) -> gs.Variable:
    """Unsqueeze one axis, as an attribute before opset 13 and as an input from 13 on."""
    if graph.opset >= 13:
        return add_node(
            graph, "Unsqueeze", [tensor, const(f"{name}/axes", np.array([axis], np.int64))], name
        )[0]
    return add_node(graph, "Unsqueeze", [tensor], name, attrs={"axes": [axis]})[0]


def _swap_xy(graph: gs.Graph, boxes: gs.Variable, name: str) -> gs.Variable:
    """[..., 4] y1,x1,y2,x2 <-> x1,y1,x2,y2 (the same permutation both ways)."""
    order = const(f"{name}/order", np.array([1, 0, 3, 2], np.int64))
    axis = len(boxes.shape) - 1 if boxes.shape is not None else 2
    (out,) = add_node(graph, "Gather", [boxes, order], name, dtypes=[np.float32], attrs={"axis": axis})
    out.shape = list(boxes.shape) if boxes.shape is not None else None
    return out


_NP_DTYPES = {"int32": np.int32, "float32": np.float32}
_ONNX_DTYPES = {"int32": onnx.TensorProto.INT32, "float32": onnx.TensorProto.FLOAT}


def to_deepstream(
    graph: gs.Graph,
    outputs: list[gs.Variable],
    input_hw: tuple[int, int],
    batch: Any,
    k: int,
    ds: OutputContract,
) -> list[gs.Variable]:
    """Turn the tfod tensors (int32 count, normalised y1,x1,y2,x2, int32 classes) into exactly
    what one DeepStream parser variant reads (trtdeploy.contracts cites the source of each fact).

    Parsers read the buffers as raw memory, so a dtype is never left to chance: the count and
    class tensors are cast (or passed through) to the variant's dtype.
    """
    height, width = input_hw
    num, boxes, scores, classes = outputs
    out = [
        _output(ds.names[0], _NP_DTYPES[ds.count_dtype], [batch, 1]),
        _output(ds.names[1], np.float32, [batch, k, 4]),
        _output(ds.names[2], np.float32, [batch, k]),
        _output(ds.names[3], _NP_DTYPES[ds.class_dtype], [batch, k]),
    ]
    if ds.box_format == "x1y1x2y2":
        boxes = _swap_xy(graph, boxes, "nms/deepstream/boxes_xy")
    if ds.box_units == "pixels":
        along = [height, width] if ds.box_format == "y1x1y2x2" else [width, height]
        scale = const("nms/deepstream/pixel_scale", np.array(along * 2, np.float32))
        box_node = gs.Node("Mul", name="nms/deepstream/to_pixels", inputs=[boxes, scale], outputs=[out[1]])
    else:
        box_node = gs.Node("Identity", name="nms/deepstream/boxes", inputs=[boxes], outputs=[out[1]])
    graph.nodes.extend(
        [
            _cast_or_identity("nms/deepstream/count", num, out[0], ds.count_dtype, "int32"),
            box_node,
            gs.Node("Identity", name="nms/deepstream/scores", inputs=[scores], outputs=[out[2]]),
            _cast_or_identity("nms/deepstream/classes", classes, out[3], ds.class_dtype, "int32"),
        ]
    )
    return out


def _cast_or_identity(name: str, tensor: gs.Tensor, out: gs.Variable, want: str, have: str) -> gs.Node:
    if want == have:
        return gs.Node("Identity", name=name, inputs=[tensor], outputs=[out])
    return gs.Node("Cast", name=name, attrs={"to": _ONNX_DTYPES[want]}, inputs=[tensor], outputs=[out])
