"""Consistency checks for an nvinfer config, shared by gen-ds-config (before writing) and
check-ds-config (on any existing file). Each problem is one line naming the key and the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.cache import CalibrationCache, TrtVersion
from trtdeploy.deepstream.config import COLOR_FORMATS, NETWORK_MODES, NETWORK_TYPES
from trtdeploy.deepstream.parsers import PARSERS, contract_problems
from trtdeploy.deploy_card import DeployCard
from trtdeploy.engine.naming import engine_file_name, parse_engine_name

ERROR = "error"
WARNING = "warning"

MODE_NAMES = {v: k for k, v in NETWORK_MODES.items()}
# ImageNet channel means in RGB order, as TAO and Caffe-style models use them.
_IMAGENET_RGB = (123.68, 116.779, 103.939)


@dataclass
class Problem:
    level: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


@dataclass
class ConfigView:
    """What validation looks at; built from a config we generate or one we read."""

    properties: dict[str, str]
    class_attrs: dict[str, str] = field(default_factory=dict)
    labels: list[str] | None = None  # None: no labels file to check
    label_problems: list[str] = field(default_factory=list)
    base_dir: Path = Path(".")
    card: DeployCard | None = None
    engine_sidecar: dict[str, Any] | None = None
    calib_cache: CalibrationCache | None = None  # int8-calib-file, parsed by the calibration package
    calib_problem: str | None = None  # why int8-calib-file could not be parsed (an error)


def _int(value: str | None) -> int | None:
    # GKeyFile accepts an integer followed by whitespace and anything (e.g. "3 ## comment").
    if value is None:
        return None
    match = re.match(r"\s*(-?\d+)(\s|$)", value)
    return int(match.group(1)) if match else None


def _floats(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.strip().strip(";").split(";") if v.strip() != ""]
    except ValueError:
        return None


def network_type_of(props: dict[str, str]) -> int:
    if "network-type" in props:
        value = _int(props["network-type"])
        return value if value is not None else -1
    if _int(props.get("is-classifier")) == 1:
        return NETWORK_TYPES["classifier"]
    return NETWORK_TYPES["detector"]


def sidecar_precision(sidecar: dict[str, Any]) -> str | None:
    value = sidecar.get("precision")
    if isinstance(value, dict):  # build-engine's precision plan: "label" is fp32|fp16|int8
        value = value.get("label")
    if isinstance(value, list):  # e.g. ["fp16", "int8"]: the lowest one decides
        for name in ("int8", "fp16", "fp32"):
            if name in value:
                return name
        return None
    return str(value).lower() if isinstance(value, str) else None


def sidecar_max_batch(sidecar: dict[str, Any]) -> int | None:
    """Max batch over the engine's profiles, reading the few shapes the sidecar may use."""
    best = None
    for profile in sidecar.get("profiles") or []:
        if not isinstance(profile, dict):
            continue
        candidates = []
        if isinstance(profile.get("max_batch"), int):
            candidates.append(profile["max_batch"])
        shapes = [profile.get("max")] + [
            v.get("max") for v in profile.values() if isinstance(v, dict)
        ]
        for shape in shapes:
            if isinstance(shape, list) and shape and isinstance(shape[0], int):
                candidates.append(shape[0])
        for value in candidates:
            best = value if best is None else max(best, value)
    if best is None and isinstance(sidecar.get("max_batch"), int):
        best = sidecar["max_batch"]
    return best


def sidecar_trt_version(sidecar: dict[str, Any]) -> TrtVersion | None:
    if sidecar.get("backend") not in (None, "tensorrt"):
        return None  # TensorRT-RTX versions are not TensorRT versions; it has no calibrator
    text = sidecar.get("trt_version") or sidecar.get("backend_version") or sidecar.get("version")
    if not isinstance(text, str):
        return None
    parts = re.findall(r"\d+", text)
    if len(parts) < 2:
        return None
    nums = [int(p) for p in parts[:3]] + [0] * (3 - len(parts[:3]))
    return TrtVersion(nums[0], nums[1], nums[2])


def validate(view: ConfigView) -> list[Problem]:
    """Every problem found; errors make nvinfer fail or infer wrongly, warnings cost time."""
    props = view.properties
    out: list[Problem] = []

    def error(msg: str) -> None:
        out.append(Problem(ERROR, msg))

    def warn(msg: str) -> None:
        out.append(Problem(WARNING, msg))

    net_type = network_type_of(props)
    if net_type not in NETWORK_TYPES.values():
        error(
            f"network-type={props.get('network-type')} is not one of {sorted(NETWORK_TYPES.values())}"
        )

    # Model source.
    has_model = any(
        k in props
        for k in ("onnx-file", "tlt-encoded-model", "model-engine-file", "uff-file", "model-file")
    )
    if not has_model:
        error(
            "no model file: set onnx-file (or model-engine-file, or tlt-encoded-model with tlt-model-key)"
        )
    if "tlt-encoded-model" in props and not props.get("tlt-model-key"):
        error(
            "tlt-encoded-model is set without tlt-model-key: add the key the model was exported with"
        )
    for key in props:
        if key.endswith(":") or " " in key:
            error(f"malformed key {key!r}: nvinfer ignores it (write 'key=value')")

    mode = _int(props.get("network-mode", "0"))
    if mode not in MODE_NAMES:
        error(f"network-mode={props.get('network-mode')} must be 0 (FP32), 1 (INT8) or 2 (FP16)")
    batch = _int(props.get("batch-size", "1"))
    if batch is None or batch < 1:
        error(f"batch-size={props.get('batch-size')} must be a positive integer")

    # Input dims, colour and offsets.
    dims = props.get("infer-dims")
    channels = None
    if dims is not None:
        parts = _floats(dims.replace(",", ";"))
        if not parts or len(parts) != 3 or any(p <= 0 or p != int(p) for p in parts):
            error(f"infer-dims={dims} must be C;H;W with positive integers")
        else:
            channels = int(parts[0])
    elif "tlt-encoded-model" in props and not any(
        k in props for k in ("input-dims", "uff-input-dims")
    ):
        # Required for a UFF .etlt, not for one holding ONNX; we cannot tell without the file.
        warn("infer-dims is not set: a UFF .etlt needs it (C;H;W)")
    color = _int(props.get("model-color-format", "0"))
    if color not in COLOR_FORMATS.values():
        error(
            f"model-color-format={props.get('model-color-format')} must be 0 (RGB), 1 (BGR) or 2 (GRAY)"
        )
    if channels is not None and color is not None and (color == 2) != (channels == 1):
        error(f"model-color-format={color} does not fit infer-dims with {channels} channel(s)")
    offsets = _floats(props.get("offsets"))
    if "offsets" in props and offsets is None:
        error(f"offsets={props['offsets']} must be ';'-separated numbers")
    if offsets is not None and channels is not None and len(offsets) != channels:
        error(f"offsets has {len(offsets)} values for {channels} input channel(s)")
    if offsets is not None and len(offsets) == 3 and color in (0, 1):
        _check_offsets_order(offsets, color, error)
    scale = props.get("net-scale-factor")
    if scale is not None:
        try:
            if float(scale) <= 0:
                error(f"net-scale-factor={scale} must be positive")
        except ValueError:
            error(f"net-scale-factor={scale} is not a number")

    # Classes and labels.
    num_classes = _int(props.get("num-detected-classes"))
    if net_type in (0, 3) and num_classes is None:
        error("num-detected-classes is missing: set it to the number of classes the model outputs")
    for msg in view.label_problems:
        error(msg)
    if view.labels is not None:
        if net_type == NETWORK_TYPES["classifier"]:
            names = [n for n in props.get("output-blob-names", "").split(";") if n]
            if names and len(view.labels) != len(names):
                error(
                    f"classifier labels file has {len(view.labels)} line(s) but output-blob-names lists "
                    f"{len(names)} output(s): write one ';'-separated line per output"
                )
        elif num_classes is not None and len(view.labels) != num_classes:
            error(
                f"num-detected-classes={num_classes} but the labels file has {len(view.labels)} label(s): "
                "they must match (background included where the model outputs it)"
            )

    # Parser and output contract.
    func = props.get("parse-bbox-func-name")
    mask_func = props.get("parse-bbox-instance-mask-func-name")
    if net_type == NETWORK_TYPES["instance_segmentation"]:
        if not mask_func:
            error(
                "network-type=3 needs parse-bbox-instance-mask-func-name (e.g. NvDsInferParseCustomMrcnnTLTV2)"
            )
        if _int(props.get("output-instance-mask")) != 1:
            error("network-type=3 needs output-instance-mask=1")
        if _int(props.get("cluster-mode")) != 4:
            error("instance segmentation parsers return final detections: set cluster-mode=4")
    for key, name in (
        ("parse-bbox-func-name", func),
        ("parse-bbox-instance-mask-func-name", mask_func),
    ):
        if not name:
            continue
        if "custom-lib-path" not in props:
            error(f"{key}={name} needs custom-lib-path (the .so that defines it)")
        contract = PARSERS.get(name)
        if contract is None:
            continue
        if contract.instance_mask != (key == "parse-bbox-instance-mask-func-name"):
            right = (
                "parse-bbox-instance-mask-func-name"
                if contract.instance_mask
                else "parse-bbox-func-name"
            )
            error(f"{name} must be set with {right}, not {key}")
        names = [n for n in props.get("output-blob-names", "").split(";") if n]
        missing = [n for n in contract.output_names if names and n not in names]
        if missing and contract.num_outputs is not None and len(names) >= contract.num_outputs:
            error(
                f"{name} looks up output(s) {missing} by name but output-blob-names is {';'.join(names)}"
            )
        cluster = _int(props.get("cluster-mode"))
        if contract.nms_inside and cluster is not None and cluster != 4:
            warn(
                f"{name} reads a model that already ran NMS; cluster-mode={cluster} clusters again "
                "(slower, and may merge boxes): cluster-mode=4"
            )
    if view.card is not None and (func or mask_func):
        out_spec = view.card.output
        for msg in contract_problems(
            func or mask_func or "",
            out_spec.layout,
            out_spec.box_format,
            out_spec.box_units,
            out_spec.class_dtype,
        ):
            error(msg)
    if view.card is not None:
        _check_against_card(view, props, num_classes, offsets, color, error)

    # Engine: name nvinfer derives, batch, precision; calibration cache.
    _check_engine(view, props, mode, batch, error, warn)
    return out


def _check_offsets_order(offsets: list[float], color: int, error: Any) -> None:
    """ImageNet means written in the other colour order: the commonest silent accuracy loss."""
    rounded = tuple(round(v, 1) for v in offsets)
    rgb = tuple(round(v, 1) for v in _IMAGENET_RGB)
    bgr = tuple(reversed(rgb))
    if color == 1 and rounded == rgb:
        error(
            f"offsets={';'.join(map(str, offsets))} are the ImageNet means in RGB order but "
            "model-color-format=1 (BGR): write them as 103.939;116.779;123.68"
        )
    if color == 0 and rounded == bgr:
        error(
            f"offsets={';'.join(map(str, offsets))} are the ImageNet means in BGR order but "
            "model-color-format=0 (RGB): write them as 123.68;116.779;103.939"
        )


def _check_against_card(
    view: ConfigView,
    props: dict[str, str],
    num_classes: int | None,
    offsets: list[float] | None,
    color: int | None,
    error: Any,
) -> None:
    card = view.card
    assert card is not None
    if (
        num_classes is not None
        and card.output.layout != "other"
        and num_classes != card.output.num_classes
    ):
        error(
            f"num-detected-classes={num_classes} but the model has {card.output.num_classes} classes"
        )
    want_color = COLOR_FORMATS.get(card.preprocess.color_order)
    if color is not None and want_color is not None and color != want_color:
        error(
            f"model-color-format={color} but the model expects {card.preprocess.color_order} ({want_color})"
        )
    if offsets is not None and [round(v, 3) for v in offsets] != [
        round(v, 3) for v in card.preprocess.offsets
    ]:
        error(
            f"offsets={props.get('offsets')} but the model's preprocessing uses {card.preprocess.offsets}"
        )
    scale = props.get("net-scale-factor")
    if scale is not None:
        try:
            if abs(float(scale) - card.preprocess.scale) > 1e-6 * max(1.0, card.preprocess.scale):
                error(
                    f"net-scale-factor={scale} but the model's preprocessing scale is {card.preprocess.scale}"
                )
        except ValueError:
            pass
    order = _int(props.get("network-input-order", "0"))
    if card.input.layout == "NHWC" and order != 1:
        error("the model input is NHWC: set network-input-order=1")
    if card.input.layout == "NCHW" and order == 1:
        error("the model input is NCHW but network-input-order=1 (NHWC)")


def _check_engine(
    view: ConfigView,
    props: dict[str, str],
    mode: int | None,
    batch: int | None,
    error: Any,
    warn: Any,
) -> None:
    engine = props.get("model-engine-file")
    model = props.get("onnx-file") or props.get("tlt-encoded-model") or props.get("uff-file")
    if engine and mode in MODE_NAMES and batch:
        name = Path(engine).name
        parts = parse_engine_name(name, any_precision=True)  # also "_in8": reported below
        if parts:
            if parts["precision"] != MODE_NAMES[mode]:
                error(
                    f"model-engine-file {name} is a {parts['precision']} engine but network-mode={mode} "
                    f"({MODE_NAMES[mode]}): nvinfer rebuilds it at every start; make them agree"
                )
            elif int(parts["batch"]) < batch:
                error(
                    f"model-engine-file {name} was built for batch {parts['batch']} but batch-size={batch}"
                )
        if model and batch >= 1:  # batch-size < 1 is reported above; no engine name to expect
            gpu = _int(props.get("gpu-id", "0")) or 0
            dla = _int(props.get("dla-core")) if _int(props.get("enable-dla")) == 1 else None
            expected = engine_file_name(model, batch, MODE_NAMES[mode], gpu_id=gpu, dla_core=dla)
            if name != expected and parts and parts["precision"] == MODE_NAMES[mode]:
                warn(
                    f"model-engine-file {name} differs from the name nvinfer saves a rebuilt engine as "
                    f"({expected}); if the file is missing it is rebuilt at every start"
                )
    sidecar = view.engine_sidecar
    if sidecar:
        precision = sidecar_precision(sidecar)
        if precision in NETWORK_MODES and mode in MODE_NAMES and NETWORK_MODES[precision] != mode:
            error(
                f"the engine was built for {precision} but network-mode={mode} ({MODE_NAMES[mode]})"
            )
        max_batch = sidecar_max_batch(sidecar)
        if max_batch is not None and batch is not None and batch > max_batch:
            error(
                f"batch-size={batch} exceeds the engine's max batch {max_batch}: rebuild or lower batch-size"
            )
    if view.calib_problem is not None:
        error(view.calib_problem)
    cache = view.calib_cache
    engine_version = sidecar_trt_version(sidecar) if sidecar else None
    if cache is not None and engine_version is not None:
        want = engine_version.header_number
        if cache.header_number != want:
            error(
                f"int8-calib-file header says TensorRT {cache.trt_version} ({cache.header_number}) but the "
                f"engine is TensorRT {engine_version}: TensorRT ignores a cache from another version; "
                f"recalibrate or rewrite the header as TRT-{want}-..."
            )
    if (cache is not None or view.calib_problem is not None) and mode != NETWORK_MODES["int8"]:
        warn("int8-calib-file is set but network-mode is not 1 (INT8); it is not used")
