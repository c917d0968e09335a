"""Expensive results computed once per pytest run and shared by its processes (xdist workers).

Converting a TFOD fixture costs 10-55 s and loading its saved model into TensorFlow 5-36 s;
several test files need the same converted core and TensorFlow's outputs on the same pixels.
With two xdist workers each file runs in one process, so a per-process cache converts the
same model once per worker and file group. Here the results are pickled into one folder of the
run's base temp (the parent of the workers' own), a file lock per key making the second asker
wait for the first instead of computing again. Values are keyed by everything that determines
them (model folder, options, the pixels' bytes), never by test name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# bound here, so a test that monkeypatches tfod_trt.runner.TfodRunner still reaches the real one
from tfod_trt.runner import OUTPUT_NAMES, TfodRunner


def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's shared folder: under xdist the workers' base temps are siblings."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = root / "shared-cache"
    path.mkdir(exist_ok=True)
    return path


def key_of(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def memo(store: Path, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per run for ``key`` (pickled into ``store``)."""
    path = store / f"{key}.pkl"
    with _locked(store / f"{key}.lock"):
        if path.is_file():
            return pickle.loads(path.read_bytes())
        value = compute()
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)
        return value


def converted_core(store: Path, saved_model: Path, dynamic: bool, **options: Any) -> Any:
    """create-onnx's converted core (``tfod_trt.create_onnx.convert_core``) of ``saved_model``
    with ``options`` (CreateOnnxOptions fields that change the core), once per run."""
    from tfod_trt.create_onnx import CreateOnnxOptions, convert_core, prepare

    def compute() -> Any:
        prepared = prepare(CreateOnnxOptions(saved_model=Path(saved_model), output=store / "unused.onnx",
                                             dynamic_batch=dynamic, **options))
        return convert_core(prepared)

    return memo(store, key_of("core", str(Path(saved_model).resolve()), dynamic, sorted(options.items())), compute)


class CachedTfRunner:
    """``tfod_trt.runner.TfodRunner`` whose outputs are memoised per image for the run; the saved
    model is loaded only when an image is asked for the first time in this run."""

    def __init__(self, saved_model: Path, store: Path) -> None:
        self.saved_model = Path(saved_model)
        self._store = store
        self._runner: Any = None

    def _real(self) -> Any:
        if self._runner is None:
            self._runner = TfodRunner(self.saved_model)
        return self._runner

    def __getattr__(self, name: str) -> Any:  # card, static_batch, backend...
        return getattr(self._real(), name)

    def infer(self, batch: np.ndarray, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Every output of the signature is kept per image (one TensorFlow run serves the tests
        that want detections and those that want the raw pre-NMS outputs)."""
        names = tuple(OUTPUT_NAMES if names is None else names)
        per_image = []
        for image in np.asarray(batch, np.float32):
            key = key_of("tf-infer-all", str(self.saved_model.resolve()), image)
            per_image.append(memo(self._store, key, lambda image=image: self._all_outputs(image)))
        return {name: np.concatenate([out[name] for out in per_image]) for name in names}

    def _all_outputs(self, image: np.ndarray) -> dict[str, np.ndarray]:
        runner = self._real()
        return runner.infer(image[None], list(runner._fn.structured_outputs))

    def detections(self, pixels: np.ndarray) -> list:
        return TfodRunner.detections(self, pixels)  # type: ignore[arg-type]  # reads self.infer only


def evaluated(store: Path, model_path: Path, images: Path, annotations: Path) -> dict[str, Any]:
    """``trtdeploy.evaluation.evaluate_model`` of an ONNX (deploy card beside it) on a COCO set,
    once per run for the same ONNX and card bytes: two tests evaluate create-onnx's FP32 output
    of the trained fixture on its 200 val images (tests/inference/test_trained_fixture.py,
    tests/calibration/test_int8_accuracy.py)."""
    from trtdeploy.deploy_card import card_path_for
    from trtdeploy.evaluation import evaluate_model

    model_path = Path(model_path)
    key = key_of("evaluate", hashlib.sha256(model_path.read_bytes()).hexdigest(), card_path_for(model_path).read_bytes(),
                 str(Path(images).resolve()), str(Path(annotations).resolve()))
    return memo(store, key, lambda: evaluate_model(model_path, Path(images), Path(annotations)))
