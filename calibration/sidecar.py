"""When may a calibration cache be reused? Only when its sidecar says it was made for the same
ONNX (sha256), preprocessing, algorithm and TensorRT version -- never because the file exists.

The sidecar is ``<cache>.json`` next to the cache.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from calibration._io import save_text
from calibration.cache import CalibrationCache, TrtVersion, parse_cache
from calibration.errors import CalibrationError

SCHEMA = "calibration.cache_sidecar"
SCHEMA_VERSION = 1
# Revision of the scale computation (calibration/ranges.py). Bump it whenever the same images
# give other scales, so caches computed by the old code are not reused. Revision 2: entropy
# calibration keeps a saturated tensor's clamp bound (before it, a cache from the same ONNX,
# preprocessing, algorithm and TensorRT version held other scales and matched its sidecar).
CALIBRATOR_REVISION = 2


@dataclass(frozen=True)
class CacheKey:
    """What a cache's scales depend on."""

    onnx_sha256: str
    preprocess: dict[str, Any]
    algorithm: str  # cache header algorithm, e.g. EntropyCalibration2
    trt_version: str  # "10.16.0"
    calibrator_revision: int = CALIBRATOR_REVISION  # the scale computation that made the cache

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sidecar_path(cache_path: Path) -> Path:
    cache_path = Path(cache_path)
    return cache_path.with_name(cache_path.name + ".json")


def write_sidecar(cache_path: Path, key: CacheKey, **extra: Any) -> Path:
    path = sidecar_path(cache_path)
    data = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **key.to_dict(), **extra}
    save_text(path, json.dumps(data, indent=2) + "\n")
    return path


def reuse_problem(cache_path: Path, key: CacheKey) -> str | None:
    """None when the cache may be reused for ``key``; otherwise why not (one phrase)."""
    cache_path = Path(cache_path)
    if not cache_path.is_file():
        return f"no cache at {cache_path}"
    side = sidecar_path(cache_path)
    if not side.is_file():
        return f"{cache_path} has no sidecar {side.name}, so what it was made from is unknown"
    try:
        recorded = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"sidecar {side} is unreadable ({exc})"
    if not isinstance(recorded, dict) or recorded.get("schema") != SCHEMA:
        return f"{side} is not a calibration cache sidecar"
    revision = recorded.get("calibrator_revision")
    if revision != key.calibrator_revision:
        made_by = "an older calibrator (no calibrator_revision)" if revision is None else f"calibrator revision {revision!r}"
        return (
            f"the cache was computed by {made_by}, this is revision {key.calibrator_revision} "
            "(its scales differ: recalibrate)"
        )
    for field_name, label in (
        ("onnx_sha256", "the ONNX model changed"),
        ("preprocess", "the preprocessing changed"),
        ("algorithm", "the calibration algorithm changed"),
        ("trt_version", "the TensorRT version changed"),
    ):
        old, new = recorded.get(field_name), getattr(key, field_name)
        if old != new:
            detail = "" if field_name == "preprocess" else f": {str(old)[:16]} -> {str(new)[:16]}"
            if field_name == "preprocess" and isinstance(old, dict):
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                detail = f" ({', '.join(changed)})"
            return label + detail
    try:
        cache = parse_cache(cache_path.read_text(encoding="utf-8"), str(cache_path))
    except (CalibrationError, OSError, UnicodeDecodeError) as exc:
        return f"the cache itself is unreadable: {exc}"
    if cache.algorithm != key.algorithm:
        return f"the cache header says {cache.algorithm}, expected {key.algorithm}"
    if cache.header_number != TrtVersion.parse(key.trt_version).header_number:
        return f"the cache header says TensorRT {cache.trt_version}, expected {key.trt_version}"
    return None


def save_cache_with_sidecar(cache: CalibrationCache, cache_path: Path, key: CacheKey, **extra: Any) -> None:
    cache.save(cache_path)
    write_sidecar(cache_path, key, **extra)
