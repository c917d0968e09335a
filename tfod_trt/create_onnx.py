"""create-onnx for TF2 Object Detection API SSD models.

Stages (each a plain function, so tests and notebooks can reuse a converted core):
``prepare`` checks inputs and reads pipeline.config / label map (no TensorFlow),
``convert_core`` cuts and converts the network and decodes boxes (TensorFlow + tf2onnx),
``attach_head`` appends the NMS head and makes the deploy card, ``create_onnx`` does all
three and writes ``model.onnx`` + ``model.deploy.json``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tfod_trt.passes import CORE_PASSES, HEAD_PASSES
from tfod_trt.pipeline_config import (
    SSD_FEATURE_EXTRACTORS,
    TfodConfig,
    read_label_map,
    read_pipeline_config,
)
from tfod_trt.tf_graph import FAMILY
from tfod_trt.tf_graph import convert_core as convert_tf_core
from trtdeploy import __version__
from trtdeploy.deploy_card import (
    DeployCard,
    InputSpec,
    NmsParams,
    Preprocess,
    Provenance,
    card_path_for,
)
from trtdeploy.errors import InputError, UsageError
from trtdeploy.files import atomic_path, check_output, sha256_file
from trtdeploy.graph_passes import PassContext, run_passes
from trtdeploy.log import get_logger
from trtdeploy.nms import KIND_LAYOUTS, NMS_KINDS

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
    nms: str = "efficient"
    output_layout: str = "tfod"
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
    config: TfodConfig
    labels: list[str]
    height: int
    width: int
    nms_params: NmsParams


@dataclass
class Core:
    """The converted network up to decoded boxes [B,A,4] and class scores [B,A,C]."""

    model: onnx.ModelProto
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class CreateOnnxResult:
    onnx_path: Path
    card_path: Path
    card: DeployCard
    seconds: float


def prepare(options: CreateOnnxOptions) -> Prepared:
    """Validate options and inputs and read the model's facts; fast and TensorFlow-free."""
    saved_model = Path(options.saved_model)
    if not saved_model.exists():
        raise InputError(f"saved model folder {saved_model} not found")
    if not saved_model.is_dir() or not any((saved_model / f).is_file() for f in ("saved_model.pb", "saved_model.pbtxt")):
        hint = " (did you mean its saved_model/ subfolder?)" if (saved_model / "saved_model").is_dir() else ""
        raise InputError(f"{saved_model} is not a TensorFlow saved model: no saved_model.pb{hint}")
    if options.nms not in NMS_KINDS:
        raise UsageError(f"--nms {options.nms!r} is not one of {', '.join(NMS_KINDS)}")
    if options.output_layout not in OUTPUT_LAYOUTS:
        raise UsageError(f"--output-layout {options.output_layout!r} is not one of {', '.join(OUTPUT_LAYOUTS)}")
    if options.output_layout == "deepstream" and options.nms not in ("efficient", "onnx"):
        raise UsageError(
            f"--output-layout deepstream is the EfficientNMS output contract; use it with --nms efficient or onnx, "
            f"not {options.nms}"
        )
    if options.input_format not in ("nhwc", "nchw"):
        raise UsageError(f"--input-format {options.input_format!r} must be nhwc or nchw")
    if options.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {options.batch}")
    if not MIN_OPSET <= options.opset <= MAX_OPSET:
        raise UsageError(
            f"--opset {options.opset} is not supported: use {MIN_OPSET}-{MAX_OPSET} (box decoding needs Slice with "
            f"tensor inputs, opset {MIN_OPSET}; tf2onnx 1.17 converts up to {MAX_OPSET})"
        )
    config_path = Path(options.pipeline_config) if options.pipeline_config else saved_model.parent / "pipeline.config"
    if not config_path.is_file():
        raise InputError(f"pipeline.config not found at {config_path}; pass --pipeline-config")
    config = read_pipeline_config(config_path)
    labels = (
        read_label_map(Path(options.label_map), config.num_classes)
        if options.label_map
        else [f"class_{i}" for i in range(1, config.num_classes + 1)]
    )
    height, width = options.input_size or (config.height, config.width)
    if height < 32 or width < 32:
        raise UsageError(f"input size {height}x{width} is too small")
    params = NmsParams(
        score_threshold=config.score_threshold if options.score_threshold is None else options.score_threshold,
        iou_threshold=config.iou_threshold if options.iou_threshold is None else options.iou_threshold,
        max_detections=config.max_total_detections if options.max_detections is None else options.max_detections,
        max_detections_per_class=config.max_detections_per_class,
    )
    if not 0.0 <= params.iou_threshold <= 1.0 or not 0.0 <= params.score_threshold < 1.0:
        raise UsageError(f"thresholds out of range: score {params.score_threshold}, iou {params.iou_threshold}")
    if params.max_detections < 1:
        raise UsageError(f"--max-detections must be >= 1, got {params.max_detections}")
    params.max_detections_per_class = min(params.max_detections_per_class, params.max_detections) or params.max_detections
    output = Path(options.output)
    check_output(output, options.force)
    check_output(card_path_for(output), options.force)
    return Prepared(options, config, labels, height, width, params)


def convert_core(prepared: Prepared) -> Core:
    """TensorFlow -> ONNX for the kept part of the network, then decode boxes and pick scores."""
    opts, config = prepared.options, prepared.config
    batch = None if opts.dynamic_batch else opts.batch
    tf_core = convert_tf_core(
        Path(opts.saved_model), batch, prepared.height, prepared.width, opts.opset, opts.input_format == "nchw"
    )
    facts: dict[str, Any] = {
        "batch": batch,
        "anchors": tf_core.facts.anchors,
        "norm_scale": tf_core.facts.norm_scale,
        "norm_offset": tf_core.facts.norm_offset,
        "box_coder_scales": config.box_coder_scales,
        "num_classes": config.num_classes,
        "num_score_columns": tf_core.facts.num_score_columns,
        "versions": tf_core.versions,
    }
    ctx = PassContext(family=f"{FAMILY} ({SSD_FEATURE_EXTRACTORS[config.feature_extractor]})", facts=facts,
                      debug_dir=Path(opts.debug_dir) if opts.debug_dir else None, stage="1-core")
    model = run_passes(tf_core.model, CORE_PASSES, ctx)
    return Core(model=model, facts=ctx.facts)


def attach_head(core: Core, prepared: Prepared, nms: str, output_layout: str) -> tuple[onnx.ModelProto, DeployCard]:
    """Append the NMS head to a converted core; returns the final model and its deploy card."""
    opts = prepared.options
    facts = dict(core.facts)
    # --output-layout chooses between the EfficientNMS-shaped contracts; the other heads have one.
    layout = output_layout if output_layout in KIND_LAYOUTS[nms] else KIND_LAYOUTS[nms][0]
    facts.update(nms=nms, nms_params=prepared.nms_params, output_layout=layout,
                 input_hw=(prepared.height, prepared.width))
    ctx = PassContext(family=FAMILY, facts=facts, debug_dir=Path(opts.debug_dir) if opts.debug_dir else None,
                      stage="2-head")
    model = run_passes(copy.deepcopy(core.model), HEAD_PASSES, ctx)
    batch = -1 if facts["batch"] is None else facts["batch"]
    h, w = prepared.height, prepared.width
    nhwc = opts.input_format == "nhwc"
    resize_letterbox = prepared.config.resizer == "keep_aspect_ratio_resizer"
    card = DeployCard(
        input=InputSpec(
            name=model.graph.input[0].name,
            shape=[batch, h, w, 3] if nhwc else [batch, 3, h, w],
            layout="NHWC" if nhwc else "NCHW",
        ),
        # The network normalises inside the graph: it takes RGB pixels 0-255 as float.
        preprocess=Preprocess(
            color_order="RGB",
            scale=1.0,
            offsets=[0.0, 0.0, 0.0],
            # keep_aspect_ratio_resizer pads the bottom/right with zero pixels.
            resize="letterbox" if resize_letterbox else "stretch",
            pad_corner="top_left",
        ),
        output=facts["output_spec"],
        labels=list(prepared.labels),
        background=facts["background"],
        nms=prepared.nms_params,
        provenance=_provenance(prepared, facts["versions"]),
    )
    card.validate("generated deploy card")
    return model, card


def create_onnx(options: CreateOnnxOptions) -> CreateOnnxResult:
    """Convert a TFOD SSD saved model to ONNX with an NMS head and write its deploy card."""
    start = time.perf_counter()
    prepared = prepare(options)
    if prepared.nms_params.score_threshold < LOW_SCORE_THRESHOLD and options.nms in ("efficient", "batched"):
        log.warning(
            "score threshold %g is very low: TensorRT NMS plugins get slow below ~0.01; consider --score-threshold 0.05",
            prepared.nms_params.score_threshold,
        )
    core = convert_core(prepared)
    model, card = attach_head(core, prepared, options.nms, options.output_layout)
    output = Path(options.output)
    card_path = card_path_for(output)
    with atomic_path(output) as tmp_onnx, atomic_path(card_path) as tmp_card:
        onnx.save(model, str(tmp_onnx))
        card.onnx_sha256 = sha256_file(tmp_onnx)
        tmp_card.write_text(card.to_json(), encoding="utf-8")
    seconds = time.perf_counter() - start
    log.info("wrote %s (%.1f MB) and %s in %.1f s", output, output.stat().st_size / 1e6, card_path.name, seconds)
    return CreateOnnxResult(output, card_path, card, seconds)


def _provenance(prepared: Prepared, versions: dict[str, str]) -> Provenance:
    opts = prepared.options
    saved_model = Path(opts.saved_model)
    files = {str(prepared.config.path): sha256_file(prepared.config.path)}
    pb = saved_model / "saved_model.pb"
    if pb.is_file():
        files[str(pb)] = sha256_file(pb)
    if opts.label_map:
        files[str(opts.label_map)] = sha256_file(Path(opts.label_map))
    return Provenance(
        framework="tensorflow",
        model_family="tfod_ssd",
        architecture=prepared.config.feature_extractor,
        source_files=files,
        versions={**versions, "onnx": onnx.__version__, "numpy": np.__version__},
        created_by=f"trtdeploy {__version__} create-onnx",
    )
