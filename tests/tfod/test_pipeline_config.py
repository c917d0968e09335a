"""pipeline.config and label map reading, checked against what the fixture files say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DEMO_MODEL
from tests.data import fixture_dir
from tfod_trt.pipeline_config import read_label_map, read_pipeline_config
from trtdeploy.errors import InputError, UnsupportedModelError


def test_demo_model_config():
    config = read_pipeline_config(DEMO_MODEL / "pipeline.config")
    assert config.feature_extractor == "ssd_mobilenet_v2_keras"
    assert (config.num_classes, config.height, config.width) == (5, 300, 300)
    assert config.box_coder_scales == (10.0, 10.0, 5.0, 5.0)
    assert config.score_converter == "SIGMOID"
    assert config.add_background_class is True
    assert (config.iou_threshold, config.max_total_detections) == (0.6, 100)


def test_efficientdet_config_letterbox_no_background():
    path = fixture_dir("ssd_efficientdet_d0_512x512_coco17_tpu-8") / "pipeline.config"
    config = read_pipeline_config(path)
    assert config.resizer == "keep_aspect_ratio_resizer"
    assert (config.height, config.width, config.num_classes) == (512, 512, 90)
    assert config.add_background_class is False


def test_label_map_order_and_gaps(tmp_path: Path):
    path = tmp_path / "labels.pbtxt"
    path.write_text("item { id: 3 name: 'car' }\nitem {\n id: 1\n name: 'person'\n display_name: 'Person'\n}\n")
    assert read_label_map(path, 3) == ["Person", "class_2", "car"]
    assert read_label_map(DEMO_MODEL / "label_map.pbtxt", 5) == ["person", "bicycle", "car", "traffic light", "dog"]


def test_label_map_id_beyond_num_classes(tmp_path: Path):
    path = tmp_path / "labels.pbtxt"
    path.write_text("item { id: 1 name: 'a' }\nitem { id: 7 name: 'b' }\n")
    with pytest.raises(InputError, match=r"label id 7 .* outside 1\.\.5"):
        read_label_map(path, 5)


def test_faster_rcnn_is_refused(tmp_path: Path):
    path = tmp_path / "pipeline.config"
    path.write_text("model { faster_rcnn { num_classes: 3 } }\n")
    with pytest.raises(UnsupportedModelError, match="Faster R-CNN"):
        read_pipeline_config(path)


def test_unknown_feature_extractor_is_refused(tmp_path: Path):
    path = tmp_path / "pipeline.config"
    path.write_text("model { ssd { num_classes: 3 feature_extractor { type: 'ssd_inception_v2' } } }\n")
    with pytest.raises(UnsupportedModelError, match="ssd_inception_v2"):
        read_pipeline_config(path)


def test_malformed_config_names_line_and_column(tmp_path: Path):
    path = tmp_path / "pipeline.config"
    path.write_text("model {\n  ssd {\n    num_classes 3\n  }\n}\n")
    with pytest.raises(InputError, match=r"3:\d+"):
        read_pipeline_config(path)
