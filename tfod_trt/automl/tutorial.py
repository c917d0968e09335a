"""The ONNX users get from the tf2onnx efficientdet tutorial, made from an AutoML export: for
tests of ``trtdeploy import-onnx`` and for the create-onnx benchmark.

The tutorial (onnx/tensorflow-onnx tutorials/efficientdet.ipynb) converts AutoML's whole saved
model, pre- and post-processing included, with ``python -m tf2onnx.convert --saved-model DIR
--opset 12``; its model takes uint8 images and returns one ``detections`` tensor
[batch, 100, 7], "box = detection[1:5], as ymin, xmin, ymax, xmax", "scores = detection[5]",
"classes = detection[6], the coco label" (the notebook's result-format cell), with detection[0]
the image id. That export's NMS was hard NMS. Today's AutoML export (our fixture) returns
``output_0..3`` and uses soft-NMS, which tf2onnx refuses (tf2onnx/onnx_opset/tensor.py,
NonMaxSuppression: "soft_nms_sigma must be 0"). So this module freezes the serving signature,
sets its NonMaxSuppressionV5's soft_nms_sigma to 0 (hard NMS, as the tutorial's model had), packs
the four outputs into the tutorial's ``detections`` rows and converts the whole graph with
tf2onnx, as the tutorial does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tfod_trt.tf_graph import freeze_signature
from trtdeploy.lazy import require

DETECTIONS = "detections"
INPUT = "image_arrays"  # the tutorial-era input name (DOMAIN.md; AutoML's TF1 export)
OPSET = 12  # the tutorial's --opset


def hard_nms_graph(saved_model: Path) -> tuple[Any, str]:
    """(frozen serving graph with hard NMS and a ``detections`` [1,K,7] output, input tensor)."""
    tf = require("tensorflow")
    graph_def, signature = freeze_signature(Path(saved_model), "serving_default")
    by_name = {n.name: n for n in graph_def.node}
    for node in graph_def.node:
        if node.op == "NonMaxSuppressionV5":
            sigma = by_name[node.input[5].split(":")[0]]
            sigma.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(0.0)))
    image = next(iter(signature.inputs.values())).name
    outs = [signature.outputs[f"output_{i}"].name for i in range(3)]
    with tf.Graph().as_default() as graph:
        pixels = tf.compat.v1.placeholder(tf.uint8, [1, None, None, 3], name=INPUT)
        boxes, scores, classes = tf.graph_util.import_graph_def(graph_def, input_map={image: pixels},
                                                                return_elements=outs, name="automl")
        image_id = tf.zeros_like(scores)
        tf.concat([image_id[..., None], boxes, scores[..., None], classes[..., None]], axis=-1, name=DETECTIONS)
        return graph.as_graph_def(), INPUT + ":0"


def tutorial_onnx(saved_model: Path, output: Path, fast: bool = False, graph: tuple[Any, str] | None = None) -> Path:
    """Write the tutorial-style ONNX of ``saved_model`` to ``output`` (minutes: the whole graph).
    ``fast``: through create-onnx's tf2onnx driver (tfod_trt.tf_graph._tf2onnx: no second freeze,
    no graph copy per optimizer), for tests; otherwise tf2onnx's own from_graph_def, as
    ``python -m tf2onnx.convert`` runs it. ``graph``: a ``hard_nms_graph`` result to reuse."""
    import onnx

    require("tensorflow")
    tf2onnx = require("tf2onnx")
    graph_def, image = graph or hard_nms_graph(saved_model)
    if fast:
        from tfod_trt.tf_graph import _tf2onnx

        model = _tf2onnx(graph_def, [image], [DETECTIONS + ":0"], OPSET, False, "AutoML EfficientDet (tutorial)")
    else:
        model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=[image], output_names=[DETECTIONS + ":0"],
                                                  opset=OPSET)
    onnx.save(model, str(output))
    return Path(output)


class HardNmsRunner:
    """TensorFlow's side for the tutorial-style ONNX: the same graph (serving signature with hard
    NMS) in a TensorFlow session, on uint8 pixels at the network size; ``detections`` gives
    normalised y1,x1,y2,x2 boxes and 0-based classes like our runners."""

    def __init__(self, saved_model: Path, graph: tuple[Any, str] | None = None) -> None:
        tf = require("tensorflow")
        graph_def, self._image = graph or hard_nms_graph(saved_model)
        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        self._session = tf.compat.v1.Session(graph=self._graph)

    def rows(self, image: np.ndarray) -> np.ndarray:
        """The ``detections`` rows [K,7] of one float/uint8 image [H,W,3]."""
        pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)[None]
        return self._session.run(DETECTIONS + ":0", {self._image: pixels})[0]

    def detections(self, pixels: np.ndarray) -> list[Any]:
        from trtdeploy.detections import Detections

        result = []
        for image in np.asarray(pixels):
            rows = self.rows(image)
            rows = rows[rows[:, 5] > 0]
            h, w = image.shape[:2]
            boxes = rows[:, 1:5] / np.array([h, w, h, w], np.float32)
            result.append(Detections(boxes.astype(np.float32), rows[:, 5].astype(np.float32),
                                     np.rint(rows[:, 6]).astype(np.int64) - 1))
        return result
