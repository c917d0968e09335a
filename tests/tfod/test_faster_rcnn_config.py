"""Faster R-CNN pipeline.config reading: the fixture's file and hand-edited variants of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data import fixture_dir
from tfod_trt.pipeline_config import read_faster_rcnn_config
from trtdeploy.errors import InputError, UnsupportedModelError

FIXTURE = "faster_rcnn_resnet50_v1_640x640_coco17_tpu-8"


def _fixture_config() -> Path:
    return fixture_dir(FIXTURE) / "pipeline.config"


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = _fixture_config().read_text()
    assert old in text, old
    path = tmp_path / "pipeline.config"
    path.write_text(text.replace(old, new, 1))
    return path


def test_fixture_config_every_hyper_parameter():
    config = read_faster_rcnn_config(_fixture_config())
    assert config.feature_extractor == "faster_rcnn_resnet50_keras"
    assert (config.num_classes, config.height, config.width, config.resizer) == (90, 640, 640, "keep_aspect_ratio_resizer")
    assert config.anchor_scales == (0.25, 0.5, 1.0, 2.0) and config.anchor_aspect_ratios == (0.5, 1.0, 2.0)
    assert config.anchor_stride == (16, 16)
    assert (config.first_stage_nms_score_threshold, config.first_stage_nms_iou_threshold) == (0.0, 0.7)
    assert config.first_stage_max_proposals == 300
    assert (config.initial_crop_size, config.maxpool_kernel_size, config.maxpool_stride) == (14, 2, 2)
    assert (config.score_threshold, config.iou_threshold) == (0.0, 0.6)
    assert (config.max_detections_per_class, config.max_total_detections) == (100, 300)
    assert config.score_converter == "SOFTMAX" and config.logit_scale == 1.0
    assert config.use_matmul_crop_and_resize and config.share_box_across_classes
    assert config.clip_anchors_to_image and config.use_static_shapes
    assert not config.predict_instance_masks


def test_fixed_shape_resizer_1024(tmp_path: Path):
    path = _variant(
        tmp_path,
        "keep_aspect_ratio_resizer {\n        min_dimension: 640\n        max_dimension: 640\n        pad_to_max_dimension: true\n      }",
        "fixed_shape_resizer {\n        height: 1024\n        width: 1024\n      }",
    )
    config = read_faster_rcnn_config(path)
    assert (config.height, config.width, config.resizer) == (1024, 1024, "fixed_shape_resizer")


def test_per_class_boxes_and_native_crop(tmp_path: Path):
    path = _variant(tmp_path, "share_box_across_classes: true", "share_box_across_classes: false")
    path.write_text(path.read_text().replace("use_matmul_crop_and_resize: true", "use_matmul_crop_and_resize: false"))
    config = read_faster_rcnn_config(path)
    assert not config.share_box_across_classes and not config.use_matmul_crop_and_resize


@pytest.mark.parametrize(
    ("old", "new", "error", "message"),
    [
        ('type: "faster_rcnn_resnet50_keras"', 'type: "faster_rcnn_resnet50_fpn_keras"', UnsupportedModelError,
         "'faster_rcnn_resnet50_fpn_keras' is not supported \\(FPN"),
        ('type: "faster_rcnn_resnet50_keras"', 'type: "faster_rcnn_nas"', UnsupportedModelError, "'faster_rcnn_nas'"),
        ("use_dropout: false", "use_dropout: false\n        predict_instance_masks: true\n        mask_height: 0",
         InputError, "mask_height \\(0\\) and mask_width \\(15\\) must be >= 1"),
        ("num_classes: 90", "num_classes: 0", InputError, "num_classes must be >= 1"),
        ("first_stage_nms_iou_threshold: 0.7", "first_stage_nms_iou_threshold: 1.7", InputError,
         "first_stage_nms_iou_threshold must be in"),
    ],
)
def test_refusals_name_what_was_found(tmp_path: Path, old, new, error, message):
    with pytest.raises(error, match=message):
        read_faster_rcnn_config(_variant(tmp_path, old, new))


def test_mask_rcnn_fields(tmp_path: Path):
    """A mask_rcnn config (predict_instance_masks) is read, with the mask size and class-agnostic
    flag the converter checks the graph's mask head against (protos/box_predictor.proto defaults)."""
    path = _variant(tmp_path, "use_dropout: false", "use_dropout: false\n        predict_instance_masks: true\n"
                    "        mask_height: 33\n        mask_width: 31\n        mask_prediction_conv_depth: 0")
    config = read_faster_rcnn_config(path)
    assert config.predict_instance_masks and (config.mask_height, config.mask_width) == (33, 31)
    assert not config.masks_are_class_agnostic and config.mask_classes == 90
    path.write_text(path.read_text().replace("mask_width: 31", "mask_width: 31\n        masks_are_class_agnostic: true"))
    assert read_faster_rcnn_config(path).mask_classes == 1
    assert (read_faster_rcnn_config(_fixture_config()).mask_height, read_faster_rcnn_config(_fixture_config()).mask_width) == (15, 15)


def test_an_ssd_config_is_not_a_faster_rcnn(tmp_path: Path):
    path = tmp_path / "pipeline.config"
    path.write_text("model { ssd { num_classes: 3 } }")
    with pytest.raises(UnsupportedModelError, match="describes a model of the SSD meta-architecture, not a TFOD Faster R-CNN"):
        read_faster_rcnn_config(path)


def test_mask_rcnn_refusals_come_before_any_conversion(tmp_path: Path):
    """--nms none (no final boxes to crop the masks at) and --ds-parser (the DeepStream shape of a
    Mask R-CNN is ds/mrcnn) are refused by convert_core before TensorFlow is asked anything."""
    from tfod_trt.create_onnx import CreateOnnxOptions, convert_core, prepare
    from trtdeploy.errors import UsageError

    config = _variant(tmp_path, "use_dropout: false", "use_dropout: false\n        predict_instance_masks: true")
    options = CreateOnnxOptions(saved_model=fixture_dir(FIXTURE) / "saved_model", output=tmp_path / "m.onnx",
                                pipeline_config=config, nms="none")
    with pytest.raises(UsageError, match="TFOD Mask R-CNN: --nms none has no final detection boxes to crop the masks "
                                         "at; use --nms efficient or onnx"):
        convert_core(prepare(options))
    options.nms, options.ds_parser = "onnx", "sdk-tfssd"
    with pytest.raises(UsageError, match="drop --ds-parser"):
        convert_core(prepare(options))
