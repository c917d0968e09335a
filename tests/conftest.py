"""Shared test helpers: skips for optional modules, and a guard that every test which uses
TensorFlow is marked ``tf`` (and ``slow``). Test data comes from ``tests/data.py`` only."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.data import BUNDLED_MODEL, REPO

DEMO_MODEL = BUNDLED_MODEL  # the bundled 8 MB SSD (byte-identical to the shared fixture)

__all__ = ["DEMO_MODEL", "REPO", "has_module"]


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# The longest files first: `make test` hands whole files to its two workers (xdist --dist loadfile
# --no-loadscope-reorder) in collection order; by default xdist orders files by their number of
# tests, which started the two-stage modules (minutes each, few tests) last, when the other worker
# had nothing left to take. Measured cost order of the slowest files.
LONGEST_FIRST = (
    "tests/tfod/test_faster_rcnn.py",
    "tests/tfod/test_mask_rcnn.py",
    "tests/tfod/test_verify_fixtures.py",
    "tests/tfod/test_reproducible.py",
    "tests/calibration/test_int8_accuracy.py",
    "tests/deepstream/test_ds_run.py",
    "tests/automl/test_automl_heads.py",
    "tests/automl/test_tutorial_import.py",
)


def _cost_rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_cost_rank)  # stable: the order within a file and among the rest is kept
    skip_tf = pytest.mark.skip(reason="needs TensorFlow and tf2onnx (pip install 'trtdeploy[tf]')")
    skip_rtx = pytest.mark.skip(reason="needs tensorrt_rtx (pip install 'trtdeploy[rtx]')")
    for item in items:
        if "tf" in item.keywords and not (has_module("tensorflow") and has_module("tf2onnx")):
            item.add_marker(skip_tf)
        if "rtx" in item.keywords and not has_module("tensorrt_rtx"):
            item.add_marker(skip_rtx)


# --- every test that uses TensorFlow is marked tf and slow -----------------------------------
# A test that is not marked `tf` runs with `sys.modules["tensorflow"]` replaced by a guard module:
# `import tensorflow` (ours are all inside functions, through trtdeploy.lazy.require) then gets
# the guard, and the first attribute it reads fails the test naming the missing marks. A test
# that imports TensorFlow for the first time in the session is caught the same way (the guard
# blocks the import). A test marked `tf` but not `slow` fails too.

UNMARKED = "uses TensorFlow but is not marked @pytest.mark.tf and @pytest.mark.slow"


class TensorFlowGuard(ModuleType):
    """Stands in for `tensorflow` during tests not marked tf; any real use fails the test."""

    def __init__(self, test_id: str) -> None:
        super().__init__("tensorflow")
        self.__file__ = "<tensorflow blocked by tests/conftest.py>"
        self._test_id = test_id

    def __getattr__(self, name: str) -> object:
        # Introspection (inspect, pytest) is not a use; __path__ is read to import a submodule.
        if name.startswith("__") and name != "__path__":
            raise AttributeError(name)
        pytest.fail(f"{self._test_id} {UNMARKED} (it read tensorflow.{name})", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    marked = "tf" in item.keywords
    if marked and "slow" not in item.keywords:
        pytest.fail(f"{item.nodeid} is marked tf but not slow", pytrace=False)
    if marked:
        yield
        return
    real = sys.modules.get("tensorflow")
    sys.modules["tensorflow"] = TensorFlowGuard(item.nodeid)
    try:
        yield
    finally:
        if real is None:
            sys.modules.pop("tensorflow", None)
        else:
            sys.modules["tensorflow"] = real
