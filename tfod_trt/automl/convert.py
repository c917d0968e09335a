"""TensorFlow -> ONNX for an AutoML EfficientDet export: the network without AutoML's
post-processing.

The export's ``predict`` signature is exactly the part we keep: the preprocessed image in, the
raw class logits and box deltas of every level out (no resize loop, no NMS). We freeze it
(``tfod_trt.tf_graph.freeze_signature``), put a float32 RGB 0-255 input and the export's own
normalisation ``(pixel - mean) / std`` in front of it, and after it AutoML's level merge
(google/automl efficientdet/tf2/postprocess.py merge_class_box_level_outputs: each level
reshaped to [B,-1,C] / [B,-1,4], concatenated in level order) and the sigmoid that turns logits
into scores (postprocess.py pre_nms: ``scores = tf.math.sigmoid(cls_outputs)``). tf2onnx converts
that; the SSD passes decode the boxes against the anchors and append the head.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tfod_trt.automl.hparams import PREDICT, TITLE, AutomlConfig, head_outputs
from tfod_trt.tf_graph import _tf2onnx, freeze_signature
from trtdeploy.lazy import require
from trtdeploy.log import get_logger

log = get_logger("tfod")

INPUT_NAME = "input_tensor"
ENCODINGS = "raw_box_encodings"  # the SSD passes' names (tfod_trt/passes/name_io.py)
SCORES = "raw_box_scores"


def cut_graph(graph_def: Any, signature: Any, config: AutomlConfig, batch: int | None) -> Any:
    """GraphDef: input_tensor [batch,H,W,3] 0-255 -> normalise -> the predict network ->
    raw_box_encodings [B,A,4] (deltas) and raw_box_scores [B,A,C] (sigmoid)."""
    tf = require("tensorflow")
    cls_names, box_names = head_outputs(signature)
    image = next(iter(signature.inputs.values())).name
    wanted = [signature.outputs[n].name for n in (*cls_names, *box_names)]
    with tf.Graph().as_default() as graph:
        pixels = tf.compat.v1.placeholder(tf.float32, [batch, config.height, config.width, 3], name=INPUT_NAME)
        normalised = (pixels - tf.constant(config.mean.reshape(1, 1, 1, 3))) / tf.constant(config.std.reshape(1, 1, 1, 3))
        heads = tf.graph_util.import_graph_def(graph_def, input_map={image: normalised}, return_elements=wanted,
                                               name="net")
        levels = len(cls_names)
        per_loc = config.anchors_per_location
        cls = [tf.reshape(t, [-1, h * w * per_loc, config.num_classes]) for t, (h, w) in zip(heads[:levels], config.level_shapes, strict=True)]
        box = [tf.reshape(t, [-1, h * w * per_loc, 4]) for t, (h, w) in zip(heads[levels:], config.level_shapes, strict=True)]
        tf.concat(box, axis=1, name=ENCODINGS)
        tf.math.sigmoid(tf.concat(cls, axis=1), name=SCORES)
        graph_def_out = graph.as_graph_def()
    return tf.compat.v1.graph_util.extract_sub_graph(graph_def_out, [ENCODINGS, SCORES])


def convert_core(saved_model: Path, config: AutomlConfig, batch: int | None, opset: int, nchw: bool) -> tuple[Any, dict[str, str]]:
    """(ONNX model with outputs raw_box_encodings, raw_box_scores; converter versions)."""
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    graph_def, signature = freeze_signature(Path(saved_model), PREDICT)
    sub = cut_graph(graph_def, signature, config, batch)
    start = time.perf_counter()
    model = _tf2onnx(sub, [INPUT_NAME + ":0"], [ENCODINGS + ":0", SCORES + ":0"], opset, nchw, TITLE)
    log.debug("tf2onnx converted the AutoML network in %.1f s", time.perf_counter() - start)
    return model, {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__}


def raw_heads_reference(config: AutomlConfig, heads: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """NumPy: the predict signature's outputs (class maps then box maps, level order) ->
    (boxes [B,A,4] normalised y1,x1,y2,x2, scores [B,A,C] sigmoid), decoded as AutoML's
    anchors.decode_box_outputs does, in float64 then rounded to float32."""
    levels = len(heads) // 2
    batch = heads[0].shape[0]
    logits = np.concatenate([h.reshape(batch, -1, config.num_classes) for h in heads[:levels]], axis=1).astype(np.float64)
    deltas = np.concatenate([h.reshape(batch, -1, 4) for h in heads[levels:]], axis=1).astype(np.float64)
    anchors = config.normalized_anchors.astype(np.float64)
    ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    yc, xc = anchors[:, 0] + ha / 2, anchors[:, 1] + wa / 2
    ty, tx, th, tw = (deltas[..., i] for i in range(4))
    h, w = np.exp(th) * ha, np.exp(tw) * wa
    y, x = ty * ha + yc, tx * wa + xc
    boxes = np.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=-1)
    scores = 1.0 / (1.0 + np.exp(-logits))
    return boxes.astype(np.float32), scores.astype(np.float32)
