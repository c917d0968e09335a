"""Converted TFOD cores, TensorFlow reference detections and photos, computed once per run and
shared by the run's processes (tests/shared_cache.py): converting a fixture takes 10-55 s and
loading it into TensorFlow up to 36 s, attaching an NMS head a fraction of a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data import BUNDLED_MODEL, fixture_dir
from tests.shared_cache import CachedTfRunner, converted_core, key_of, memo, store_dir

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
    def __init__(self, store: Path) -> None:
        self.store = store
        self.cores: dict[tuple[str, bool], tuple[object, object]] = {}
        self.pixels: dict[str, np.ndarray] = {}
        self.reference: dict[str, list] = {}
        self.runners: dict[str, object] = {}
        self.raw: dict[str, dict[str, np.ndarray]] = {}
        self.reports: dict[str, object] = {}

    def core(self, name: str, dynamic: bool, tmp: Path):
        from tfod_trt.create_onnx import CreateOnnxOptions, prepare

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
            self.cores[key] = (prepared, converted_core(self.store, base / "saved_model", dynamic))
        return self.cores[key]

    def photos(self, name: str, prepared) -> np.ndarray:
        from trtdeploy.sample_images import resize_for_model, sample_photos

        if name not in self.pixels:
            mode = "letterbox" if prepared.config.resizer == "keep_aspect_ratio_resizer" else "stretch"
            self.pixels[name] = np.stack(
                [resize_for_model(img, prepared.height, prepared.width, mode) for _, img in sample_photos(NUM_IMAGES)]
            )
        return self.pixels[name]

    def tf_runner(self, name: str):
        if name not in self.runners:  # loads the saved model (5-36 s) only for images not seen in this run
            self.runners[name] = CachedTfRunner(model_dir(name) / "saved_model", self.store)
        return self.runners[name]

    def tf_detections(self, name: str, pixels: np.ndarray) -> list:
        if name not in self.reference:
            runner = self.tf_runner(name)
            self.reference[name] = [runner.detections(image[None])[0] for image in pixels]
        return self.reference[name]

    def tf_raw(self, name: str, tmp: Path) -> dict[str, np.ndarray]:
        """TensorFlow's pre-NMS boxes and scores on the photos, as the converted graph names them."""
        from trtdeploy.exact import TFOD_RAW, tfod_raw_outputs

        if name not in self.raw:
            prepared, _ = self.core(name, False, tmp)
            runner = self.tf_runner(name)
            outputs = [runner.infer(image[None], list(TFOD_RAW.values())) for image in self.photos(name, prepared)]
            self.raw[name] = tfod_raw_outputs(outputs, len(prepared.labels))
        return self.raw[name]

    def exact(self, name: str, tmp: Path):
        """TF-vs-exact, ONNX-vs-exact and TF-vs-ONNX of the converted network on the photos
        (trtdeploy.exact: float64 evaluation of the static-batch core), computed once."""
        from trtdeploy.exact import exact_errors

        if name not in self.reports:
            prepared, core = self.core(name, False, tmp)
            pixels = self.photos(name, prepared).astype(np.float32)
            raw = self.tf_raw(name, tmp)
            key = key_of("exact", str(model_dir(name).resolve()), pixels)
            self.reports[name] = memo(self.store, key, lambda: exact_errors(core.model, pixels, raw))
        return self.reports[name]

    def score_tolerance(self, name: str, measured: float, tmp: Path) -> float:
        """verify's score tolerance for this fixture: SCORE_FLOOR when the measured difference is
        within it (the derived bound is never stricter), else max(SCORE_FLOOR, K_SCORE x TF's own
        float32 error) measured on the same photos in this run; also requires that TensorFlow's
        error is float noise (not a conversion error) and that ours is no larger than TF's."""
        from trtdeploy.exact import SCORE_FLOOR

        if measured <= SCORE_FLOOR:
            return SCORE_FLOOR
        report = self.exact(name, tmp)
        check_float_noise(name, report)
        return report.score_tolerance()


# Our float32 error may exceed TensorFlow's by this much and still count as "no further from the
# exact value": float32 evaluations of the same network by two libraries (TensorFlow's oneDNN,
# ONNX Runtime's MLAS) differ in kernels; measured on this project's CPU: ours 0.7-0.75x TF's on
# the two MobileNet fixtures. A 1e-3 change of one conv weight moves the scores by 5e-4..3e-2.
FLOAT32_MARGIN = 3e-5


def check_float_noise(name: str, report) -> None:
    """The run-derived bounds on the converted network (see trtdeploy/exact.py)."""
    for out in report.outputs:
        assert out.onnx_exact <= out.tf_exact + FLOAT32_MARGIN, (
            f"{name} {out.name}: ONNX Runtime is {out.onnx_exact:.3g} from the float64 value, TensorFlow only "
            f"{out.tf_exact:.3g} (+ margin {FLOAT32_MARGIN:g}): the float32 run of our graph is off"
        )
        assert not out.conversion_suspect, (
            f"{name} {out.name}: TensorFlow is {out.tf_exact:.3g} from the float64 value of our graph, far more than "
            f"float32 noise ({out.onnx_exact:.3g}): the conversion changed the network"
        )


@pytest.fixture(scope="session")
def tfod_cache(tmp_path_factory: pytest.TempPathFactory) -> Cache:
    return Cache(store_dir(tmp_path_factory))
