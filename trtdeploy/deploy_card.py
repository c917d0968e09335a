"""The deploy card: the one place where a model's deployment facts live.

Written next to the ONNX as ``<model>.deploy.json`` by the front-end that knows the facts,
read by build-engine, calibration and gen-ds-config so the user never repeats them.

Conventions (schema version 1):

* ``input.shape`` is in the input's own layout; a dynamic dimension is ``-1``.
* Preprocessing is DeepStream's formula on 0-255 pixels in ``color_order``:
  ``tensor = scale * (pixel - offsets[c])``. A model that normalises inside the graph
  (TFOD) has ``scale = 1`` and zero offsets.
* ``output.layout`` names the output contract; see ``OUTPUT_LAYOUTS``.
* Class ids are indices into ``labels`` (``class_id_base`` says where they start); the
  background rule applied to ``labels`` is recorded in ``background``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from trtdeploy.errors import InputError
from trtdeploy.files import read_json_object, write_text_atomic

SCHEMA = "trtdeploy.deploy_card"
SCHEMA_VERSION = 1

Layout = Literal["NHWC", "NCHW"]
ColorOrder = Literal["RGB", "BGR", "GRAY"]
ResizeMode = Literal["stretch", "letterbox"]
PadCorner = Literal["center", "top_left"]
NmsKind = Literal["efficient", "batched", "onnx", "none", "nms_trt", "other"]

# Output layouts and what their tensors are (in order):
#   tfod:       num_detections i32 [B,1], detection_boxes f32 [B,K,4] normalised y1,x1,y2,x2,
#               detection_scores f32 [B,K], detection_classes i32 [B,K] (0-based into labels)
#   deepstream: the same four names in the same order, shaped for the DeepStream bbox parser
#               variant named in ``ds_parser`` (trtdeploy.nms.heads.DS_OUTPUTS): ``count_dtype``,
#               ``box_format``, ``box_units`` and ``class_dtype`` say exactly what each tensor holds.
#               A card without ``ds_parser`` (written before variants existed) is sdk-efficientdet:
#               int32 count, PIXEL y1,x1,y2,x2 boxes, float32 classes.
#   batched:    BatchedNMS_TRT: num_detections i32 [B,1], nmsed_boxes [B,K,4], nmsed_scores
#               [B,K], nmsed_classes f32 [B,K] (boxes x1,y1,x2,y2 when ds_parser is batchednms)
#   raw:        no NMS: boxes f32 [B,A,4] and scores f32 [B,A,C] (DeepStream clusters them)
OUTPUT_LAYOUTS = ("tfod", "deepstream", "batched", "raw", "nms_trt", "other")
BOX_FORMATS = ("y1x1y2x2", "x1y1x2y2", "cxcywh")
BOX_UNITS = ("normalized", "pixels")
# The DeepStream parser variant of a 'deepstream' card that names none (trtdeploy.nms.heads).
LEGACY_DS_PARSER = "sdk-efficientdet"


TFOD_NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
BATCHED_NAMES = ("num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes")


@dataclass(frozen=True)
class DsOutputs:
    """The outputs create-onnx emits for one DeepStream parser variant.

    Keys of ``DS_OUTPUTS`` are the variant keys of ``trtdeploy.deepstream.parsers``; every fact
    is what the parser's C source does with the buffers nvinfer hands it (cited per entry).
    Class ids are 0-based into the deploy card's labels in every variant, which is the index
    each of these parsers uses for the label line and the per-class threshold.
    """

    layout: str  # deploy-card output layout
    kinds: tuple[str, ...]  # NMS heads that can produce it
    names: tuple[str, ...]  # in output order
    count_dtype: str
    box_format: str
    box_units: str
    class_dtype: str
    found_by: str  # "name" or "position"

    def describe(self) -> str:
        """One line for --help and error messages."""
        units = "pixel" if self.box_units == "pixels" else "normalised"
        order = ",".join(self.box_format[i : i + 2] for i in range(0, 8, 2))
        return (
            f"{', '.join(self.names)} (by {self.found_by}); count {self.count_dtype}, {units} {order} boxes, "
            f"{self.class_dtype} classes"
        )


DS_OUTPUTS: dict[str, DsOutputs] = {
    # DeepStream SDK nvdsinfer_custombboxparser.cpp, NvDsInferParseCustomTfSSD
    # (hiennguyen9874/deepstream-sources branch 6.3, lines 214-278; same code in 5.0-6.2): finds
    # the layers BY NAME and only if their dataType is FLOAT (l. 221), num_detections optional and
    # read as float (l. 240), classes read as float and used directly as the label index (l. 249-253),
    # boxes normalised y1,x1,y2,x2 scaled by the network size (l. 254-260).
    "sdk-tfssd": DsOutputs(
        "deepstream", ("efficient", "onnx"), TFOD_NAMES, "float32", "y1x1y2x2", "normalized", "float32", "name"
    ),
    # Same file, NvDsInferParseCustomEfficientDetTAO (branch 6.3, lines 607-672; 6.1 l. 530, 6.2 l. 598):
    # exactly 4 outputs BY POSITION (l. 613), count int32 (l. 620), classes float (l. 627),
    # left = box[1], top = box[0] in PIXELS (l. 658-661), asserts the largest box value >= 2 (l. 640).
    "sdk-efficientdet": DsOutputs(
        "deepstream", ("efficient", "onnx"), TFOD_NAMES, "int32", "y1x1y2x2", "pixels", "float32", "position"
    ),
    # NVIDIA-AI-IOT/deepstream_tao_apps post_processor/nvdsinfer_custombboxparser_tao.cpp,
    # NvDsInferParseCustomEfficientDetTAO (master lines 469-531, same since release/tao4.0_ds6.3ga
    # l. 334): exactly 4 outputs (l. 473) found BY NAME (l. 486-497), count int32, classes int32
    # (l. 495), `break` at a class >= num-detected-classes (l. 507), pixel y1,x1,y2,x2 (l. 517-520).
    "tao-efficientdet": DsOutputs(
        "deepstream", ("efficient", "onnx"), TFOD_NAMES, "int32", "y1x1y2x2", "pixels", "int32", "name"
    ),
    # deepstream_tao_apps release/tao3.0_ds6.2ga (and tao3.0_ds6.1.1ga), same file,
    # NvDsInferParseCustomEfficientDetTAO l. 325-396: by position with float classes (l. 344), as the SDK's.
    "tao-efficientdet-6.2": DsOutputs(
        "deepstream", ("efficient", "onnx"), TFOD_NAMES, "int32", "y1x1y2x2", "pixels", "float32", "position"
    ),
    # deepstream_tao_apps release/tao4.0_ds6.2ga, l. 334-381: by position but int32 classes (l. 349).
    "tao-efficientdet-6.2-tao4": DsOutputs(
        "deepstream", ("efficient", "onnx"), TFOD_NAMES, "int32", "y1x1y2x2", "pixels", "int32", "position"
    ),
    # DeepStream SDK nvdsinfer_custombboxparser.cpp, NvDsInferParseCustomBatchedNMSTLT (branch 6.3,
    # lines 467-530; 6.0 l. 384): exactly 4 outputs BY POSITION (l. 473), count int32, boxes, scores
    # and classes float (l. 484-487), boxes normalised x1,y1,x2,y2: left = box[0] * width,
    # top = box[1] * height (l. 518-523).
    "batchednms": DsOutputs(
        "batched", ("batched",), BATCHED_NAMES, "int32", "x1y1x2y2", "normalized", "float32", "position"
    ),
}


def default_ds_parser() -> str:
    """The parser variant a DeepStream output is shaped for when none is named: the choice of
    trtdeploy.deepstream.parsers (DEFAULT_DS_PARSER), which reads the parsers' source."""
    from trtdeploy.deepstream import parsers

    return str(getattr(parsers, "DEFAULT_DS_PARSER", "sdk-tfssd"))


@dataclass
class InputSpec:
    name: str
    shape: list[int]  # in `layout`; -1 = dynamic
    layout: Layout = "NHWC"
    dtype: str = "float32"

    @property
    def height(self) -> int:
        return self.shape[1] if self.layout == "NHWC" else self.shape[2]

    @property
    def width(self) -> int:
        return self.shape[2] if self.layout == "NHWC" else self.shape[3]

    @property
    def channels(self) -> int:
        return self.shape[3] if self.layout == "NHWC" else self.shape[1]

    @property
    def dynamic_batch(self) -> bool:
        return self.shape[0] == -1


@dataclass
class Preprocess:
    color_order: ColorOrder = "RGB"
    scale: float = 1.0
    offsets: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    resize: ResizeMode = "stretch"
    pad_color: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    pad_corner: PadCorner = "center"
    resample: str = "bilinear"


@dataclass
class NmsParams:
    score_threshold: float = 0.0
    iou_threshold: float = 0.5
    max_detections: int = 100
    max_detections_per_class: int = 100
    class_agnostic: bool = False


@dataclass
class OutputSpec:
    nms: NmsKind
    layout: str  # one of OUTPUT_LAYOUTS
    names: list[str]
    num_classes: int
    box_format: str = "y1x1y2x2"
    box_units: str = "normalized"
    class_id_base: int = 0
    class_dtype: str = "int32"
    max_detections: int = 100
    count_dtype: str = "int32"  # dtype of the detection count tensor (NMS layouts)
    ds_parser: str = ""  # DeepStream parser variant the outputs are shaped for ("" = none named)


@dataclass
class Provenance:
    framework: str = ""
    model_family: str = ""  # e.g. "tfod_ssd", "tao_ssd"
    architecture: str = ""  # e.g. feature extractor type
    source_files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    versions: dict[str, str] = field(default_factory=dict)  # package -> version
    created_by: str = ""


@dataclass
class DeployCard:
    input: InputSpec
    preprocess: Preprocess
    output: OutputSpec
    labels: list[str]
    background: str = "none"  # how background was handled, e.g. "dropped (column 0)"
    nms: NmsParams = field(default_factory=NmsParams)
    provenance: Provenance = field(default_factory=Provenance)
    onnx_sha256: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def save(self, path: Path) -> None:
        write_text_atomic(Path(path), self.to_json())

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "deploy card") -> DeployCard:
        if data.get("schema") != SCHEMA:
            raise InputError(f"{source} is not a trtdeploy deploy card (schema {data.get('schema')!r})")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InputError(
                f"{source} has deploy card schema version {version}; this trtdeploy reads "
                f"version {SCHEMA_VERSION}: re-run create-onnx with this version"
            )
        try:
            card = cls(
                input=_build(InputSpec, data["input"]),
                preprocess=_build(Preprocess, data["preprocess"]),
                output=_build(OutputSpec, data["output"]),
                labels=_strings(data["labels"]),
                background=data.get("background", "none"),
                nms=_build(NmsParams, data.get("nms", {})),
                provenance=_build(Provenance, data.get("provenance", {})),
                onnx_sha256=data.get("onnx_sha256", ""),
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"{source} is missing or has a malformed field: {exc}") from exc
        if card.output.layout == "deepstream" and not card.output.ds_parser:
            # Written before parser variants existed: what --output-layout deepstream made then.
            card.output.ds_parser = LEGACY_DS_PARSER
        card.validate(source)
        return card

    @classmethod
    def load(cls, path: Path) -> DeployCard:
        return cls.from_dict(read_json_object(path, "deploy card"), source=str(path))

    def validate(self, source: str = "deploy card") -> None:
        """Internal consistency; raises InputError naming the field."""
        if self.input.layout not in ("NHWC", "NCHW") or len(self.input.shape) != 4:
            raise InputError(f"{source}: input must be a 4-D NHWC or NCHW tensor, got {self.input}")
        if self.output.layout not in OUTPUT_LAYOUTS:
            raise InputError(f"{source}: unknown output layout {self.output.layout!r}")
        if self.output.box_format not in BOX_FORMATS or self.output.box_units not in BOX_UNITS:
            raise InputError(f"{source}: unknown box format/units {self.output.box_format}/{self.output.box_units}")
        if self.output.num_classes != len(self.labels):
            raise InputError(
                f"{source}: {len(self.labels)} labels but the model has {self.output.num_classes} classes"
            )
        if len(self.preprocess.offsets) != self.input.channels:
            raise InputError(f"{source}: {len(self.preprocess.offsets)} offsets for {self.input.channels} channels")


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"labels must be a list of strings, got {value!r}")
    return list(value)


def card_path_for(onnx_path: Path) -> Path:
    """``model.onnx`` -> ``model.deploy.json``."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.stem + ".deploy.json")


def _build(cls: type, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise TypeError(f"unknown keys {sorted(unknown)} in {cls.__name__}")
    hints = get_type_hints(cls)
    for name, value in data.items():
        if not _has_type(value, hints[name]):
            raise TypeError(f"{cls.__name__}.{name} is {value!r}, expected {hints[name]}")
    return cls(**data)


def _has_type(value: Any, hint: Any) -> bool:
    """Does a JSON value fit a field annotation (str, int, float, bool, list[...], dict[...], Literal)?"""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(_has_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_has_type(k, args[0]) and _has_type(v, args[1]) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True
