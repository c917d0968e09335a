"""TensorRT INT8 calibration caches (also TAO's ``cal.bin``): parse, write, inspect, retarget, diff.

Format (text)::

    TRT-<version number>-<Algorithm>
    <tensor name>: <8 hex digits>
    ...

The hex digits are the big-endian IEEE-754 float32 bits of the tensor's scale, where
``scale = amax / 127`` (amax 1.0 -> ``3c010204``). Tensor names may contain ``:`` and spaces,
so a line is split on its LAST ``": "``. ``7f800000`` (infinity) occurs in caches converted from
QAT models.

Version number: TensorRT <= 8 writes ``major*1000 + minor*100 + patch`` (8.6.1 -> 8601);
TensorRT >= 10 writes ``major*10000 + minor*100 + patch`` (10.3.0 -> 100300). Some TAO tools
write the old formula on TensorRT 10 (``TRT-10300-...``); we decode that as 10.3.0 and flag it
as legacy-encoded, because TensorRT 10 itself would not accept it.

Round trip: ``parse_cache`` then ``CalibrationCache.to_text`` reproduces a cache byte for byte,
except for this documented normalisation: blank lines are dropped, CRLF becomes LF, hex is
written in lower case and the file ends with one newline.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from calibration._io import save_text
from calibration.errors import CalibrationError, CalibrationUsageError
from trtdeploy.errors import UsageError
from trtdeploy.versions import TrtVersion as _TrtVersion

ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
NEWEST_TRT10 = "10.16"  # DeepStream 9.2 ships TensorRT 10.16
INFINITY_BITS = 0x7F800000

# Every TensorRT release line (major, minor) and the newest patch release of it we know of.
# Source: NVIDIA/TensorRT, include/NvInferVersion.h (include/NvInfer.h for 5.1) on each branch
# release/5.1 ... release/11.1 (e.g. release/10.14: 10.14.1, release/10.16: 10.16.0), plus the
# later point releases its CHANGELOG.md (main) names: 7.2.3.4 (21.04), 8.0.3.4 (21.10),
# 8.2.5.1 (22.05), 9.3.0 GA; 10.13.3 has its own branch. A header for any other version is one
# no TensorRT has written, so TensorRT would refuse the cache.
TRT_RELEASES: dict[tuple[int, int], int] = {
    (5, 1): 5, (6, 0): 1, (7, 0): 0, (7, 1): 3, (7, 2): 3,
    (8, 0): 3, (8, 2): 5, (8, 4): 3, (8, 5): 3, (8, 6): 1,
    (9, 0): 1, (9, 1): 0, (9, 2): 0, (9, 3): 0,
    (10, 0): 1, (10, 1): 0, (10, 2): 0, (10, 3): 0, (10, 4): 0, (10, 5): 0, (10, 6): 0,
    (10, 7): 0, (10, 8): 0, (10, 9): 0, (10, 10): 0, (10, 11): 0, (10, 12): 0, (10, 13): 3,
    (10, 14): 1, (10, 15): 1, (10, 16): 0,
    (11, 0): 0, (11, 1): 0,
}  # fmt: skip
NEWEST_TRT = "11.1.0"

_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9_]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{8}$")


class TrtVersion(_TrtVersion):
    """trtdeploy.versions.TrtVersion, whose bad values are calibration usage errors, and which
    knows the TensorRT releases (``TRT_RELEASES``)."""

    @classmethod
    def parse(cls, text: str) -> TrtVersion:
        """'10.16' or '10.16.0' or '8.6.1' -> TrtVersion (any well-formed number; see ``release``)."""
        try:
            return super().parse(text)
        except UsageError as exc:
            raise CalibrationUsageError(str(exc)) from None

    @classmethod
    def release(cls, text: str, allow_unknown: bool = False) -> TrtVersion:
        """A version that is a real TensorRT release (``TRT_RELEASES``); with ``allow_unknown``
        any well-formed version (a release newer than this table)."""
        version = cls.parse(text)
        newest_patch = TRT_RELEASES.get((version.major, version.minor))
        if allow_unknown or (newest_patch is not None and version.patch <= newest_patch):
            return version
        lines = sorted(TRT_RELEASES)
        near = [f"{a}.{b}" for a, b in lines if a == version.major][-4:] or [f"{a}.{b}" for a, b in lines[-4:]]
        raise CalibrationUsageError(
            f"TensorRT version {text!r} ({version}) is not a TensorRT release trtdeploy knows "
            f"(e.g. {', '.join(near)}; newest {NEWEST_TRT}); pass --allow-unknown-trt if it is a newer release"
        )

    @classmethod
    def cache_reader(cls, text: str, allow_unknown: bool = False) -> TrtVersion:
        """A TensorRT release that reads calibration caches: TensorRT 11 has no calibrator API
        (NVIDIA/TensorRT release/11.0 include/NvInfer.h declares no IInt8Calibrator; release/10.16
        does), so a cache header for 11 or later is one no TensorRT reads."""
        version = cls.release(text, allow_unknown)
        if version.major >= 11:
            raise CalibrationUsageError(
                f"TensorRT {version} reads no calibration cache (TensorRT 11 builds INT8 from Q/DQ nodes "
                "only): write a Q/DQ ONNX (calib calibrate --qdq-onnx), or give the TensorRT 10 release "
                "the cache is for (e.g. 10.16)"
            )
        return version


def scale_to_bits(scale: float) -> int:
    return int.from_bytes(struct.pack(">f", scale), "big")


def bits_to_scale(bits: int) -> float:
    return float(struct.unpack(">f", bits.to_bytes(4, "big"))[0])


@dataclass
class CalibrationCache:
    """A parsed cache. ``bits`` keeps each scale's exact float32 bit pattern (so NaN payloads and
    the original hex survive a round trip); ``scales`` gives them as floats."""

    header_number: int
    algorithm: str
    bits: dict[str, int] = field(default_factory=dict)

    @property
    def trt_version(self) -> TrtVersion:
        return TrtVersion.from_header_number(self.header_number)[0]

    @property
    def legacy_encoded(self) -> bool:
        return TrtVersion.from_header_number(self.header_number)[1]

    @property
    def header(self) -> str:
        return f"TRT-{self.header_number}-{self.algorithm}"

    @property
    def scales(self) -> dict[str, float]:
        return {name: bits_to_scale(b) for name, b in self.bits.items()}

    @classmethod
    def from_amax(
        cls,
        amax: dict[str, float],
        trt_version: str | TrtVersion = NEWEST_TRT10,
        algorithm: str = "EntropyCalibration2",
    ) -> CalibrationCache:
        """A cache from per-tensor ranges: scale = amax / 127."""
        version = trt_version if isinstance(trt_version, TrtVersion) else TrtVersion.parse(trt_version)
        if algorithm not in ALGORITHMS:
            raise CalibrationError(f"cache algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        bits = {name: scale_to_bits(float(a) / 127.0) for name, a in amax.items()}
        return cls(version.header_number, algorithm, bits)

    def to_text(self) -> str:
        lines = [self.header] + [f"{name}: {b:08x}" for name, b in self.bits.items()]
        return "\n".join(lines) + "\n"

    def save(self, path: Path) -> None:
        save_text(Path(path), self.to_text())


def parse_cache(text: str, source: str = "calibration cache") -> CalibrationCache:
    """Parse cache text; malformed input raises CalibrationError naming the line."""
    lines = text.replace("\r\n", "\n").split("\n")
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise CalibrationError(f"{source} is empty; expected a first line like TRT-100300-EntropyCalibration2")
    first_no, first = numbered[0]
    match = _HEADER.match(first.strip())
    if not match:
        raise CalibrationError(
            f"{source} line {first_no}: missing header, expected 'TRT-<version>-<Algorithm>' but got {first[:60]!r}"
        )
    cache = CalibrationCache(int(match.group(1)), match.group(2))
    for number, line in numbered[1:]:
        name, sep, hexpart = line.rpartition(": ")
        hexpart = hexpart.strip()
        if not sep or not name:
            raise CalibrationError(
                f"{source} line {number}: expected '<tensor name>: <8 hex digits>', got {line[:80]!r} "
                "(truncated or not a calibration cache?)"
            )
        if not _HEX.match(hexpart):
            what = "truncated" if re.fullmatch(r"[0-9a-fA-F]{0,7}", hexpart) else "bad"
            raise CalibrationError(
                f"{source} line {number}: {what} scale {hexpart!r} for tensor {name!r}; expected 8 hex digits"
            )
        if name in cache.bits:
            raise CalibrationError(f"{source} line {number}: tensor {name!r} appears twice")
        cache.bits[name] = int(hexpart, 16)
    return cache


def read_cache(path: Path) -> CalibrationCache:
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration cache {path} not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CalibrationError(f"{path} is not a text calibration cache (byte {exc.start} is not UTF-8)") from exc
    return parse_cache(text, source=str(path))


@dataclass
class CacheSummary:
    header: str
    trt_version: str
    legacy_encoded: bool
    algorithm: str
    tensor_count: int
    min_scale: float | None
    max_scale: float | None
    infinite: list[str]
    non_finite_or_zero: list[str]

    def lines(self) -> list[str]:
        out = [
            f"header:     {self.header}",
            f"TensorRT:   {self.trt_version}"
            + ("  (legacy <= 8 number encoding on TensorRT >= 10)" if self.legacy_encoded else ""),
            f"algorithm:  {self.algorithm}",
            f"tensors:    {self.tensor_count}",
        ]
        if self.min_scale is not None and self.max_scale is not None:
            out.append(
                f"scales:     {self.min_scale:.6g} .. {self.max_scale:.6g} "
                f"(amax {self.min_scale * 127:.6g} .. {self.max_scale * 127:.6g})"
            )
        out.append(
            f"infinite:   {len(self.infinite)}"
            + (f" ({', '.join(self.infinite[:5])}{' ...' if len(self.infinite) > 5 else ''})" if self.infinite else "")
        )
        if self.non_finite_or_zero:
            out.append(f"zero/NaN:   {len(self.non_finite_or_zero)} ({', '.join(self.non_finite_or_zero[:5])})")
        return out


def inspect_cache(cache: CalibrationCache) -> CacheSummary:
    scales = cache.scales
    finite = [s for s in scales.values() if math.isfinite(s) and s > 0]
    return CacheSummary(
        header=cache.header,
        trt_version=str(cache.trt_version),
        legacy_encoded=cache.legacy_encoded,
        algorithm=cache.algorithm,
        tensor_count=len(scales),
        min_scale=min(finite) if finite else None,
        max_scale=max(finite) if finite else None,
        infinite=[n for n, s in scales.items() if math.isinf(s)],
        non_finite_or_zero=[n for n, s in scales.items() if math.isnan(s) or s == 0],
    )


RETARGET_WARNING = (
    "retargeting only changes the header: it is safe only for the identical ONNX graph and "
    "preprocessing; TensorRT may name or fuse tensors differently across versions"
)


def retarget_cache(cache: CalibrationCache, trt_version: str | TrtVersion) -> CalibrationCache:
    """The same scales under a header for another TensorRT version (see RETARGET_WARNING)."""
    version = trt_version if isinstance(trt_version, TrtVersion) else TrtVersion.parse(trt_version)
    return CalibrationCache(version.header_number, cache.algorithm, dict(cache.bits))


@dataclass
class CacheDiff:
    ratios: dict[str, float]  # scale_b / scale_a for tensors in both
    only_a: list[str]
    only_b: list[str]

    def largest(self, count: int = 10) -> list[tuple[str, float]]:
        """The tensors whose scales differ most (by |log ratio|; inf/NaN first)."""

        def key(item: tuple[str, float]) -> float:
            r = item[1]
            return math.inf if not math.isfinite(r) or r <= 0 else abs(math.log(r))

        return sorted(self.ratios.items(), key=key, reverse=True)[:count]


def diff_caches(a: CalibrationCache, b: CalibrationCache) -> CacheDiff:
    sa, sb = a.scales, b.scales
    ratios = {}
    for name in sa:
        if name in sb:
            x, y = sa[name], sb[name]
            ratios[name] = (y / x) if x != 0 else (1.0 if y == 0 else math.inf)
    return CacheDiff(ratios, [n for n in sa if n not in sb], [n for n in sb if n not in sa])
