"""What create-onnx needs from a TFOD ``pipeline.config``, read without the TFOD protos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trtdeploy.errors import InputError, UnsupportedModelError
from trtdeploy.log import get_logger
from trtdeploy.prototext import Message, parse_file

log = get_logger("tfod")

# The TF2 model zoo SSD feature extractors create-onnx supports (the capability table:
# it drives validation and the README matrix).
SSD_FEATURE_EXTRACTORS = {
    "ssd_mobilenet_v1_fpn_keras": "SSD MobileNet v1 FPN",
    "ssd_mobilenet_v2_keras": "SSD MobileNet v2",
    "ssd_mobilenet_v2_fpn_keras": "SSD MobileNet v2 FPNLite",
    "ssd_resnet50_v1_fpn_keras": "SSD ResNet50 V1 FPN (RetinaNet50)",
    "ssd_resnet101_v1_fpn_keras": "SSD ResNet101 V1 FPN",
    "ssd_resnet152_v1_fpn_keras": "SSD ResNet152 V1 FPN",
    **{f"ssd_efficientnet-b{i}_bifpn_keras": f"SSD EfficientDet D{i}" for i in range(8)},
}


@dataclass
class TfodConfig:
    path: Path
    feature_extractor: str
    num_classes: int
    height: int
    width: int
    resizer: str  # "fixed_shape_resizer" | "keep_aspect_ratio_resizer"
    box_coder_scales: tuple[float, float, float, float]  # y, x, height, width
    score_converter: str  # "SIGMOID" | "SOFTMAX" | "IDENTITY"
    logit_scale: float
    add_background_class: bool
    score_threshold: float
    iou_threshold: float
    max_detections_per_class: int
    max_total_detections: int


# The meta-architecture blocks of TFOD's model.proto (a pipeline.config names exactly one).
META_ARCHITECTURES = {
    "ssd": "SSD", "faster_rcnn": "Faster R-CNN", "center_net": "CenterNet", "experimental_model": "experimental",
}  # fmt: skip


def read_model_block(path: Path) -> tuple[str | None, Message]:
    """(meta-architecture key of META_ARCHITECTURES or None, its block) of a pipeline.config:
    what a TFOD family's recognise step looks at first."""
    root = parse_file(Path(path), "pipeline.config")
    model = root.msg("model")
    if model is None:
        raise InputError(f"{path} has no 'model {{ ... }}' block; is it a TFOD pipeline.config?")
    arch = model.which(*META_ARCHITECTURES)
    return arch, (model.msg(arch) if arch else None) or Message()


def read_pipeline_config(path: Path) -> TfodConfig:
    """The facts of an SSD pipeline.config; any other meta-architecture is refused by name."""
    path = Path(path)
    arch, ssd = read_model_block(path)
    if arch != "ssd":
        name = META_ARCHITECTURES.get(arch or "", "unknown")
        raise UnsupportedModelError(
            f"{path} describes a{'n' if name[0].lower() in 'aeiou' else ''} {name} model; create-onnx supports TFOD SSD models "
            f"({', '.join(sorted(set(SSD_FEATURE_EXTRACTORS.values())))})"
        )
    extractor = str(ssd.path("feature_extractor.type", ""))
    if extractor not in SSD_FEATURE_EXTRACTORS:
        raise UnsupportedModelError(
            f"{path}: SSD feature extractor {extractor!r} is not supported; supported: "
            f"{', '.join(SSD_FEATURE_EXTRACTORS)}"
        )
    try:  # a field of the wrong type (a block or word where a number belongs) is the file's fault
        height, width, resizer = _input_size(ssd, path)
        coder = ssd.path("box_coder.faster_rcnn_box_coder")
        if not isinstance(coder, Message):
            raise UnsupportedModelError(f"{path}: only faster_rcnn_box_coder is supported for SSD box decoding")
        scales = tuple(float(coder.get(k, d)) for k, d in (("y_scale", 10.0), ("x_scale", 10.0), ("height_scale", 5.0), ("width_scale", 5.0)))
        post = ssd.msg("post_processing") or Message()
        nms = post.msg("batch_non_max_suppression") or Message()
        num_classes = int(ssd.get("num_classes", 0))
        if num_classes < 1:
            raise InputError(f"{path}: num_classes must be >= 1, found {num_classes}")
        return TfodConfig(
            path=path,
            feature_extractor=extractor,
            num_classes=num_classes,
            height=height,
            width=width,
            resizer=resizer,
            box_coder_scales=scales,  # type: ignore[arg-type]
            score_converter=str(post.get("score_converter", "IDENTITY")),
            logit_scale=float(post.get("logit_scale", 1.0)),
            add_background_class=bool(ssd.get("add_background_class", True)),
            score_threshold=float(nms.get("score_threshold", 0.0)),
            iou_threshold=float(nms.get("iou_threshold", 0.6)),
            max_detections_per_class=int(nms.get("max_detections_per_class", 100)),
            max_total_detections=int(nms.get("max_total_detections", 100)),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{path}: a model.ssd field has a value of the wrong type ({exc})") from exc


def _input_size(ssd: Message, path: Path) -> tuple[int, int, str]:
    resizer = ssd.msg("image_resizer") or Message()
    kind = resizer.which("fixed_shape_resizer", "keep_aspect_ratio_resizer")
    if kind == "fixed_shape_resizer":
        fixed = resizer.msg(kind) or Message()
        return int(fixed.get("height", 0)), int(fixed.get("width", 0)), kind
    if kind == "keep_aspect_ratio_resizer":
        keep = resizer.msg(kind) or Message()
        if not keep.get("pad_to_max_dimension", False):
            raise UnsupportedModelError(
                f"{path}: keep_aspect_ratio_resizer without pad_to_max_dimension gives a variable input "
                "size; pass --input-size HxW"
            )
        side = int(keep.get("max_dimension", 0))
        return side, side, kind
    raise UnsupportedModelError(f"{path}: unsupported image_resizer (expected fixed_shape or keep_aspect_ratio)")


def read_label_map(path: Path, num_classes: int) -> list[str]:
    """Labels indexed by class id 0..num_classes-1 (label-map id minus one), read the way TFOD's
    ``object_detection/utils/label_map_util.py`` reads them (tensorflow/models ff91b5c4):

    * a negative id, or id 0 not named ``background``, is an error (``_validate_label_map``);
      id 0 ``background`` is skipped (it is not a class of the model);
    * a repeated id keeps its FIRST item (``convert_label_map_to_categories``): accepted by
      TFOD, so a warning here, naming both names;
    * the name is ``display_name`` if present, else ``name``; an item with neither gets
      ``class_<id>`` and a warning (TFOD would give it an empty name, which a DeepStream labels
      file drops as a blank line, shifting every later class);
    * two ids with the same name are accepted by TFOD: a warning (the labels cannot tell them apart).

    Ids with no item get ``class_<id>``. An id above num_classes is an error: the model cannot
    predict it, so the label map belongs to another model.
    """
    path = Path(path)
    root = parse_file(path, "label map")
    names: dict[int, str] = {}
    for item in root.all("item"):
        if not isinstance(item, Message) or not item.has("id"):
            raise InputError(f"{path}: every item needs an id")
        try:
            item_id = int(item.get("id"))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: label id {item.get('id')!r} is not an integer") from exc
        name = str(item.get("display_name") or item.get("name") or "")
        if item_id < 0:
            raise InputError(f"{path}: label id {item_id} is negative; label map ids are >= 1")
        if item_id == 0:
            if "background" not in (str(item.get("name", "")), str(item.get("display_name", ""))):
                raise InputError(f"{path}: label id 0 ({name!r}) is reserved for the background; start class ids at 1")
            continue
        if item_id > num_classes:
            raise InputError(
                f"{path}: label id {item_id} ({name!r}) is outside 1..{num_classes} "
                f"(pipeline.config num_classes={num_classes})"
            )
        if item_id in names:
            log.warning("%s: label id %d appears again (%r); keeping the first, %r, as TFOD does",
                        path, item_id, name, names[item_id])
            continue
        if not name:
            log.warning("%s: label id %d has no name or display_name; calling it class_%d", path, item_id, item_id)
            name = f"class_{item_id}"
        names[item_id] = name
    if not names:
        raise InputError(f"{path}: no 'item {{ id: ... name: ... }}' entries found")
    labels = [names.get(i, f"class_{i}") for i in range(1, num_classes + 1)]
    seen: dict[str, int] = {}
    for class_id, label in enumerate(labels, start=1):
        if label in seen:
            log.warning("%s: ids %d and %d are both named %r; their detections cannot be told apart by label",
                        path, seen[label], class_id, label)
        seen.setdefault(label, class_id)
    return labels


# The TF2 model zoo Faster R-CNN feature extractors create-onnx converts: one feature map cut
# after the first stage's backbone, cropped once (the capability table; the README matrix).
FASTER_RCNN_FEATURE_EXTRACTORS = {
    "faster_rcnn_resnet50_keras": "Faster R-CNN ResNet50 V1",
    "faster_rcnn_resnet101_keras": "Faster R-CNN ResNet101 V1",
    "faster_rcnn_resnet152_keras": "Faster R-CNN ResNet152 V1",
    "faster_rcnn_inception_resnet_v2_keras": "Faster R-CNN Inception ResNet V2",
}
# Known extractors whose graphs do not fit that pattern (several feature maps, multilevel crop).
FASTER_RCNN_REFUSED = {
    "faster_rcnn_resnet50_fpn_keras": "FPN: several feature maps and a multilevel crop",
    "faster_rcnn_resnet101_fpn_keras": "FPN: several feature maps and a multilevel crop",
    "faster_rcnn_resnet152_fpn_keras": "FPN: several feature maps and a multilevel crop",
}


@dataclass
class FasterRcnnConfig(TfodConfig):
    """A ``faster_rcnn { ... }`` block: the TfodConfig fields describe the second stage (its
    post-processing is what the outputs carry), the rest the first stage and the crop.

    Field names and defaults are TFOD's ``protos/faster_rcnn.proto`` (tensorflow/models
    research/object_detection/protos/faster_rcnn.proto)."""

    first_stage_nms_score_threshold: float = 0.0
    first_stage_nms_iou_threshold: float = 0.7
    first_stage_max_proposals: int = 300
    anchor_scales: tuple[float, ...] = ()
    anchor_aspect_ratios: tuple[float, ...] = ()
    anchor_stride: tuple[int, int] = (16, 16)  # height_stride, width_stride
    initial_crop_size: int = 14
    maxpool_kernel_size: int = 2
    maxpool_stride: int = 2
    use_matmul_crop_and_resize: bool = False
    share_box_across_classes: bool = False  # one refined box per proposal, not one per class
    clip_anchors_to_image: bool = False
    use_static_shapes: bool = False
    # Mask R-CNN (mask_rcnn_box_predictor fields of protos/box_predictor.proto): the conversion
    # reads the mask head's structure from the graph; these are checked against it.
    predict_instance_masks: bool = False
    mask_height: int = 15
    mask_width: int = 15
    masks_are_class_agnostic: bool = False

    @property
    def mask_classes(self) -> int:
        """Masks per detection the mask head predicts: 1 (class agnostic) or num_classes."""
        return 1 if self.masks_are_class_agnostic else self.num_classes


def read_faster_rcnn_config(path: Path) -> FasterRcnnConfig:
    """The facts of a Faster R-CNN (or Mask R-CNN: ``predict_instance_masks``) pipeline.config;
    another meta-architecture, an unsupported feature extractor or box predictor are refused by name."""
    path = Path(path)
    arch, block = read_model_block(path)
    if arch != "faster_rcnn":
        name = META_ARCHITECTURES.get(arch or "", "unknown")
        raise UnsupportedModelError(f"{path} describes a model of the {name} meta-architecture, not a TFOD Faster R-CNN")
    extractor = str(block.path("feature_extractor.type", ""))
    if extractor not in FASTER_RCNN_FEATURE_EXTRACTORS:
        why = FASTER_RCNN_REFUSED.get(extractor, "not a supported feature extractor")
        raise UnsupportedModelError(
            f"{path}: Faster R-CNN feature extractor {extractor!r} is not supported ({why}); supported: "
            f"{', '.join(FASTER_RCNN_FEATURE_EXTRACTORS)}"
        )
    try:
        return _faster_rcnn_fields(path, block, extractor)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{path}: a model.faster_rcnn field has a value of the wrong type ({exc})") from exc


def _faster_rcnn_fields(path: Path, block: Message, extractor: str) -> FasterRcnnConfig:
    height, width, resizer = _input_size(block, path)
    num_classes = int(block.get("num_classes", 0))
    if num_classes < 1:
        raise InputError(f"{path}: num_classes must be >= 1, found {num_classes}")
    predictor = block.path("second_stage_box_predictor.mask_rcnn_box_predictor")
    if not isinstance(predictor, Message):
        raise UnsupportedModelError(
            f"{path}: second_stage_box_predictor must be a mask_rcnn_box_predictor (what the TF2 zoo Faster R-CNN "
            "models use)"
        )
    post = block.msg("second_stage_post_processing") or Message()
    nms = post.msg("batch_non_max_suppression") or Message()
    grid = block.path("first_stage_anchor_generator.grid_anchor_generator")
    if not isinstance(grid, Message):
        raise UnsupportedModelError(f"{path}: only the grid_anchor_generator is supported for Faster R-CNN anchors")
    stride = (int(grid.get("height_stride", 16)), int(grid.get("width_stride", 16)))
    config = FasterRcnnConfig(
        path=path,
        feature_extractor=extractor,
        num_classes=num_classes,
        height=height,
        width=width,
        resizer=resizer,
        # Faster R-CNN's proto has no box coder: TFOD's target assigner builds faster_rcnn_box_coder
        # with its defaults; the converter reads the scales from the exported graph (tf_cut).
        box_coder_scales=(10.0, 10.0, 5.0, 5.0),
        score_converter=str(post.get("score_converter", "IDENTITY")),
        logit_scale=float(post.get("logit_scale", 1.0)),
        add_background_class=True,  # the second-stage classifier always predicts a background column
        score_threshold=float(nms.get("score_threshold", 0.0)),
        iou_threshold=float(nms.get("iou_threshold", 0.6)),
        max_detections_per_class=int(nms.get("max_detections_per_class", 100)),
        max_total_detections=int(nms.get("max_total_detections", 100)),
        first_stage_nms_score_threshold=float(block.get("first_stage_nms_score_threshold", 0.0)),
        first_stage_nms_iou_threshold=float(block.get("first_stage_nms_iou_threshold", 0.7)),
        first_stage_max_proposals=int(block.get("first_stage_max_proposals", 300)),
        anchor_scales=tuple(float(v) for v in grid.all("scales")) or (0.5, 1.0, 2.0),
        anchor_aspect_ratios=tuple(float(v) for v in grid.all("aspect_ratios")) or (0.5, 1.0, 2.0),
        anchor_stride=stride,
        initial_crop_size=int(block.get("initial_crop_size", 0)),
        maxpool_kernel_size=int(block.get("maxpool_kernel_size", 0)),
        maxpool_stride=int(block.get("maxpool_stride", 0)),
        use_matmul_crop_and_resize=bool(block.get("use_matmul_crop_and_resize", False)),
        share_box_across_classes=bool(predictor.get("share_box_across_classes", False)),
        clip_anchors_to_image=bool(block.get("clip_anchors_to_image", False)),
        use_static_shapes=bool(block.get("use_static_shapes", False)),
        predict_instance_masks=bool(predictor.get("predict_instance_masks", False)),
        mask_height=int(predictor.get("mask_height", 15)),
        mask_width=int(predictor.get("mask_width", 15)),
        masks_are_class_agnostic=bool(predictor.get("masks_are_class_agnostic", False)),
    )
    _check_faster_rcnn(config)
    return config


def _check_faster_rcnn(config: FasterRcnnConfig) -> None:
    path = config.path
    if config.predict_instance_masks and (config.mask_height < 1 or config.mask_width < 1):
        raise InputError(f"{path}: mask_height ({config.mask_height}) and mask_width ({config.mask_width}) must be >= 1")
    if config.initial_crop_size < 1 or config.first_stage_max_proposals < 1:
        raise InputError(
            f"{path}: initial_crop_size ({config.initial_crop_size}) and first_stage_max_proposals "
            f"({config.first_stage_max_proposals}) must be >= 1"
        )
    for name, value in (("first_stage_nms_iou_threshold", config.first_stage_nms_iou_threshold),
                        ("first_stage_nms_score_threshold", config.first_stage_nms_score_threshold)):
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{path}: {name} must be in [0, 1], found {value}")
    if config.score_converter not in ("SOFTMAX", "SIGMOID", "IDENTITY"):
        raise UnsupportedModelError(f"{path}: second_stage_score_converter {config.score_converter} is not supported")
