"""Small TAO-shaped ONNX graphs: a few convs feeding the plugin nodes TAO's exporters write.

No redistributable TAO export carries these plugins, so each graph restates what the exporter
builds around its plugin node, read in NVIDIA/tao_tensorflow1_backend (commit d700902):

* SSD and DSSD (one exporter, ``nvidia_tao_tf1/cv/ssd/export/onnx_exporter.py``
  ``generate_trt_output`` and ``node_process``): ``loc_data`` [B, A*4, 1, 1], ``conf_data``
  [B, A*C, 1, 1] (softmax), ``anchor_data`` [B, 2, A*4, 1] (the AnchorBoxes layer's corners and
  variances per image); NMSDynamic_TRT named ``NMS``, inputs (anchor, loc, conf) with
  inputOrder [1, 2, 0], shareLocation 1, varianceEncodedInTarget 0, backgroundLabelId 0,
  codeType 1, confSigmoid 0, isNormalized 1, numClasses = classes + 1, topK = 2 * top_k,
  keepTopK = top_k, outputs ``NMS``, ``NMS_1``.
* RetinaNet (``cv/retinanet/export/onnx_exporter.py``): the same but confSigmoid 1 (raw logits).
* YOLOv3 / YOLOv4 / YOLOv4-tiny (``cv/yolo_v3/export/yolov3_exporter.py``,
  ``cv/yolo_v4/export/yolov4_exporter.py`` ``process_nms_node``): BatchedNMSDynamic_TRT named
  ``BatchedNMS_N`` on ``box/concat_concat`` [B, A, 1, 4] and ``cls/mul`` [B, A, C]:
  shareLocation 1, backgroundLabelId -1, topK = 2 * top_k, keepTopK = top_k, numClasses =
  classes, clipBoxes 1, isNormalized 1, scoreBits = infer_nms_score_bits; outputs
  ``BatchedNMS``, ``BatchedNMS_1..3``. YOLOv4 uses Mish (Softplus, Tanh, Mul), v4-tiny two
  scales. Those ONNX exporters write no BatchTilePlugin_TRT or ResizeNearest_TRT (UFF export
  is refused there); the UFF-era graphs had both (the ``FirstDimTile`` BatchTilePlugin_TRT nodes
  of the errors users quote), so the YOLOv3 graph carries one of each, as the UFF graph did.
* EfficientDet-TAO, legacy plugins (``cv/efficientdet/exporter/onnx_exporter.py``
  ``update_network``, ``update_nms`` with ``legacy_plugins``): every nearest Resize of the FPN
  becomes ResizeNearest_TRT (scale 2.0); BatchedNMS_TRT on the decoded boxes [B, A, 1, 4]
  (pixels, y1 x1 y2 x2) and sigmoid class scores: shareLocation 1, backgroundLabelId -1,
  topK 1024, keepTopK = max detections, isNormalized 0, clipBoxes 0; outputs
  ``num_detections``, ``detection_boxes``, ``detection_scores``, ``detection_classes``.

* EfficientDet-TAO 5 (NVIDIA/tao_tensorflow2_backend main c252179,
  ``nvidia_tao_tf2/cv/efficientdet/exporter/onnx_exporter.py``; ``efficientdet_tao5``): input
  ``input`` NHWC (``scripts/export.py`` l.87 ``update_preprocessor('NHWC', ...)``) transposed to
  NCHW and scaled (onnx_exporter.py l.199-214), opset 13 (l.108); EfficientNMS_TRT named
  ``nms/non_maximum_suppression`` (l.431-442, l.475-480) on the box net's raw deltas [B, A, 4]
  (y, x, h, w), the class net's logits [B, A, C] and the anchors constant ``nms/anchors:0``
  [1, A, 4] (y, x, h, w; l.349-375): plugin_version "1", background_class -1,
  max_output_boxes = max detections, score_threshold = max(0.01, export.min_score_thresh),
  iou_threshold from the TF graph's NMS (``inferencer/inference.py`` l.174-181:
  combined_non_max_suppression's default 0.5), score_activation 1, box_coding 1, class_agnostic
  unset (0); outputs ``num_detections`` int32 [N, 1], ``detection_boxes`` [N, K, 4],
  ``detection_scores`` [N, K], ``detection_classes`` int32 [N, K] (l.447-466). The spec values are
  the shared reference folder tao_specs/efficientdet_tf2/specs/spec_retrain.yaml's (min_score_thresh 0.4,
  max_detections_per_image 100).

NMS thresholds and top_k are the tutorial specs' (the shared reference folder tao_specs: SSD, DSSD,
RetinaNet 0.01 / 0.6 / 200; YOLO 0.001 / 0.5 / 200), with 3 KITTI classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

KITTI = ("car", "cyclist", "pedestrian")
OPSET = 12  # TAO's keras_to_onnx / tf2onnx exports are opset 11-13


@dataclass
class TaoGraph:
    arch: str
    model: onnx.ModelProto
    input_shape: tuple[int, int, int]  # C, H, W
    parser: str  # parser_emulation variant key
    num_classes: int  # DeepStream num-detected-classes
    outputs: tuple[str, ...] = field(default=())


class _G:
    """A tiny graph under construction (nodes, initializers, random weights from a seed)."""

    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def init(self, value: np.ndarray, base: str = "w") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, stride: int = 1, scale: float = 0.3, bias: float = 0.0) -> str:
        w = self.init((self.rng.standard_normal((cout, cin, 3, 3)) * scale).astype(np.float32))
        b = self.init((self.rng.standard_normal(cout) * 0.1 + bias).astype(np.float32), "b")
        return self.node("Conv", [x, w, b], pads=[1, 1, 1, 1], strides=[stride, stride])

    def relu(self, x: str) -> str:
        return self.node("Relu", [x])

    def mish(self, x: str) -> str:  # yolov4_exporter.py replace_activations: Softplus, Tanh, Mul
        return self.node("Mul", [x, self.node("Tanh", [self.node("Softplus", [x])])])

    def const(self, value, dtype=np.int64) -> str:
        return self.init(np.asarray(value, dtype=dtype), "c")

    def nhwc_flat(self, x: str, per_cell: int) -> str:
        """[B, P*k, h, w] -> [B, h*w*P, k] (Keras' channel-last reshape of a head)."""
        t = self.node("Transpose", [x], perm=[0, 2, 3, 1])
        return self.node("Reshape", [t, self.const([0, -1, per_cell])])

    def batch_expand(self, value: np.ndarray, like: str) -> str:
        """A constant [1, ...] repeated for every image of ``like``'s batch (Expand)."""
        shape = self.node("Shape", [like])
        batch = self.node("Slice", [shape, self.const([0]), self.const([1])])
        target = self.node("Concat", [batch, self.const(list(value.shape[1:]))], axis=0)
        return self.node("Expand", [self.init(value.astype(np.float32), "anchors"), target])

    def model(self, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "tao_shaped", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return model


def _input(size: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("Input", TensorProto.FLOAT, ["N", 3, size, size])


def _priors(h: int, w: int, per_cell: int, rng: np.random.Generator) -> np.ndarray:
    """[1, 2, A*4, 1]: corners (x1, y1, x2, y2, normalised) around each cell, variances 0.1/0.2."""
    ys, xs = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    centres = np.stack([xs, ys], -1).reshape(-1, 1, 2).repeat(per_cell, 1).reshape(-1, 2)
    sizes = rng.uniform(0.1, 0.5, (centres.shape[0], 2))
    corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)
    variances = np.tile([0.1, 0.1, 0.2, 0.2], (corners.shape[0], 1))
    return np.stack([corners.reshape(-1), variances.reshape(-1)])[None, :, :, None].astype(np.float32)


def _ssd_like(arch: str, seed: int, *, sigmoid: bool, deconv: bool, top_k: int = 200) -> TaoGraph:
    g, size, per_cell, classes = _G(seed), 16, 6, len(KITTI) + 1
    x = g.relu(g.conv("Input", 3, 8, stride=2))  # 8 x 8 cells
    if deconv:  # DSSD: a deconvolution module on the feature map
        w = g.init((g.rng.standard_normal((8, 8, 2, 2)) * 0.3).astype(np.float32))
        up = g.node("ConvTranspose", [g.relu(g.conv(x, 8, 8, stride=2)), w], strides=[2, 2])
        x = g.relu(g.node("Add", [x, up]))
    loc = g.nhwc_flat(g.conv(x, 8, per_cell * 4, scale=0.1), 4)
    # RetinaNet's classification bias starts at -log((1 - 0.01) / 0.01) (focal loss prior): most
    # anchors score low, as in a trained model
    conf = g.nhwc_flat(
        g.conv(x, 8, per_cell * classes, scale=0.3 if sigmoid else 1.0, bias=-4.6 if sigmoid else 0.0), classes
    )
    if not sigmoid:
        conf = g.node("Softmax", [conf], axis=-1)  # mbox_conf_softmax
    g.node("Reshape", [loc, g.const([0, -1, 1, 1])], "loc_data")
    g.node("Reshape", [conf, g.const([0, -1, 1, 1])], "conf_data")
    g.batch_expand(_priors(8, 8, per_cell, g.rng), "Input")
    anchor = g.nodes[-1].output[0]
    g.nodes.append(
        helper.make_node(
            "NMSDynamic_TRT",
            [anchor, "loc_data", "conf_data"],
            ["NMS", "NMS_1"],
            name="NMS",
            shareLocation=1,
            varianceEncodedInTarget=0,
            backgroundLabelId=0,
            confidenceThreshold=0.01,
            nmsThreshold=0.6,
            topK=2 * top_k,
            codeType=1,
            keepTopK=top_k,
            numClasses=classes,
            inputOrder=[1, 2, 0],
            confSigmoid=int(sigmoid),
            isNormalized=1,
            scoreBits=0,  # infer_nms_score_bits unset in the specs
        )
    )
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("NMS", "NMS_1")]
    return TaoGraph(arch, g.model([_input(size)], outs), (3, size, size), "nmstlt", classes, ("NMS", "NMS_1"))


def ssd(seed: int = 1) -> TaoGraph:
    return _ssd_like("ssd", seed, sigmoid=False, deconv=False)


def dssd(seed: int = 2) -> TaoGraph:
    return _ssd_like("dssd", seed, sigmoid=False, deconv=True)


def retinanet(seed: int = 3) -> TaoGraph:
    return _ssd_like("retinanet", seed, sigmoid=True, deconv=False)


_BATCHED_NAMES = ("BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3")


def _yolo_head(g: _G, x: str, cin: int, per_cell: int, classes: int) -> tuple[str, str]:
    """Boxes [B, n, 4] (x1, y1, x2, y2 in 0..1 from sigmoids) and class scores [B, n, C]."""
    raw = g.nhwc_flat(g.conv(x, cin, per_cell * (4 + classes), scale=1.0), 4 + classes)
    xy = g.node("Sigmoid", [g.node("Slice", [raw, g.const([0]), g.const([2]), g.const([2])])])
    wh = g.node(
        "Mul",
        [
            g.node("Sigmoid", [g.node("Slice", [raw, g.const([2]), g.const([4]), g.const([2])])]),
            g.init(np.float32(0.4), "half"),
        ],
    )
    box = g.node("Concat", [g.node("Sub", [xy, wh]), g.node("Add", [xy, wh])], axis=2)
    cls = g.node("Sigmoid", [g.node("Slice", [raw, g.const([4]), g.const([4 + classes]), g.const([2])])])
    return box, cls


def _yolo(arch: str, seed: int, *, scales: int, mish: bool, uff_plugins: bool) -> TaoGraph:
    g, size, per_cell, classes = _G(seed), 32, 3, len(KITTI)
    act = g.mish if mish else g.relu
    x = act(g.conv("Input", 3, 8, stride=2))  # 16 x 16
    maps = [x]
    for _ in range(scales - 1):
        maps.append(act(g.conv(maps[-1], 8, 8, stride=2)))
    if uff_plugins:  # the FPN upsample as the UFF graph had it
        up = g.node("ResizeNearest_TRT", [maps[-1]], scale=2.0)
        maps[-2] = g.node("Add", [maps[-2], up])
    heads = [_yolo_head(g, m, 8, per_cell, classes) for m in maps]
    boxes = g.node("Concat", [h[0] for h in heads], axis=1)
    scores = g.node("Concat", [h[1] for h in heads], axis=1)
    num = sum(per_cell * (16 >> i) ** 2 for i in range(scales))
    if uff_plugins:  # a per-image offset tiled by BatchTilePlugin_TRT (the FirstDimTile nodes)
        offset = g.init((g.rng.standard_normal((1, num, 1, 4)) * 0.02).astype(np.float32), "offset")
        tiled = g.node("BatchTilePlugin_TRT", ["Input", offset])
        boxes = g.node("Add", [g.node("Unsqueeze", [boxes], axes=[2]), tiled])
    else:
        boxes = g.node("Unsqueeze", [boxes], axes=[2])
    g.node("Identity", [boxes], "box/concat_concat")
    g.node("Mul", [scores, g.init(np.float32(1.0), "one")], "cls/mul")
    g.nodes.append(
        helper.make_node(
            "BatchedNMSDynamic_TRT",
            ["box/concat_concat", "cls/mul"],
            list(_BATCHED_NAMES),
            name="BatchedNMS_N",
            shareLocation=1,
            backgroundLabelId=-1,
            scoreThreshold=0.001,
            iouThreshold=0.5,
            topK=400,
            keepTopK=200,
            numClasses=classes,
            clipBoxes=1,
            isNormalized=1,
            scoreBits=0,
        )
    )
    types = (TensorProto.INT32, TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT)
    outs = [helper.make_tensor_value_info(n, t, None) for n, t in zip(_BATCHED_NAMES, types, strict=True)]
    return TaoGraph(arch, g.model([_input(size)], outs), (3, size, size), "batchednms", classes, _BATCHED_NAMES)


def yolo_v3(seed: int = 4) -> TaoGraph:
    return _yolo("yolo_v3", seed, scales=3, mish=False, uff_plugins=True)


def yolo_v4(seed: int = 5) -> TaoGraph:
    return _yolo("yolo_v4", seed, scales=3, mish=True, uff_plugins=False)


def yolo_v4_tiny(seed: int = 6) -> TaoGraph:
    return _yolo("yolo_v4_tiny", seed, scales=2, mish=False, uff_plugins=False)


_EFFDET_NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")


def efficientdet_tao(seed: int = 7, max_detections: int = 100) -> TaoGraph:
    g, size, per_cell, classes = _G(seed), 64, 4, len(KITTI)
    p3 = g.relu(g.conv("Input", 3, 8, stride=4))  # 16 x 16
    p4 = g.relu(g.conv(p3, 8, 8, stride=2))  # 8 x 8
    p3 = g.node("Add", [p3, g.node("ResizeNearest_TRT", [p4], scale=2.0)])  # legacy FPN upsample
    num = per_cell * (16 * 16 + 8 * 8)
    raw_cls = g.node(
        "Concat", [g.nhwc_flat(g.conv(p, 8, per_cell * classes, scale=1.0), classes) for p in (p3, p4)], axis=1
    )
    deltas = g.node("Concat", [g.nhwc_flat(g.conv(p, 8, per_cell * 4, scale=0.1), 4) for p in (p3, p4)], axis=1)
    # box decoder (centre-size, y x h w, pixels) as the AutoML graph computes it before the plugin
    centres = g.rng.uniform(0, size, (1, num, 2)).astype(np.float32)
    hw = g.rng.uniform(8, 24, (1, num, 2)).astype(np.float32)
    d_c = g.node("Slice", [deltas, g.const([0]), g.const([2]), g.const([2])])
    d_s = g.node("Slice", [deltas, g.const([2]), g.const([4]), g.const([2])])
    c = g.node("Add", [g.node("Mul", [d_c, g.init(hw, "anchor_hw")]), g.init(centres, "anchor_c")])
    half = g.node("Mul", [g.node("Mul", [g.node("Exp", [d_s]), g.init(hw, "anchor_hw")]), g.init(np.float32(0.5))])
    decoded = g.node("Concat", [g.node("Sub", [c, half]), g.node("Add", [c, half])], axis=2)
    g.node("Unsqueeze", [decoded], "nms/box_net_reshape", axes=[2])
    g.node("Sigmoid", [raw_cls], "nms/class_net_sigmoid")
    g.nodes.append(
        helper.make_node(
            "BatchedNMS_TRT",
            ["nms/box_net_reshape", "nms/class_net_sigmoid"],
            list(_EFFDET_NAMES),
            name="nms/non_maximum_suppression",
            plugin_version="1",
            shareLocation=1,
            backgroundLabelId=-1,
            numClasses=classes,
            topK=1024,
            keepTopK=max_detections,
            scoreThreshold=0.4,
            iouThreshold=0.5,
            isNormalized=0,
            clipBoxes=0,
        )
    )
    types = (TensorProto.INT32, TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT)
    outs = [helper.make_tensor_value_info(n, t, None) for n, t in zip(_EFFDET_NAMES, types, strict=True)]
    return TaoGraph(
        "efficientdet_tao",
        g.model([_input(size)], outs),
        (3, size, size),
        "tao-efficientdet-6.2",
        classes,
        _EFFDET_NAMES,
    )


def efficientdet_tao5(seed: int = 8, max_detections: int = 100, size: int = 64) -> TaoGraph:
    """TAO 5 EfficientDet: NHWC input, EfficientNMS_TRT decoding the raw deltas with its anchors."""
    g, per_cell, classes = _G(seed), 4, len(KITTI)
    nchw = g.node("Transpose", ["input"], "preprocessor/transpose", perm=[0, 3, 1, 2])
    scaled = g.node("Mul", [nchw, g.init(np.float32(1 / 255 / 0.224), "scale")], "preprocessor/scale")
    x = g.node("Add", [scaled, g.init(np.float32(-2.0), "mean")], "preprocessor/mean")
    p3 = g.relu(g.conv(x, 3, 8, stride=4))  # size/4
    p4 = g.relu(g.conv(p3, 8, 8, stride=2))  # size/8
    cells = [(size // 4) ** 2, (size // 8) ** 2]
    num = per_cell * sum(cells)
    # class-predict: focal-loss prior bias (a trained model's scores are mostly low), logits out
    logits = g.node(
        "Concat",
        [g.nhwc_flat(g.conv(p, 8, per_cell * classes, scale=0.1, bias=-4.6), classes) for p in (p3, p4)],
        axis=1,
    )
    deltas = g.node("Concat", [g.nhwc_flat(g.conv(p, 8, per_cell * 4, scale=0.03), 4) for p in (p3, p4)], axis=1)
    centres = g.rng.uniform(0, size, (1, num, 2))
    hw = g.rng.uniform(size / 8, size / 3, (1, num, 2))
    anchors = g.init(np.concatenate([centres, hw], -1).astype(np.float32), "nms/anchors:0")
    g.nodes.append(
        helper.make_node(
            "EfficientNMS_TRT",
            [deltas, logits, anchors],
            list(_EFFDET_NAMES),
            name="nms/non_maximum_suppression",
            plugin_version="1",
            background_class=-1,
            max_output_boxes=max_detections,
            score_threshold=max(0.01, 0.4),
            iou_threshold=0.5,
            score_activation=1,
            box_coding=1,
        )
    )
    types = (TensorProto.INT32, TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.INT32)
    shapes = (["N", 1], ["N", max_detections, 4], ["N", max_detections], ["N", max_detections])
    outs = [helper.make_tensor_value_info(n, t, s) for n, t, s in zip(_EFFDET_NAMES, types, shapes, strict=True)]
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", size, size, 3])
    graph = helper.make_graph(g.nodes, "tao5_efficientdet", [inp], outs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return TaoGraph("efficientdet_tao5", model, (3, size, size), "tao-efficientdet", classes, _EFFDET_NAMES)


ALL = {
    "ssd": ssd,
    "dssd": dssd,
    "retinanet": retinanet,
    "yolo_v3": yolo_v3,
    "yolo_v4": yolo_v4,
    "yolo_v4_tiny": yolo_v4_tiny,
    "efficientdet_tao": efficientdet_tao,
}
