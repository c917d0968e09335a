"""Session fixtures of the bad-input suite: the template workspace and the converted model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_inputs.workspace import Workspace, build_template, convert_bundled


@pytest.fixture(scope="session")
def template_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build_template(tmp_path_factory.mktemp("bad_inputs_template"))


@pytest.fixture(scope="session")
def converted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled saved model converted once per session (TensorFlow, ~10 s)."""
    from tests.data import BUNDLED_MODEL

    if not (BUNDLED_MODEL / "saved_model").is_dir():
        pytest.skip(f"bundled model not present at {BUNDLED_MODEL}")
    return convert_bundled(BUNDLED_MODEL, tmp_path_factory.mktemp("bad_inputs_converted") / "ssd.onnx")


@pytest.fixture
def workspace(template_workspace: Workspace, tmp_path: Path) -> Workspace:
    """A fresh copy of the template for one row."""
    return Workspace.copy_of(template_workspace, tmp_path / "ws")
