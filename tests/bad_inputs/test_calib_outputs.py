"""Calibration outputs (issue 11 item 5, issue 10): byte-reproducible from run to run and from one
output folder to another, and readable by other users (0644 under the usual umask 022, like every
other trtdeploy output) so a DeepStream service running as another user can read int8-calib-file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.bad_inputs.runner import run_cli
from tests.bad_inputs.workspace import Workspace


def _calibrate(ws: Workspace, out: Path, *extra: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    cache, qdq = out / "m.cache", out / "m_int8.onnx"
    outcome = run_cli(
        ["calib", "calibrate", str(ws.path("onnx")), "-i", str(ws.path("images")), "-o", str(cache),
         "--qdq-onnx", str(qdq), "--calib-num", "4", "-b", "2", *extra]
    )  # fmt: skip
    assert outcome.code == 0, outcome.text
    return [cache, cache.with_name(cache.name + ".json"), qdq]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_two_runs_in_two_folders_give_identical_bytes(workspace: Workspace, tmp_path: Path) -> None:
    first = _calibrate(workspace, tmp_path / "run1" / "deep" / "er")
    second = _calibrate(workspace, tmp_path / "run2")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two runs on the same inputs"
        assert str(tmp_path) not in a.read_bytes().decode("latin-1"), f"{a.name} records an absolute path"


def test_same_inputs_through_a_copy_of_the_model_give_identical_bytes(workspace: Workspace, tmp_path: Path) -> None:
    """The model's folder is not part of the outputs either (only its bytes and card)."""
    import shutil

    other = tmp_path / "elsewhere"
    other.mkdir()
    for key in ("onnx", "card"):
        shutil.copy2(workspace.path(key), other / workspace.path(key).name)
    moved = Workspace(other)
    shutil.copytree(workspace.path("images"), moved.path("images"))
    first = _calibrate(workspace, tmp_path / "a")
    second = _calibrate(moved, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} depends on where the model lives"


def test_calibration_outputs_are_0644(workspace: Workspace, tmp_path: Path, umask_022: None) -> None:
    outputs = _calibrate(workspace, tmp_path / "modes")
    tensorfile = tmp_path / "modes" / "cal.tensorfile"
    outcome = run_cli(["calib", "tensorfile", str(workspace.path("images")), "--onnx", str(workspace.path("onnx")),
                       "-o", str(tensorfile), "-b", "2"])  # fmt: skip
    assert outcome.code == 0, outcome.text
    retarget = tmp_path / "modes" / "r.cache"
    outcome = run_cli(["calib", "retarget", str(outputs[0]), "--trt-version", "10.3", "-o", str(retarget)])
    assert outcome.code == 0, outcome.text
    for path in [*outputs, tensorfile, retarget]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o644, f"{path.name} has mode {oct(mode)}, expected 0o644"


def test_outputs_follow_the_umask(workspace: Workspace, tmp_path: Path) -> None:
    """0666 minus the umask, as every other output: a umask 077 user keeps them private."""
    old = os.umask(0o077)
    try:
        outputs = _calibrate(workspace, tmp_path / "private")
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in outputs} == {0o600}


def test_tensorfiles_are_byte_identical_too(workspace: Workspace, tmp_path: Path) -> None:
    """HDF5 can record object times; a TAO tensorfile of the same batches must not differ."""
    import time

    files = []
    for folder in ("t1", "t2/deeper"):
        out = tmp_path / folder / "cal.tensorfile"
        outcome = run_cli(["calib", "tensorfile", str(workspace.path("images")), "--onnx", str(workspace.path("onnx")),
                           "-o", str(out), "-b", "2"])  # fmt: skip
        assert outcome.code == 0, outcome.text
        files.append(out)
        time.sleep(1.1)  # a recorded time would differ
    assert files[0].read_bytes() == files[1].read_bytes()
