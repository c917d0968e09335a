"""The runner protocol's shared parts: preprocessing from the card, picking a runner, the
saved model's card, and benchmark on the bundled model."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.data import BUNDLED_MODEL, fixture_dir
from tests.inference.tiny_model import write_tiny_detector
from trtdeploy.cli.main import app
from trtdeploy.deploy_card import DeployCard
from trtdeploy.errors import InputError
from trtdeploy.runners import open_runner, to_input_tensor


def _card(tmp_path, **pre) -> DeployCard:
    path = write_tiny_detector(tmp_path / "m.onnx", [[0, 0, 1, 1]], [0.5], [0], ["x"], size=(4, 6))
    card = open_runner(path).card
    return replace(card, preprocess=replace(card.preprocess, **pre))


def test_input_tensor_follows_the_card(tmp_path):
    card = _card(tmp_path, color_order="BGR", scale=0.5, offsets=[10.0, 20.0, 30.0])
    card = replace(card, input=replace(card.input, layout="NCHW", shape=[1, 3, 4, 6]))
    pixels = np.random.default_rng(1).integers(0, 256, (2, 4, 6, 3)).astype(np.float32)
    # by hand: BGR channel order, 0.5 * (pixel - offset[c]), channels first
    expected = 0.5 * (pixels[..., ::-1] - np.array([10.0, 20.0, 30.0], np.float32))
    np.testing.assert_allclose(to_input_tensor(pixels, card), expected.transpose(0, 3, 1, 2), rtol=0, atol=1e-5)


def test_input_tensor_refuses_non_pixel_values(tmp_path):
    card = _card(tmp_path)
    with pytest.raises(InputError, match="8-bit"):
        to_input_tensor(np.full((1, 4, 6, 3), 0.5, np.float32), card)
    with pytest.raises(InputError, match="the model takes 6x4"):
        to_input_tensor(np.zeros((1, 5, 5, 3), np.float32), card)


def test_open_runner_refuses_what_it_cannot_run(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="not a TensorFlow saved model"):
        open_runner(tmp_path / "folder")
    (tmp_path / "bare.onnx").write_bytes(b"")
    with pytest.raises(InputError, match="no deploy card bare.deploy.json"):
        open_runner(tmp_path / "bare.onnx")
    (tmp_path / "m.tflite").write_bytes(b"")
    with pytest.raises(InputError, match="not a saved model folder, .onnx or .engine"):
        open_runner(tmp_path / "m.tflite")


def test_saved_model_card_from_pipeline_config_and_label_map():
    from tfod_trt.runner import saved_model_card

    config = (BUNDLED_MODEL / "pipeline.config").read_text()
    height = int(re.search(r"fixed_shape_resizer\s*{\s*height:\s*(\d+)", config).group(1))
    names = re.findall(r"display_name:\s*['\"]([^'\"]+)", (BUNDLED_MODEL / "label_map.pbtxt").read_text())
    card = saved_model_card(BUNDLED_MODEL / "saved_model")
    assert card.input.shape == [1, height, height, 3] and card.input.layout == "NHWC"
    assert card.preprocess.resize == "stretch" and card.preprocess.scale == 1.0
    assert card.labels == names
    # TFOD's detection_classes are label-map ids (1-based) as floats
    assert card.output.class_id_base == 1


def test_saved_model_card_of_a_faster_rcnn_export():
    """infer/evaluate on a Faster R-CNN saved model: its pipeline.config is read by its family
    (keep_aspect_ratio_resizer 640 with padding -> a letterboxed 640x640 input)."""
    from tfod_trt.runner import saved_model_card

    base = fixture_dir("faster_rcnn_resnet50_v1_640x640_coco17_tpu-8")
    config = (base / "pipeline.config").read_text()
    side = int(re.search(r"keep_aspect_ratio_resizer\s*{[^}]*max_dimension:\s*(\d+)", config).group(1))
    card = saved_model_card(base / "saved_model")
    assert card.provenance.model_family == "tfod_faster_rcnn"
    assert card.input.shape == [1, side, side, 3] and card.preprocess.resize == "letterbox"
    assert len(card.labels) == int(re.search(r"num_classes:\s*(\d+)", config).group(1))


@pytest.mark.tf
@pytest.mark.slow
def test_benchmark_on_the_bundled_model_prints_the_summary():
    result = CliRunner().invoke(app, ["benchmark", str(BUNDLED_MODEL / "saved_model"), "-n", "3", "-w", "1"])
    assert result.exit_code == 0, result.output
    assert "Performance summary" in result.output and "tensorflow" in result.output
    assert re.search(r"Latency: min = [0-9.]+ ms, max = [0-9.]+ ms, mean = [0-9.]+ ms, median = [0-9.]+ ms", result.output)
