"""The seam between build-engine and the `calibration` package for INT8.

The calibration package owns image loading, preprocessing and scale computation; build-engine
only asks it for one of two things:

* TensorRT 10 (weak typing): a calibrator object, from
  ``calibration.make_trt_calibrator(trt, onnx_path=, images=, cache=, num_images=, batch_size=, card=)``.
* TensorRT 11 / RTX (strongly typed): a Q/DQ ONNX, from
  ``calibration.make_qdq_onnx(onnx_path=, images=, cache=, num_images=, batch_size=, card=, output=)``.

When a function is missing (an older calibration package), the request fails with one
clear message instead of building a float engine behind the user's back. Replaying an existing
cache on TensorRT 10 is done here (``cache_calibrator``), and only when its sidecar matches the
model, preprocessing, algorithm and TensorRT version (``calib_cache_problem``) or the user said
``--trust-calib-cache`` (issue 12 item 7).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtdeploy.engine.backend import Backend, implement
from trtdeploy.errors import InputError, UnsupportedModelError, UsageError
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
    """Say which stage failed: a calibration error gets a ``calibration:`` prefix (a bad option
    value stays a usage error, exit 2)."""
    from calibration.errors import CalibrationError

    try:
        yield
    except CalibrationError as exc:
        if isinstance(exc, UsageError):
            raise UsageError(f"calibration: {exc}") from exc
        raise InputError(f"calibration: {exc}") from exc


def calib_cache_problem(cache: Path, onnx_path: Path, card: Any, trt_version: str) -> str | None:
    """Why ``cache`` may not be replayed for this ONNX, deploy card and TensorRT version (None
    when its sidecar matches on model hash, preprocessing, algorithm and TensorRT version)."""
    from calibration import CacheKey, PreprocessSpec, TrtVersion, read_cache, reuse_problem
    from calibration.errors import CalibrationError
    from trtdeploy.files import sha256_file

    if card is None:
        return "the ONNX has no deploy card, so the preprocessing the cache was made with cannot be checked"
    try:
        header = read_cache(cache)
        key = CacheKey(
            onnx_sha256=sha256_file(onnx_path),
            preprocess=PreprocessSpec.from_card_dict(card.to_dict()).to_dict(),
            algorithm=header.algorithm,
            trt_version=str(TrtVersion.parse(trt_version)),
        )
    except CalibrationError as exc:
        return str(exc)
    return reuse_problem(cache, key)


def untrusted_cache_refusal(cache: Path, problem: str) -> InputError:
    return InputError(
        f"--calib-cache {cache} cannot be used: {problem}; recalibrate (add --calib-images DIR, or run "
        "`trtdeploy calib calibrate`), or pass --trust-calib-cache to use it unverified"
    )


def trusted_cache_warning(cache: Path, problem: str) -> None:
    log.warning(
        "--trust-calib-cache: using %s UNVERIFIED (%s); its scales may not fit this model, preprocessing or "
        "TensorRT version, and INT8 accuracy is then unknown",
        cache,
        problem,
    )


@dataclass(frozen=True)
class CalibrationRequest:
    """What build-engine hands the calibration package (its keyword arguments)."""

    onnx_path: Path
    images: Path | None
    cache: Path | None
    num_images: int
    batch_size: int
    card: object | None
    trust_cache: bool = False

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
    """Ask the calibration package for a Q/DQ ONNX (TensorRT 11 / RTX INT8). A cache is reused
    only when its sidecar matches, or unverified with --trust-calib-cache."""
    producer = _calibration_function(QDQ_PRODUCER)
    if producer is None:
        raise UnsupportedModelError(
            f"INT8 on TensorRT 11 / RTX needs a Q/DQ ONNX: {backend_label} has no calibrator API and this "
            f"install's `calibration` package cannot make one yet (no calibration.{QDQ_PRODUCER}); pass an "
            "ONNX that already has QuantizeLinear/DequantizeLinear nodes, or build INT8 with TensorRT 10"
        )
    if request.trust_cache and request.cache is not None and request.images is None:
        from calibration import read_cache, write_qdq_onnx

        trusted_cache_warning(request.cache, "its sidecar was not checked")
        with _calibration_errors():
            write_qdq_onnx(request.onnx_path, output, read_cache(request.cache))
        return output
    with _calibration_errors():
        result = producer(**request.kwargs(), output=output)
    return Path(result) if result is not None else output


def make_calibrator(backend: Backend, request: CalibrationRequest) -> tensorrt.IInt8Calibrator:
    """A TensorRT 10 calibrator: from images (calibration package) or replaying a cache."""
    if request.images is None:
        if request.cache is None:
            raise InputError("INT8 calibration needs --calib-images DIR or an existing --calib-cache FILE")
        return cache_calibrator(backend, request.cache)  # its sidecar was checked in prepare()
    factory = _calibration_function(CALIBRATOR_FACTORY)
    if factory is None:
        raise UnsupportedModelError(
            f"--calib-images needs the calibration package's calibrator (calibration.{CALIBRATOR_FACTORY}), "
            "which this install does not have yet; pass an existing --calib-cache FILE or a Q/DQ ONNX"
        )
    with _calibration_errors():
        calibrator: tensorrt.IInt8Calibrator = factory(backend.module, **request.kwargs())
    return calibrator


# The calibrator interface whose cache header each algorithm name is; a replayed cache is served
# by the calibrator of its own algorithm. NVIDIA/TensorRT release/10.16 include/NvInfer.h: each
# IInt8*Calibrator's getAlgorithm() returns one CalibrationAlgoType (enum at line 9799;
# IInt8EntropyCalibrator 9897 -> kENTROPY_CALIBRATION, IInt8EntropyCalibrator2 9937 ->
# kENTROPY_CALIBRATION_2, IInt8MinMaxCalibrator 9977 -> kMINMAX_CALIBRATION,
# IInt8LegacyCalibrator 10016 -> kLEGACY_CALIBRATION); the header names are calibration.ALGORITHMS.
_CALIBRATOR_CLASS = {
    "EntropyCalibration2": "IInt8EntropyCalibrator2",
    "EntropyCalibration": "IInt8EntropyCalibrator",
    "MinMaxCalibration": "IInt8MinMaxCalibrator",
    "LegacyCalibration": "IInt8LegacyCalibrator",
}


def cache_calibrator(backend: Backend, cache: Path) -> tensorrt.IInt8Calibrator:
    """A calibrator that serves an existing cache and has no batches.

    TensorRT itself refuses a cache whose header names another TensorRT version; build-engine
    checks the sidecar (model hash, preprocessing, algorithm, version) before it gets here.
    """
    cache = Path(cache)
    if not cache.is_file():
        raise InputError(f"--calib-cache {cache} does not exist and no --calib-images were given to create it")
    data = cache.read_bytes()
    if not data.startswith(b"TRT-"):
        raise InputError(f"--calib-cache {cache} is not a TensorRT calibration cache (no 'TRT-' header line)")
    algorithm = data.split(b"\n", 1)[0].decode("ascii", "replace").strip().rsplit("-", 1)[-1]
    interface = getattr(backend.module, _CALIBRATOR_CLASS.get(algorithm, "IInt8EntropyCalibrator2"))
    calibrator = implement(_CacheCalibrator, interface)
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
