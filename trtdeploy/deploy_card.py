"""The deploy card: the one place where a model's deployment facts live.

Written next to the ONNX as ``<model>.deploy.json`` by the front-end that knows the facts,
read by build-engine, calibration and gen-ds-config so the user never repeats them.

Conventions (schema version 1):

* ``input.shape`` is in the input's own layout; a dynamic dimension is ``-1``.
* Preprocessing is DeepStream's formula on 0-255 pixels in ``color_order``:
  ``tensor = scale * (pixel - offsets[c])``. A model that normalises inside the graph
  (TFOD) has ``scale = 1`` and zero offsets.
* ``output.contract`` names the output contract (trtdeploy.contracts); ``output.layout``
  (+ ``output.ds_parser``) is its older stored form, still written and mapped when alone.
* Class ids are indices into ``labels`` (``class_id_base`` says where they start); the
  background rule applied to ``labels`` is recorded in ``background``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from trtdeploy import contracts
from trtdeploy.errors import InputError
from trtdeploy.files import read_json_object, write_text_atomic

SCHEMA = "trtdeploy.deploy_card"
SCHEMA_VERSION = 1

Layout = Literal["NHWC", "NCHW"]
ColorOrder = Literal["RGB", "BGR", "GRAY"]
ResizeMode = Literal["stretch", "letterbox"]
PadCorner = Literal["center", "top_left"]
NmsKind = Literal["efficient", "batched", "onnx", "none", "nms_trt", "other"]

# Output contracts (which tensors, dtypes, box order and units, readers, producing heads and
# DeepStream readers) are registered objects in trtdeploy.contracts; a card stores one as
# ``output.layout`` (+ ``output.ds_parser``) and ``OutputSpec.contract`` maps them back. The
# names below are views of that registry for the modules that import them from here.
OUTPUT_LAYOUTS = contracts.layouts()
BOX_FORMATS = ("y1x1y2x2", "x1y1x2y2", "cxcywh")
BOX_UNITS = ("normalized", "pixels")
LEGACY_DS_PARSER = contracts.LEGACY_DS_PARSER
TFOD_NAMES = contracts.TFOD_NAMES
BATCHED_NAMES = contracts.BATCHED_NAMES
DsOutputs = contracts.OutputContract
# DeepStream parser variant key -> the contract create-onnx shapes for it.
DS_OUTPUTS: dict[str, contracts.OutputContract] = contracts.ds_contracts()


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
    layout: str  # the stored form of the output contract (trtdeploy.contracts); see ``contract``
    names: list[str]
    num_classes: int
    box_format: str = "y1x1y2x2"
    box_units: str = "normalized"
    class_id_base: int = 0
    class_dtype: str = "int32"
    max_detections: int = 100
    count_dtype: str = "int32"  # dtype of the detection count tensor (NMS layouts)
    ds_parser: str = ""  # DeepStream parser variant the outputs are shaped for ("" = none named)
    # Key of trtdeploy.contracts.CONTRACTS. Cards written before it existed have only ``layout``
    # (+ ``ds_parser``, ``box_format``), which ``output_contract`` maps to the contract; a card
    # is saved with both, so older readers keep reading ``layout``.
    contract: str = ""

    @property
    def output_contract(self) -> contracts.OutputContract:
        """The registered output contract of these outputs (InputError when none is)."""
        if self.contract:
            found = contracts.CONTRACTS.get(self.contract)
            if found is None:
                raise InputError(f"unknown output contract {self.contract!r}; known: {', '.join(contracts.CONTRACTS)}")
            return found
        return contracts.contract_for_output(self.layout, self.ds_parser, self.box_format)


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
        with contextlib.suppress(InputError):  # an invalid card is reported by validate(), not here
            data["output"]["contract"] = self.output.output_contract.key
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
        out = self.output
        try:
            stored = contracts.contract_for_output(out.layout, out.ds_parser, out.box_format)
            named = out.output_contract
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from exc
        if named is not stored:
            raise InputError(
                f"{source}: output contract {named.key!r} is stored as layout {named.layout!r}"
                + (f" with ds_parser {named.ds_parser!r}" if named.ds_parser else "")
                + f", but the card says layout {out.layout!r}" + (f" with ds_parser {out.ds_parser!r}" if out.ds_parser else "")
            )
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
