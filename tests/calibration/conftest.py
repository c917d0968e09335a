"""Fixtures for the calibration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtdeploy.sample_images import write_photo_jpegs


@pytest.fixture(scope="session")
def photo_jpegs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """200 JPEGs of real photos in several sizes and aspect ratios (made once per session)."""
    return write_photo_jpegs(tmp_path_factory.mktemp("photos"), 200)
