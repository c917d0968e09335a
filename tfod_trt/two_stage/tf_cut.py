"""Cut a TFOD Faster R-CNN saved model into the part the ONNX keeps, and convert only that part.

A TFOD Faster R-CNN export is: input -> resize loop -> normalisation -> backbone (first stage)
-> RPN heads -> decode + first-stage NMS loop (While) -> crop-and-resize of the backbone's
feature map at the proposals -> maxpool -> second-stage backbone (on every proposal) -> box
classifier -> decode + second-stage NMS loop (While) -> outputs.

We keep the two networks and nothing of the glue: the frozen serving graph gets a fixed-size
image placeholder in place of the resize loop (as the SSD cut does) and a second placeholder in
place of the crop-and-resize output, so one tf2onnx run converts

    image [B,H,W,3]           -> feature map [B,h,w,D], RPN box encodings, RPN objectness logits
    crops [B*N,crop,crop,D]   -> second-stage box encodings [B,N,q,4], converted scores [B,N,C+1]

and the ONNX passes (``tfod_trt.two_stage.passes``) rebuild the glue from standard ops (or
plugins): decode, proposal NMS, crop-and-resize, decode, NMS head.

A Mask R-CNN export (``predict_instance_masks``) has a third stage after the second stage's
NMS (faster_rcnn_meta_arch.py ``_predict_third_stage``): the feature map cropped again at the
final detection boxes, the same maxpool, a second pass through the box classifier's feature
extractor and the mask head of mask_rcnn_keras_box_predictor (predictors/heads/keras_mask_head.py
``MaskRCNNMaskHead._predict``: bilinear resize, convolutions, a last convolution with one channel
per class, transposed and expanded to ``[N,1,C,mask_h,mask_w]`` under the name ``MaskPredictor``).
A third placeholder takes the place of that crop, so the same tf2onnx run also converts

    mask_crops [B*K,crop,crop,D] -> per-class mask logits [B*K,1,C,mask_h,mask_w]

and the passes crop the feature map at the final boxes and gather/shape the masks. The tensors are found by
the scope names TFOD's Keras Faster R-CNN gives them (faster_rcnn_meta_arch.py and
faster_rcnn_keras_feature_extractors in tensorflow/models research/object_detection).

Facts read from TensorFlow, not re-implemented: the normalisation (probe images, as for SSD),
the anchors (decoding all-zero RPN deltas returns them, clipped as the export clips them) and
the box-coder scales (the constants the export divides the deltas by).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfod_trt.tf_graph import INPUT_NAME, CutPoints, FrozenModel, Probe, _tf2onnx, load_frozen
from trtdeploy.errors import GraphError, InputError
from trtdeploy.lazy import require
from trtdeploy.log import get_logger

log = get_logger("tfod")

FAMILY = "TFOD Faster R-CNN"
CROPS_NAME = "crops"
MASK_CROPS_NAME = "mask_crops"
# Name suffixes of the nodes the cut keeps (scopes of TFOD's Keras Faster R-CNN).
RPN_BOXES = "FirstStageBoxPredictor/ConvolutionalBoxHead_0/Reshape"  # [B,A,1,4] deltas
RPN_CLASSES = "FirstStageBoxPredictor/ConvolutionalClassHead_0/Reshape"  # [B,A,2] logits
RPN_CONV = "FirstStageRPNFeatures/RPNConv/Conv2D"  # its input is the feature map that is cropped
MAXPOOL = "MaxPool2D/MaxPool"  # its input is the crop-and-resize output [B*N,crop,crop,D]
SECOND_BOXES = "SecondStagePostprocessor/Reshape"  # [B,N,q,4] refined deltas
SECOND_SCORES = "SecondStagePostprocessor/convert_scores"  # [B,N,C+1] after the score converter
FIRST_DECODE = "Decode"  # the first-stage box decode scope (the second stage's is SecondStagePostprocessor/Decode)
# keras_mask_head.py MaskRCNNMaskHead._predict: tf.expand_dims(..., axis=1, name='MaskPredictor')
MASK_PREDICTOR = "MaskPredictor"  # [B*K,1,C,mask_h,mask_w] per-class mask logits
CUT = CutPoints(FAMILY, RPN_BOXES, SECOND_SCORES, RPN_CONV, meta_architecture="Faster R-CNN")
# A Mask R-CNN export post-processes the second stage inside _predict_third_stage (TFOD 2.8.0
# faster_rcnn_meta_arch.py l.1226-1231), outside the SecondStagePostprocessor scope postprocess()
# opens for two stages (l.1540); measured on a TFOD 2.8.0 export: convert_scores, Decode_1/...,
# Reshape_N at the top level.
MASK_SCORES = "convert_scores"
MASK_CUT = CutPoints(FAMILY, RPN_BOXES, MASK_SCORES, RPN_CONV, meta_architecture="Faster R-CNN (Mask R-CNN)")
SECOND_ENCODINGS = "all_refined_box_encodings"  # [B*N,q,4], named by _box_prediction's tf.squeeze

OUTPUT_NAMES = ("feature_map", "rpn_box_encodings", "rpn_class_logits", "second_box_encodings", "second_scores")
MASK_OUTPUT = "mask_logits"


@dataclass
class TwoStageFacts:
    anchors: np.ndarray  # [A,4] y1,x1,y2,x2 in input pixels, as the export clips them
    first_scales: tuple[float, float, float, float]  # y, x, h, w box-coder scales of each stage
    second_scales: tuple[float, float, float, float]
    norm_scale: np.ndarray
    norm_offset: np.ndarray
    num_proposals: int
    crop_size: int
    box_columns: int  # q: 1 (shared by the classes) or the number of classes
    score_columns: int  # C + 1
    mask_shape: tuple[int, int, int] | None = None  # (masks per detection, mask_h, mask_w) of a Mask R-CNN


@dataclass
class TwoStageCore:
    model: Any  # onnx.ModelProto: inputs (input_tensor, crops), outputs OUTPUT_NAMES
    facts: TwoStageFacts
    versions: dict[str, str]


def _one(graph_def: Any, suffix: str, what: str, exclude: str | None = None) -> Any:
    matches = [
        n for n in graph_def.node
        if (n.name == suffix or n.name.endswith("/" + suffix)) and not (exclude and exclude in n.name)
    ]
    if len(matches) != 1:
        raise GraphError(
            f"{FAMILY}: expected one node '*{suffix}' ({what}) as TFOD's Keras Faster R-CNN exports it, found "
            f"{len(matches)}; is this a faster_rcnn model exported with exporter_main_v2.py?"
        )
    return matches[0]


def _input_of(node: Any) -> str:
    return node.input[0].lstrip("^").split(":")[0]


def _scales(graph_def: Any, scope: str) -> tuple[float, float, float, float]:
    """The four constants a decode scope divides the deltas by (truediv .. truediv_3 / y)."""
    from tensorflow.python.framework import tensor_util

    by_name = {n.name: n for n in graph_def.node}
    values = []
    for suffix in ("truediv", "truediv_1", "truediv_2", "truediv_3"):
        div = _one(graph_def, f"{scope}/{suffix}", "a box-coder scale division",
                   exclude="SecondStagePostprocessor" if scope == FIRST_DECODE else None)
        const = by_name.get(div.input[1].split(":")[0])
        if const is None or const.op != "Const":
            raise GraphError(f"{FAMILY}: {div.name} does not divide by a constant box-coder scale")
        values.append(float(tensor_util.MakeNdarray(const.attr["value"].tensor)))
    return tuple(values)  # type: ignore[return-value]


@dataclass
class _Cut:
    frozen: FrozenModel
    features: str
    crops: str
    second_boxes: str
    second_scores: str
    rpn_classes: str
    first_decoded: str
    mask_crops: str | None = None  # Mask R-CNN: the crop at the detection boxes (its maxpool's input)
    mask_logits: str | None = None  # Mask R-CNN: the mask head's MaskPredictor node


def find_cut(saved_model: Path, masks: bool = False) -> _Cut:
    frozen = load_frozen(Path(saved_model), MASK_CUT if masks else CUT)
    graph_def = frozen.graph_def
    features = _input_of(_one(graph_def, RPN_CONV, "the RPN convolution on the feature map"))
    rpn_classes = _one(graph_def, RPN_CLASSES, "the RPN objectness head").name
    boxes = (_second_encodings(graph_def) if masks
             else _one(graph_def, SECOND_BOXES, "the second-stage box encodings").name)
    scores = frozen.scores
    decoded = _one(graph_def, f"{FIRST_DECODE}/transpose_1", "the first-stage box decode",
                   exclude="SecondStagePostprocessor").name
    if not masks:
        crops = _input_of(_one(graph_def, MAXPOOL, "the maxpool after crop-and-resize"))
        return _Cut(frozen, features, crops, boxes, scores, rpn_classes, decoded)
    mask_logits = _one(graph_def, MASK_PREDICTOR, "the Mask R-CNN mask head's output").name
    box_pool, mask_pool = _two_maxpools(graph_def, features, boxes, mask_logits)
    if _input_of(box_pool) == _input_of(mask_pool):
        raise GraphError(f"{FAMILY}: the mask head's maxpool reads the crop at the proposals ({_input_of(box_pool)}), "
                         "not a crop at the detection boxes")
    return _Cut(frozen, features, _input_of(box_pool), boxes, scores, rpn_classes, decoded,
                _input_of(mask_pool), mask_logits)


def _second_encodings(graph_def: Any) -> str:
    """The Reshape of the second stage's refined box encodings to [B,N,q,4]
    (_postprocess_box_classifier), found as the one Reshape reading all_refined_box_encodings:
    a Mask R-CNN's post-processing has no scope of its own to name it by."""
    squeeze = _one(graph_def, SECOND_ENCODINGS, "the second-stage refined box encodings")
    readers = [n for n in graph_def.node if n.op == "Reshape" and squeeze.name in (_input_of(n),)]
    if len(readers) != 1:
        raise GraphError(f"{FAMILY}: expected one Reshape of {squeeze.name} (the second-stage post-processing), "
                         f"found {[n.name for n in readers]}")
    return str(readers[0].name)


def _decode_scope(graph_def: Any, encodings: str) -> str:
    """The scope of the box decode that reads ``encodings`` (the second stage's: Decode_1 in a
    Mask R-CNN, SecondStagePostprocessor/Decode in a Faster R-CNN): the scope of the first
    ``*/truediv`` downstream of it."""
    consumers: dict[str, list[str]] = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(name.lstrip("^").split(":")[0], []).append(node.name)
    seen, frontier = {encodings}, [encodings]
    for _ in range(8):  # Reshape -> Tile/Reshape -> Decode/unstack -> Decode/truediv: a few hops
        frontier = [c for name in frontier for c in consumers.get(name, ()) if c not in seen]
        seen.update(frontier)
        found = sorted(c for c in frontier if c.rsplit("/", 1)[-1] == "truediv" and "Decode" in c)
        if found:
            return found[0].rsplit("/", 1)[0]
    raise GraphError(f"{FAMILY}: no box decode (Decode*/truediv) reads the second-stage encodings {encodings}")


def ancestors(graph_def: Any, name: str) -> set[str]:
    """The names of the nodes ``name`` reads, directly or not, itself included."""
    inputs = {n.name: [i.lstrip("^").split(":")[0] for i in n.input] for n in graph_def.node}
    seen, stack = set(), [name]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(inputs.get(node, ()))
    return seen


def _first(pools: list[Any], graph_def: Any) -> list[Any]:
    """The maxpools no other of ``pools`` comes before: the one right after the crop, not the
    box classifier's own (Inception ResNet V2's second stage has one: model_1/max_pooling2d_3)."""
    return [p for p in pools if not any(q.name in ancestors(graph_def, p.name) for q in pools if q is not p)]


def _two_maxpools(graph_def: Any, features: str, second_boxes: str, mask_logits: str) -> tuple[Any, Any]:
    """(the maxpool after the crop at the proposals, the one after the crop at the detections).

    Told apart by what they feed, not by their names (the Keras maxpool layer is called once per
    crop): the second stage's box encodings read one; the mask head reads the other, and the
    first too (the detection boxes come out of the second stage). The backbone's own maxpools
    (before the feature map) are neither, nor those inside the box classifier (after the crop's)."""
    backbone = ancestors(graph_def, features)
    pools = [n for n in graph_def.node if n.op == "MaxPool" and n.name not in backbone]
    box_side, mask_side = ancestors(graph_def, second_boxes), ancestors(graph_def, mask_logits)
    box_pools = _first([n for n in pools if n.name in box_side], graph_def)
    mask_pools = _first([n for n in pools if n.name in mask_side and n.name not in box_side], graph_def)
    if len(box_pools) != 1 or len(mask_pools) != 1:
        raise GraphError(
            f"{FAMILY}: expected one maxpool after the crop at the proposals and one after the crop at the detection "
            f"boxes (TFOD's Mask R-CNN third stage), found {[n.name for n in box_pools]} and "
            f"{[n.name for n in mask_pools]}; is this a mask_rcnn model exported with exporter_main_v2.py?"
        )
    return box_pools[0], mask_pools[0]


def _placeholder(graph_def: Any, name: str, shape: list[int | None]) -> None:
    tf = require("tensorflow")
    node = graph_def.node.add()
    node.name, node.op = name, "Placeholder"
    node.attr["dtype"].type = tf.float32.as_datatype_enum
    node.attr["shape"].shape.CopyFrom(tf.TensorShape(shape).as_proto())


def cut_graph(cut: _Cut, batch: int | None, height: int, width: int, scale: np.ndarray, offset: np.ndarray,
              crop_shape: tuple[int, int, int]) -> Any:
    """A GraphDef from two placeholders to the five kept tensors: ``input_tensor`` [B,H,W,3]
    (RGB 0-255 at the input size) through the measured normalisation where the resize loop's
    output was, and ``crops`` [B*N,crop,crop,D] where the crop-and-resize output was; for a
    Mask R-CNN also ``mask_crops`` [B*K,crop,crop,D] (the crop at the detection boxes) to the
    mask head's output."""
    tf = require("tensorflow")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.CopyFrom(cut.frozen.graph_def)
    replaced = {cut.frozen.resized_images: "Preprocessor_normalize/add", cut.crops: CROPS_NAME}
    if cut.mask_crops:
        replaced[cut.mask_crops] = MASK_CROPS_NAME
    for node in graph_def.node:
        for i, inp in enumerate(node.input):
            if not inp.startswith("^") and inp.split(":")[0] in replaced and inp.split(":")[-1] in ("0", inp):
                node.input[i] = replaced[inp.split(":")[0]]
    _placeholder(graph_def, INPUT_NAME, [batch, height, width, 3])
    _placeholder(graph_def, CROPS_NAME, [None, *crop_shape])
    if cut.mask_crops:
        _placeholder(graph_def, MASK_CROPS_NAME, [None, *crop_shape])
    for name, value in (("Preprocessor_normalize/scale", scale), ("Preprocessor_normalize/offset", offset)):
        const = graph_def.node.add()
        const.name, const.op = name, "Const"
        const.attr["dtype"].type = tf.float32.as_datatype_enum
        const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.asarray(value, np.float32)))
    for name, op, inputs in (
        ("Preprocessor_normalize/mul", "Mul", [INPUT_NAME, "Preprocessor_normalize/scale"]),
        ("Preprocessor_normalize/add", "AddV2", ["Preprocessor_normalize/mul", "Preprocessor_normalize/offset"]),
    ):
        node = graph_def.node.add()
        node.name, node.op = name, op
        node.input.extend(inputs)
        node.attr["T"].type = tf.float32.as_datatype_enum
    sub = tf.compat.v1.graph_util.extract_sub_graph(graph_def, list(_kept(cut)))
    names = {n.name for n in sub.node}
    loops = sorted({n.op for n in sub.node} & {"While", "StatelessWhile", "TensorListStack"})
    if loops or cut.crops in names or cut.mask_crops in names or cut.frozen.input_tensor.split(":")[0] in names:
        raise GraphError(
            f"{FAMILY}: after the cut the networks still read {loops or 'the crop-and-resize or the resize loop'}; "
            "this export is not the expected TFOD Faster R-CNN layout"
        )
    return sub


def _kept(cut: _Cut) -> tuple[str, ...]:
    """The kept tensors' nodes, in OUTPUT_NAMES order (then MASK_OUTPUT for a Mask R-CNN)."""
    kept = (cut.features, cut.frozen.encodings, cut.rpn_classes, cut.second_boxes, cut.second_scores)
    return (*kept, cut.mask_logits) if cut.mask_logits else kept


class _TwoStageProbe(Probe):
    def first_stage(self, features: str, rpn_boxes: str, decoded: str) -> tuple[np.ndarray, tuple[int, ...]]:
        """(anchors [A,4], feature map shape) from one run on a black image: zero deltas decode
        to the anchors."""
        feed = {self.frozen.input_tensor: np.zeros((1, self.height, self.width, 3), np.float32)}
        enc_t = self._tensor(rpn_boxes)
        encodings, feature_map = self.session.run([enc_t, self._tensor(features)], feed)
        feed[enc_t] = np.zeros_like(encodings)
        anchors = self.session.run(self._tensor(decoded), feed).reshape(-1, 4)
        if anchors.shape[0] != int(np.prod(encodings.shape[1:-1])):
            raise GraphError(
                f"{FAMILY}: {anchors.shape[0]} anchors for {encodings.shape} RPN box encodings; this export prunes "
                "anchors, which is not supported"
            )
        return anchors.astype(np.float32), tuple(int(d) for d in feature_map.shape)


def convert_two_stage(
    saved_model: Path, batch: int | None, height: int, width: int, opset: int, nchw: bool,
    num_proposals: int, crop_size: int, masks: bool = False,
) -> TwoStageCore:
    """Freeze, cut and convert with tf2onnx (one run for both networks, and the mask network
    of a Mask R-CNN when ``masks``); NHWC input only."""
    if nchw:
        raise InputError(f"{FAMILY}: --input-format nchw is not supported yet; use nhwc")
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    cut = find_cut(Path(saved_model), masks)
    graph_def = cut.frozen.graph_def
    second_scope = "SecondStagePostprocessor/Decode" if not masks else _decode_scope(graph_def, cut.second_boxes)
    first_scales, second_scales = _scales(graph_def, FIRST_DECODE), _scales(graph_def, second_scope)
    probe = _TwoStageProbe(cut.frozen, height, width)
    with probe:
        scale, offset = probe.normalisation()
        anchors, feature_shape = probe.first_stage(cut.features, cut.frozen.encodings, cut.first_decoded)
    crop_shape = (crop_size, crop_size, feature_shape[-1])
    sub = cut_graph(cut, batch, height, width, scale, offset, crop_shape)
    start = time.perf_counter()
    outputs = [f"{name}:0" for name in _kept(cut)]
    inputs = [INPUT_NAME + ":0", CROPS_NAME + ":0"] + ([MASK_CROPS_NAME + ":0"] if masks else [])
    model = _tf2onnx(sub, inputs, outputs, opset, False, FAMILY)
    log.debug("tf2onnx converted the two-stage cut in %.1f s", time.perf_counter() - start)
    box_columns, score_columns = _second_stage_columns(model, num_proposals)
    facts = TwoStageFacts(anchors, first_scales, second_scales, scale, offset, num_proposals, crop_size,
                          box_columns, score_columns, _mask_shape(model) if masks else None)
    return TwoStageCore(model, facts, {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__})


def _second_stage_columns(model: Any, num_proposals: int) -> tuple[int, int]:
    """(q, C+1) from the converted outputs' static shapes [B,N,q,4] and [B,N,C+1]."""
    dims = [[d.dim_value or None for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    boxes, scores = dims[3], dims[4]  # tf2onnx keeps the order of the outputs asked for
    if boxes[1] not in (None, num_proposals) or not boxes[2] or not scores[-1]:
        raise GraphError(f"{FAMILY}: second-stage outputs {boxes} and {scores} are not [B,{num_proposals},q,4] and "
                         f"[B,{num_proposals},C+1]")
    return int(boxes[2]), int(scores[-1])


def _mask_shape(model: Any) -> tuple[int, int, int]:
    """(masks per detection, mask_h, mask_w) from the converted mask output's static shape
    [B*K,1,C,mask_h,mask_w] (keras_mask_head.py: one detection per row, C channels of the last
    convolution)."""
    dims = [d.dim_value or None for d in model.graph.output[len(OUTPUT_NAMES)].type.tensor_type.shape.dim]
    if len(dims) != 5 or dims[1] != 1 or not all(dims[2:]):
        raise GraphError(f"{FAMILY}: the mask head's output {MASK_PREDICTOR} has shape {dims}; expected "
                         "[detections, 1, classes, mask_height, mask_width] with static classes and mask size")
    return int(dims[2]), int(dims[3]), int(dims[4])  # type: ignore[arg-type]
