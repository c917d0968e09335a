"""Consistency checks for an nvinfer config, shared by gen-ds-config (before writing) and
check-ds-config (on any existing file). Each problem is one line naming the key and the fix."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.cache import CalibrationCache, TrtVersion
from trtdeploy.deepstream.config import (
    ALL_PROPERTY_KEYS,
    CALIBRATED_MODES,
    CLASS_ATTR_KEYS,
    CLASS_ATTRS_PREFIX,
    COLOR_FORMATS,
    NETWORK_MODE_SINCE,
    NETWORK_MODES,
    NETWORK_TYPES,
    PATH_KEYS,
    PROPERTY,
    PROPERTY_KEYS,
    YAML_SINCE,
    YAML_UNREAD_CLASS_ATTR_KEYS,
    YAML_UNREAD_PROPERTY_KEYS,
    first_release_with,
    mode_help,
    nvinfer_path,
    release_reads_mode,
    release_reads_yaml,
    same_file_path,
)
from trtdeploy.deepstream.parsers import MRCNN_LAYOUT, PARSERS, VARIANTS, contract_problems
from trtdeploy.deploy_card import DeployCard
from trtdeploy.engine.naming import parse_engine_name
from trtdeploy.engine.sidecar import Sidecar

Report = Callable[[str], None]  # adds one problem message

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
    engine_sidecar: Sidecar | None = None  # trtdeploy.engine.sidecar's typed reader
    calib_cache: CalibrationCache | None = None  # int8-calib-file, parsed by the calibration package
    calib_problem: str | None = None  # why int8-calib-file could not be parsed (an error)
    config_path: Path | None = None  # where the config is (or will be) written: paths resolve from it
    other_sections: dict[str, dict[str, str]] = field(default_factory=dict)  # [class-attrs-<id>] etc.
    duplicates: list[str] = field(default_factory=list)
    yaml: bool = False
    deepstream: str | None = None  # the release to check keys for (None: any release read)


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


def sidecar_precision(sidecar: Sidecar) -> str | None:
    """fp32 | fp16 | int8: the label of build-engine's precision plan (engine/precision.py)."""
    label = sidecar.precision.get("label")
    return label.lower() if isinstance(label, str) else None


def sidecar_max_batch(sidecar: Sidecar) -> int | None:
    """Max batch over the engine's optimisation profiles (the first dim of each input's max
    shape); None for an engine built without profiles."""
    maxima = [
        shape["max"][0]
        for profile in sidecar.profiles
        for shape in profile.values()
        if isinstance(shape, dict) and shape.get("max")
    ]
    return max(maxima) if maxima else None


def sidecar_trt_version(sidecar: Sidecar) -> TrtVersion | None:
    if sidecar.backend != "tensorrt":
        return None  # TensorRT-RTX versions are not TensorRT versions; it has no calibrator
    return TrtVersion.loose(sidecar.backend_version)


def validate(view: ConfigView) -> list[Problem]:
    """Every problem found; errors make nvinfer fail or infer wrongly, warnings cost time."""
    props = view.properties
    out: list[Problem] = []

    def error(msg: str) -> None:
        out.append(Problem(ERROR, msg))

    def warn(msg: str) -> None:
        out.append(Problem(WARNING, msg))

    if view.yaml and view.deepstream and not release_reads_yaml(view.deepstream):
        error(f"DeepStream {view.deepstream} reads no YAML nvinfer config (YAML from {YAML_SINCE} on): use the .txt form")
    net_type = network_type_of(props)
    if net_type not in NETWORK_TYPES.values():
        error(
            f"network-type={props.get('network-type')} is not one of {sorted(NETWORK_TYPES.values())}"
        )

    _check_model_source(view, props, error, warn)
    mode = _check_mode(view, props, error, warn)
    batch = _int(props.get("batch-size", "1"))
    if batch is None or batch < 1:
        error(f"batch-size={props.get('batch-size')} must be a positive integer")

    color, offsets = _check_input(props, error, warn)
    num_classes = _check_classes(view, props, net_type, error)
    _check_parser(view, props, net_type, error, warn)
    if view.card is not None:
        _check_against_card(view, props, num_classes, offsets, color, error)

    # Engine: where nvinfer saves it, batch, precision; calibration cache; relative paths.
    _check_engine_path(view, error, warn)
    _check_paths(view, warn)
    _check_engine(view, props, mode, batch, error, warn)
    return out


def _check_model_source(view: ConfigView, props: dict[str, str], error: Report, warn: Report) -> None:
    """A model file, its key, well-formed and known keys."""
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
    _check_keys(view, error, warn)
    for msg in view.duplicates:
        error(msg)



def _check_input(props: dict[str, str], error: Report, warn: Report) -> tuple[int | None, list[float] | None]:
    """Input dims, colour and offsets; returns (model-color-format, offsets)."""
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

    return color, offsets


def _check_classes(view: ConfigView, props: dict[str, str], net_type: int, error: Report) -> int | None:
    """Classes and labels; returns num-detected-classes."""
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

    return num_classes


def _check_output_instance_mask(view: ConfigView, props: dict[str, str], error: Report) -> None:
    """output-instance-mask must be on, written as the config's form reads it: the INI form with
    g_key_file_get_boolean (NVIDIA/DeepStream@DeepStream-9.0:src/gst-plugins/gst-nvinfer/
    gstnvinfer_property_parser.cpp l.382-386; GLib takes true/false/1/0), the YAML form with
    std::stoi (gstnvinfer_yaml_parser.cpp l.329-330: 'true' throws, '1' is on)."""
    raw = props.get("output-instance-mask")
    value = (raw or "").rstrip()
    on = {"1"} if view.yaml else {"1", "true"}
    off = {"0"} if view.yaml else {"0", "false"}
    if raw is None or value in off:
        error("network-type=3 needs output-instance-mask=1 (without it nvinfer attaches no masks)")
    elif value not in on and not (view.yaml and _int(value) is not None):
        form = "an integer (the YAML parser uses std::stoi)" if view.yaml else "a boolean (true/false/1/0)"
        error(f"output-instance-mask={raw!r} is not {form}: nvinfer fails to read the config")


def _check_segmentation_threshold(view: ConfigView, props: dict[str, str], error: Report, warn: Report) -> None:
    """segmentation-threshold: a number >= 0 (nvinfer refuses a negative one), and 0 for the
    ds/mrcnn mask logits (probability 0.5); facts in trtdeploy.deepstream.parsers.MRCNN_NVINFER_FACTS."""
    raw = props.get("segmentation-threshold")
    try:
        value = float(raw) if raw not in (None, "") else 0.0  # nvinfer's default is 0
    except ValueError:
        error(f"segmentation-threshold={raw!r} is not a number (nvinfer fails to parse it)")
        return
    if value < 0:
        error(f"segmentation-threshold={raw} is negative: nvinfer refuses the config")
        return
    reads = view.card.output.output_contract.ds_readers if view.card is not None else ()
    if "mrcnn" in reads and value != MRCNN_LAYOUT.segmentation_threshold_for_logits:
        import math

        warn(
            f"segmentation-threshold={raw}: the model's masks are logits, so DeepStream keeps mask pixels with "
            f"probability > {1 / (1 + math.exp(-value)):.3f}, not 0.5 as TensorFlow binarises them; "
            "segmentation-threshold=0 matches"
        )


def _check_parser(view: ConfigView, props: dict[str, str], net_type: int, error: Report, warn: Report) -> None:
    """The parse function, its library and the output contract it reads."""
    func = props.get("parse-bbox-func-name")
    mask_func = props.get("parse-bbox-instance-mask-func-name")
    if net_type == NETWORK_TYPES["instance_segmentation"]:
        if not mask_func:
            error(
                "network-type=3 needs parse-bbox-instance-mask-func-name (e.g. NvDsInferParseCustomMrcnnTLTV2)"
            )
        _check_output_instance_mask(view, props, error)
        if _int(props.get("cluster-mode")) != 4:
            error("instance segmentation parsers return final detections: set cluster-mode=4")
        _check_segmentation_threshold(view, props, error, warn)
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
        shaped_for = VARIANTS.get(getattr(out_spec, "ds_parser", "") or "")
        if shaped_for is not None and shaped_for.func == (func or mask_func):
            # The card names the parser variant its outputs were made for (create-onnx
            # --ds-parser): box order and units come from that variant's source facts; dtypes
            # and names are checked on the real outputs by misreads().
            for msg in _units_problems(shaped_for, out_spec):
                error(msg)
        else:
            for msg in contract_problems(
                func or mask_func or "",
                out_spec.layout,
                out_spec.box_format,
                out_spec.box_units,
                out_spec.class_dtype,
            ):
                error(msg)


def _units_problems(shaped_for: Any, out_spec: Any) -> list[str]:
    """What dtypes cannot show: box order and units the variant reads vs what the card says."""
    problems = []
    if shaped_for.box_order in ("y1x1y2x2", "x1y1x2y2") and shaped_for.box_order != out_spec.box_format:
        problems.append(
            f"{shaped_for.func} ({shaped_for.key}) reads boxes as {shaped_for.box_order} but the model gives "
            f"{out_spec.box_format}"
        )
    if shaped_for.box_units in ("normalized", "pixels") and shaped_for.box_units != out_spec.box_units:
        problems.append(
            f"{shaped_for.func} ({shaped_for.key}) reads {shaped_for.box_units} boxes but the model gives "
            f"{out_spec.box_units} ones"
        )
    return problems


def _check_keys(view: ConfigView, error: Any, warn: Any) -> None:
    """Keys nvinfer does not read are ignored with a warning on its console: what the user
    wrote does not happen (tables in trtdeploy/deepstream/config.py, read from the source)."""
    form = "YAML" if view.yaml else "INI"
    known = PROPERTY_KEYS[view.deepstream] if view.deepstream else ALL_PROPERTY_KEYS
    groups = {PROPERTY: view.properties, **{k: v for k, v in view.other_sections.items()}}
    if view.class_attrs:
        groups.setdefault("class-attrs-all", view.class_attrs)
    for group, keys in groups.items():
        is_property = group == PROPERTY
        if not is_property and (
            not group.startswith(CLASS_ATTRS_PREFIX) or network_type_of(view.properties) not in (0, 3)
        ):
            # nvinfer reads no other group, and [class-attrs-*] only for detectors and instance
            # segmentation (gst_nvinfer_parse_config_file, 6.3 gstnvinfer_property_parser.cpp
            # lines 1166-1168)
            continue
        for key in keys:
            if key.endswith(":") or " " in key:
                continue  # reported as malformed
            if is_property and key not in ALL_PROPERTY_KEYS or not is_property and key not in CLASS_ATTR_KEYS:
                close = _close_key(key, ALL_PROPERTY_KEYS if is_property else CLASS_ATTR_KEYS)
                hint = f" (did you mean {close}?)" if close else ""
                error(f"unknown key {key!r} in [{group}]: no gst-nvinfer release reads it, it is ignored{hint}")
            elif is_property and key not in known:
                error(
                    f"{key} is read by gst-nvinfer from DeepStream {first_release_with(key)} on, not by "
                    f"{view.deepstream}: it is ignored there"
                )
            elif view.yaml and key in (YAML_UNREAD_PROPERTY_KEYS if is_property else YAML_UNREAD_CLASS_ATTR_KEYS):
                message = f"{key} is a legacy key that nvinfer's {form} parser does not read; it is ignored"
                if keys[key].strip().lower() in ("0", "false", ""):
                    warn(message + " (harmless here: its value is the default)")
                else:
                    error(message)


def _close_key(key: str, known: frozenset[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
    return match[0] if match else None


def _check_mode(view: ConfigView, props: dict[str, str], error: Report, warn: Report) -> int | None:
    """network-mode: a value the release reads (config.NETWORK_MODES has the source lines)."""
    mode = _int(props.get("network-mode", "0"))
    if mode not in MODE_NAMES:
        error(f"network-mode={props.get('network-mode')} must be one of {mode_help()}")
        return mode
    name = MODE_NAMES[mode]
    since = NETWORK_MODE_SINCE[name]
    if view.deepstream and not release_reads_mode(view.deepstream, name):
        error(
            f"network-mode={mode} ({name}) is read from DeepStream {since} on: DeepStream {view.deepstream} "
            "rejects the value and fails to load the config"
        )
    elif not view.deepstream and since != NETWORK_MODE_SINCE["fp32"]:
        warn(f"network-mode={mode} ({name}) needs DeepStream >= {since}: older releases fail to load the config")
    if name == "best" and not props.get("int8-calib-file"):
        warn("network-mode=3 (best) without int8-calib-file builds an FP16 engine (nvinfer falls back to FP16)")
    return mode


def engine_save_path(props: dict[str, str], config_path: Path) -> tuple[Path | None, str]:
    """Where nvinfer saves an engine it builds from this config, and why (for messages).

    TrtModelBuilder::buildModel (hiennguyen9874/deepstream-sources 6.3,
    sources/libs/nvdsinfer/nvdsinfer_model_builder.cpp lines 652-725; the same in 5.0-6.2 and
    NVIDIA/DeepStream DeepStream-9.0 src/utils/nvdsinfer/nvdsinfer_model_builder.cpp 563-616):
    the path is the model path as resolved from the config (tlt-encoded-model first, else the
    parser's model: onnx-file, uff-file or model-file) + ``_b<batch-size>_<gpu<gpu-id> |
    dla<use-dla-core>>_<fp32|fp16|int8>.engine``; NvDsInferContextImpl::buildModel serializes it
    there (nvdsinfer_context_impl.cpp 6.3 line 1800). network-mode=1 (INT8) without a
    calibrator (no int8-calib-file) builds FP16 and names it fp16 (model_builder.cpp 6.3 lines
    565-586 for .etlt, 1029-1047 for parsed models). 9.0's network-mode=3 (best) is named
    ``best``, or builds FP16 and is named fp16 without a calibrator (config.NETWORK_MODES). With
    engine-create-func-name the model path is ``<working directory>/model``, unknown here.
    """
    if props.get("engine-create-func-name"):
        return None, "engine-create-func-name is set: nvinfer saves the engine as <working directory>/model_b..."
    model_key = next(
        (k for k in ("tlt-encoded-model", "model-file", "uff-file", "onnx-file") if props.get(k)), None
    )
    if model_key is None:
        return None, "no model file to build from"
    mode = _int(props.get("network-mode", "0"))
    batch = _int(props.get("batch-size", "1"))
    if mode not in MODE_NAMES or batch is None or batch < 1:
        return None, "network-mode or batch-size invalid"
    precision = MODE_NAMES[mode]
    if precision in CALIBRATED_MODES and not props.get("int8-calib-file"):
        precision = "fp16"  # (a cache named but absent here may be present where DeepStream runs)
    gpu = _int(props.get("gpu-id", "0")) or 0
    dla_core = _int(props.get("use-dla-core"))
    use_dla = props.get("enable-dla", "").strip().lower() in ("1", "true") and dla_core is not None and dla_core >= 0
    device = f"dla{dla_core}" if use_dla else f"gpu{gpu}"
    model = nvinfer_path(config_path, props[model_key])
    return Path(f"{model}_b{batch}_{device}_{precision}.engine"), f"built from {model_key}"


def _check_paths(view: ConfigView, warn: Any) -> None:
    """Relative paths resolve from the config's folder, not from where deepstream-app runs."""
    if view.config_path is None:
        return
    for key in PATH_KEYS:
        value = view.properties.get(key)
        if not value or value.startswith("/") or key in ("labelfile-path", "model-engine-file"):
            continue  # labels: checked as an error; engine: checked against the save path
        resolved = nvinfer_path(view.config_path, value)
        if not view.config_path.parent.exists():
            # gen-ds-config checks before it creates the output folder; once the config is
            # written there, "<folder>/../x" is "x" beside the folder, so judge it as then.
            resolved = Path(os.path.normpath(os.path.abspath(resolved)))
        if not resolved.exists():
            warn(
                f"{key}={value} does not resolve from the config's folder: nvinfer opens {resolved}, which "
                "does not exist here (relative paths are relative to the config file, not to the working directory)"
            )


def _check_engine_path(view: ConfigView, error: Any, warn: Any) -> None:
    engine = view.properties.get("model-engine-file")
    if not engine or view.config_path is None:
        return
    save, why = engine_save_path(view.properties, view.config_path)
    if save is None:
        return
    named = nvinfer_path(view.config_path, engine)
    if same_file_path(named, save):
        return
    shown = os.path.normpath(named)
    save = Path(os.path.normpath(save))
    if named.exists():
        warn(
            f"model-engine-file={engine} is used while it loads, but nvinfer saves an engine it rebuilds as {save} "
            f"({why}); point model-engine-file there so a rebuilt engine is reused"
        )
    else:
        error(
            f"model-engine-file={engine} resolves to {shown}, but nvinfer saves the engine it builds as {save} "
            f"({why}): the named file never appears and the engine is rebuilt at every start; "
            f"set model-engine-file to that path (relative to the config's folder)"
        )


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
        and card.output.output_contract.tensors  # a model's own outputs say nothing of the class count
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
    if (cache is not None or view.calib_problem is not None) and mode not in [NETWORK_MODES[m] for m in CALIBRATED_MODES]:
        warn("int8-calib-file is set but network-mode is not 1 (INT8) or 3 (best); it is not used")
