"""The AutoML EfficientDet family without TensorFlow: recognising the export, reading its facts
from saved_model.pb, refusing other saved models with what they look like."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.automl.conftest import saved_model
from tests.data import BUNDLED_MODEL
from tfod_trt.automl import hparams
from tfod_trt.automl.saved_model_proto import NodeDef, read_saved_model
from trtdeploy.errors import InputError, UnsupportedModelError


def automl_anchors(image: int, min_level: int, max_level: int, num_scales: int, ratios: list[float],
                   anchor_scale: float) -> np.ndarray:
    """AutoML's anchor rule written from google/automl efficientdet/anchors.py at 6a54c87
    (_generate_anchor_configs: per level, octave scales outer, aspect ratios inner;
    _generate_boxes: base size anchor_scale * stride * 2^(octave/num_scales), a ratio r gives
    width x sqrt(r) and height / sqrt(r), centres at stride/2 + k * stride, rows = locations in
    row-major order with the configs of one location consecutive), in pixels y1,x1,y2,x2."""
    levels = []
    for level in range(min_level, max_level + 1):
        stride = 2**level
        centres = np.arange(stride / 2, image, stride)
        yv, xv = (a.reshape(-1) for a in np.meshgrid(centres, centres, indexing="ij"))
        per_config = []
        for octave in range(num_scales):
            for ratio in ratios:
                size = anchor_scale * stride * 2 ** (octave / num_scales)
                half_w, half_h = size * np.sqrt(ratio) / 2, size / np.sqrt(ratio) / 2
                per_config.append(np.stack([yv - half_h, xv - half_w, yv + half_h, xv + half_w], axis=1))
        levels.append(np.stack(per_config, axis=1).reshape(-1, 4))
    return np.concatenate(levels)


def test_export_facts_read_from_saved_model_pb():
    """Input size, class count, anchors, normalisation and NMS settings as the fixture's
    README.txt states them (AutoML's efficientdet-d0 config)."""
    config = hparams.read_config(read_saved_model(saved_model()))
    assert (config.height, config.width, config.num_classes) == (512, 512, 90)
    assert config.level_shapes == [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4)]
    assert config.hparams == {"min_level": 3, "max_level": 7, "num_scales": 3, "aspect_ratios": [1.0, 2.0, 0.5],
                              "anchor_scale": 4.0, "anchors_per_location": 9}
    np.testing.assert_allclose(config.mean, [123.675, 116.28, 103.53], rtol=1e-6)
    np.testing.assert_allclose(config.std, [58.395, 57.12, 57.375], rtol=1e-6)
    # README: soft-NMS gaussian sigma 0.5 (the graph holds sigma / 2), iou 0.5, score 0.001, max 100
    assert (config.max_total_detections, config.iou_threshold, config.score_threshold) == (100, 0.5, 0.001)
    assert config.soft_nms_sigma == 0.25
    expected = automl_anchors(512, 3, 7, 3, [1.0, 2.0, 0.5], 4.0)
    assert config.anchors.shape == expected.shape == (49104, 4)
    np.testing.assert_allclose(config.anchors, expected, atol=1e-3)
    np.testing.assert_allclose(config.normalized_anchors, expected / 512, atol=1e-5)


def test_facts_that_cannot_be_found_are_refused_by_name():
    nodes = [NodeDef("a", "Const", [], None)]
    with pytest.raises(UnsupportedModelError, match="cannot determine the anchors"):
        hparams._anchors([("f", nodes)], 49104)
    with pytest.raises(UnsupportedModelError, match="cannot determine the input normalisation"):
        hparams._normalisation([("f", nodes)])
    with pytest.raises(UnsupportedModelError, match="cannot determine the NMS parameters"):
        hparams._nms([("f", nodes)])


def test_prepare_finds_the_family_without_pipeline_config(tmp_path):
    from tfod_trt.create_onnx import CreateOnnxOptions, prepare

    prepared = prepare(CreateOnnxOptions(saved_model=saved_model(), output=tmp_path / "m.onnx", nms="onnx"))
    assert prepared.model_family.key == "automl_efficientdet"
    assert (prepared.height, prepared.width) == (512, 512) and len(prepared.labels) == 90
    assert prepared.labels[0] == "class_1"
    p = prepared.nms_params
    assert (p.score_threshold, p.iou_threshold, p.max_detections) == (0.001, 0.5, 100)
    with pytest.raises(InputError, match="takes 512x512 images"):
        from tfod_trt.automl.family import AUTOML

        AUTOML.convert_core(prepare(CreateOnnxOptions(saved_model=saved_model(), output=tmp_path / "m.onnx",
                                                      input_size=(320, 320))))


def test_tfod_export_without_pipeline_config_is_told_what_it_looks_like(tmp_path):
    """A TFOD saved model without its pipeline.config: refused, naming the missing file and why
    it is not an AutoML export either."""
    from tfod_trt.create_onnx import CreateOnnxOptions, prepare

    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "saved_model").symlink_to(BUNDLED_MODEL / "saved_model", target_is_directory=True)
    with pytest.raises(InputError) as err:
        prepare(CreateOnnxOptions(saved_model=folder / "saved_model", output=tmp_path / "m.onnx"))
    message = str(err.value)
    assert "pipeline.config not found" in message and "--pipeline-config" in message
    assert "looks like a TF Object Detection API export" in message and "no 'predict' signature" in message
    assert "\n" not in message


def test_automl_export_is_no_tfod_ssd(tmp_path):
    """The SSD family refuses an AutoML export (no pipeline.config); the AutoML family claims it."""
    from trtdeploy.families import ModelSource, find_family

    family = find_family(ModelSource(saved_model(), None))
    assert family.key == "automl_efficientdet"
    assert family.recognise(ModelSource(BUNDLED_MODEL / "saved_model", None)).startswith("AutoML EfficientDet: ")


def test_saved_model_pb_reader_matches_the_signatures(tmp_path):
    sm = read_saved_model(saved_model())
    predict = sm.signatures["predict"]
    assert predict.inputs["images"].dtype == "float32" and predict.inputs["images"].shape == [1, 512, 512, 3]
    assert sm.signatures["serving_default"].inputs["images"].shape == [1, -1, -1, 3]
    assert sm.signatures["serving_default"].inputs["images"].dtype == "uint8"
    assert predict.outputs["output_9"].shape == [1, 4, 4, 36]
    (tmp_path / "saved_model.pb").write_bytes(b"\x12\x05garbage")
    with pytest.raises(InputError, match="cannot read"):
        read_saved_model(Path(tmp_path))


def test_automl_export_with_a_pipeline_config_is_refused(tmp_path):
    """A TFOD pipeline.config given with an AutoML export would make the SSD family claim it:
    refused before any conversion, naming the AutoML export and the option to drop."""
    from tfod_trt.create_onnx import CreateOnnxOptions, prepare

    with pytest.raises(UnsupportedModelError, match="is a Google AutoML EfficientDet export.*drop --pipeline-config"):
        prepare(CreateOnnxOptions(saved_model=saved_model(), output=tmp_path / "m.onnx",
                                  pipeline_config=BUNDLED_MODEL / "pipeline.config"))
