"""trtdeploy.versions: the one TensorRT version parser (issue 12 item 5)."""

from __future__ import annotations

import pytest

from trtdeploy.errors import UsageError
from trtdeploy.versions import TrtVersion, major_version, version_tuple


def test_lenient_reading_of_reported_versions():
    assert version_tuple("10.16.0.72") == (10, 16, 0, 72)
    assert version_tuple("11.0.0rc1") == (11, 0, 0)
    assert version_tuple("dev") == ()
    assert major_version("1.1.0.3") == 1 and major_version("") == 0
    assert TrtVersion.loose("10.16.0.72") == TrtVersion(10, 16, 0)
    assert TrtVersion.loose("TensorRT 10.3") == TrtVersion(10, 3, 0)
    assert TrtVersion.loose("10") is None


@pytest.mark.parametrize("text", ["10.x", "", "1.2.3.4.5", "4.0", "10.100"])
def test_strict_parse_refuses_what_a_user_mistyped(text):
    with pytest.raises(UsageError, match="TensorRT version"):
        TrtVersion.parse(text)


def test_cache_header_numbers_both_formulas():
    # docs/DOMAIN.md s.2: 8.6.1 -> 8601, 10.3.0 -> 100300; "TRT-10300-..." is 10.3.0 in the old formula.
    assert TrtVersion.parse("8.6.1").header_number == 8601
    assert TrtVersion.parse("10.3").header_number == 100300
    assert TrtVersion.from_header_number(100300) == (TrtVersion(10, 3, 0), False)
    assert TrtVersion.from_header_number(10300) == (TrtVersion(10, 3, 0), True)


def test_calibration_and_deepstream_use_this_parser():
    from calibration.cache import TrtVersion as CalibrationVersion
    from calibration.errors import CalibrationUsageError
    from trtdeploy.engine import capabilities

    assert issubclass(CalibrationVersion, TrtVersion)
    assert capabilities.version_tuple is version_tuple
    with pytest.raises(CalibrationUsageError):
        CalibrationVersion.parse("ten")
