"""The AutoML EfficientDet fixture converted once per batch mode per session, the TensorFlow
reference on the photos computed once: converting takes ~40 s, attaching a head under a second."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.data import fixture_dir
from tests.shared_cache import converted_core, store_dir

AUTOML = "automl_efficientdet_d0"
NUM_IMAGES = 8
# Compared at this score and above (the export's own threshold, 0.001, makes every head keep 100
# mostly meaningless detections and the CPU references slow); the card carries it to the heads.
SCORE_THRESHOLD = 0.05


def saved_model() -> Path:
    return fixture_dir(AUTOML) / "saved_model"


class AutomlCache:
    def __init__(self, tmp: Path, store: Path) -> None:
        self.tmp = tmp
        self.store = store
        self.cores: dict[bool, tuple[object, object]] = {}
        self._runner = None
        self._pixels: np.ndarray | None = None
        self._reference: list | None = None
        self._tutorial: Path | None = None
        self._hard_nms = None
        self._hard_graph = None

    def core(self, dynamic: bool):
        from tfod_trt.create_onnx import CreateOnnxOptions, prepare

        if dynamic not in self.cores:
            options = CreateOnnxOptions(saved_model=saved_model(), output=self.tmp / f"automl_{dynamic}.onnx",
                                        dynamic_batch=dynamic)
            prepared = prepare(options)
            prepared = replace(prepared, nms_params=replace(prepared.nms_params, score_threshold=SCORE_THRESHOLD))
            # converted once per run, shared with the run's other processes (tests/shared_cache.py)
            self.cores[dynamic] = (prepared, converted_core(self.store, saved_model(), dynamic))
        return self.cores[dynamic]

    def pixels(self) -> np.ndarray:
        """The photos letterboxed to 512x512 (as the card says), rounded to whole pixel values so
        the uint8 serving signature and the float graphs see the same image."""
        from trtdeploy.sample_images import resize_for_model, sample_photos

        if self._pixels is None:
            self._pixels = np.rint(np.stack(
                [resize_for_model(img, 512, 512, "letterbox") for _, img in sample_photos(NUM_IMAGES)]
            )).astype(np.float32)
        return self._pixels

    def runner(self):
        from tfod_trt.runner import AutomlRunner

        if self._runner is None:
            prepared, _ = self.core(False)
            self._runner = AutomlRunner(saved_model(), prepared.nms_params)
        return self._runner

    def reference(self) -> list:
        if self._reference is None:
            self._reference = self.runner().detections(self.pixels())
        return self._reference


    def hard_graph(self):
        """The serving graph with hard NMS and the tutorial's detections output (frozen once)."""
        from tfod_trt.automl.tutorial import hard_nms_graph

        if self._hard_graph is None:
            self._hard_graph = hard_nms_graph(saved_model())
        return self._hard_graph

    def tutorial(self) -> Path:
        """The whole fixture converted by tf2onnx as the tf2onnx efficientdet tutorial does (once)."""
        from tfod_trt.automl.tutorial import tutorial_onnx

        if self._tutorial is None:
            self._tutorial = tutorial_onnx(saved_model(), self.tmp / "tutorial.onnx", fast=True, graph=self.hard_graph())
        return self._tutorial

    def hard_nms(self):
        """TensorFlow running the graph the tutorial ONNX was converted from."""
        from tfod_trt.automl.tutorial import HardNmsRunner

        if self._hard_nms is None:
            self._hard_nms = HardNmsRunner(saved_model(), self.hard_graph())
        return self._hard_nms


def deepstream_dry_run(model: Path, out_dir: Path, num_images: int):
    """gen-ds-config for ``model`` (its card next to it), then the nvinfer dry run on photos."""
    from trtdeploy.deepstream.check import check_ds_config
    from trtdeploy.deepstream.dry_run import DryRun, NvInferSetup, load_images
    from trtdeploy.deepstream.generate import DsOptions, gen_ds_config
    from trtdeploy.deploy_card import DeployCard, card_path_for

    card = DeployCard.load(card_path_for(model))
    ini = gen_ds_config(card, model, out_dir, DsOptions(name="automl")).paths[0]
    assert [p.message for p in check_ds_config(ini) if p.level == "error"] == []
    setup = NvInferSetup.from_config(ini)
    return setup, DryRun(setup).run(load_images(None, num_images))


@pytest.fixture(scope="session")
def automl_cache(tmp_path_factory: pytest.TempPathFactory) -> AutomlCache:
    return AutomlCache(tmp_path_factory.mktemp("automl"), store_dir(tmp_path_factory))
