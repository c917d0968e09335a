"""create-onnx for TF2 Object Detection API models, whose family comes from the registry.

Stages (each a plain function, so tests and notebooks can reuse a converted core):
``prepare`` checks inputs, finds the model family (``trtdeploy.families``: TFOD SSD,
``tfod_trt.families.ssd``, which reads pipeline.config; AutoML EfficientDet, ``tfod_trt.automl``,
which needs none) and reads its facts and the label map (no TensorFlow),
``convert_core`` converts the network and runs the family's core passes (TensorFlow + tf2onnx),
``attach_head`` appends the NMS head and makes the deploy card, ``create_onnx`` does all
three and writes ``model.onnx`` + ``model.deploy.json``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from tfod_trt.automl.hparams import AutomlConfig, is_automl_export
from tfod_trt.families.ssd import source_hashes  # noqa: F401 - re-exported (its home was here)
from tfod_trt.pipeline_config import TfodConfig, read_label_map
from trtdeploy import families
from trtdeploy.deploy_card import DS_OUTPUTS, DeployCard, NmsParams, card_path_for, default_ds_parser
from trtdeploy.errors import InputError, UnsupportedModelError, UsageError
from trtdeploy.families import Core, Family, ModelSource
from trtdeploy.files import check_output
from trtdeploy.log import get_logger
from trtdeploy.nms import KIND_LAYOUTS, NMS_KINDS
from trtdeploy.nms.heads import ds_variants_for
from trtdeploy.nms.onnx_head import MIN_OPSET as ONNX_NMS_MIN_OPSET
from trtdeploy.nms.reference import BATCHED_NMS_MAX_TOP_K

log = get_logger("tfod")

OUTPUT_LAYOUTS = ("tfod", "deepstream")
LOW_SCORE_THRESHOLD = 0.01
MIN_OPSET, MAX_OPSET = 10, 18


@dataclass
class CreateOnnxOptions:
    saved_model: Path
    output: Path
    pipeline_config: Path | None = None
    label_map: Path | None = None
    nms: str | None = None  # None: the head the output needs (batched for batchednms, else efficient)
    output_layout: str | None = None  # None: tfod, or deepstream when ds_parser is given
    ds_parser: str | None = None  # a DeepStream parser variant (trtdeploy.deploy_card.DS_OUTPUTS)
    batch: int = 1
    dynamic_batch: bool = False
    input_format: str = "nhwc"
    input_size: tuple[int, int] | None = None
    score_threshold: float | None = None
    iou_threshold: float | None = None
    max_detections: int | None = None
    opset: int = 17
    debug_dir: Path | None = None
    force: bool = False


@dataclass
class Prepared:
    options: CreateOnnxOptions
    config: Any  # the family's facts (read_config): TfodConfig (SSD) or AutomlConfig (AutoML)
    labels: list[str]
    height: int
    width: int
    nms_params: NmsParams
    nms: str = "efficient"
    output_layout: str = "tfod"
    ds_parser: str | None = None
    family: Family | None = None  # from the registry (None: TFOD SSD)

    @property
    def model_family(self) -> Family:
        return self.family or families.get("tfod_ssd")


@dataclass
class CreateOnnxResult:
    onnx_path: Path
    card_path: Path
    card: DeployCard
    seconds: float


def resolve_output(nms: str | None, output_layout: str | None, ds_parser: str | None) -> tuple[str, str, str | None]:
    """(NMS head, output layout, DeepStream parser variant) from the three options, refusing
    combinations that contradict each other instead of silently picking one."""
    if nms is not None and nms not in NMS_KINDS:
        raise UsageError(f"--nms {nms!r} is not one of {', '.join(NMS_KINDS)}")
    own = KIND_LAYOUTS.get(nms or "", ())  # a head's own contract ("raw" of none) may be named too
    if output_layout is not None and output_layout not in OUTPUT_LAYOUTS and output_layout not in own:
        raise UsageError(f"--output-layout {output_layout!r} is not one of {', '.join(OUTPUT_LAYOUTS)}")
    if ds_parser is None and output_layout == "deepstream":
        if nms == "none":
            raise UsageError("--output-layout deepstream needs an NMS head: use --nms efficient, onnx or batched")
        default = default_ds_parser()
        head = nms or DS_OUTPUTS[default].kinds[0]
        ds_parser = default if head in DS_OUTPUTS[default].kinds else ds_variants_for(head)[0]
    if ds_parser is not None:
        variant = DS_OUTPUTS.get(ds_parser)
        if variant is None:
            raise UsageError(f"--ds-parser {ds_parser!r} is not one of {', '.join(DS_OUTPUTS)}")
        if output_layout not in (None, "deepstream"):
            raise UsageError(f"--ds-parser {ds_parser} is the DeepStream output; drop --output-layout {output_layout}")
        head = nms or variant.kinds[0]
        if head not in variant.kinds:
            raise UsageError(
                f"--ds-parser {ds_parser} reads the outputs of --nms {' or '.join(variant.kinds)}, not --nms {head}"
                + (f" (--nms {head} feeds {', '.join(ds_variants_for(head))})" if ds_variants_for(head) else "")
            )
        return head, variant.layout, ds_parser
    head = nms or "efficient"
    # --output-layout chooses between the EfficientNMS-shaped contracts; the other heads have one.
    layout = output_layout if output_layout in KIND_LAYOUTS[head] else KIND_LAYOUTS[head][0]
    return head, layout, None


def check_options(options: CreateOnnxOptions) -> tuple[str, str, str | None]:
    """Refuse options out of range or contradicting each other; returns the resolved
    (NMS head, output layout, DeepStream parser variant)."""
    nms, layout, ds_parser = resolve_output(options.nms, options.output_layout, options.ds_parser)
    if options.input_format not in ("nhwc", "nchw"):
        raise UsageError(f"--input-format {options.input_format!r} must be nhwc or nchw")
    if options.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {options.batch}")
    if not MIN_OPSET <= options.opset <= MAX_OPSET:
        raise UsageError(
            f"--opset {options.opset} is not supported: use {MIN_OPSET}-{MAX_OPSET} (box decoding needs Slice with "
            f"tensor inputs, opset {MIN_OPSET}; tf2onnx 1.17 converts up to {MAX_OPSET})"
        )
    if nms == "onnx" and options.opset < ONNX_NMS_MIN_OPSET:
        raise UsageError(
            f"--nms onnx needs --opset {ONNX_NMS_MIN_OPSET} or later (got {options.opset}); "
            f"use --opset {ONNX_NMS_MIN_OPSET}-{MAX_OPSET} or another --nms"
        )
    for name, value in (("--score-threshold", options.score_threshold), ("--iou-threshold", options.iou_threshold)):
        if value is not None and not 0.0 <= value <= 1.0:  # also refuses NaN
            raise UsageError(f"{name} must be in [0, 1], got {value}")
    if options.max_detections is not None and options.max_detections < 1:
        raise UsageError(f"--max-detections must be >= 1, got {options.max_detections}")
    return nms, layout, ds_parser


def prepare(options: CreateOnnxOptions) -> Prepared:
    """Validate every option and input, find the model family and read the model's facts;
    fast and TensorFlow-free.

    Everything that can be checked before the conversion is checked here, so a bad option
    never costs a conversion."""
    saved_model = Path(options.saved_model)
    if not saved_model.exists():
        raise InputError(f"saved model folder {saved_model} not found")
    if not saved_model.is_dir() or not any((saved_model / f).is_file() for f in ("saved_model.pb", "saved_model.pbtxt")):
        hint = " (did you mean its saved_model/ subfolder?)" if (saved_model / "saved_model").is_dir() else ""
        raise InputError(f"{saved_model} is not a TensorFlow saved model: no saved_model.pb{hint}")
    nms, layout, ds_parser = check_options(options)
    config_path: Path | None = (
        Path(options.pipeline_config) if options.pipeline_config else saved_model.parent / "pipeline.config"
    )
    if options.pipeline_config and not config_path.is_file():  # type: ignore[union-attr]
        raise InputError(f"pipeline.config not found at {config_path}; pass --pipeline-config")
    if config_path is not None and not config_path.is_file():
        config_path = None  # a family that needs none (AutoML EfficientDet) may still claim the model
    label_map = Path(options.label_map) if options.label_map else None
    if label_map is not None and not label_map.is_file():
        raise InputError(f"label map {label_map} not found")
    output = Path(options.output)
    outputs = [output, card_path_for(output)]
    input_files = [config_path, label_map]
    for out in outputs:
        check_output(out, options.force, inputs=input_files)
    if options.debug_dir:
        outputs.append(Path(options.debug_dir))
    _refuse_outputs_inside(outputs, saved_model)
    source = ModelSource(saved_model, config_path)
    try:
        family = families.find_family(source)
    except UnsupportedModelError as exc:
        if config_path is None:  # most likely a TFOD export without its pipeline.config
            raise InputError(
                f"pipeline.config not found at {saved_model.parent / 'pipeline.config'}; pass --pipeline-config "
                f"({exc})"
            ) from exc
        raise
    if family.key != "automl_efficientdet" and is_automl_export(saved_model):
        raise UnsupportedModelError(
            f"{saved_model} is a Google AutoML EfficientDet export (its 'predict' signature), not a {family.title} one: "
            f"drop --pipeline-config {config_path} (AutoML exports need none)"
        )
    families.check_head(family, nms)
    config = family.read_config(source)
    labels = (
        read_label_map(label_map, config.num_classes)
        if label_map
        else [f"class_{i}" for i in range(1, config.num_classes + 1)]
    )
    height, width = options.input_size or (config.height, config.width)
    if height < 32 or width < 32:
        raise UsageError(f"input size {height}x{width} is too small")
    params = _nms_params(options, config, nms)
    return Prepared(options, config, labels, height, width, params, nms, layout, ds_parser, family)


def _nms_params(options: CreateOnnxOptions, config: TfodConfig | AutomlConfig, nms: str) -> NmsParams:
    """NMS parameters: the options over pipeline.config's post_processing, checked."""
    config_path = config.path
    params = NmsParams(
        score_threshold=config.score_threshold if options.score_threshold is None else options.score_threshold,
        iou_threshold=config.iou_threshold if options.iou_threshold is None else options.iou_threshold,
        max_detections=config.max_total_detections if options.max_detections is None else options.max_detections,
        max_detections_per_class=config.max_detections_per_class,
    )
    if not 0.0 <= params.iou_threshold <= 1.0 or not 0.0 <= params.score_threshold <= 1.0:
        raise InputError(
            f"{config_path}: thresholds out of range (score {params.score_threshold}, iou {params.iou_threshold}); "
            "pass --score-threshold/--iou-threshold in [0, 1]"
        )
    if params.max_detections < 1:
        raise InputError(f"{config_path}: max_total_detections must be >= 1, got {params.max_detections}; "
                         "pass --max-detections")
    if nms == "batched" and params.max_detections > BATCHED_NMS_MAX_TOP_K:
        raise UsageError(
            f"--nms batched keeps at most {BATCHED_NMS_MAX_TOP_K} detections (BatchedNMS topK limit), "
            f"max detections is {params.max_detections}; lower --max-detections"
        )
    params.max_detections_per_class = min(params.max_detections_per_class, params.max_detections) or params.max_detections
    return params


def _refuse_outputs_inside(outputs: list[Path], folder: Path) -> None:
    """No output inside the saved model folder (real paths, symlinks resolved), with or
    without --force: create-onnx never changes what it reads."""
    real_folder = Path(os.path.realpath(folder))
    for out in outputs:
        real = Path(os.path.realpath(out))
        if real == real_folder or real_folder in real.parents:
            raise UsageError(f"output {out} is inside the input saved model folder {folder}; write it somewhere else")


def convert_core(prepared: Prepared) -> Core:
    """The family's conversion (TensorFlow -> ONNX for the kept part of the network), then its
    core passes (decode boxes, pick scores)."""
    opts = prepared.options
    return families.core_graph(prepared.model_family, prepared, Path(opts.debug_dir) if opts.debug_dir else None)


def attach_head(
    core: Core, prepared: Prepared, nms: str | None = None, output_layout: str | None = None,
    ds_parser: str | None = None,
) -> tuple[onnx.ModelProto, DeployCard]:
    """Append the NMS head to a converted core; returns the final model and its deploy card.
    Without ``nms``, ``output_layout`` and ``ds_parser``: the ones ``prepare`` resolved."""
    opts = prepared.options
    if nms is None and output_layout is None and ds_parser is None:
        nms, layout, ds_parser = prepared.nms, prepared.output_layout, prepared.ds_parser
    else:
        nms, layout, ds_parser = resolve_output(nms, output_layout, ds_parser)
    head_facts: dict[str, Any] = dict(nms=nms, nms_params=prepared.nms_params, output_layout=layout,
                                      ds_parser=ds_parser, input_hw=(prepared.height, prepared.width))
    return families.with_head(prepared.model_family, core, prepared, head_facts,
                              Path(opts.debug_dir) if opts.debug_dir else None)


def create_onnx(options: CreateOnnxOptions) -> CreateOnnxResult:
    """Convert a TFOD saved model (of a registered family) to ONNX with an NMS head and write
    its deploy card."""
    start = time.perf_counter()
    prepared = prepare(options)
    if prepared.nms_params.score_threshold < LOW_SCORE_THRESHOLD and prepared.nms in ("efficient", "batched"):
        log.warning(
            "score threshold %g is very low: TensorRT NMS plugins get slow below ~0.01; consider --score-threshold 0.05",
            prepared.nms_params.score_threshold,
        )
    output = Path(options.output)
    card_path = card_path_for(output)
    # The outputs are claimed first: an output we cannot write fails now, not after the conversion.
    with families.claimed_outputs(output) as (tmp_onnx, tmp_card):
        core = convert_core(prepared)
        model, card = attach_head(core, prepared)
        families.fill_outputs(tmp_onnx, tmp_card, model, card)
    seconds = time.perf_counter() - start
    log.info("wrote %s (%.1f MB) and %s in %.1f s", output, output.stat().st_size / 1e6, card_path.name, seconds)
    return CreateOnnxResult(output, card_path, card, seconds)
