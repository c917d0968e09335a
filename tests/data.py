"""The one resolver for test data: shared fixtures and reference files.

The data folder is ``$TRTDEPLOY_TEST_DATA`` if set, else ``../shared`` beside the repository.
A test asks for a folder or file with ``fixture_dir``/``reference_path``; when it is missing the
test is skipped with a reason that says how to get the data, or, with
``TRTDEPLOY_REQUIRE_DATA=1`` (set by ``.ci/run``), fails naming the missing path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Byte-identical to the shared copy; used wherever a test needs exactly that model.
BUNDLED_MODEL = REPO / "examples" / "models" / "ssd_mobilenet_v2_035_5class_300"

HOW_TO_GET = (
    "clone the project with its shared/ data folder beside it (../shared/fixtures, "
    "../shared/reference) or point TRTDEPLOY_TEST_DATA at a copy"
)


def data_root() -> Path:
    env = os.environ.get("TRTDEPLOY_TEST_DATA")
    return Path(env).resolve() if env else (REPO.parent / "shared").resolve()


def data_required() -> bool:
    return os.environ.get("TRTDEPLOY_REQUIRE_DATA", "") not in ("", "0")


def _present(path: Path) -> Path:
    if path.exists():
        return path
    if data_required():
        pytest.fail(f"test data missing: {path} (TRTDEPLOY_REQUIRE_DATA=1; {HOW_TO_GET})", pytrace=False)
    pytest.skip(f"test data not present: {path}; {HOW_TO_GET}")


def fixtures_root() -> Path:
    return data_root() / "fixtures"


def reference_root() -> Path:
    return data_root() / "reference"


def fixture_dir(name: str) -> Path:
    """A model folder under fixtures/ (skip or fail when absent)."""
    return _present(fixtures_root() / name)


def reference_path(*parts: str) -> Path:
    """A file or folder under reference/ (skip or fail when absent)."""
    return _present(reference_root().joinpath(*parts))
