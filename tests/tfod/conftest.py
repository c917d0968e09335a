"""Converted TFOD cores, TensorFlow reference detections and photos, computed once per session:
converting a fixture takes 10-50 s, attaching an NMS head a fraction of a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data import BUNDLED_MODEL, fixture_dir

FIXTURE_NAMES = (
    "ssd_mobilenet_v2_035_5class_300",
    "ssd_mobilenet_v2_320x320_coco17_tpu-8",
    "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8",
    "ssd_efficientdet_d0_512x512_coco17_tpu-8",
)
NUM_IMAGES = 8


def model_dir(name: str) -> Path:
    """A TFOD fixture folder; the bundled copy for the model bundled with the project (so the
    tests of that model run without the shared data)."""
    return BUNDLED_MODEL if name == BUNDLED_MODEL.name else fixture_dir(name)


class Cache:
    def __init__(self) -> None:
        self.cores: dict[tuple[str, bool], tuple[object, object]] = {}
        self.pixels: dict[str, np.ndarray] = {}
        self.reference: dict[str, list] = {}

    def core(self, name: str, dynamic: bool, tmp: Path):
        from tfod_trt.create_onnx import CreateOnnxOptions, convert_core, prepare

        key = (name, dynamic)
        if key not in self.cores:
            base = model_dir(name)
            label_map = base / "label_map.pbtxt"
            options = CreateOnnxOptions(
                saved_model=base / "saved_model",
                output=tmp / f"{name}_{dynamic}.onnx",
                label_map=label_map if label_map.is_file() else None,
                dynamic_batch=dynamic,
            )
            prepared = prepare(options)
            self.cores[key] = (prepared, convert_core(prepared))
        return self.cores[key]

    def photos(self, name: str, prepared) -> np.ndarray:
        from trtdeploy.sample_images import resize_for_model, sample_photos

        if name not in self.pixels:
            mode = "letterbox" if prepared.config.resizer == "keep_aspect_ratio_resizer" else "stretch"
            self.pixels[name] = np.stack(
                [resize_for_model(img, prepared.height, prepared.width, mode) for _, img in sample_photos(NUM_IMAGES)]
            )
        return self.pixels[name]

    def tf_detections(self, name: str, pixels: np.ndarray) -> list:
        from tfod_trt.runner import TfodRunner

        if name not in self.reference:
            runner = TfodRunner(model_dir(name) / "saved_model")
            self.reference[name] = [runner.detections(image[None])[0] for image in pixels]
        return self.reference[name]


@pytest.fixture(scope="session")
def tfod_cache() -> Cache:
    return Cache()
