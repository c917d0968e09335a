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
plugins): decode, proposal NMS, crop-and-resize, decode, NMS head. The tensors are found by
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
# Name suffixes of the nodes the cut keeps (scopes of TFOD's Keras Faster R-CNN).
RPN_BOXES = "FirstStageBoxPredictor/ConvolutionalBoxHead_0/Reshape"  # [B,A,1,4] deltas
RPN_CLASSES = "FirstStageBoxPredictor/ConvolutionalClassHead_0/Reshape"  # [B,A,2] logits
RPN_CONV = "FirstStageRPNFeatures/RPNConv/Conv2D"  # its input is the feature map that is cropped
MAXPOOL = "MaxPool2D/MaxPool"  # its input is the crop-and-resize output [B*N,crop,crop,D]
SECOND_BOXES = "SecondStagePostprocessor/Reshape"  # [B,N,q,4] refined deltas
SECOND_SCORES = "SecondStagePostprocessor/convert_scores"  # [B,N,C+1] after the score converter
FIRST_DECODE = "Decode"  # the first-stage box decode scope (the second stage's is SecondStagePostprocessor/Decode)
CUT = CutPoints(FAMILY, RPN_BOXES, SECOND_SCORES, RPN_CONV, meta_architecture="Faster R-CNN")

OUTPUT_NAMES = ("feature_map", "rpn_box_encodings", "rpn_class_logits", "second_box_encodings", "second_scores")


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


def find_cut(saved_model: Path) -> _Cut:
    frozen = load_frozen(Path(saved_model), CUT)
    graph_def = frozen.graph_def
    features = _input_of(_one(graph_def, RPN_CONV, "the RPN convolution on the feature map"))
    crops = _input_of(_one(graph_def, MAXPOOL, "the maxpool after crop-and-resize"))
    rpn_classes = _one(graph_def, RPN_CLASSES, "the RPN objectness head").name
    boxes = _one(graph_def, SECOND_BOXES, "the second-stage box encodings").name
    scores = frozen.scores
    decoded = _one(graph_def, f"{FIRST_DECODE}/transpose_1", "the first-stage box decode",
                   exclude="SecondStagePostprocessor").name
    return _Cut(frozen, features, crops, boxes, scores, rpn_classes, decoded)


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
    output was, and ``crops`` [B*N,crop,crop,D] where the crop-and-resize output was."""
    tf = require("tensorflow")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.CopyFrom(cut.frozen.graph_def)
    replaced = {cut.frozen.resized_images: "Preprocessor_normalize/add", cut.crops: CROPS_NAME}
    for node in graph_def.node:
        for i, inp in enumerate(node.input):
            if not inp.startswith("^") and inp.split(":")[0] in replaced and inp.split(":")[-1] in ("0", inp):
                node.input[i] = replaced[inp.split(":")[0]]
    _placeholder(graph_def, INPUT_NAME, [batch, height, width, 3])
    _placeholder(graph_def, CROPS_NAME, [None, *crop_shape])
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
    if loops or cut.crops in names or cut.frozen.input_tensor.split(":")[0] in names:
        raise GraphError(
            f"{FAMILY}: after the cut the networks still read {loops or 'the crop-and-resize or the resize loop'}; "
            "this export is not the expected TFOD Faster R-CNN layout"
        )
    return sub


def _kept(cut: _Cut) -> tuple[str, ...]:
    """The kept tensors' nodes, in OUTPUT_NAMES order."""
    return (cut.features, cut.frozen.encodings, cut.rpn_classes, cut.second_boxes, cut.second_scores)


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
    num_proposals: int, crop_size: int,
) -> TwoStageCore:
    """Freeze, cut and convert with tf2onnx (one run for both networks); NHWC input only."""
    if nchw:
        raise InputError(f"{FAMILY}: --input-format nchw is not supported yet; use nhwc")
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    cut = find_cut(Path(saved_model))
    graph_def = cut.frozen.graph_def
    first_scales, second_scales = _scales(graph_def, FIRST_DECODE), _scales(graph_def, "SecondStagePostprocessor/Decode")
    probe = _TwoStageProbe(cut.frozen, height, width)
    with probe:
        scale, offset = probe.normalisation()
        anchors, feature_shape = probe.first_stage(cut.features, cut.frozen.encodings, cut.first_decoded)
    crop_shape = (crop_size, crop_size, feature_shape[-1])
    sub = cut_graph(cut, batch, height, width, scale, offset, crop_shape)
    start = time.perf_counter()
    outputs = [f"{name}:0" for name in _kept(cut)]
    model = _tf2onnx(sub, [INPUT_NAME + ":0", CROPS_NAME + ":0"], outputs, opset, False, FAMILY)
    log.debug("tf2onnx converted the two-stage cut in %.1f s", time.perf_counter() - start)
    box_columns, score_columns = _second_stage_columns(model, num_proposals)
    facts = TwoStageFacts(anchors, first_scales, second_scales, scale, offset, num_proposals, crop_size,
                          box_columns, score_columns)
    return TwoStageCore(model, facts, {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__})


def _second_stage_columns(model: Any, num_proposals: int) -> tuple[int, int]:
    """(q, C+1) from the converted outputs' static shapes [B,N,q,4] and [B,N,C+1]."""
    dims = [[d.dim_value or None for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    boxes, scores = dims[3], dims[4]  # tf2onnx keeps the order of the outputs asked for
    if boxes[1] not in (None, num_proposals) or not boxes[2] or not scores[-1]:
        raise GraphError(f"{FAMILY}: second-stage outputs {boxes} and {scores} are not [B,{num_proposals},q,4] and "
                         f"[B,{num_proposals},C+1]")
    return int(boxes[2]), int(scores[-1])
