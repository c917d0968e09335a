"""What FP16 and INT8 cost in COCO mAP on the TRAINED shapes SSD (issue 13's targets).

FP32 ONNX (create-onnx --nms efficient), its FP16 conversion (trtdeploy.engine.fp16) and the
calibration package's Q/DQ ONNX (entropy, 256 synthetic calibration images made like the
fixture's training data by tests/calibration/shapes_generator.py, not the val images) are each
evaluated on the fixture's val/ set with trtdeploy.evaluation (pycocotools). Targets: FP16
within 0.005 mAP@[.5:.95] of FP32, INT8 within 0.02.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.calibration.shapes_generator import write_shapes_jpegs
from tests.data import fixture_dir
from tests.shared_cache import converted_core, evaluated, store_dir

FIXTURE = "ssd_mobilenet_v2_035_shapes_256"
README_MAP = 0.722  # TensorFlow mAP@[.5:.95] on val/ in the shared fixtures' README.md
CALIB_IMAGES = 256  # docs/int8.md measured at 500; fewer keep the test time down (200 also met the bound once)


def _with_card(onnx_path: Path, card: Path) -> Path:
    """The deploy card next to a derived ONNX (same input, outputs and preprocessing)."""
    from trtdeploy.deploy_card import card_path_for

    shutil.copyfile(card, card_path_for(onnx_path))
    return onnx_path


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    import onnx

    from calibration import PreprocessSpec, quantize_onnx
    from tfod_trt.create_onnx import CreateOnnxOptions, attach_head, prepare
    from trtdeploy.deploy_card import DeployCard, card_path_for
    from trtdeploy.engine.fp16 import convert_to_fp16
    from trtdeploy.evaluation import evaluate_model
    from trtdeploy.families import write_model

    fixture = fixture_dir(FIXTURE)
    tmp = tmp_path_factory.mktemp("int8_accuracy")
    fp32 = tmp / "model.onnx"
    # create-onnx's stages, the converted core shared by the run's tests
    prepared = prepare(
        CreateOnnxOptions(saved_model=fixture / "saved_model", label_map=fixture / "label_map.pbtxt", output=fp32)
    )
    core = converted_core(store_dir(tmp_path_factory), fixture / "saved_model", False)
    write_model(*attach_head(core, prepared), fp32)
    card = card_path_for(fp32)
    fp16_model, _ = convert_to_fp16(onnx.load(str(fp32)))
    fp16 = tmp / "model_fp16.onnx"
    onnx.save(fp16_model, str(fp16))
    spec = PreprocessSpec.from_card_dict(DeployCard.load(card).to_dict())
    images = write_shapes_jpegs(tmp / "calib", CALIB_IMAGES)
    int8 = tmp / "model_int8.onnx"
    quantize_onnx(fp32, int8, images, spec, "entropy")
    val = fixture / "val"
    models = {"fp32": fp32, "fp16": _with_card(fp16, card), "int8": _with_card(int8, card)}
    # the FP32 ONNX is byte-identical to tests/inference/test_trained_fixture.py's efficient one: evaluated once a run
    results = {"fp32": evaluated(store_dir(tmp_path_factory), fp32, val, val / "instances_val.json")}
    results.update({name: evaluate_model(path, val, val / "instances_val.json") for name, path in models.items()
                    if name != "fp32"})
    return results


@pytest.mark.slow
@pytest.mark.tf
def test_fp32_onnx_matches_the_fixture_readme(results: dict[str, dict]) -> None:
    # the evaluation itself is right before any delta is trusted
    assert results["fp32"]["images"] == 200
    assert abs(results["fp32"]["AP"] - README_MAP) <= 0.01, results["fp32"]["AP"]


@pytest.mark.slow
@pytest.mark.tf
def test_fp16_within_0005_map_of_fp32(results: dict[str, dict]) -> None:
    assert abs(results["fp16"]["AP"] - results["fp32"]["AP"]) <= 0.005, (results["fp16"]["AP"], results["fp32"]["AP"])


@pytest.mark.slow
@pytest.mark.tf
def test_int8_qdq_within_002_map_of_fp32(results: dict[str, dict]) -> None:
    assert abs(results["int8"]["AP"] - results["fp32"]["AP"]) <= 0.02, (results["int8"]["AP"], results["fp32"]["AP"])


def test_calibration_images_are_not_the_val_images(tmp_path: Path) -> None:
    from PIL import Image

    val = sorted((fixture_dir(FIXTURE) / "val").glob("*.jpg"))
    made = write_shapes_jpegs(tmp_path, 4, size=320)
    assert len(made) == 4 and all(Image.open(p).size == (320, 320) for p in made)
    val_pixels = [np.asarray(Image.open(p), np.int16) for p in val]
    for path in made:
        pixels = np.asarray(Image.open(path), np.int16)
        assert min(np.abs(pixels - v).mean() for v in val_pixels) > 5.0


def test_fp16_conversion_keeps_a_tensorrt_nms_plugin_head_in_float32() -> None:
    """The FP16 ONNX of a model with an EfficientNMS_TRT head (what compare feeds ONNX Runtime);
    the ONNX checker knows no plugin op, so only the rest of the graph can be checked."""
    from onnx import TensorProto, helper, numpy_helper

    from trtdeploy.engine.fp16 import convert_to_fp16

    nms_outputs = [("num_detections", TensorProto.INT32, [1, 1]), ("detection_boxes", TensorProto.FLOAT, [1, 5, 4]),
                   ("detection_scores", TensorProto.FLOAT, [1, 5]), ("detection_classes", TensorProto.INT32, [1, 5])]
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["raw_boxes", "box_scale"], ["boxes"], name="scale"),
            helper.make_node("Sigmoid", ["logits"], ["scores"], name="activation"),
            helper.make_node("EfficientNMS_TRT", ["boxes", "scores"], [o[0] for o in nms_outputs], name="nms",
                             plugin_version="1", score_threshold=0.1, iou_threshold=0.5, max_output_boxes=5,
                             background_class=-1, score_activation=0, class_agnostic=0, box_coding=0),
        ],
        "plugin_head",
        [helper.make_tensor_value_info("raw_boxes", TensorProto.FLOAT, [1, 10, 4]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10, 3])],
        [helper.make_tensor_value_info(*o) for o in nms_outputs],
        [numpy_helper.from_array(np.full((1, 1, 4), 0.5, np.float32), "box_scale")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    half, report = convert_to_fp16(model)
    assert report.kept_nodes == ["nms"] and report.converted_nodes == 2
    produced = {o: n for n in half.graph.node for o in n.output}
    nms = next(n for n in half.graph.node if n.op_type == "EfficientNMS_TRT")
    for name in nms.input:  # the plugin reads float32 again
        cast = produced[name]
        assert cast.op_type == "Cast" and cast.attribute[0].i == TensorProto.FLOAT
    assert {t.name: t.data_type for t in half.graph.initializer} == {"box_scale": TensorProto.FLOAT16}
    assert [i.type.tensor_type.elem_type for i in half.graph.input] == [TensorProto.FLOAT] * 2
    assert model.graph.initializer[0].data_type == TensorProto.FLOAT  # the input model is untouched
