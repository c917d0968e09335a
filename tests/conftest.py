"""Shared test helpers: where the shared fixtures live, and skips for optional modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
REFERENCE = SHARED / "reference"
DEMO_MODEL = REPO / "examples" / "models" / "ssd_mobilenet_v2_035_5class_300"


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_tf = pytest.mark.skip(reason="needs TensorFlow and tf2onnx (pip install 'trtdeploy[tf]')")
    skip_rtx = pytest.mark.skip(reason="needs tensorrt_rtx (pip install 'trtdeploy[rtx]')")
    for item in items:
        if "tf" in item.keywords and not (has_module("tensorflow") and has_module("tf2onnx")):
            item.add_marker(skip_tf)
        if "rtx" in item.keywords and not has_module("tensorrt_rtx"):
            item.add_marker(skip_rtx)
