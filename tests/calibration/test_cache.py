"""Calibration cache parsing, writing, versions, inspect, retarget and diff."""

from __future__ import annotations

import math
import struct

import pytest

from calibration import (
    CalibrationCache,
    CalibrationError,
    TrtVersion,
    diff_caches,
    inspect_cache,
    parse_cache,
    read_cache,
    retarget_cache,
)
from calibration.cache import bits_to_scale, scale_to_bits
from tests.calibration.calib_helpers import reference_cache

# file -> (TensorRT version, tensor count, byte-identical round trip?)
EXPECTED = {
    "frcnn_trt7000.bin": ("7.0.0", 117, True),
    "lpdnet_usa_trt7000.bin": ("7.0.0", 38, True),
    "lpdnet_usa_trt8601.bin": ("8.6.1", 190, True),
    "lpdnet_usa_trt100100_blanklines.cal": ("10.1.0", 190, False),  # blank lines, no final newline
    "yolov5_qat2ptq_trt8600.cache": ("8.6.0", 197, True),
}


def _reference(name: str) -> bytes:
    return reference_cache(name).read_bytes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_caches_parse_and_round_trip(name: str) -> None:
    raw = _reference(name)
    version, count, identical = EXPECTED[name]
    cache = read_cache(reference_cache(name))
    assert str(cache.trt_version) == version
    assert cache.algorithm == "EntropyCalibration2"
    assert len(cache.bits) == count
    text = cache.to_text()
    if identical:
        assert text.encode() == raw
    else:
        # documented normalisation: blank lines dropped, one final newline
        normalised = "\n".join(line for line in raw.decode().split("\n") if line.strip()) + "\n"
        assert text == normalised
    assert parse_cache(text).bits == cache.bits


def test_scale_hex_is_big_endian_float32_of_amax_over_127() -> None:
    cache = CalibrationCache.from_amax({"t": 1.0, "u": 127.0})
    assert cache.to_text().splitlines()[1:] == ["t: 3c010204", "u: 3f800000"]
    assert struct.pack(">f", 1 / 127).hex() == "3c010204"
    assert bits_to_scale(0x3F800000) == 1.0 and scale_to_bits(1.0) == 0x3F800000


@pytest.mark.parametrize(
    ("text", "number"),
    [("10.16", 101600), ("10.3.0", 100300), ("10.1", 100100), ("8.6.1", 8601), ("7.0", 7000), ("11.0.1", 110001)],
)
def test_version_header_numbers(text: str, number: int) -> None:
    assert TrtVersion.parse(text).header_number == number
    decoded, legacy = TrtVersion.from_header_number(number)
    assert decoded == TrtVersion.parse(text) and not legacy


def test_legacy_encoded_trt10_header_is_decoded_and_flagged() -> None:
    cache = parse_cache("TRT-10300-EntropyCalibration2\nx: 3c010204\n")
    assert str(cache.trt_version) == "10.3.0" and cache.legacy_encoded
    assert "legacy" in " ".join(inspect_cache(cache).lines())
    assert retarget_cache(cache, "10.3").header == "TRT-100300-EntropyCalibration2"


def test_names_with_colon_space_split_on_last_separator_and_crlf() -> None:
    text = "TRT-8601-MinMaxCalibration\r\nweird: name: with spaces: 3c010204\r\n\r\n(Unnamed Layer* 1) [Constant]_output: 7f800000\r\n"
    cache = parse_cache(text)
    assert cache.algorithm == "MinMaxCalibration"
    assert list(cache.bits) == ["weird: name: with spaces", "(Unnamed Layer* 1) [Constant]_output"]
    summary = inspect_cache(cache)
    assert summary.infinite == ["(Unnamed Layer* 1) [Constant]_output"]
    assert math.isclose(summary.min_scale, 1 / 127, rel_tol=1e-6) and summary.max_scale == summary.min_scale
    assert cache.to_text() == text.replace("\r\n", "\n").replace("\n\n", "\n")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("input: 3c010204\n", "missing header"),
        ("", "empty"),
        ("TRT-8601-EntropyCalibration2\nconv1: 3c01\n", "truncated scale '3c01'"),
        ("TRT-8601-EntropyCalibration2\nconv1: 3c01020g\n", "bad scale '3c01020g'"),
        ("TRT-8601-EntropyCalibration2\nconv1 3c010204\n", "line 2: expected '<tensor name>: <8 hex digits>'"),
        ("TRT-8601-EntropyCalibration2\nconv1: 3c010204\nconv1: 3c010204\n", "appears twice"),
        ("TRT-8601-EntropyCalibration2\nconv1:", "line 2"),
    ],
)
def test_malformed_caches_give_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(CalibrationError) as info:
        parse_cache(text, "bad.cache")
    message = str(info.value)
    assert fragment in message and "\n" not in message and message.startswith("bad.cache")


def test_bad_versions_are_refused() -> None:
    for text in ("ten", "10.x", "1.0", "10.160"):
        with pytest.raises(CalibrationError):
            TrtVersion.parse(text)


def test_retarget_keeps_scales_and_diff_reports_ratios() -> None:
    a = CalibrationCache.from_amax({"x": 1.0, "y": 2.0, "only_a": 3.0}, "8.6.1")
    b = CalibrationCache.from_amax({"x": 2.0, "y": 2.0, "only_b": 1.0}, "10.16")
    moved = retarget_cache(a, "10.16")
    assert moved.header == "TRT-101600-EntropyCalibration2" and moved.bits == a.bits
    d = diff_caches(a, b)
    assert d.ratios == pytest.approx({"x": 2.0, "y": 1.0})
    assert d.only_a == ["only_a"] and d.only_b == ["only_b"]
    assert d.largest(1)[0][0] == "x"


def test_save_writes_atomically_and_rereads(tmp_path) -> None:
    cache = CalibrationCache.from_amax({"a/b:0": 0.5})
    cache.save(tmp_path / "c.cache")
    assert read_cache(tmp_path / "c.cache").bits == cache.bits
    assert [p.name for p in tmp_path.iterdir()] == ["c.cache"]
    with pytest.raises(CalibrationError, match="not found"):
        read_cache(tmp_path / "missing.cache")
    (tmp_path / "bin.cache").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CalibrationError, match="not a text calibration cache"):
        read_cache(tmp_path / "bin.cache")
