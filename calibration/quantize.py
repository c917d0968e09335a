"""One call for strongly typed backends: calibrate on the CPU, write a Q/DQ ONNX and the cache."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from calibration.batcher import BatchSource
from calibration.cache import NEWEST_TRT10, CalibrationCache, TrtVersion
from calibration.errors import CalibrationError
from calibration.ort_calibrate import HEADER_ALGORITHM, CalibrationResult, calibrate_onnx
from calibration.preprocess import PreprocessSpec
from calibration.qdq import QUANTIZED_OPS, QdqReport, write_qdq_onnx
from calibration.ranges import CalibrationMethod
from calibration.sidecar import CacheKey, save_cache_with_sidecar

log = logging.getLogger("trtdeploy.calibration")


def save_result(
    result: CalibrationResult,
    onnx_path: str | Path,
    preprocess: PreprocessSpec,
    cache_path: str | Path,
    trt_version: str | TrtVersion = NEWEST_TRT10,
    algorithm: str | None = None,
) -> CalibrationCache:
    """Write ``result`` as a TensorRT cache (header for ``trt_version``) with its sidecar."""
    from calibration._io import file_digest

    version = trt_version if isinstance(trt_version, TrtVersion) else TrtVersion.parse(trt_version)
    cache = result.cache(version, algorithm)
    key = CacheKey(file_digest(Path(onnx_path)), preprocess.to_dict(), cache.algorithm, str(version))
    save_cache_with_sidecar(
        cache,
        Path(cache_path),
        key,
        method=result.method.value,
        num_images=result.num_images,
        source="cpu (ONNX Runtime)",
    )
    log.info("wrote calibration cache %s (%d tensors, %s)", cache_path, len(cache.bits), cache.header)
    return cache


def quantize_onnx(
    onnx_in: str | Path,
    onnx_out: str | Path,
    images: BatchSource | Sequence[Path] | str | Path,
    preprocess: PreprocessSpec,
    method: str | CalibrationMethod = CalibrationMethod.ENTROPY,
    *,
    cache_path: str | Path | None = None,
    trt_version: str | TrtVersion = NEWEST_TRT10,
    batch_size: int = 8,
    num: int | None = None,
    seed: int = 0,
    percentile: float = 99.99,
    fast_decode: bool = False,
    workers: int | None = None,
    exclude: Iterable[str] = (),
    use_modelopt: bool = False,
) -> tuple[CalibrationCache, QdqReport | None]:
    """Calibrate ``onnx_in`` on the CPU and write a Q/DQ ONNX to ``onnx_out``.

    Returns the cache (also written to ``cache_path`` with its sidecar when given) and the Q/DQ
    report (None when ModelOpt did the insertion). Only Conv/MatMul/Gemm inputs are quantized,
    so NMS heads and box decoding stay float. ``use_modelopt`` hands our cache to NVIDIA
    ModelOpt's ONNX quantizer instead of our own insertion (needs ``nvidia-modelopt``).
    """
    method = CalibrationMethod.parse(method)
    result = calibrate_onnx(
        onnx_in,
        images,
        preprocess,
        method,
        batch_size=batch_size,
        num=num,
        seed=seed,
        percentile=percentile,
        fast_decode=fast_decode,
        workers=workers,
    )
    if cache_path is not None:
        cache = save_result(result, onnx_in, preprocess, cache_path, trt_version)
    else:
        cache = result.cache(trt_version, HEADER_ALGORITHM[method])
    if use_modelopt:
        _modelopt_qdq(onnx_in, onnx_out, cache, exclude)
        return cache, None
    return cache, write_qdq_onnx(onnx_in, onnx_out, cache, exclude)


def _modelopt_qdq(onnx_in: str | Path, onnx_out: str | Path, cache: CalibrationCache, exclude: Iterable[str]) -> None:
    """ModelOpt's quantizer fed with our cache (its ``calibration_cache_path``): its Q/DQ placement
    with our ranges, everything it does not quantize kept float32 like our own insertion. Not in
    our CI: ModelOpt needs numpy 2 and torch, so it cannot share a venv with TensorFlow 2.15; run
    with nvidia-modelopt 0.47 in its own venv (docs/int8.md). ModelOpt still runs the graph in ONNX
    Runtime (on random data, then puts the cache's scales in), so the ONNX must have no TensorRT
    plugin node: use the ``--nms none`` conversion."""
    import importlib
    import tempfile

    try:
        mq = importlib.import_module("modelopt.onnx.quantization")
    except ImportError as exc:
        raise CalibrationError("use_modelopt needs NVIDIA ModelOpt: pip install nvidia-modelopt[onnx]") from exc
    with tempfile.TemporaryDirectory() as tmp:
        cache_file = Path(tmp) / "calibration.cache"
        cache.save(cache_file)
        mq.quantize(
            str(onnx_in),
            quantize_mode="int8",
            calibration_cache_path=str(cache_file),
            op_types_to_quantize=list(QUANTIZED_OPS),
            high_precision_dtype="fp32",  # its default converts the rest of the graph to float16
            nodes_to_exclude=list(exclude) or None,
            output_path=str(onnx_out),
        )


def make_qdq_onnx(
    *,
    onnx_path: str | Path,
    output: str | Path,
    images: BatchSource | Sequence[Path] | str | Path | None = None,
    cache: str | Path | None = None,
    num_images: int | None = None,
    batch_size: int = 8,
    card: Any = None,
    preprocess: PreprocessSpec | None = None,
    method: str | CalibrationMethod = CalibrationMethod.ENTROPY,
    trt_version: str | TrtVersion = NEWEST_TRT10,
    exclude: Iterable[str] = (),
) -> Path:
    """build-engine's entry for strongly typed INT8: a Q/DQ ONNX at ``output``.

    Reuses ``cache`` when its sidecar matches this ONNX, preprocessing, algorithm and
    ``trt_version``; otherwise calibrates on ``images`` (and writes ``cache`` if given). Without
    images, a non-matching cache is an error saying why.
    """
    from calibration._io import file_digest
    from calibration.sidecar import reuse_problem
    from calibration.trt_calibrator import resolve_preprocess

    method = CalibrationMethod.parse(method)
    spec = resolve_preprocess(preprocess, card)
    version = trt_version if isinstance(trt_version, TrtVersion) else TrtVersion.parse(trt_version)
    if cache is not None:
        key = CacheKey(file_digest(Path(onnx_path)), spec.to_dict(), HEADER_ALGORITHM[method], str(version))
        problem = reuse_problem(Path(cache), key)
        if problem is None:
            from calibration.cache import read_cache

            log.info("reusing calibration cache %s for the Q/DQ ONNX (sidecar matches)", cache)
            write_qdq_onnx(onnx_path, output, read_cache(Path(cache)), exclude)
            return Path(output)
        if images is None:
            raise CalibrationError(
                f"calibration cache {cache} cannot be reused ({problem}) and no calibration "
                "images were given to recalibrate"
            )
    elif images is None:
        raise CalibrationError("a Q/DQ ONNX needs calibration images or a matching calibration cache")
    quantize_onnx(
        onnx_path,
        output,
        images,
        spec,
        method,
        cache_path=cache,
        trt_version=version,
        batch_size=batch_size,
        num=num_images,
        exclude=exclude,
    )
    return Path(output)
