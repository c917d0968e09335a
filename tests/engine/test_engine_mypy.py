"""The TensorRT 10/11 code paths are type-checked against TensorRT's Python API.

Uses the PyPI `tensorrt-stubs` (install with `pip install --no-deps tensorrt-stubs==10.13.0.35.1`:
its metadata pins the full tensorrt wheel), fixed on a copy by typings/fix_tensorrt_stubs.py.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "typings" / "mypy-tensorrt.ini"
# The modules that call TensorRT's API.
TENSORRT_FACING = ["backend.py", "builder.py", "int8.py", "machine.py"]


def _fixer():
    spec = importlib.util.spec_from_file_location("fix_tensorrt_stubs", REPO / "typings" / "fix_tensorrt_stubs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stubs(tmp_path_factory) -> Path:
    fixer = _fixer()
    site = fixer.find_installed_stubs(Path(sysconfig.get_paths()["purelib"]))
    if site is None:
        pytest.skip("tensorrt-stubs not installed: pip install --no-deps tensorrt-stubs==10.13.0.35.1")
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy not installed (pip install 'trtdeploy[dev]')")
    return fixer.write_fixed_stubs(site, tmp_path_factory.mktemp("stubs"))


def _mypy(stubs: Path, files: list[Path], cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(stubs)}
    command = [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--cache-dir", str(cache), *map(str, files)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_tensorrt_facing_modules_type_check(stubs, tmp_path):
    files = [REPO / "trtdeploy" / "engine" / name for name in TENSORRT_FACING]
    result = _mypy(stubs, files, tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stubs_are_really_used(stubs, tmp_path):
    """A misspelled TensorRT call and a wrong override must fail: TensorRT is not typed as Any."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import tensorrt\n\n\n"
        "def configure(config: tensorrt.IBuilderConfig) -> None:\n"
        "    config.set_memory_pool_limt(tensorrt.MemoryPoolType.WORKSPACE, 1)\n\n\n"
        "class Monitor(tensorrt.IProgressMonitor):\n"
        "    def step_complete(self, phase_name: str, step: int) -> str:\n"
        "        return 'yes'\n"
    )
    result = _mypy(stubs, [bad], tmp_path / "cache")
    assert result.returncode == 1
    assert '"IBuilderConfig" has no attribute "set_memory_pool_limt"' in result.stdout
    assert 'Return type "str" of "step_complete" incompatible' in result.stdout


def test_stub_fixes_on_sample_lines():
    fix = _fixer().fix_stub_text
    text = (
        "import typing\n"
        "class Dims:\n"
        "    def __len__(self) -> int:\n"
        "        ...\n"
        "class X:\n"
        "    def get_workspace_size(self, in: list[int], out: list[int]) -> int: ...\n"
        "    def add_scale_nd(self, input: ITensor, shift: Weights = None, channel_axis: int) -> IScaleLayer: ...\n"
        "    def set_shape(self, input: str, min: Dims, opt: Dims, max: Dims) -> None: ...\n"
        "    def ok(self, a: ..., b: capsule) -> bool: ...\n"
    )
    with pytest.raises(SyntaxError):
        compile(text, "generated.pyi", "exec")
    fixed = fix(text)
    assert "capsule: typing.TypeAlias = typing.Any" in fixed and "import builtins" in fixed
    assert "def __iter__(self) -> typing.Iterator[int]:" in fixed
    assert "in_: list[int]" in fixed and " in:" not in fixed
    assert "shift: Weights | None = None, channel_axis: int = ...)" in fixed
    assert "min: Dims | typing.Sequence[int]" in fixed
    assert "def ok(self, a: typing.Any, b: capsule) -> builtins.bool:" in fixed
    compile(fixed, "fixed.pyi", "exec")  # valid Python now
