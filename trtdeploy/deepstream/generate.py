"""Deploy card (+ engine sidecar, calibration cache) -> nvinfer config (.txt and .yml) + labels.

Everything model-determined comes from the deploy card, so the config cannot drift from the
engine; the DeepStream-specific extras a front-end knows (network type, .etlt key, the parser
its export needs) come in ``DsModelHints``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.cache import CalibrationCache, read_cache
from calibration.errors import CalibrationError
from trtdeploy import __version__
from trtdeploy.deepstream.config import (
    COLOR_FORMATS,
    INPUT_ORDERS,
    NETWORK_MODES,
    NETWORK_TYPES,
    NvInferConfig,
    render_ini,
    render_labels,
    render_yaml,
)
from trtdeploy.deepstream.parsers import (
    DEFAULT_CUSTOM_LIB,
    PARSER_FOR_LAYOUT,
    PARSERS,
    contract_problems,
    parser_for_deepstream_layout,
)
from trtdeploy.deepstream.validate import (
    ERROR,
    ConfigView,
    Problem,
    sidecar_max_batch,
    sidecar_precision,
    validate,
)
from trtdeploy.deploy_card import DeployCard
from trtdeploy.engine.naming import engine_file_name
from trtdeploy.errors import InputError, TrtDeployError, UnsupportedModelError, UsageError
from trtdeploy.files import check_output, write_text_atomic
from trtdeploy.log import get_logger

log = get_logger("deepstream")


class DsConfigError(TrtDeployError):
    """The config would not work; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[Problem], what: str = "the DeepStream config") -> None:
        self.problems = problems
        lines = [str(p) for p in problems if p.level == ERROR]
        super().__init__(f"{what} has {len(lines)} problem(s):\n  " + "\n  ".join(lines))


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
    network_mode: str | None = None  # fp32 | fp16 | int8
    custom_lib: str = DEFAULT_CUSTOM_LIB
    parse_func: str | None = None
    gpu_id: int = 0


@dataclass
class GeneratedConfig:
    config: NvInferConfig
    problems: list[Problem]
    paths: list[Path] = field(default_factory=list)


def read_engine_sidecar(engine: Path) -> dict[str, Any] | None:
    """``<engine>.json`` written by build-engine, read as a plain dict (its schema is young)."""
    for candidate in (Path(str(engine) + ".json"), Path(engine).with_suffix(".json")):
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(f"engine sidecar {candidate} is not valid JSON: {exc}") from exc
            return data if isinstance(data, dict) else None
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


def _rel(path: Path, out_dir: Path) -> str:
    """Paths relative to the config's folder (nvinfer resolves them so), absolute if elsewhere."""
    try:
        return os.path.relpath(Path(path).resolve(), out_dir.resolve())
    except ValueError:
        return str(Path(path).resolve())


def _choose_parser(card: DeployCard, hints: DsModelHints, options: DsOptions) -> str | None:
    layout = card.output.layout
    chosen = options.parse_func or hints.parse_func
    if chosen:
        return chosen
    if hints.builtin_parser:
        return None
    if layout in PARSER_FOR_LAYOUT:
        return PARSER_FOR_LAYOUT[layout]
    if layout == "deepstream":
        name = parser_for_deepstream_layout(card.output.box_format, card.output.class_dtype)
        if name is None:
            raise UnsupportedModelError(
                f"no stock DeepStream parser reads {card.output.box_format} {card.output.box_units} boxes with "
                f"{card.output.class_dtype} classes (NvDsInferParseCustomEfficientDetTAO wants pixel y1x1y2x2 + "
                "float32, NvDsInferParseCustomEfficientNMS pixel x1y1x2y2 + int32); re-export or pass --parse-func"
            )
        return name
    if layout == "tfod":
        raise UnsupportedModelError(
            "the model has the 'tfod' output layout (normalised y1,x1,y2,x2 boxes, int32 classes), which no "
            "DeepStream parser reads (NvDsInferParseCustomEfficientDetTAO needs pixel boxes and float classes); "
            "re-run create-onnx with --output-layout deepstream"
        )
    if layout == "raw":
        raise UnsupportedModelError(
            "the model has no NMS ('raw' boxes [B,A,4] + scores [B,A,C]); DeepStream ships no parser for that "
            "(NvDsInferParseCustomTfSSD needs TF's detection_* outputs after NMS): pass --parse-func and "
            "--custom-lib of your own parser that emits one object per anchor (nvinfer then clusters them with "
            "cluster-mode=2), or re-run create-onnx with --nms efficient --output-layout deepstream"
        )
    if hints.network_type == "detector":
        raise UnsupportedModelError(
            f"no parser known for output layout {layout!r}; pass --parse-func and --custom-lib"
        )
    return None


def build_config(
    card: DeployCard,
    model_path: Path,
    out_dir: Path,
    options: DsOptions,
    hints: DsModelHints | None = None,
    engine: Path | None = None,
    engine_sidecar: dict[str, Any] | None = None,
    calib_cache: Path | None = None,
) -> NvInferConfig:
    """The nvinfer config for this model; raises when options contradict the model/engine."""
    hints = hints or DsModelHints()
    out_dir = Path(out_dir)
    cfg = NvInferConfig()
    net_type = NETWORK_TYPES[hints.network_type]

    # Precision and batch: engine facts win; a conflicting option is refused, not fixed.
    engine_precision = sidecar_precision(engine_sidecar) if engine_sidecar else None
    mode_name = options.network_mode or engine_precision or ("int8" if calib_cache else "fp16")
    if mode_name not in NETWORK_MODES:
        raise UsageError(f"--network-mode {mode_name!r} must be fp32, fp16 or int8")
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
        expected = engine_file_name(Path(model_path).name, batch, mode_name, gpu_id=options.gpu_id)
        if Path(engine).name != expected:
            log.warning(
                "engine %s is not named as nvinfer names engines (%s); it is used while it exists, "
                "but a rebuilt one is saved under the other name",
                Path(engine).name,
                expected,
            )
    else:
        # nvinfer builds the engine on first start and saves it under this name; naming it here
        # makes the next start reuse it instead of rebuilding.
        cfg.set(
            "model-engine-file",
            engine_file_name(model_rel, batch, mode_name, gpu_id=options.gpu_id),
        )
    if calib_cache is not None:
        cfg.set("int8-calib-file", _rel(calib_cache, out_dir))
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

    parse_func = _choose_parser(card, hints, options)
    cfg.set("output-blob-names", card.output.names)
    if parse_func:
        contract = PARSERS.get(parse_func)
        problems = contract_problems(
            parse_func,
            card.output.layout,
            card.output.box_format,
            card.output.box_units,
            card.output.class_dtype,
        )
        if problems and not (options.parse_func or hints.parse_func):
            raise UnsupportedModelError("; ".join(problems))
        key = (
            "parse-bbox-instance-mask-func-name"
            if contract and contract.instance_mask
            else "parse-bbox-func-name"
        )
        cfg.set(key, parse_func)
        cfg.set("custom-lib-path", options.custom_lib)
        if contract and contract.instance_mask:
            cfg.set("output-instance-mask", 1)
    if net_type in (NETWORK_TYPES["detector"], NETWORK_TYPES["instance_segmentation"]):
        nms_inside = card.output.nms not in ("none",) and card.output.layout != "raw"
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
    return cfg


def _attr(value: Any) -> str:
    from trtdeploy.deepstream.config import format_value

    return format_value(value)


def gen_ds_config(
    card: DeployCard,
    model_path: Path,
    out_dir: Path,
    options: DsOptions,
    hints: DsModelHints | None = None,
    engine: Path | None = None,
    calib_cache: Path | None = None,
    force: bool = False,
) -> GeneratedConfig:
    """Write ``config_infer_primary_<name>.txt``/``.yml`` and ``<name>_labels.txt`` into ``out_dir``.

    Validates first and writes nothing when any check fails.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if not options.name:
        options.name = Path(model_path).stem
    sidecar = read_engine_sidecar(engine) if engine is not None else None
    if engine is not None and not Path(engine).is_file():
        raise InputError(f"engine {engine} not found")
    cache, cache_problem = read_calib_cache(calib_cache) if calib_cache is not None else (None, None)
    cfg = build_config(card, model_path, out_dir, options, hints, engine, sidecar, calib_cache)
    view = ConfigView(
        properties=cfg.properties,
        class_attrs=cfg.class_attrs,
        labels=cfg.labels,
        base_dir=out_dir,
        card=card,
        engine_sidecar=sidecar,
        calib_cache=cache,
        calib_problem=cache_problem,
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
    for path in (ini, yml, labels):
        check_output(path, force)
    header_text = (
        f"nvinfer config generated by trtdeploy {__version__} (gen-ds-config)\n"
        f"model: {Path(model_path).name}; edit the model, not this file, and regenerate"
    )
    write_text_atomic(labels, render_labels(cfg.labels))
    write_text_atomic(ini, render_ini(cfg, header_text))
    write_text_atomic(yml, render_yaml(cfg, header_text))
    log.info(
        "wrote %s, %s and %s in %.2fs", ini.name, yml.name, labels.name, time.perf_counter() - start
    )
    return GeneratedConfig(cfg, problems, [ini, yml, labels])
