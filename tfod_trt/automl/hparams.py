"""An AutoML EfficientDet export's facts, read from its saved_model.pb (no TensorFlow).

What AutoML's export keeps and where (google/automl @ 6a54c87, efficientdet/):

* input size: the ``predict`` signature's ``images`` [1,H,W,3] (tf2/infer_lib.py, ExportModel,
  signature "predict" takes the preprocessed image at params['image_size']);
* heads: ``predict`` returns ``cls_outputs`` then ``box_outputs``, one per level min..max,
  [1,h,w,A*C] and [1,h,w,A*4] (tf2/postprocess.py, merge_class_box_level_outputs reshapes them
  to [B,-1,C] and [B,-1,4] in this order): A = box channels / 4, C = class channels / A;
* anchors: postprocess builds ``anchors.Anchors(min_level, max_level, num_scales,
  aspect_ratios, anchor_scale, image_size).boxes`` in Python, so the serving graph holds them as
  one float Const [sum(h*w*A), 4] of pixel corners (ymin, xmin, ymax, xmax) next to its
  NonMaxSuppressionV5; we read that constant rather than re-implement the generator, and
  describe it by the hyper-parameters it implies;
* normalisation: dataloader.DetectionInputProcessor.normalize_image subtracts a mean and
  divides by a std (params mean_rgb / stddev_rgb) before the resize: a Sub by a 3-value Const
  feeding a RealDiv by a 3-value Const;
* NMS: tf2/postprocess.py nms() calls tf.raw_ops.NonMaxSuppressionV5 with Const inputs
  max_output_size, iou_threshold, score_threshold, soft_nms_sigma (half the configured sigma).

A fact that cannot be found is refused, naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfod_trt.automl.saved_model_proto import NodeDef, SavedModelProto, Signature, read_saved_model
from trtdeploy.errors import InputError, UnsupportedModelError

TITLE = "AutoML EfficientDet"
PREDICT = "predict"
NMS_OP = b"NonMaxSuppressionV5"


@dataclass
class AutomlConfig:
    """Everything create-onnx needs from the export (the fields create-onnx reads from a TFOD
    config have the same names)."""

    path: Path  # saved_model.pb, named in messages
    height: int
    width: int
    num_classes: int
    anchors_per_location: int
    level_shapes: list[tuple[int, int]]  # (h, w) per level, min_level first
    anchors: np.ndarray  # [A,4] ymin,xmin,ymax,xmax in input pixels
    mean: np.ndarray  # [3]: the network sees (pixel - mean) / std
    std: np.ndarray
    score_threshold: float
    iou_threshold: float
    max_total_detections: int
    soft_nms_sigma: float  # the serving signature's NonMaxSuppressionV5 input (0 = hard NMS)
    hparams: dict[str, Any] = field(default_factory=dict)  # min_level, max_level, num_scales, ...
    resizer: str = "keep_aspect_ratio_resizer"  # AutoML resizes keeping the aspect ratio, pads bottom/right
    feature_extractor: str = "efficientdet"

    @property
    def max_detections_per_class(self) -> int:
        return self.max_total_detections

    @property
    def normalized_anchors(self) -> np.ndarray:
        h, w = self.height, self.width
        return (self.anchors / np.array([h, w, h, w], np.float32)).astype(np.float32)


def head_outputs(signature: Signature) -> tuple[list[str], list[str]]:
    """The predict signature's class and box output names, in level order (output_0..)."""
    names = sorted(signature.outputs, key=lambda n: (len(n), n))
    half = len(names) // 2
    return names[:half], names[half:]


def check_predict(sm: SavedModelProto) -> str | None:
    """None when ``sm`` has AutoML's predict signature; else what it has instead."""
    sig = sm.signatures.get(PREDICT)
    if sig is None:
        serving = sm.signatures.get("serving_default")
        if serving is not None and "input_tensor" in serving.inputs and "detection_boxes" in serving.outputs:
            return (f"{sm.path.parent} looks like a TF Object Detection API export (serving_default takes input_tensor "
                    "and gives detection_boxes), not an AutoML one (no 'predict' signature)")
        return f"{sm.path.parent} has no 'predict' signature (signatures: {', '.join(sorted(sm.signatures)) or 'none'})"
    inputs = list(sig.inputs.values())
    if len(inputs) != 1 or inputs[0].dtype != "float32" or not inputs[0].shape or len(inputs[0].shape) != 4:
        return f"its 'predict' signature takes {sig.inputs}, not one float32 image [1,H,W,3]"
    shapes = [o.shape for o in sig.outputs.values()]
    if len(shapes) < 2 or len(shapes) % 2 or any(s is None or len(s) != 4 for s in shapes):
        return f"its 'predict' signature gives {len(shapes)} outputs, not AutoML's class and box maps per level"
    return None


def is_automl_export(saved_model: Path) -> bool:
    """An AutoML EfficientDet export (its 'predict' signature with the raw heads); reads only
    saved_model.pb's signatures, without TensorFlow."""
    try:
        return check_predict(read_saved_model(Path(saved_model))) is None
    except InputError:
        return False


def read_config(sm: SavedModelProto) -> AutomlConfig:
    """The export's facts (UnsupportedModelError naming the first that cannot be read)."""
    refusal = check_predict(sm)
    if refusal:
        raise UnsupportedModelError(f"{TITLE}: {refusal}")
    sig = sm.signatures[PREDICT]
    image = next(iter(sig.inputs.values())).shape
    assert image is not None
    height, width, channels = image[1], image[2], image[3]
    if min(height, width) < 1 or channels != 3:
        raise UnsupportedModelError(f"{TITLE}: cannot read the input size from predict's images {image}")
    cls_names, box_names = head_outputs(sig)
    level_shapes, anchors_per_location, num_classes = _heads(sig, cls_names, box_names)
    expected = sum(h * w for h, w in level_shapes) * anchors_per_location
    functions = list(sm.functions(NMS_OP))
    anchors = _anchors(functions, expected)
    mean, std = _normalisation(functions)
    max_out, iou, score, sigma = _nms(functions)
    config = AutomlConfig(
        path=sm.path, height=height, width=width, num_classes=num_classes,
        anchors_per_location=anchors_per_location, level_shapes=level_shapes, anchors=anchors, mean=mean, std=std,
        score_threshold=score, iou_threshold=iou, max_total_detections=max_out, soft_nms_sigma=sigma,
    )
    config.hparams = describe_anchors(config)
    return config


def _heads(sig: Signature, cls_names: list[str], box_names: list[str]) -> tuple[list[tuple[int, int]], int, int]:
    shapes = []
    for cls_name, box_name in zip(cls_names, box_names, strict=True):
        cls, box = sig.outputs[cls_name].shape, sig.outputs[box_name].shape
        assert cls is not None and box is not None
        if cls[1:3] != box[1:3] or box[3] % 4:
            raise UnsupportedModelError(
                f"{TITLE}: predict outputs {cls_name} {cls} and {box_name} {box} are not a class map and a box map of "
                "one level (box channels = 4 x anchors per location)"
            )
        shapes.append((cls[1], cls[2], cls[3], box[3] // 4))
    per_location = {s[3] for s in shapes}
    channels = {s[2] for s in shapes}
    if len(per_location) != 1 or len(channels) != 1 or next(iter(channels)) % next(iter(per_location)):
        raise UnsupportedModelError(f"{TITLE}: cannot read the class count from the predict outputs {shapes}")
    a = per_location.pop()
    return [(h, w) for h, w, _, _ in shapes], a, channels.pop() // a


def _anchors(functions: list[tuple[str, list[NodeDef]]], expected: int) -> np.ndarray:
    found: list[np.ndarray] = []
    for _, nodes in functions:
        for node in nodes:
            if node.op == "Const" and node.value is not None:
                value = node.array()
                if value is not None and value.dtype == np.float32 and value.shape == (expected, 4):
                    found.append(value)
    if not found:
        raise UnsupportedModelError(
            f"{TITLE}: cannot determine the anchors: no float constant [{expected},4] (the anchor boxes the "
            "post-processing decodes against) next to the export's NonMaxSuppressionV5; is this AutoML's own export?"
        )
    if any(not np.array_equal(found[0], other) for other in found[1:]):
        raise UnsupportedModelError(f"{TITLE}: cannot determine the anchors: the export holds different anchor sets")
    return found[0].astype(np.float32)


def _const_inputs(node: NodeDef, by_name: dict[str, NodeDef]) -> list[np.ndarray | None]:
    values: list[np.ndarray | None] = []
    for name in node.inputs:
        src = by_name.get(name.split(":")[0])
        values.append(src.array() if src is not None else None)
    return values


def _normalisation(functions: list[tuple[str, list[NodeDef]]]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the Sub -> RealDiv by per-channel constants before the network."""
    pairs = set()
    for _, nodes in functions:
        by_name = {n.name: n for n in nodes}
        for div in nodes:
            if div.op != "RealDiv" or len(div.inputs) != 2:
                continue
            sub = by_name.get(div.inputs[0].split(":")[0])
            std = _const_inputs(div, by_name)[1]
            if sub is None or sub.op != "Sub" or std is None or std.size not in (1, 3):
                continue
            mean = _const_inputs(sub, by_name)[1]
            if mean is not None and mean.size in (1, 3):
                pairs.add((tuple(np.broadcast_to(mean.ravel(), 3).tolist()), tuple(np.broadcast_to(std.ravel(), 3).tolist())))
    if len(pairs) != 1:
        raise UnsupportedModelError(
            f"{TITLE}: cannot determine the input normalisation: expected one (pixel - mean) / std by per-channel "
            f"constants in the serving graph, found {len(pairs)}"
        )
    mean_values, std_values = pairs.pop()
    return np.asarray(mean_values, np.float32), np.asarray(std_values, np.float32)


def _nms(functions: list[tuple[str, list[NodeDef]]]) -> tuple[int, float, float, float]:
    found = set()
    for _, nodes in functions:
        by_name = {n.name: n for n in nodes}
        for node in nodes:
            if node.op == "NonMaxSuppressionV5":
                values = _const_inputs(node, by_name)[2:6]
                if all(v is not None and v.size == 1 for v in values):
                    m, iou, score, sigma = (v.item() for v in values if v is not None)
                    found.add((int(m), _short(iou), _short(score), _short(sigma)))
    if len(found) != 1:
        raise UnsupportedModelError(
            f"{TITLE}: cannot determine the NMS parameters: expected one NonMaxSuppressionV5 with constant inputs "
            f"in the serving graph, found {len(found)} settings"
        )
    m, iou, score, sigma = found.pop()
    # the soft-NMS path passes iou_threshold 1.0 (tf2/postprocess.py nms(), method 'gaussian'); hard NMS
    # there defaults to 0.5, which is what our (hard) NMS heads use then.
    return m, (iou if iou < 1.0 else 0.5), score, sigma


def _short(value: float) -> float:
    """A float32 constant as the decimal it was written as (0.001, not 0.0010000000474974513)."""
    return float(str(np.float32(value)))


def describe_anchors(config: AutomlConfig) -> dict[str, Any]:
    """AutoML's anchor hyper-parameters implied by the anchor constant: levels from the strides,
    and from the first location of the first level the scales (sqrt(h*w) / stride =
    anchor_scale * 2^(octave/num_scales)) and aspect ratios (w / h), as in efficientdet
    anchors.py (_generate_anchor_configs / _generate_boxes)."""
    strides = [config.height / h for h, _ in config.level_shapes]
    levels = [math.log2(s) for s in strides]
    first = config.anchors[: config.anchors_per_location]
    hs, ws = first[:, 2] - first[:, 0], first[:, 3] - first[:, 1]
    sizes = sorted({round(float(v), 3) for v in np.sqrt(hs * ws) / strides[0]})
    ratios = list(dict.fromkeys(round(float(v), 3) for v in ws / hs))
    return {
        "min_level": round(levels[0]), "max_level": round(levels[-1]), "num_scales": len(sizes),
        "aspect_ratios": ratios, "anchor_scale": sizes[0], "anchors_per_location": config.anchors_per_location,
    }
