"""Per-architecture facts from a TAO spec: input, preprocessing, labels, NMS, outputs.

Label rules (DOMAIN.md §6, checked against TAO's training code): SSD/DSSD/RetinaNet put
``background`` first then the sorted target classes; YOLOv3/v4/v4-tiny sorted, no background;
FasterRCNN sorted then ``background`` last; MaskRCNN ``BG`` then the categories by id;
DetectNet_v2 spec order; UNet by training label id; EfficientDet label-map ids 1..N-1.
Training lower-cases class names before sorting (the exporter does not), so we lower-case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tao_trt.spec import SpecMessage, message_at
from trtdeploy.errors import InputError, UnsupportedModelError
from trtdeploy.files import parse_yaml_text, read_text

_CAFFE_BGR = [103.939, 116.779, 123.68]


@dataclass(frozen=True)
class ArchFacts:
    """What every model of one TAO architecture shares, whatever its spec says: the outputs
    TAO exports, their deploy-card contract, and how DeepStream reads them."""

    output_names: tuple[str, ...]
    layout: str  # deploy-card output layout
    nms: str  # deploy-card NMS kind
    network_type: str = "detector"
    cluster_mode: int | None = None
    parse_func: str | None = None  # "" = nvinfer's built-in parser; None: the layout's parser
    extra: tuple[tuple[str, Any], ...] = ()  # more nvinfer keys, e.g. segmentation-threshold
    background: str = "none"  # the background rule the labels follow
    # The DeepStream parser variant (trtdeploy.deploy_card.DS_OUTPUTS) a 'deepstream' layout is
    # shaped for; recorded in the card, else a loaded card counts as the legacy sdk-efficientdet.
    ds_parser: str = ""


_NMS_TRT = ArchFacts(("NMS", "NMS_1"), "nms_trt", "nms_trt", background="first")
_YOLO = ArchFacts(("BatchedNMS", "BatchedNMS_1", "BatchedNMS_2", "BatchedNMS_3"), "batched", "batched")
_CLASSIFIER = ArchFacts(
    ("predictions/Softmax",), "other", "other", network_type="classifier", extra=(("classifier-threshold", 0.5),)
)
ARCH_FACTS: dict[str, ArchFacts] = {
    "ssd": _NMS_TRT,
    "dssd": _NMS_TRT,
    "retinanet": _NMS_TRT,
    "yolo_v3": _YOLO,
    "yolo_v4": _YOLO,
    "yolo_v4_tiny": _YOLO,
    "faster_rcnn": ArchFacts(("nms_out", "nms_out_1"), "nms_trt", "nms_trt", background="last"),
    "mask_rcnn": ArchFacts(
        ("generate_detections", "mask_fcn_logits/BiasAdd"), "other", "other", network_type="instance_segmentation",
        cluster_mode=4, parse_func="NvDsInferParseCustomMrcnnTLTV2", background="first (BG)",
    ),  # fmt: skip
    "detectnet_v2": ArchFacts(
        ("output_bbox/BiasAdd:0", "output_cov/Sigmoid:0"), "other", "none", cluster_mode=2, parse_func=""
    ),
    "unet": ArchFacts(
        ("argmax_1",), "other", "other", network_type="segmentation",
        extra=(("segmentation-threshold", 0.0), ("segmentation-output-order", 1)),
    ),  # fmt: skip
    "classification": _CLASSIFIER,
    "multitask_classification": _CLASSIFIER,
    "efficientdet": ArchFacts(
        ("num_detections", "detection_boxes", "detection_scores", "detection_classes"), "deepstream", "efficient",
        # int32 classes found by name: NVIDIA-AI-IOT/deepstream_tao_apps release/tao5.3_ds7.0ga (the branch
        # of the reference configs), post_processor/nvdsinfer_custombboxparser_tao.cpp,
        # NvDsInferParseCustomEfficientDetTAO l. 334-385: the 4 outputs looked up by name (l. 351-361),
        # classes read as int (l. 349, 360), boxes pixel y1,x1,y2,x2 (l. 383-384); DS_OUTPUTS' tao-efficientdet.
        ds_parser="tao-efficientdet",
    ),
}


ARCHITECTURES = tuple(ARCH_FACTS)


def _shared(arch: str) -> dict[str, Any]:
    """ARCH_FACTS[arch] as TaoFacts keyword arguments."""
    shared = ARCH_FACTS[arch]
    return dict(
        output_names=list(shared.output_names), layout=shared.layout, nms=shared.nms,
        network_type=shared.network_type, cluster_mode=shared.cluster_mode, parse_func=shared.parse_func,
        extra=dict(shared.extra),
    )  # fmt: skip


@dataclass
class TaoFacts:
    arch: str
    channels: int
    height: int
    width: int
    color: str  # RGB | BGR | GRAY
    scale: float
    offsets: list[float]
    labels: list[str]  # label file lines (classifier: one ';'-joined line per output)
    output_names: list[str]
    layout: str  # deploy-card output layout
    nms: str
    network_type: str = "detector"
    input_layout: str = "NCHW"
    resize: str = "stretch"
    box_format: str = "x1y1x2y2"
    box_units: str = "normalized"
    class_dtype: str = "float32"
    score_threshold: float = 0.3
    iou_threshold: float = 0.5
    top_k: int = 200
    cluster_mode: int | None = None
    parse_func: str | None = None  # "" = nvinfer's built-in parser
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def _sorted_targets(spec: SpecMessage, *path: str) -> list[str]:
    block = message_at(spec, *path)
    mappings = block.all("target_class_mapping") if block else []
    names = {
        str(m.get("value")).lower()
        for m in mappings
        if isinstance(m, SpecMessage) and m.get("value")
    }
    if not names:
        raise InputError(
            f"the spec has no {'.'.join(path)}.target_class_mapping: cannot tell the classes"
        )
    return sorted(names)


def _aug_dims(spec: SpecMessage) -> tuple[int, int, int]:
    aug = message_at(spec, "augmentation_config")
    if aug is None or aug.get("output_width") is None:
        raise InputError("the spec has no augmentation_config output_width/output_height")
    return (
        _int(aug, "output_channel", 3),
        _int(aug, "output_height"),
        _int(aug, "output_width"),
    )


def _nms(spec: SpecMessage) -> tuple[float, float, int]:
    nms = message_at(spec, "nms_config")
    if nms is None:
        return 0.3, 0.5, 200
    return (
        _float(nms, "confidence_threshold", 0.3),
        _float(nms, "clustering_iou_threshold", 0.5),
        _int(nms, "top_k", 200),
    )


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d*)?", str(text))]


_REQUIRED = object()


def _value(node: Any, key: str, default: Any) -> Any:
    value = node.get(key, None) if isinstance(node, (SpecMessage, dict)) else None
    if value is None:
        if default is _REQUIRED:
            raise InputError(f"the spec has no {key}")
        return default
    return value


def _int(node: Any, key: str, default: Any = _REQUIRED) -> int:
    """An integer field of a spec block (protobuf text or YAML); one-line InputError otherwise."""
    value = _value(node, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"spec field {key} is {value!r}, not an integer")
    try:
        number = float(value)
        if number != int(number):
            raise ValueError
        return int(number)
    except (ValueError, OverflowError):
        raise InputError(f"spec field {key} is {value!r}, not an integer") from None


def _float(node: Any, key: str, default: Any = _REQUIRED) -> float:
    value = _value(node, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"spec field {key} is {value!r}, not a number")
    try:
        return float(value)
    except ValueError:
        raise InputError(f"spec field {key} is {value!r}, not a number") from None


def _dims(text: Any, count: int, key: str) -> tuple[int, ...]:
    """The first ``count`` integers of a "H,W"-style spec string."""
    numbers = _numbers(text) if isinstance(text, (str, int, float)) else []
    if len(numbers) < count or any(n != int(n) or n <= 0 for n in numbers[:count]):
        raise InputError(f"spec field {key} is {text!r}; expected {count} positive integers like '512,512'")
    return tuple(int(n) for n in numbers[:count])


def _mapping(spec: dict[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key) or {}
    if not isinstance(value, dict):
        raise InputError(f"spec section {key!r} must be a mapping, got {value!r}")
    return value


def _read_label_source(path: Path | None, arch: str) -> list[str] | dict[int, str]:
    if path is None:
        raise InputError(
            f"{arch} specs do not name the classes: pass --labels (a text file, one class per line)"
        )
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file {path} not found")
    text = read_text(path, "labels file")
    if path.suffix.lower() in (".yaml", ".yml"):
        data = parse_yaml_text(text, str(path))
        if not isinstance(data, dict):
            raise InputError(f"label map {path} must map class ids to names")
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in data):
            raise InputError(f"label map {path} must map integer class ids to names")
        return {int(k): str(v) for k, v in data.items()}
    return [line.strip() for line in text.splitlines() if line.strip()]


def facts_from_spec(
    spec: SpecMessage | dict[str, Any], arch: str, labels_file: Path | None = None
) -> TaoFacts:
    """The deployment facts of a TAO model trained with ``spec``."""
    if arch not in ARCHITECTURES:
        raise UnsupportedModelError(
            f"unknown TAO architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}"
        )
    if arch == "efficientdet":
        return _efficientdet(spec, labels_file)
    if not isinstance(spec, SpecMessage):
        raise InputError(f"{arch} uses a protobuf-text spec, got a YAML one")
    return _BUILDERS[arch](spec, labels_file)


def _ssd_like(spec: SpecMessage, arch: str) -> TaoFacts:
    c, h, w = _aug_dims(spec)
    score, iou, top_k = _nms(spec)
    return TaoFacts(
        arch, c, h, w, "BGR" if c == 3 else "GRAY", 1.0, _CAFFE_BGR if c == 3 else [0.0],
        ["background"] + _sorted_targets(spec, "dataset_config"), **_shared(arch),
        score_threshold=score, iou_threshold=iou, top_k=top_k,
    )  # fmt: skip


def _yolo(spec: SpecMessage, arch: str) -> TaoFacts:
    c, h, w = _aug_dims(spec)
    score, iou, top_k = _nms(spec)
    return TaoFacts(
        arch, c, h, w, "BGR" if c == 3 else "GRAY", 1.0, _CAFFE_BGR if c == 3 else [0.0],
        _sorted_targets(spec, "dataset_config"), **_shared(arch),
        resize="letterbox", score_threshold=score, iou_threshold=iou, top_k=top_k,
    )  # fmt: skip


def _faster_rcnn(spec: SpecMessage, labels_file: Path | None) -> TaoFacts:
    image = message_at(spec, "model_config", "input_image_config")
    if image is None:
        raise InputError("the spec has no model_config.input_image_config")
    size = message_at(image, "size_height_width")
    if size is None:
        raise InputError(
            "the spec has no input_image_config.size_height_width (min-side sizing is not supported)"
        )
    gray = str(image.get("image_type", "RGB")).upper().startswith("GRAY")
    order = str(image.get("image_channel_order", "bgr" if not gray else "l")).lower()
    means = {
        str(m.get("key")).lower(): _float(m, "value")
        for m in image.all("image_channel_mean")
        if isinstance(m, SpecMessage)
    }
    offsets = (
        [means.get(ch, 0.0) for ch in order]
        if means
        else (_CAFFE_BGR if order == "bgr" else _CAFFE_BGR[::-1])
    )
    infer = message_at(spec, "inference_config")
    return TaoFacts(
        "faster_rcnn", 1 if gray else 3, _int(size, "height"), _int(size, "width"),
        "GRAY" if gray else order.upper(), _float(image, "image_scaling_factor", 1.0), offsets,
        _sorted_targets(spec, "dataset_config") + ["background"], **_shared("faster_rcnn"),
        score_threshold=_float(infer, "bbox_visualize_threshold", 0.6) if infer else 0.6,
        iou_threshold=_float(infer, "classifier_nms_overlap_threshold", 0.3) if infer else 0.3,
        top_k=_int(infer, "classifier_nms_max_boxes", 100) if infer else 100,
    )  # fmt: skip


def _mask_rcnn(spec: SpecMessage, labels_file: Path | None) -> TaoFacts:
    data = message_at(spec, "data_config")
    if data is None or data.get("image_size") is None:
        raise InputError("the spec has no data_config.image_size")
    h, w = _dims(data.get("image_size"), 2, "data_config.image_size")
    num_classes = _int(data, "num_classes", 0)
    names = _read_label_source(labels_file, "mask_rcnn")
    if isinstance(names, dict):
        names = [names.get(i, str(i)) for i in range(1, num_classes)]
    if len(names) != num_classes - 1:
        raise InputError(
            f"the spec says num_classes={num_classes} (background included) but the labels file has "
            f"{len(names)} classes; it needs {num_classes - 1}"
        )
    head = message_at(spec, "maskrcnn_config")
    return TaoFacts(
        "mask_rcnn", 3, h, w, "RGB", 0.017507, [123.675, 116.28, 103.53], ["BG"] + list(names),
        **_shared("mask_rcnn"), box_format="y1x1y2x2", box_units="pixels",
        iou_threshold=_float(head, "test_nms", 0.5) if head else 0.5,
        top_k=_int(head, "test_detections_per_image", 100) if head else 100,
    )  # fmt: skip


def _detectnet_v2(spec: SpecMessage, labels_file: Path | None) -> TaoFacts:
    pre = message_at(spec, "augmentation_config", "preprocessing")
    if pre is None:
        raise InputError("the spec has no augmentation_config.preprocessing")
    c = _int(pre, "output_image_channel", 3)
    cost = message_at(spec, "cost_function_config")
    names = [str(t.get("name")) for t in cost.all("target_classes") if isinstance(t, SpecMessage)] if cost else []
    if not names:
        post = message_at(spec, "postprocessing_config")
        names = [
            str(t.get("key")) for t in post.all("target_class_config") if isinstance(t, SpecMessage)
        ] if post else []
    if not names:
        raise InputError("the spec names no target classes (cost_function_config.target_classes)")
    return TaoFacts(
        "detectnet_v2", c, _int(pre, "output_image_height"), _int(pre, "output_image_width"),
        "RGB" if c == 3 else "GRAY", 1.0 / 255.0, [0.0] * c, names,
        **_shared("detectnet_v2"), score_threshold=0.2,
    )  # fmt: skip


def _unet(spec: SpecMessage, labels_file: Path | None) -> TaoFacts:
    model = message_at(spec, "model_config")
    if model is None:
        raise InputError("the spec has no model_config")
    c = _int(model, "model_input_channels", 3)
    classes = message_at(spec, "dataset_config", "data_class_config")
    by_id: dict[int, str] = {}
    for target in classes.all("target_classes") if classes else []:
        if not isinstance(target, SpecMessage):
            continue
        label_id = _int(target, "label_id", 0)
        # Several dataset names can map to one id; the one whose mapping_class is itself names it.
        if label_id not in by_id or target.get("name") == target.get("mapping_class"):
            by_id[label_id] = str(target.get("mapping_class") or target.get("name"))
    if not by_id:
        raise InputError("the spec has no dataset_config.data_class_config.target_classes")
    labels = [by_id[i] for i in sorted(by_id)]
    return TaoFacts(
        "unet", c, _int(model, "model_input_height"), _int(model, "model_input_width"),
        "BGR" if c == 3 else "GRAY", 1.0 / 127.5, [127.5] * c, labels, **_shared("unet"),
    )  # fmt: skip


def _classification(
    spec: SpecMessage, labels_file: Path | None, arch: str = "classification"
) -> TaoFacts:
    model = message_at(spec, "model_config")
    c, h, w = _dims(model.get("input_image_size", "3,224,224") if model else "3,224,224", 3, "input_image_size")
    names = _read_label_source(labels_file, arch)
    lines = [";".join(names.values())] if isinstance(names, dict) else list(names)
    if arch == "classification" and len(lines) > 1 and all(";" not in n for n in lines):
        lines = [";".join(lines)]  # one class per line given: DeepStream wants one line per output
    return TaoFacts(
        arch, c, h, w, "BGR" if c == 3 else "GRAY", 1.0, _CAFFE_BGR if c == 3 else [0.0], lines,
        **_shared(arch),
    )  # fmt: skip


def _efficientdet(spec: SpecMessage | dict[str, Any], labels_file: Path | None) -> TaoFacts:
    if isinstance(spec, SpecMessage):  # TF1 protobuf text
        data = message_at(spec, "dataset_config")
        if data is None:
            raise InputError("the spec has no dataset_config")
        h, w = _dims(data.get("image_size", "512,512"), 2, "dataset_config.image_size")
        num_classes = _int(data, "num_classes", 91)
        ev = message_at(spec, "eval_config")
        score = _float(ev, "min_score_thresh", 0.4) if ev else 0.4
        top_k = _int(ev, "max_detections_per_image", 100) if ev else 100
    else:  # TF2 YAML
        model = _mapping(spec, "model")
        h, w = _int(model, "input_height", 512), _int(model, "input_width", 512)
        num_classes = _int(_mapping(spec, "dataset"), "num_classes", 91)
        ev = _mapping(spec, "evaluate")
        score, top_k = 0.4, _int(ev, "max_detections_per_image", 100)
        if labels_file is None and isinstance(ev.get("label_map"), str) and Path(ev["label_map"]).is_file():
            labels_file = Path(ev["label_map"])
    names = _read_label_source(labels_file, "efficientdet")
    # Class ids are label-map ids 1..num_classes-1; the model's class k is id k+1. Ids the map
    # skips (COCO has gaps) keep the id as their name so later lines stay aligned.
    if isinstance(names, dict):
        labels = [names.get(i, str(i)) for i in range(1, num_classes)]
    else:
        labels = list(names)[: num_classes - 1]
    if len(labels) != num_classes - 1:
        raise InputError(
            f"num_classes={num_classes} needs {num_classes - 1} labels, the labels file has {len(labels)}"
        )
    return TaoFacts(
        "efficientdet", 3, h, w, "RGB", 1.0, [0.0, 0.0, 0.0], labels,
        **_shared("efficientdet"), input_layout="NHWC", resize="letterbox",
        box_format="y1x1y2x2", box_units="pixels", class_dtype="int32", score_threshold=score, top_k=top_k,
    )  # fmt: skip


_BUILDERS = {
    "ssd": lambda s, lf: _ssd_like(s, "ssd"),
    "dssd": lambda s, lf: _ssd_like(s, "dssd"),
    "retinanet": lambda s, lf: _ssd_like(s, "retinanet"),
    "yolo_v3": lambda s, lf: _yolo(s, "yolo_v3"),
    "yolo_v4": lambda s, lf: _yolo(s, "yolo_v4"),
    "yolo_v4_tiny": lambda s, lf: _yolo(s, "yolo_v4_tiny"),
    "faster_rcnn": _faster_rcnn,
    "mask_rcnn": _mask_rcnn,
    "detectnet_v2": _detectnet_v2,
    "unet": _unet,
    "classification": _classification,
    "multitask_classification": lambda s, lf: _classification(s, lf, "multitask_classification"),
}
