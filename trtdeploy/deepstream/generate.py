"""Deploy card (+ engine sidecar, calibration cache) -> nvinfer config (.txt and .yml) + labels.

Everything model-determined comes from the deploy card, so the config cannot drift from the
engine; the DeepStream-specific extras a front-end knows (network type, .etlt key, the parser
its export needs) come in ``DsModelHints``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.cache import CalibrationCache, read_cache
from calibration.errors import CalibrationError
from trtdeploy import __version__, contracts
from trtdeploy.contracts import OutputContract
from trtdeploy.deepstream.config import (
    COLOR_FORMATS,
    INPUT_ORDERS,
    NETWORK_MODES,
    NETWORK_TYPES,
    NvInferConfig,
    mode_help,
    render_ini,
    render_labels,
    render_yaml,
)
from trtdeploy.deepstream.parsers import (
    DEFAULT_CUSTOM_LIB,
    MRCNN_LAYOUT,
    PARSERS,
    VARIANTS,
    ParserVariant,
    contract_problems,
    mask_layout_problems,
    misreads,
    variant,
)
from trtdeploy.deepstream.validate import (
    ERROR,
    ConfigView,
    Problem,
    engine_save_path,
    sidecar_max_batch,
    sidecar_precision,
    validate,
)
from trtdeploy.deploy_card import DeployCard
from trtdeploy.engine.naming import PRECISIONS, engine_file_name, sidecar_path
from trtdeploy.engine.sidecar import Sidecar, TensorInfo
from trtdeploy.errors import InputError, TrtDeployError, UnsupportedModelError, UsageError
from trtdeploy.files import atomic_path, check_output, read_json_object, sha256_file
from trtdeploy.log import get_logger

log = get_logger("deepstream")


class DsConfigError(TrtDeployError):
    """The config would not work; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[Problem], what: str = "the DeepStream config") -> None:
        self.problems = problems
        lines = [p.message for p in problems if p.level == ERROR]
        # one line (the CLI prints one `error:` line per failure): problems joined by " | "
        super().__init__(f"{what} has {len(lines)} problem(s): " + " | ".join(lines))


@dataclass
class DsModelHints:
    """DeepStream facts a front-end knows beyond the deploy card."""

    network_type: str = "detector"  # a key of NETWORK_TYPES
    tlt_key: str | None = None  # model is an .etlt encrypted with this key
    uff_input_blob: str | None = None  # .etlt holding UFF: the input name from its header
    parse_func: str | None = None  # override the parser picked from the output layout
    cluster_mode: int | None = None
    builtin_parser: bool = False  # nvinfer's own parser (DetectNet_v2 bbox/cov outputs)
    label_lines: list[str] | None = None  # classifier lines, or labels the card cannot hold
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. segmentation keys
    class_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DsOptions:
    name: str = ""
    gie_id: int = 1
    secondary: bool = False
    operate_on_gie_id: int = 1
    operate_on_class_ids: list[int] | None = None
    batch_size: int | None = None
    network_mode: str | None = None  # a key of config.NETWORK_MODES: fp32 | fp16 | int8 | best (DeepStream >= 9.0)
    custom_lib: str | None = None  # default: the chosen parser variant's library (else the SDK's)
    parse_func: str | None = None
    gpu_id: int = 0
    ds_parser: str | None = None  # a key of parsers.VARIANTS: function + library, checked against outputs


@dataclass
class GeneratedConfig:
    config: NvInferConfig
    problems: list[Problem]
    paths: list[Path] = field(default_factory=list)


def read_engine_sidecar(engine: Path) -> Sidecar | None:
    """``<engine>.json`` (or ``<engine stem>.json``) written by build-engine, through the typed
    reader of trtdeploy.engine.sidecar (InputError when it is not a valid sidecar); None when
    there is none."""
    for candidate in (sidecar_path(engine), Path(engine).with_suffix(".json")):
        if candidate.is_file():
            return Sidecar.from_dict(read_json_object(candidate, "engine sidecar"), str(candidate))
    return None


def read_calib_cache(path: Path) -> tuple[CalibrationCache | None, str | None]:
    """The int8-calib-file parsed by the calibration package: ``(cache, None)``, or
    ``(None, problem)`` with a one-line reason when it is malformed (validation reports it)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"calibration cache {path} not found")
    try:
        return read_cache(path), None
    except CalibrationError as exc:
        return None, f"int8-calib-file: {exc}"


Tensor = tuple[str, str, tuple]  # (name, dtype such as "float32", shape with -1 for dynamic dims)


def onnx_io(path: Path) -> tuple[list[Tensor], list[Tensor]] | None:
    """Inputs and outputs of an ONNX file, in order, read from the file itself (None when the
    model is not an ONNX file, e.g. an .etlt)."""
    path = Path(path)
    if path.suffix.lower() != ".onnx" or not path.is_file():
        return None
    import onnx
    from onnx import helper

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... on a file that is not ONNX
        raise InputError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from exc
    initializers = {t.name for t in model.graph.initializer}

    def describe(values: Any) -> list[Tensor]:
        out = []
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            try:
                dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
            except (KeyError, ValueError, TypeError):
                dtype = f"onnx-type-{tensor.elem_type}"
            shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
            out.append((value.name, dtype, shape))
        return out

    return describe(model.graph.input), describe(model.graph.output)


def sidecar_io(sidecar: Sidecar) -> tuple[list[Tensor], list[Tensor]]:
    """The engine's inputs and outputs as its sidecar records them (build-engine's ``tensors``)."""

    def described(tensors: list[TensorInfo]) -> list[Tensor]:
        return [(t.name, t.dtype, tuple(t.shape)) for t in tensors]

    return described(sidecar.inputs), described(sidecar.outputs)


def engine_mismatches(
    sidecar: Sidecar, model_path: Path, model_io: tuple[list[Tensor], list[Tensor]] | None
) -> list[str]:
    """Why an engine was not built from this model (issue 11: an --engine of another model)."""
    problems = []
    model_path = Path(model_path)
    recorded = {sidecar.onnx_sha256, sidecar.built_onnx_sha256} - {""}
    if recorded and model_path.suffix.lower() == ".onnx" and model_path.is_file():
        if sha256_file(model_path) not in recorded:
            problems.append(
                f"the engine's sidecar records ONNX sha256 {sorted(recorded)[0][:12]}... but {model_path.name} is "
                f"{sha256_file(model_path)[:12]}...: the engine was built from another model; rebuild it from this one"
            )
    engine_io = sidecar_io(sidecar)
    if model_io is None:
        return problems
    for what, ours, theirs in (("inputs", model_io[0], engine_io[0]), ("outputs", model_io[1], engine_io[1])):
        if [t[0] for t in ours] != [t[0] for t in theirs]:
            problems.append(
                f"the engine's {what} are {[t[0] for t in theirs]} but the model's are {[t[0] for t in ours]}"
            )
            continue
        for (name, _, shape), (_, _, engine_shape) in zip(ours, theirs, strict=True):
            fixed = [
                (a, b) for a, b in zip(shape[1:], engine_shape[1:], strict=False) if a > 0 and b > 0 and a != b
            ]
            if len(shape) != len(engine_shape) or fixed:
                problems.append(
                    f"{name} is {list(shape)} in the model but {list(engine_shape)} in the engine: "
                    "the engine was built from another model"
                )
    return problems


def _static_batch(card: DeployCard, model_io: tuple[list[Tensor], list[Tensor]] | None) -> int | None:
    """The input's batch when the model fixes it (None: dynamic)."""
    if model_io is not None and model_io[0]:
        first = model_io[0][0][2]
        return first[0] if first and first[0] > 0 else None
    return card.input.shape[0] if card.input.shape and card.input.shape[0] > 0 else None


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def check_name(name: str) -> None:
    """``--name`` becomes part of file names in the output folder: no separators, no ``..``."""
    if name and (not _NAME.match(name) or ".." in name):
        raise UsageError(
            f"--name {name!r} must be a plain file-name part (letters, digits, '_', '-', '.', '+'; no path "
            "separators, no '..'): the files are written into the output folder"
        )


def _rel(path: Path, out_dir: Path) -> str:
    """Paths relative to the config's folder (nvinfer resolves them so), absolute if elsewhere."""
    try:
        return os.path.relpath(Path(path).resolve(), out_dir.resolve())
    except ValueError:
        return str(Path(path).resolve())


def _choose_parser(card: DeployCard, hints: DsModelHints, options: DsOptions) -> str | None:
    """The parse-bbox function: the named variant's or function, else the first DeepStream
    parser variant the card's output contract (trtdeploy.contracts) says reads it."""
    if options.ds_parser:
        chosen_variant = variant(options.ds_parser)
        return None if chosen_variant.custom_lib_path is None else chosen_variant.func
    chosen = options.parse_func or hints.parse_func
    if chosen:
        return chosen
    if hints.builtin_parser:
        return None
    contract = card.output.output_contract
    if contract.ds_readers and contract.accepts_box_format(card.output.box_format):
        return VARIANTS[contract.ds_readers[0]].func
    if hints.network_type != "detector" and not contract.has_nms and contract.reader != "raw":
        return None  # classifiers and segmentation: nvinfer's own output handling
    raise UnsupportedModelError(_no_parser_reason(card, contract))


def _no_parser_reason(card: DeployCard, contract: OutputContract) -> str:
    """Why no stock parser reads the card's outputs, and what to do instead."""
    out = card.output
    if contract.has_masks:
        return (
            f"the model has the {contract.key!r} output contract ({contract.describe()}), which no DeepStream "
            "instance-mask parser reads: NvDsInferParseCustomMrcnnTLTV2 needs the ds/mrcnn outputs "
            "(generate_detections rows + per-class mask logits; trtdeploy.masks.shape_for_deepstream makes them)"
        )
    if contract.ds_parser:
        readers = [c for c in contracts.CONTRACTS.values() if c.layout == contract.layout and c.ds_readers]
        wants = ", ".join(
            f"{VARIANTS[c.ds_readers[0]].func} ({c.ds_parser}) {c.box_units} {c.box_format} + {c.class_dtype}"
            for c in readers
        )
        return (
            f"no stock DeepStream parser reads {out.box_format} {out.box_units} boxes with {out.class_dtype} "
            f"classes ({wants}); re-export with --ds-parser or pass --parse-func"
        )
    if contract.has_nms:
        return (
            f"the model has the {contract.key!r} output contract ({contract.describe()}), which no "
            "DeepStream parser reads as it is (NvDsInferParseCustomTfSSD needs float32 tensors, "
            "NvDsInferParseCustomEfficientDetTAO pixel boxes, NvDsInferParseCustomBatchedNMSTLT x1,y1,x2,y2 boxes); "
            "re-run create-onnx with --output-layout deepstream or --ds-parser VARIANT"
        )
    if contract.reader == "raw":
        return (
            f"the model has no NMS ({_tensors_text(contract)}); DeepStream ships no parser for that "
            "(NvDsInferParseCustomTfSSD needs TF's detection_* outputs after NMS): pass --parse-func and "
            "--custom-lib of your own parser that emits one object per anchor (nvinfer then clusters them with "
            "cluster-mode=2), or re-run create-onnx with --nms efficient --output-layout deepstream"
        )
    return f"no parser known for output layout {out.layout!r}; pass --parse-func and --custom-lib"


def _tensors_text(contract: OutputContract) -> str:
    """'boxes [B,A,4] + scores [B,A,C]'."""
    return " + ".join(f"{t.name} [{','.join(str(d) for d in t.dims)}]" for t in contract.tensors)


def build_config(
    card: DeployCard,
    model_path: Path,
    out_dir: Path,
    options: DsOptions,
    hints: DsModelHints | None = None,
    engine: Path | None = None,
    engine_sidecar: Sidecar | None = None,
    calib_cache: Path | None = None,
    outputs: list[Tensor] | None = None,
) -> NvInferConfig:
    """The nvinfer config for this model; raises when options contradict the model/engine.

    ``outputs`` (the model's ordered output tensors) picks the parser library when neither
    --custom-lib nor --ds-parser says: the first variant of the function that reads them right.
    """
    hints = hints or DsModelHints()
    out_dir = Path(out_dir)
    cfg = NvInferConfig()
    net_type = NETWORK_TYPES[_network_type(card, hints)]
    mode_name, batch = _mode_and_batch(card, options, engine_sidecar, calib_cache)
    _set_input(cfg, card, options)
    _set_model_files(cfg, card, model_path, out_dir, options, hints, engine, calib_cache, batch, mode_name)
    cfg.set("labelfile-path", f"{options.name}_labels.txt" if options.name else "labels.txt")
    cfg.set("batch-size", batch)
    cfg.set("network-mode", NETWORK_MODES[mode_name])
    cfg.set("network-type", net_type)
    cfg.set("gie-unique-id", options.gie_id)
    if options.secondary:
        cfg.set("process-mode", 2)
        cfg.set("operate-on-gie-id", options.operate_on_gie_id)
        if options.operate_on_class_ids:
            cfg.set("operate-on-class-ids", options.operate_on_class_ids)
    else:
        cfg.set("process-mode", 1)

    # Labels and class count.
    base = card.output.class_id_base
    labels = (
        ([f"unused_{i}" for i in range(base)] + list(card.labels))
        if base > 0
        else list(card.labels)
    )
    cfg.labels = hints.label_lines if hints.label_lines is not None else labels
    if net_type in (
        NETWORK_TYPES["detector"],
        NETWORK_TYPES["instance_segmentation"],
        NETWORK_TYPES["segmentation"],
    ):
        cfg.set("num-detected-classes", len(cfg.labels))

    _set_parser(cfg, card, hints, options, outputs)
    if net_type in (NETWORK_TYPES["detector"], NETWORK_TYPES["instance_segmentation"]) and not options.secondary:
        # Without this key nvinfer DROPS a box whose bottom passes the frame (letterbox padding,
        # or float32 rounding at the last row) where TFOD clips boxes to the image; with it the box
        # is cut at the frame: NVIDIA/DeepStream branch DeepStream-9.0,
        # src/gst-plugins/gst-nvinfer/gstnvinfer_meta_utils.cpp l.128-140 (hiennguyen9874/
        # deepstream-sources 6.2 and 6.3 gstnvinfer_meta_utils.cpp l.97-117 / l.103-117). Read from
        # 6.2 on (property_parser.cpp 6.3 l.475, 9.0 l.523); 6.0/6.1 only warn "Unknown or legacy key".
        cfg.set("crop-objects-to-roi-boundary", 1)
    _set_clustering(cfg, card, hints, net_type)
    if cfg.properties.get("model-engine-file") == "":
        save, why = engine_save_path(cfg.properties, out_dir / "config.txt")
        if save is None:
            del cfg.properties["model-engine-file"]
            log.warning("no model-engine-file written: %s", why)
        else:
            cfg.set("model-engine-file", _rel(save, out_dir))
    return cfg


def _reads_instance_masks(card: DeployCard) -> bool:
    """The card's outputs are read by an instance-mask parser (the ds/mrcnn contract)."""
    return any(VARIANTS[key].instance_mask for key in card.output.output_contract.ds_readers)


def _network_type(card: DeployCard, hints: DsModelHints) -> str:
    """network-type: instance segmentation (3) for outputs an instance-mask parser reads, which
    nvinfer calls only for network-type=3 (NVIDIA/DeepStream@DeepStream-9.0:src/gst-plugins/
    gst-nvinfer/gstnvinfer_property_parser.cpp l.821-838 and l.914)."""
    if _reads_instance_masks(card) and hints.network_type in ("detector", "instance_segmentation"):
        return "instance_segmentation"
    return hints.network_type


def _mode_and_batch(
    card: DeployCard, options: DsOptions, engine_sidecar: Sidecar | None, calib_cache: Path | None
) -> tuple[str, int]:
    """Precision and batch: engine facts win; a conflicting option is refused, not fixed."""
    engine_precision = sidecar_precision(engine_sidecar) if engine_sidecar else None
    mode_name = options.network_mode or engine_precision or ("int8" if calib_cache else "fp16")
    if mode_name not in NETWORK_MODES:
        raise UsageError(f"--network-mode {mode_name!r} must be one of {mode_help()}")
    if (
        options.network_mode
        and engine_precision in NETWORK_MODES
        and engine_precision != options.network_mode
    ):
        raise UsageError(
            f"--network-mode {options.network_mode} but the engine was built for {engine_precision}; "
            "drop --network-mode or pass the matching engine"
        )
    max_batch = sidecar_max_batch(engine_sidecar) if engine_sidecar else None
    batch = (
        options.batch_size or max_batch or (card.input.shape[0] if card.input.shape[0] > 0 else 1)
    )
    return mode_name, batch


def _set_input(cfg: NvInferConfig, card: DeployCard, options: DsOptions) -> None:
    """Preprocessing keys: nvinfer's formula, colour, input order and dims, resize."""
    cfg.set("gpu-id", options.gpu_id)
    cfg.set("net-scale-factor", float(card.preprocess.scale))
    if card.input.channels != 1 or any(card.preprocess.offsets):
        cfg.set("offsets", list(card.preprocess.offsets))
    cfg.set("model-color-format", COLOR_FORMATS[card.preprocess.color_order])
    if card.input.layout == "NHWC":
        cfg.set("network-input-order", INPUT_ORDERS["NHWC"])
    cfg.set("infer-dims", [card.input.channels, card.input.height, card.input.width])
    letterbox = card.preprocess.resize == "letterbox"
    cfg.set("maintain-aspect-ratio", int(letterbox))
    if letterbox:  # nvinfer pads right/bottom unless symmetric-padding=1 (centre)
        cfg.set("symmetric-padding", int(card.preprocess.pad_corner == "center"))


def _set_model_files(
    cfg: NvInferConfig,
    card: DeployCard,
    model_path: Path,
    out_dir: Path,
    options: DsOptions,
    hints: DsModelHints,
    engine: Path | None,
    calib_cache: Path | None,
    batch: int,
    mode_name: str,
) -> None:
    """The model, engine and calibration cache keys (paths relative to the config)."""
    model_rel = _rel(model_path, out_dir)
    if hints.tlt_key is not None:
        cfg.set("tlt-encoded-model", model_rel)
        cfg.set("tlt-model-key", hints.tlt_key)
        if hints.uff_input_blob:
            cfg.set("uff-input-blob-name", hints.uff_input_blob)
    else:
        cfg.set("onnx-file", model_rel)
    if engine is not None:
        cfg.set("model-engine-file", _rel(engine, out_dir))
        # network-mode best: nvinfer names what it builds ..._best or ..._fp16 (config.NETWORK_MODES),
        # no precision build-engine names its engines by, so there is no one name to compare with.
        expected = (
            engine_file_name(Path(model_path).name, batch, mode_name, gpu_id=options.gpu_id)
            if mode_name in PRECISIONS else Path(engine).name
        )
        if Path(engine).name != expected:
            log.warning(
                "engine %s is not named as nvinfer names engines (%s); it is used while it exists, "
                "but a rebuilt one is saved under the other name",
                Path(engine).name,
                expected,
            )
    else:
        # nvinfer builds the engine on first start and saves it next to the MODEL (see
        # validate.engine_save_path for the source lines); naming that path here makes the next
        # start reuse it instead of rebuilding. Filled in below, once every key it depends on is set.
        cfg.set("model-engine-file", "")
    if calib_cache is not None:
        cfg.set("int8-calib-file", _rel(calib_cache, out_dir))


def _set_parser(
    cfg: NvInferConfig, card: DeployCard, hints: DsModelHints, options: DsOptions, outputs: list[Tensor] | None
) -> None:
    """Output names, the parse function and its library (the first variant that reads the
    outputs right when neither --custom-lib nor --ds-parser names one)."""
    parse_func = _choose_parser(card, hints, options)
    cfg.set("output-blob-names", card.output.names)
    if not parse_func:
        return
    contract = PARSERS.get(parse_func)
    problems = contract_problems(
        parse_func,
        card.output.layout,
        card.output.box_format,
        card.output.box_units,
        card.output.class_dtype,
    )
    # with --ds-parser, misreads() on the model's real outputs decides (in gen_ds_config)
    if problems and not (options.parse_func or hints.parse_func or options.ds_parser):
        raise UnsupportedModelError("; ".join(problems))
    key = (
        "parse-bbox-instance-mask-func-name"
        if contract and contract.instance_mask
        else "parse-bbox-func-name"
    )
    cfg.set(key, parse_func)
    lib = options.custom_lib
    if lib is None and options.ds_parser:
        lib = variant(options.ds_parser).custom_lib_path
    cfg.parser_variant = options.ds_parser
    if lib is None and outputs is not None:
        fits = [
            v for v in VARIANTS.values()
            if v.func == parse_func and v.custom_lib_path and not misreads(v.key, outputs)
        ]  # fmt: skip
        lib = fits[0].custom_lib_path if fits else None
        cfg.parser_variant = fits[0].key if fits else None
    if lib is not None and not lib.startswith("/"):
        log.warning(
            "custom-lib-path=%s is where deepstream_tao_apps' configs find its parser library; "
            "pass --custom-lib with the path of the libnvds_infercustomparser_tao.so you built",
            lib,
        )
    cfg.set("custom-lib-path", lib or DEFAULT_CUSTOM_LIB)
    if contract and contract.instance_mask:
        cfg.set("output-instance-mask", 1)
        if _reads_instance_masks(card):
            # the ds/mrcnn masks are logits, which nvinfer hands to the OSD with this threshold:
            # 0 is probability 0.5, TFOD's binarisation (trtdeploy.deepstream.parsers.MRCNN_LAYOUT)
            cfg.set("segmentation-threshold", MRCNN_LAYOUT.segmentation_threshold_for_logits)


def _set_clustering(cfg: NvInferConfig, card: DeployCard, hints: DsModelHints, net_type: int) -> None:
    """cluster-mode (4 when the model ran NMS) and the per-class thresholds from its NMS settings."""
    if net_type in (NETWORK_TYPES["detector"], NETWORK_TYPES["instance_segmentation"]):
        nms_inside = card.output.nms != "none" and card.output.output_contract.reader != "raw"
        # instance segmentation takes cluster-mode 4 only (trtdeploy.deepstream.parsers.MRCNN_NVINFER_FACTS)
        nms_inside = nms_inside or net_type == NETWORK_TYPES["instance_segmentation"]
        cluster = hints.cluster_mode if hints.cluster_mode is not None else (4 if nms_inside else 2)
        cfg.set("cluster-mode", cluster)
    for key, value in hints.extra.items():
        cfg.set(key, value)

    # Thresholds from the model's NMS settings.
    if net_type in (NETWORK_TYPES["detector"], NETWORK_TYPES["instance_segmentation"]):
        attrs: dict[str, Any] = {"pre-cluster-threshold": card.nms.score_threshold}
        if cfg.properties.get("cluster-mode") == "2":
            attrs["nms-iou-threshold"] = card.nms.iou_threshold
            attrs["topk"] = card.nms.max_detections
        attrs.update(hints.class_attrs)
        cfg.class_attrs = {k: _attr(v) for k, v in attrs.items()}


def _attr(value: Any) -> str:
    from trtdeploy.deepstream.config import format_value

    return format_value(value)


def variants_for(func: str, custom_lib: str | None) -> list[ParserVariant]:
    """The parser variants a config's function + library can be: same function name, and a
    library of the same file name (the SDK's libnvds_infercustomparser.so or deepstream_tao_apps'
    libnvds_infercustomparser_tao.so); several when releases of that library differ."""
    lib_name = Path(custom_lib).name if custom_lib else None
    return [
        v
        for v in VARIANTS.values()
        if v.func == func and v.custom_lib_path is not None and Path(v.custom_lib_path).name == lib_name
    ]


def judge_parser(
    candidates: list[ParserVariant], outputs: list[Tensor], source: str
) -> tuple[list[str], list[str]]:
    """Errors and warnings for these outputs read by a parser that may be any of ``candidates``
    (newest release first, as VARIANTS lists them): the newest one misreading them is an error
    (that is what a library built today is), an older one a warning."""
    errors, warnings = [], []
    for index, v in enumerate(candidates):
        found = misreads(v.key, outputs)
        if not found:
            continue
        line = f"parser variant {v.key} ({v.releases}) would misread {source}: " + "; ".join(found)
        if index == 0:
            others = [c.key for c in candidates[1:] if not misreads(c.key, outputs)]
            if others:
                line += f" (variant(s) {', '.join(others)} of older releases read them right: pin one with --ds-parser)"
            errors.append(line)
        else:
            warnings.append(line)
    return errors, warnings


def _default_ds_parser(card: DeployCard, options: DsOptions, hints: DsModelHints | None) -> None:
    """Without --ds-parser / --parse-func: the variant the card's outputs were shaped for."""
    recorded = getattr(card.output, "ds_parser", "") or ""
    if not options.ds_parser and recorded and not options.parse_func and not (hints and hints.parse_func):
        if recorded not in VARIANTS:
            raise InputError(
                f"the deploy card names DeepStream parser variant {recorded!r}, which this trtdeploy does not know "
                f"({', '.join(VARIANTS)}); pass --ds-parser"
            )
        options.ds_parser = recorded  # the variant create-onnx shaped the outputs for
    if options.ds_parser:
        variant(options.ds_parser)  # an unknown key is bad usage, before any work


def _engine_and_model_io(
    model_path: Path, engine: Path | None
) -> tuple[Sidecar | None, tuple[list[Tensor], list[Tensor]] | None]:
    """The engine's sidecar (refused when it was not built from the model) and the model's I/O."""
    if engine is not None and not Path(engine).is_file():
        raise InputError(f"engine {engine} not found")
    sidecar = read_engine_sidecar(engine) if engine is not None else None
    model_io = onnx_io(model_path)
    if sidecar is not None:
        wrong = engine_mismatches(sidecar, model_path, model_io)
        if wrong:
            raise InputError(f"--engine {engine} does not belong to {Path(model_path).name}: " + "; ".join(wrong))
    return sidecar, model_io


def _check_batch_size(
    card: DeployCard, model_path: Path, options: DsOptions, model_io: tuple[list[Tensor], list[Tensor]] | None
) -> None:
    static = _static_batch(card, model_io)
    if options.batch_size is not None and options.batch_size < 1:
        raise UsageError(f"--batch-size {options.batch_size} must be >= 1")
    if options.batch_size and static is not None and options.batch_size > static:
        # nvinfer builds a profile for batch-size but the ONNX fixes the batch; the engine it gets
        # has max batch `static` and checkBackendParams refuses it ("Backend has maxBatchSize %d
        # whereas %d has been requested"): hiennguyen9874/deepstream-sources 6.3
        # sources/libs/nvdsinfer/nvdsinfer_context_impl.cpp lines 1709-1713.
        raise UsageError(
            f"--batch-size {options.batch_size} but {Path(model_path).name} has a static batch of {static}: "
            "nvinfer cannot run it at a larger batch; re-export with a dynamic batch or use --batch-size "
            f"{static}"
        )


def _check_parser_reads(cfg: NvInferConfig, model_path: Path, outputs: list[Tensor] | None, source: str) -> None:
    """The chosen parser variant(s) must read the model's real outputs (names, dtypes) right."""
    func = cfg.properties.get("parse-bbox-func-name") or cfg.properties.get("parse-bbox-instance-mask-func-name")
    if not func:
        return
    chosen = (
        [variant(cfg.parser_variant)]
        if cfg.parser_variant
        else variants_for(func, cfg.properties.get("custom-lib-path"))
    )
    if outputs is not None:
        wrong, older = judge_parser(chosen, outputs, source)
        classes = cfg.properties.get("num-detected-classes")
        for v in chosen:
            wrong += mask_layout_problems(v.key, outputs, int(classes) if classes else None, source)
        if wrong:
            raise UnsupportedModelError(
                "; ".join(wrong) + ": re-export the model for that parser (create-onnx --ds-parser) or pick "
                "the parser variant that reads these outputs"
            )
        for line in older:
            log.warning("%s", line)
    elif chosen:
        log.warning("%s not found as ONNX and no engine sidecar: output dtypes not checked", model_path)


def gen_ds_config(
    card: DeployCard,
    model_path: Path,
    out_dir: Path,
    options: DsOptions,
    hints: DsModelHints | None = None,
    engine: Path | None = None,
    calib_cache: Path | None = None,
    force: bool = False,
    inputs: Iterable[Path | None] = (),
) -> GeneratedConfig:
    """Write ``config_infer_primary_<name>.txt``/``.yml`` and ``<name>_labels.txt`` into ``out_dir``.

    Validates first and writes nothing when any check fails. ``inputs`` are the files the caller
    read (spec, labels, ...): none of them is ever written over, not even with ``force``.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    check_name(options.name)
    if not options.name:
        options.name = Path(model_path).stem
    _default_ds_parser(card, options, hints)
    sidecar, model_io = _engine_and_model_io(model_path, engine)
    _check_batch_size(card, model_path, options, model_io)
    cache, cache_problem = read_calib_cache(calib_cache) if calib_cache is not None else (None, None)
    engine_io = sidecar_io(sidecar) if sidecar is not None else None
    outputs, source = (
        (engine_io[1], f"the outputs of engine {Path(engine).name}")  # type: ignore[arg-type]
        if engine_io and engine_io[1]
        else (model_io[1], f"the outputs of {Path(model_path).name}") if model_io else (None, "")
    )
    cfg = build_config(card, model_path, out_dir, options, hints, engine, sidecar, calib_cache, outputs)
    _check_parser_reads(cfg, model_path, outputs, source)
    view = ConfigView(
        properties=cfg.properties,
        class_attrs=cfg.class_attrs,
        labels=cfg.labels,
        base_dir=out_dir,
        card=card,
        engine_sidecar=sidecar,
        calib_cache=cache,
        calib_problem=cache_problem,
        config_path=out_dir / "config.txt",
    )
    problems = validate(view)
    if any(p.level == ERROR for p in problems):
        raise DsConfigError(problems)
    for p in problems:
        log.warning("%s", p.message)

    kind = "secondary" if options.secondary else "primary"
    ini = out_dir / f"config_infer_{kind}_{options.name}.txt"
    yml = out_dir / f"config_infer_{kind}_{options.name}.yml"
    labels = out_dir / cfg.properties["labelfile-path"]
    read = [model_path, engine, calib_cache, *inputs]
    for path in (ini, yml, labels):
        check_output(path, force, inputs=read)
    header_text = (
        f"nvinfer config generated by trtdeploy {__version__} (gen-ds-config)\n"
        f"model: {Path(model_path).name}; edit the model, not this file, and regenerate"
    )
    _write_for_deepstream(labels, render_labels(cfg.labels))
    _write_for_deepstream(ini, render_ini(cfg, header_text))
    _write_for_deepstream(yml, render_yaml(cfg, header_text))
    log.info(
        "wrote %s, %s and %s in %.2fs", ini.name, yml.name, labels.name, time.perf_counter() - start
    )
    return GeneratedConfig(cfg, problems, [ini, yml, labels])


def _write_for_deepstream(path: Path, text: str) -> None:
    """Atomically, LF only, mode 0644 whatever the umask: DeepStream often runs as another user
    (a service account or a container user) and must be able to read what we write."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
