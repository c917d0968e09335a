"""pipeline.config and label map reading, checked against what the fixture files say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DEMO_MODEL
from tests.data import fixture_dir
from tfod_trt.pipeline_config import read_label_map, read_model_block, read_pipeline_config
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


@pytest.mark.parametrize(
    ("text", "arch", "refusal"),
    [
        ("model { faster_rcnn { num_classes: 3 } }", "faster_rcnn", "describes a Faster R-CNN model"),
        ("model { center_net { num_classes: 3 } }", "center_net", "describes a CenterNet model"),
        ("model { experimental_model { name: 'x' } }", "experimental_model", "describes an experimental model"),
        ("model { }", None, "describes an unknown model"),
    ],
)
def test_meta_architecture_is_read_before_the_ssd_reader_refuses_it(tmp_path: Path, text, arch, refusal):
    path = tmp_path / "pipeline.config"
    path.write_text(text)
    found, block = read_model_block(path)
    assert found == arch
    assert block.get("num_classes", None) == (3 if arch in ("faster_rcnn", "center_net") else None)
    with pytest.raises(UnsupportedModelError, match=refusal):
        read_pipeline_config(path)


def test_demo_model_block_is_ssd():
    arch, block = read_model_block(DEMO_MODEL / "pipeline.config")
    assert arch == "ssd" and block.path("feature_extractor.type") == "ssd_mobilenet_v2_keras"


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


# Label maps as TFOD reads them: tensorflow/models research/object_detection/utils/label_map_util.py
# (commit ff91b5c4): _validate_label_map raises for id < 0 and for id 0 not named 'background';
# convert_label_map_to_categories keeps the FIRST item of a repeated id and takes display_name
# when present, else name; repeated names and missing names are accepted.


def write_map(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.pbtxt"
    path.write_text(text)
    return path


def test_label_map_repeated_id_keeps_the_first_with_a_warning(tmp_path: Path, caplog):
    path = write_map(tmp_path, "item { id: 1 name: 'cat' }\nitem { id: 1 name: 'dog' }\nitem { id: 2 name: 'cow' }\n")
    with caplog.at_level("WARNING", logger="trtdeploy"):
        assert read_label_map(path, 2) == ["cat", "cow"]
    assert "label id 1 appears again ('dog'); keeping the first, 'cat'" in caplog.text


def test_label_map_repeated_name_is_accepted_with_a_warning(tmp_path: Path, caplog):
    path = write_map(tmp_path, "item { id: 1 name: 'car' }\nitem { id: 2 name: 'car' }\n")
    with caplog.at_level("WARNING", logger="trtdeploy"):
        assert read_label_map(path, 2) == ["car", "car"]
    assert "ids 1 and 2 are both named 'car'" in caplog.text


def test_label_map_item_without_a_name_gets_a_placeholder_and_a_warning(tmp_path: Path, caplog):
    # an empty label would be a blank line in a DeepStream labels file, which nvinfer skips
    path = write_map(tmp_path, "item { id: 1 }\nitem { id: 2 display_name: 'Dog' name: 'dog' }\n")
    with caplog.at_level("WARNING", logger="trtdeploy"):
        assert read_label_map(path, 2) == ["class_1", "Dog"]
    assert "label id 1 has no name" in caplog.text


def test_label_map_background_id_0_is_skipped_other_id_0_and_negative_ids_refused(tmp_path: Path):
    ok = write_map(tmp_path, "item { id: 0 name: 'background' }\nitem { id: 1 name: 'cat' }\n")
    assert read_label_map(ok, 1) == ["cat"]
    with pytest.raises(InputError, match="label id 0 .* reserved for the background"):
        read_label_map(write_map(tmp_path, "item { id: 0 name: 'cat' }\n"), 1)
    with pytest.raises(InputError, match="label id -1 is negative"):
        read_label_map(write_map(tmp_path, "item { id: -1 name: 'cat' }\n"), 1)
