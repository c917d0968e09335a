"""Instance-mask outputs as graph passes: TFOD's ``detection_masks`` and the DeepStream Mask R-CNN shape.

A Mask R-CNN graph, once converted, predicts one mask per detection AND per class: a tensor
``[B, K, C, mask_h, mask_w]`` (logits, or probabilities when the sigmoid is already applied)
beside TFOD's four detection tensors (count ``[B,1]``, normalised y1,x1,y2,x2 boxes ``[B,K,4]``,
scores ``[B,K]``, 0-based classes ``[B,K]``). Two output contracts (trtdeploy.contracts) are
made from it:

* ``tfod-masks`` (:func:`add_tfod_masks`): ``detection_masks [B,K,mask_h,mask_w]``, the
  detected class's mask after a sigmoid, as TFOD's postprocess returns it (gather at
  detection_classes, then ``tf.sigmoid``: tensorflow/models research/object_detection/
  meta_architectures/faster_rcnn_meta_arch.py, ``_gather_instance_masks`` and the sigmoid in
  ``_postprocess_box_classifier``'s mask branch).
* ``ds/mrcnn`` (:func:`add_deepstream_masks`, :func:`shape_for_deepstream`): exactly what
  DeepStream's NvDsInferParseCustomMrcnnTLTV2 reads (``trtdeploy.deepstream.parsers.MRCNN_LAYOUT``,
  read in the DeepStream 9.0 source): ``generate_detections [B,K,6]`` rows of float32 y1,x1,y2,x2
  in network-input PIXELS, class id, score, with every row past the detection count zeroed (the
  parser has no count tensor: it reads all K rows, and drops a zero-score, zero-size row), and
  ``mask_fcn_logits/BiasAdd [B,K,C,mask_h,mask_w]``: per-class mask LOGITS (the parser copies
  the block of the detected class unchanged; nvinfer binarises it at segmentation-threshold,
  which cannot be negative, so logits with threshold 0 are probability 0.5).

The boxes must be normalised to the network input (the tensor nvinfer fills): the pixel scale is
the input's height and width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from trtdeploy import contracts
from trtdeploy.contracts import MASK_NAME, MRCNN_NAMES, TFOD_NAMES
from trtdeploy.deploy_card import OutputSpec
from trtdeploy.errors import GraphError, UsageError
from trtdeploy.graph_passes import PassContext, add_node, const, run_passes
from trtdeploy.log import get_logger

log = get_logger("masks")

ACTIVATIONS = ("logits", "sigmoid")  # what the per-class mask tensor holds
# Probabilities are turned into logits as log(p) - log(1 - p) after clipping to [EPS, 1 - EPS]:
# finite values, and the sign (what segmentation-threshold=0 keeps) is unchanged.
EPS = 1e-7
MIN_OPSET = 13  # Unsqueeze with an axes input, GatherND with batch_dims, integer Clip


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise UsageError(f"mask activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")


def _check_opset(graph: gs.Graph, family: str) -> None:
    if graph.opset < MIN_OPSET:
        raise GraphError(
            f"{family}: the mask passes need ONNX opset >= {MIN_OPSET}, the graph has opset {graph.opset}; "
            f"convert with --opset {MIN_OPSET} or later"
        )


def per_class_dims(per_class: gs.Tensor, family: str) -> tuple[int, int, int]:
    """(C, mask_h, mask_w) of a per-class mask tensor [B,K,C,h,w]; they must be static."""
    shape = list(per_class.shape or [])
    if len(shape) != 5 or not all(isinstance(d, int) and d > 0 for d in shape[2:]):
        raise GraphError(
            f"{family}: the per-class mask tensor {per_class.name!r} has shape {shape}; expected "
            "[batch, detections, classes, mask_height, mask_width] with static classes and mask size"
        )
    return int(shape[2]), int(shape[3]), int(shape[4])


def _detections_k(tensor: gs.Tensor, family: str) -> int:
    shape = list(tensor.shape or [])
    if len(shape) < 2 or not isinstance(shape[1], int) or shape[1] <= 0:
        raise GraphError(f"{family}: {tensor.name!r} has shape {shape}; the detection count K must be static")
    return int(shape[1])


def _unsqueeze_last(graph: gs.Graph, tensor: gs.Tensor, name: str) -> gs.Variable:
    return add_node(graph, "Unsqueeze", [tensor, const(f"{name}/axes", np.array([-1], np.int64))], name)[0]


def gather_class_masks(graph: gs.Graph, per_class: gs.Tensor, classes: gs.Tensor, prefix: str,
                       family: str = "Mask R-CNN") -> gs.Variable:
    """[B,K,C,h,w] at each row's class ([B,K], any int or float dtype) -> [B,K,h,w].

    The class is clipped to [0, C-1] first: padding rows may carry any class (-1 in some NMS
    heads), and GatherND refuses an index out of range."""
    _check_opset(graph, family)
    num_classes, mask_h, mask_w = per_class_dims(per_class, family)
    index = add_node(graph, "Cast", [classes], f"{prefix}/class_index", attrs={"to": onnx.TensorProto.INT64})[0]
    index = add_node(graph, "Clip", [index, const(f"{prefix}/class_min", np.array(0, np.int64)),
                                     const(f"{prefix}/class_max", np.array(num_classes - 1, np.int64))],
                     f"{prefix}/class_clipped")[0]
    index = _unsqueeze_last(graph, index, f"{prefix}/class_index_nd")
    picked = add_node(graph, "GatherND", [per_class, index], f"{prefix}/class_mask", attrs={"batch_dims": 2})[0]
    picked.dtype = np.float32
    picked.shape = list(per_class.shape[:2]) + [mask_h, mask_w]
    return picked


def add_tfod_masks(graph: gs.Graph, per_class: gs.Tensor, classes: gs.Tensor, activation: str = "logits",
                   name: str = MASK_NAME, family: str = "Mask R-CNN") -> gs.Variable:
    """TFOD's ``detection_masks`` [B,K,h,w]: the detected class's mask as a probability."""
    _check_activation(activation)
    picked = gather_class_masks(graph, per_class, classes, "masks/tfod", family)
    out = gs.Variable(name, dtype=np.float32, shape=list(picked.shape))
    op = "Sigmoid" if activation == "logits" else "Identity"
    graph.nodes.append(gs.Node(op, name="masks/tfod/probabilities", inputs=[picked], outputs=[out]))
    return out


def _as_logits(graph: gs.Graph, per_class: gs.Tensor, activation: str) -> gs.Tensor:
    if activation == "logits":
        return per_class
    p = add_node(graph, "Clip", [per_class, const("masks/ds/eps", np.array(EPS, np.float32)),
                                 const("masks/ds/one_minus_eps", np.array(1 - EPS, np.float32))], "masks/ds/clipped")[0]
    q = add_node(graph, "Sub", [const("masks/ds/one", np.array(1, np.float32)), p], "masks/ds/complement")[0]
    log_p = add_node(graph, "Log", [p], "masks/ds/log_p")[0]
    log_q = add_node(graph, "Log", [q], "masks/ds/log_q")[0]
    return add_node(graph, "Sub", [log_p, log_q], "masks/ds/logits")[0]


def add_deepstream_masks(
    graph: gs.Graph,
    count: gs.Tensor,
    boxes: gs.Tensor,
    scores: gs.Tensor,
    classes: gs.Tensor,
    per_class: gs.Tensor,
    input_hw: tuple[int, int],
    activation: str = "logits",
    family: str = "Mask R-CNN",
) -> list[gs.Variable]:
    """The ``ds/mrcnn`` tensors [generate_detections, mask_fcn_logits/BiasAdd] from TFOD-style
    detections (boxes normalised to the network input) and the per-class mask tensor."""
    _check_activation(activation)
    _check_opset(graph, family)
    height, width = input_hw
    if height <= 0 or width <= 0:
        raise UsageError(f"input_hw must be the network input's (height, width) in pixels, got {input_hw!r}")
    num_classes, mask_h, mask_w = per_class_dims(per_class, family)
    k = _detections_k(boxes, family)
    batch = (boxes.shape or [None])[0]
    scale = const("masks/ds/pixel_scale", np.array([height, width, height, width], np.float32))
    pixels = add_node(graph, "Mul", [boxes, scale], "masks/ds/pixels")[0]
    class_f = add_node(graph, "Cast", [classes], "masks/ds/class_float", attrs={"to": onnx.TensorProto.FLOAT})[0]
    score_f = add_node(graph, "Cast", [scores], "masks/ds/score_float", attrs={"to": onnx.TensorProto.FLOAT})[0]
    rows = add_node(graph, "Concat", [pixels, _unsqueeze_last(graph, class_f, "masks/ds/class_col"),
                                      _unsqueeze_last(graph, score_f, "masks/ds/score_col")],
                    "masks/ds/rows_all", attrs={"axis": -1})[0]
    # rows past the count are zeroed: the parser reads all K (MRCNN_LAYOUT), and a zero row is
    # dropped by its score < threshold or its width <= 0 test whatever the padding held
    n = add_node(graph, "Cast", [count], "masks/ds/count64", attrs={"to": onnx.TensorProto.INT64})[0]
    valid = add_node(graph, "Less", [const("masks/ds/row_index", np.arange(k, dtype=np.int64)[None, :]), n],
                     "masks/ds/valid")[0]
    valid_f = add_node(graph, "Cast", [valid], "masks/ds/valid_float", attrs={"to": onnx.TensorProto.FLOAT})[0]
    rows_out = gs.Variable(MRCNN_NAMES[0], dtype=np.float32, shape=[batch, k, 6])
    graph.nodes.append(gs.Node("Mul", name="masks/ds/generate_detections",
                               inputs=[rows, _unsqueeze_last(graph, valid_f, "masks/ds/valid_col")], outputs=[rows_out]))
    masks_out = gs.Variable(MRCNN_NAMES[1], dtype=np.float32, shape=[batch, k, num_classes, mask_h, mask_w])
    graph.nodes.append(gs.Node("Identity", name="masks/ds/mask_logits", inputs=[_as_logits(graph, per_class, activation)],
                               outputs=[masks_out]))
    return [rows_out, masks_out]


def _find(graph: gs.Graph, names: Sequence[str], family: str) -> list[gs.Tensor]:
    tensors = graph.tensors()
    missing = [n for n in names if n not in tensors]
    if missing:
        outputs = ", ".join(t.name for t in graph.outputs) or "none"
        raise GraphError(f"{family}: no tensor named {', '.join(missing)} (the graph's outputs: {outputs})")
    return [tensors[n] for n in names]


def shape_for_deepstream(
    model: onnx.ModelProto,
    per_class_name: str,
    input_hw: tuple[int, int],
    activation: str = "logits",
    names: Sequence[str] = TFOD_NAMES,
    family: str = "Mask R-CNN",
) -> onnx.ModelProto:
    """A model with TFOD's four detection tensors (``names``) and a per-class mask tensor ->
    the same model whose only outputs are the ``ds/mrcnn`` pair (checked after the pass)."""
    _check_activation(activation)

    def to_deepstream(graph: gs.Graph, ctx: PassContext) -> None:
        count, boxes, scores, classes, per_class = _find(graph, [*names, per_class_name], ctx.family)
        graph.outputs = add_deepstream_masks(graph, count, boxes, scores, classes, per_class, input_hw,
                                             activation, ctx.family)

    return run_passes(model, [("deepstream_masks", to_deepstream)], PassContext(family))


def with_tfod_masks(
    model: onnx.ModelProto,
    per_class_name: str,
    activation: str = "logits",
    names: Sequence[str] = TFOD_NAMES,
    family: str = "Mask R-CNN",
) -> onnx.ModelProto:
    """The ``tfod-masks`` outputs: the four detection tensors then ``detection_masks``."""
    _check_activation(activation)

    def tfod_masks(graph: gs.Graph, ctx: PassContext) -> None:
        *detections, per_class = _find(graph, [*names, per_class_name], ctx.family)
        masks = add_tfod_masks(graph, per_class, detections[3], activation, family=ctx.family)
        graph.outputs = [*(t for t in detections), masks]

    return run_passes(model, [("tfod_masks", tfod_masks)], PassContext(family))



def ds_output_spec(spec: OutputSpec) -> OutputSpec:
    """The deploy card's output section for the ``ds/mrcnn`` shape of a model whose ``spec``
    describes its TFOD-style outputs (``tfod`` or ``tfod-masks``): same classes, NMS and count."""
    contract = contracts.contract("ds/mrcnn")
    return replace(spec, layout=contract.layout, names=list(contract.names), box_format=contract.box_format,
                   box_units=contract.box_units, class_dtype="float32", class_id_base=0, ds_parser="",
                   contract=contract.key)


def tfod_output_spec(spec: OutputSpec) -> OutputSpec:
    """The output section for the ``tfod-masks`` outputs (the four tensors + detection_masks)."""
    contract = contracts.contract("tfod-masks")
    return replace(spec, layout=contract.layout, names=list(contract.names), box_format=contract.box_format,
                   box_units=contract.box_units, class_dtype="int32", ds_parser="", contract=contract.key)
