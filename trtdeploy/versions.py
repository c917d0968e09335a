"""TensorRT version numbers: the one parser (a leaf module: it imports only trtdeploy.errors).

Two readings of a version string exist and both live here:
* ``version_tuple`` is lenient, for versions a module or a sidecar reports ("10.16.0.72",
  "1.1.0.3", "11.0.0rc1"): the leading numbers, nothing raised.
* ``TrtVersion.parse`` is strict, for versions a user types (``--trt-version 10.16``): major,
  minor, patch, at most four dot-separated numbers, or a UsageError naming the value.

``TrtVersion.header_number`` is the number TensorRT writes in a calibration cache header
(``TRT-<number>-<Algorithm>``, docs/DOMAIN.md section 2): major*1000 + minor*100 + patch up to
TensorRT 9, major*10000 + minor*100 + patch from TensorRT 10 on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

from trtdeploy.errors import UsageError

_V = TypeVar("_V", bound="TrtVersion")


def version_tuple(version: str) -> tuple[int, ...]:
    """``"10.16.0.72"`` -> (10, 16, 0, 72); stops at the first piece without leading digits."""
    parts = []
    for piece in str(version).split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):  # "0rc1": a pre-release tag ends the numeric part
            break
    return tuple(parts)


def major_version(version: str) -> int:
    """The major number of ``version`` (0 when it has none)."""
    return (version_tuple(version) or (0,))[0]


@dataclass(frozen=True, order=True)
class TrtVersion:
    """A TensorRT release number (major.minor.patch; the build number is not kept)."""

    major: int
    minor: int = 0
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def header_number(self) -> int:
        """The number TensorRT of this version writes in a calibration cache header."""
        if self.major >= 10:
            return self.major * 10000 + self.minor * 100 + self.patch
        return self.major * 1000 + self.minor * 100 + self.patch

    @classmethod
    def parse(cls: type[_V], text: str) -> _V:
        """'10.16' or '10.16.0' or '8.6.1' -> a version; anything else is a UsageError."""
        parts = str(text).strip().split(".")
        if not 1 <= len(parts) <= 4 or not all(p.isascii() and p.isdigit() for p in parts):
            raise UsageError(f"TensorRT version {text!r} is not like 10.16 or 8.6.1")
        nums = [int(p) for p in parts[:3]] + [0] * (3 - min(len(parts), 3))
        if nums[0] < 5 or nums[0] > 99 or nums[1] > 99 or nums[2] > 99:
            raise UsageError(f"TensorRT version {text!r} is out of range (expected 5.x to 99.x)")
        return cls(*nums)

    @classmethod
    def loose(cls: type[_V], text: str) -> _V | None:
        """The version a module or sidecar reports ("10.16.0.72"), or None without major.minor."""
        nums = [int(n) for n in re.findall(r"\d+", str(text))]  # also "TensorRT 10.16.0"
        if len(nums) < 2:
            return None
        return cls(nums[0], nums[1], nums[2] if len(nums) > 2 else 0)

    @classmethod
    def from_header_number(cls: type[_V], number: int) -> tuple[_V, bool]:
        """Decode a cache header number; the flag is True when a TensorRT >= 10 version is
        written with the <= 9 formula (as some TAO tools do)."""
        if number >= 100000:
            return cls(number // 10000, (number // 100) % 100, number % 100), False
        version = cls(number // 1000, (number // 100) % 10, number % 100)
        return version, version.major >= 10
