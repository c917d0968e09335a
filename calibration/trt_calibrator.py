"""TensorRT 10 INT8 calibrators (EntropyCalibrator2, MinMax), made by a factory.

The calibrator class derives from the TensorRT module passed in, so importing this module needs no
TensorRT. Batches come from an ImageBatcher (or any BatchSource) and are copied to the GPU with
the CUDA runtime (``cuda-python`` if installed, else ``libcudart`` through ctypes).

The cache is reused only when its sidecar matches (calibration.sidecar); otherwise TensorRT
calibrates and the new cache and sidecar are written atomically. With ``require_cache`` a
mismatch is an error that says why.

The TensorRT-facing part cannot run on a machine without TensorRT 10 and a GPU; its tests are
marked ``trt``. Everything else (cache decision, batch feeding) is plain Python, tested with a
fake TensorRT module and a host-memory "device".
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from calibration._io import file_digest
from calibration.batcher import BatchSource
from calibration.cache import TrtVersion
from calibration.errors import CalibrationError
from calibration.ort_calibrate import HEADER_ALGORITHM, as_batches
from calibration.preprocess import PreprocessSpec
from calibration.ranges import CalibrationMethod
from calibration.sidecar import CacheKey, reuse_problem, write_sidecar

log = logging.getLogger("trtdeploy.calibration")


class DeviceMemory(Protocol):
    """The three CUDA calls a calibrator needs."""

    def alloc(self, nbytes: int) -> int: ...
    def upload(self, pointer: int, array: np.ndarray) -> None: ...
    def free(self, pointer: int) -> None: ...


class CudaRuntime:
    """cudaMalloc / cudaMemcpy / cudaFree through libcudart (ctypes): no extra Python package."""

    _HOST_TO_DEVICE = 1

    def __init__(self) -> None:
        lib = None
        for name in ("libcudart.so", "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0", "cudart64_12.dll"):
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:
            raise CalibrationError("the TensorRT calibrator needs the CUDA runtime (libcudart) on the library path")
        self._lib = lib

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise CalibrationError(f"CUDA {what} failed with error {status}")

    def alloc(self, nbytes: int) -> int:
        pointer = ctypes.c_void_p()
        self._check(self._lib.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(nbytes)), "cudaMalloc")
        return int(pointer.value or 0)

    def upload(self, pointer: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        self._check(
            self._lib.cudaMemcpy(
                ctypes.c_void_p(pointer),
                array.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_size_t(array.nbytes),
                self._HOST_TO_DEVICE,
            ),
            "cudaMemcpy",
        )

    def free(self, pointer: int) -> None:
        self._lib.cudaFree(ctypes.c_void_p(pointer))


class BatchFeeder:
    """The TensorRT-independent half of a calibrator: batches -> one device buffer."""

    def __init__(self, batches: BatchSource, preprocess: PreprocessSpec, device: DeviceMemory):
        self.batch_size = batches.batch_size
        self._batches = batches
        self._iter: Iterator[np.ndarray] | None = None
        self._device = device
        self._shape = preprocess.shape(batches.batch_size)
        self._dtype = np.dtype(preprocess.dtype)
        self._pointer = 0
        self.count = 0

    def next_pointer(self) -> int | None:
        """Upload the next full batch and return its device address; None when done."""
        if self._iter is None:
            self._iter = iter(self._batches)
        batch = next(self._iter, None)
        if batch is None or batch.shape[0] != self.batch_size:
            self.close()
            return None
        if not self._pointer:
            self._pointer = self._device.alloc(int(np.prod(self._shape)) * self._dtype.itemsize)
        self._device.upload(self._pointer, batch.astype(self._dtype, copy=False))
        self.count += 1
        return self._pointer

    def close(self) -> None:
        if self._pointer:
            self._device.free(self._pointer)
            self._pointer = 0


def resolve_preprocess(preprocess: PreprocessSpec | dict[str, Any] | None, card: Any = None) -> PreprocessSpec:
    """A PreprocessSpec from itself, a deploy card dict, or a deploy card object (``to_dict()``)."""
    source = preprocess if preprocess is not None else card
    if isinstance(source, PreprocessSpec):
        return source
    if source is not None and hasattr(source, "to_dict"):
        source = source.to_dict()
    if isinstance(source, dict):
        return PreprocessSpec.from_card_dict(source)
    raise CalibrationError(
        "calibration needs the model's preprocessing: pass a deploy card (create-onnx writes "
        "<model>.deploy.json) or a PreprocessSpec"
    )


def cache_key(onnx_path: Path, preprocess: PreprocessSpec, method: CalibrationMethod, trt_version: str) -> CacheKey:
    return CacheKey(
        onnx_sha256=file_digest(onnx_path),
        preprocess=preprocess.to_dict(),
        algorithm=HEADER_ALGORITHM[method],
        trt_version=str(TrtVersion.parse(trt_version)),
    )


def make_trt_calibrator(
    trt: ModuleType,
    images: BatchSource | Sequence[Path] | str | Path | None,
    preprocess: PreprocessSpec | None = None,
    cache: str | Path | None = None,
    method: str | CalibrationMethod = CalibrationMethod.ENTROPY,
    *,
    onnx_path: str | Path,
    batch_size: int = 8,
    num_images: int | None = None,
    require_cache: bool = False,
    seed: int = 0,
    fast_decode: bool = False,
    workers: int | None = None,
    card: Any = None,
    device: DeviceMemory | None = None,
) -> Any:
    """An ``IInt8EntropyCalibrator2`` (entropy) or ``IInt8MinMaxCalibrator`` (minmax) instance
    for ``config.int8_calibrator``; TensorRT 10 only (11 removed calibrators: use quantize_onnx).

    ``images``: folder / list file / COCO JSON, a list of paths, or a BatchSource (sampled with
    ``num_images`` and ``seed``). ``preprocess`` or ``card`` (a deploy card object with
    ``to_dict()`` or its dict) says how to make tensors. The cache at ``cache`` is reused only if
    its sidecar matches this ONNX, preprocessing, algorithm and ``trt.__version__``;
    ``require_cache`` turns a mismatch into an error. ``calibrator.cache_reused`` and
    ``calibrator.cache_problem`` say what happened.
    """
    spec = resolve_preprocess(preprocess, card)
    method = CalibrationMethod.parse(method)
    if method is CalibrationMethod.PERCENTILE:
        raise CalibrationError(
            "TensorRT's calibrators do entropy or minmax; for percentile calibrate on "
            "the CPU (calibrate_onnx) and give TensorRT the resulting cache"
        )
    base_name = "IInt8EntropyCalibrator2" if method is CalibrationMethod.ENTROPY else "IInt8MinMaxCalibrator"
    base = getattr(trt, base_name, None)
    if base is None:
        raise CalibrationError(
            f"this TensorRT ({getattr(trt, '__version__', '?')}) has no {base_name}: TensorRT 11 removed "
            "calibrators; build from a Q/DQ ONNX made by calibration.quantize_onnx instead"
        )
    cache_path, onnx_path = (Path(cache) if cache is not None else None), Path(onnx_path)
    if not onnx_path.is_file():
        raise CalibrationError(f"ONNX model {onnx_path} not found (needed to key the calibration cache)")
    key = cache_key(onnx_path, spec, method, str(trt.__version__))
    problem = reuse_problem(cache_path, key) if cache_path is not None else "no cache file given"
    if problem and require_cache:
        raise CalibrationError(
            f"calibration cache {cache_path} cannot be reused: {problem}; drop --require-cache to recalibrate"
        )
    if problem:
        if images is None:
            raise CalibrationError(
                f"calibration cache {cache_path} cannot be reused ({problem}) and no "
                "calibration images were given to recalibrate"
            )
        log.info("calibrating with TensorRT (%s)", problem)
        batches = as_batches(
            images,
            spec,
            batch_size,
            num=num_images,
            seed=seed,
            fast_decode=fast_decode,
            workers=workers,
            drop_last=True,
        )
    else:
        log.info("reusing calibration cache %s (sidecar matches)", cache_path)
        batches = None
    feeder_device = device

    class Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)  # type: ignore[misc]  # TensorRT's pybind base needs an explicit call
            self.cache_reused = problem is None
            self.cache_problem = problem
            self.key = key
            self._feeder = None
            if batches is not None:
                self._feeder = BatchFeeder(batches, spec, feeder_device or CudaRuntime())

        def get_batch_size(self) -> int:
            return self._feeder.batch_size if self._feeder else batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self._feeder is None:
                return None
            pointer = self._feeder.next_pointer()
            return None if pointer is None else [pointer] * len(names)

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if self.cache_reused and cache_path is not None else None

        def write_calibration_cache(self, data: Any) -> None:
            from calibration._io import atomic_target

            if cache_path is None:
                return
            with atomic_target(cache_path) as tmp:
                tmp.write_bytes(bytes(data))
            count = self._feeder.count * self._feeder.batch_size if self._feeder else 0
            write_sidecar(cache_path, key, num_images=count)
            log.info("wrote calibration cache %s and its sidecar", cache_path)

    return Calibrator()
