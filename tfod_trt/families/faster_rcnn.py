"""TF2 Object Detection API Faster R-CNN as a ``trtdeploy.families`` family.

What is two-stage lives in ``tfod_trt.two_stage`` (the TensorFlow cut, loaded with TensorFlow
only when converting, and the passes that rebuild the glue between the two networks) and in
``tfod_trt.pipeline_config.read_faster_rcnn_config``; the deploy card is the SSD family's (the
same input, in-graph normalisation, resizer and output contracts).

A Mask R-CNN (a faster_rcnn config with ``predict_instance_masks``) is the same family: its
core also converts the mask network, and its head ends in the mask passes, whose output
contracts are ``tfod-masks`` (``--output-layout tfod``) and ``ds/mrcnn`` (``deepstream``),
made with the ``efficient`` or ``onnx`` head (``none`` has no final boxes to crop the masks at).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfod_trt.families.ssd import SsdFamily
from tfod_trt.pipeline_config import FASTER_RCNN_FEATURE_EXTRACTORS, FasterRcnnConfig, read_faster_rcnn_config
from trtdeploy.errors import GraphError, UsageError
from trtdeploy.families import Core, ModelSource, register

if TYPE_CHECKING:
    from tfod_trt.create_onnx import Prepared

MIN_OPSET = 16  # GridSample (the standard-op crop); the efficient head's graph shares the core


class FasterRcnnFamily(SsdFamily):
    key = "tfod_faster_rcnn"
    title = "TFOD Faster R-CNN"
    framework = "tensorflow"
    heads: tuple[str, ...] = ("efficient", "onnx", "none")
    layouts: tuple[str, ...] = ("tfod", "deepstream", "raw")

    def read_config(self, source: ModelSource) -> FasterRcnnConfig:  # type: ignore[override]
        return read_faster_rcnn_config(Path(source.config))  # type: ignore[arg-type]

    def convert_core(self, request: Prepared) -> Core:
        """TensorFlow -> ONNX for the two kept networks (tfod_trt.two_stage.tf_cut)."""
        from tfod_trt.two_stage.tf_cut import convert_two_stage

        opts, config = request.options, request.config
        assert isinstance(config, FasterRcnnConfig)
        if opts.opset < MIN_OPSET:
            raise UsageError(f"{self.title} needs --opset {MIN_OPSET} or later (the crop uses GridSample), "
                             f"got {opts.opset}")
        if opts.input_format == "nchw":  # the crop and the letterbox window read the NHWC input
            raise UsageError(f"{self.title}: --input-format nchw is not supported yet; use nhwc")
        masks = config.predict_instance_masks
        if masks:
            _check_mask_request(request)
        batch = None if opts.dynamic_batch else opts.batch
        core = convert_two_stage(Path(opts.saved_model), batch, request.height, request.width, opts.opset,
                                 False, config.first_stage_max_proposals,
                                 config.initial_crop_size, masks)
        f = core.facts
        if masks:
            _check_mask_shape(config, f.mask_shape)
        facts: dict[str, Any] = {
            "batch": batch,
            "anchors": f.anchors,
            "first_scales": f.first_scales,
            "second_scales": f.second_scales,
            "norm_scale": f.norm_scale,
            "norm_offset": f.norm_offset,
            "num_proposals": f.num_proposals,
            "crop_size": f.crop_size,
            "first_stage_iou": config.first_stage_nms_iou_threshold,
            "first_stage_score": config.first_stage_nms_score_threshold,
            "matmul_crop": config.use_matmul_crop_and_resize,
            "letterbox": config.resizer == "keep_aspect_ratio_resizer",
            "num_classes": config.num_classes,
            "num_score_columns": f.score_columns,
            "box_columns": f.box_columns,
            "versions": core.versions,
            "masks": masks,
            "mask_shape": f.mask_shape,
        }
        title = f"{MASK_TITLE if masks else self.title} ({FASTER_RCNN_FEATURE_EXTRACTORS[config.feature_extractor]})"
        return Core(model=core.model, facts=facts, title=title)

    def core_passes(self, request: Prepared) -> Sequence[tuple[str, Any]]:
        from tfod_trt.two_stage.passes import CORE_PASSES

        return CORE_PASSES

    def head_passes(self, request: Prepared) -> Sequence[tuple[str, Any]]:
        from tfod_trt.two_stage.passes import HEAD_PASSES, MASK_PASSES

        return MASK_PASSES if request.config.predict_instance_masks else HEAD_PASSES


MASK_TITLE = "TFOD Mask R-CNN"
MASK_HEADS = ("efficient", "onnx")  # tfod_trt.two_stage.passes.MASK_HEADS (kept TensorFlow- and onnx-free here)


def _check_mask_request(request: Prepared) -> None:
    """Refuse what a Mask R-CNN cannot be converted to before the conversion starts."""
    if request.nms not in MASK_HEADS:
        raise UsageError(f"{MASK_TITLE}: --nms {request.nms} has no final detection boxes to crop the masks at; "
                         f"use --nms {' or '.join(MASK_HEADS)}")
    if request.options.ds_parser:
        raise UsageError(f"{MASK_TITLE}: the DeepStream outputs of a Mask R-CNN are the ds/mrcnn tensors "
                         "NvDsInferParseCustomMrcnnTLTV2 reads; drop --ds-parser (use --output-layout deepstream)")


def _check_mask_shape(config: FasterRcnnConfig, found: tuple[int, int, int] | None) -> None:
    """The mask head's output [.., masks, mask_h, mask_w] as pipeline.config describes it."""
    expected = (config.mask_classes, config.mask_height, config.mask_width)
    if found != expected:
        raise GraphError(
            f"{MASK_TITLE}: the mask head predicts masks of shape {found} (masks per detection, height, width); "
            f"{config.path} says {expected} (num_classes or 1 if masks_are_class_agnostic, mask_height, mask_width)"
        )


FASTER_RCNN = register(FasterRcnnFamily())
