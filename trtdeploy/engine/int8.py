"""The seam between build-engine and the `calibration` package for INT8.

The calibration package owns image loading, preprocessing and scale computation; build-engine
only asks it for one of two things:

* TensorRT 10 (weak typing): a calibrator object, from
  ``calibration.make_trt_calibrator(trt, onnx_path=, images=, cache=, num_images=, batch_size=, card=)``.
* TensorRT 11 / RTX (strongly typed): a Q/DQ ONNX, from
  ``calibration.make_qdq_onnx(onnx_path=, images=, cache=, num_images=, batch_size=, card=, output=)``.

When a function is missing (an older calibration package), the request fails with one
clear message instead of building a float engine behind the user's back. Replaying an existing cache on TensorRT 10 needs no
calibration package: ``cache_calibrator`` does it here.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtdeploy.engine.backend import Backend, implement
from trtdeploy.errors import InputError, UnsupportedModelError
from trtdeploy.log import get_logger

if TYPE_CHECKING:
    import tensorrt

log = get_logger("engine")

CALIBRATOR_FACTORY = "make_trt_calibrator"
QDQ_PRODUCER = "make_qdq_onnx"


def _calibration_function(name: str) -> Callable[..., Any] | None:
    try:
        package = importlib.import_module("calibration")
    except ImportError:
        return None
    function = getattr(package, name, None)
    return function if callable(function) else None


@contextlib.contextmanager
def _calibration_errors() -> Iterator[None]:
    """The calibration package has its own error type (it depends on nothing of ours): turn
    it into ours so the CLI prints one line instead of an internal error."""
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ == "CalibrationError":
            raise InputError(f"calibration: {exc}") from exc
        raise


@dataclass(frozen=True)
class CalibrationRequest:
    """What build-engine hands the calibration package (its keyword arguments)."""

    onnx_path: Path
    images: Path | None
    cache: Path | None
    num_images: int
    batch_size: int
    card: object | None

    def kwargs(self) -> dict[str, Any]:
        return {
            "onnx_path": self.onnx_path,
            "images": self.images,
            "cache": self.cache,
            "num_images": self.num_images,
            "batch_size": self.batch_size,
            "card": self.card,
        }


def qdq_onnx_from_calibration(request: CalibrationRequest, *, output: Path, backend_label: str) -> Path:
    """Ask the calibration package for a Q/DQ ONNX (TensorRT 11 / RTX INT8)."""
    producer = _calibration_function(QDQ_PRODUCER)
    if producer is None:
        raise UnsupportedModelError(
            f"INT8 on TensorRT 11 / RTX needs a Q/DQ ONNX: {backend_label} has no calibrator API and this "
            f"install's `calibration` package cannot make one yet (no calibration.{QDQ_PRODUCER}); pass an "
            "ONNX that already has QuantizeLinear/DequantizeLinear nodes, or build INT8 with TensorRT 10"
        )
    with _calibration_errors():
        result = producer(**request.kwargs(), output=output)
    return Path(result) if result is not None else output


def make_calibrator(backend: Backend, request: CalibrationRequest) -> tensorrt.IInt8Calibrator:
    """A TensorRT 10 calibrator: from images (calibration package) or replaying a cache."""
    if request.images is None:
        if request.cache is None:
            raise InputError("INT8 calibration needs --calib-images DIR or an existing --calib-cache FILE")
        log.warning(
            "replaying %s without calibration data: TensorRT checks its version header, but not that it "
            "was made for this ONNX and preprocessing",
            request.cache,
        )
        return cache_calibrator(backend, request.cache)
    factory = _calibration_function(CALIBRATOR_FACTORY)
    if factory is None:
        raise UnsupportedModelError(
            f"--calib-images needs the calibration package's calibrator (calibration.{CALIBRATOR_FACTORY}), "
            "which this install does not have yet; pass an existing --calib-cache FILE or a Q/DQ ONNX"
        )
    with _calibration_errors():
        calibrator: tensorrt.IInt8Calibrator = factory(backend.module, **request.kwargs())
    return calibrator


def cache_calibrator(backend: Backend, cache: Path) -> tensorrt.IInt8Calibrator:
    """An entropy calibrator that serves an existing cache and has no batches.

    TensorRT itself refuses a cache whose header names another TensorRT version; the
    calibration package's sidecar check (model hash, preprocessing) applies when it is used.
    """
    cache = Path(cache)
    if not cache.is_file():
        raise InputError(f"--calib-cache {cache} does not exist and no --calib-images were given to create it")
    data = cache.read_bytes()
    if not data.startswith(b"TRT-"):
        raise InputError(f"--calib-cache {cache} is not a TensorRT calibration cache (no 'TRT-' header line)")
    calibrator = implement(_CacheCalibrator, backend.module.IInt8EntropyCalibrator2)
    calibrator.cache = data
    return calibrator


if TYPE_CHECKING:
    _EntropyBase = tensorrt.IInt8EntropyCalibrator2
else:  # the real base comes from the module in use (backend.implement)
    _EntropyBase = object


class _CacheCalibrator(_EntropyBase):
    """Serves an existing cache and has no batches of its own."""

    cache: bytes

    def get_batch_size(self) -> int:
        return 1

    def get_batch(self, names: list[str]) -> list[int]:
        return []  # no batches: TensorRT must use the cache

    def read_calibration_cache(self) -> bytes:
        return self.cache

    def write_calibration_cache(self, cache: object) -> None:
        return None
