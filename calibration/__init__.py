"""INT8 calibration data and scales. Of ours it depends only on trtdeploy's leaf modules
(trtdeploy.errors: CalibrationError is in the one error family; trtdeploy.files: atomic writes,
file modes); imports no TensorRT, ONNX or ONNX Runtime at import time (they load inside the
functions that need them).

Images -> batches:      list_images, PreprocessSpec, ImageBatcher, BatchSource
CPU calibration:        CalibrationMethod, calibrate_onnx, save_result, quantize_onnx,
                        insert_qdq, write_qdq_onnx
TensorRT 10:            make_trt_calibrator (factory; cache reused only when its sidecar matches)
Cache tools:            CalibrationCache, TrtVersion, parse_cache, read_cache, inspect_cache,
                        retarget_cache, diff_caches, reuse_problem, CacheKey
TAO tensorfile:         read_tensorfile, write_tensorfile, tensorfile_info, TensorfileBatches
Errors:                 CalibrationError
"""

from __future__ import annotations

from calibration.batcher import BatchSource, ImageBatcher
from calibration.cache import (
    NEWEST_TRT10,
    RETARGET_WARNING,
    CalibrationCache,
    TrtVersion,
    diff_caches,
    inspect_cache,
    parse_cache,
    read_cache,
    retarget_cache,
)
from calibration.errors import CalibrationError
from calibration.images import list_images
from calibration.ort_calibrate import CalibrationResult, calibrate_onnx
from calibration.preprocess import PreprocessSpec
from calibration.qdq import QdqReport, insert_qdq, write_qdq_onnx
from calibration.quantize import make_qdq_onnx, quantize_onnx, save_result
from calibration.ranges import CalibrationMethod
from calibration.sidecar import CacheKey, reuse_problem
from calibration.tensorfile import TensorfileBatches, read_tensorfile, tensorfile_info, write_tensorfile
from calibration.trt_calibrator import make_trt_calibrator

__all__ = [
    "NEWEST_TRT10",
    "RETARGET_WARNING",
    "BatchSource",
    "CacheKey",
    "CalibrationCache",
    "CalibrationError",
    "CalibrationMethod",
    "CalibrationResult",
    "ImageBatcher",
    "PreprocessSpec",
    "QdqReport",
    "TensorfileBatches",
    "TrtVersion",
    "calibrate_onnx",
    "diff_caches",
    "insert_qdq",
    "inspect_cache",
    "list_images",
    "make_qdq_onnx",
    "make_trt_calibrator",
    "parse_cache",
    "quantize_onnx",
    "read_cache",
    "read_tensorfile",
    "retarget_cache",
    "reuse_problem",
    "save_result",
    "tensorfile_info",
    "write_qdq_onnx",
    "write_tensorfile",
]
