"""evaluate on the trained fixture: TensorFlow and both converted ONNX agree with its README.

The expected figure is read from the fixtures README (measured there with the TF saved model and
pycocotools), not produced by the code under test.
"""

from __future__ import annotations

import re

import pytest

from tests.data import fixture_dir, fixtures_root
from tests.shared_cache import converted_core, evaluated, store_dir

NAME = "ssd_mobilenet_v2_035_shapes_256"


def readme_map() -> float:
    text = (fixtures_root() / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {NAME} "))
    return float(re.search(r"mAP@\[\.5:\.95\] ([0-9.]+)", row).group(1))


@pytest.mark.tf
@pytest.mark.slow
def test_saved_model_and_converted_onnx_give_the_readme_map(tmp_path, tmp_path_factory):
    from tfod_trt.create_onnx import CreateOnnxOptions, attach_head, prepare
    from trtdeploy.evaluation import evaluate_model
    from trtdeploy.families import write_model

    base = fixture_dir(NAME)
    val = base / "val"
    expected = readme_map()
    results = {"saved_model": evaluate_model(base / "saved_model", val, val / "instances_val.json")}
    # create-onnx's stages: the converted core (shared by the run's tests), then each head
    prepared = prepare(CreateOnnxOptions(saved_model=base / "saved_model", output=tmp_path / "unused.onnx",
                                         label_map=base / "label_map.pbtxt"))
    core = converted_core(store_dir(tmp_path_factory), base / "saved_model", False)
    for nms in ("efficient", "onnx"):
        onnx_path = tmp_path / f"{nms}.onnx"
        write_model(*attach_head(core, prepared, nms), onnx_path)
        # the efficient one is byte-identical to tests/calibration/test_int8_accuracy.py's FP32: evaluated once a run
        results[nms] = evaluated(store_dir(tmp_path_factory), onnx_path, val, val / "instances_val.json")
    maps = {name: r["AP"] for name, r in results.items()}
    assert all(r["images"] == 200 for r in results.values())
    assert max(maps.values()) - min(maps.values()) <= 0.005, maps
    for name, value in maps.items():
        assert abs(value - expected) <= 0.01, (name, value, expected)
