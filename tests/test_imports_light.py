"""`import trtdeploy` (and every module of our packages) and `trtdeploy --help` work without
TensorFlow, tf2onnx or TensorRT, and do not import them."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("tensorflow", "tf2onnx", "tensorrt", "tensorrt_rtx", "modelopt")

SCRIPT = f"""
import sys, pkgutil, importlib
for name in {HEAVY!r}:
    sys.modules[name] = None  # makes 'import name' raise ImportError, as if not installed
for package in ("trtdeploy", "calibration", "tao_trt", "tfod_trt"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
from typer.testing import CliRunner
from trtdeploy.cli.main import app
result = CliRunner().invoke(app, ["--help"])
assert result.exit_code == 0, result.output
for command in ("create-onnx", "verify", "build-engine", "gen-ds-config"):
    assert command in result.output, command
    sub = CliRunner().invoke(app, [command, "--help"])
    assert sub.exit_code == 0 and "Example" in sub.output, (command, sub.output)
loaded = [m for m in {HEAVY!r} if sys.modules.get(m) is not None]
print("LOADED", loaded)
"""


def test_packages_import_without_heavy_modules():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LOADED []" in result.stdout


def test_missing_tensorflow_gives_one_clear_error(tmp_path):
    script = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from typer.testing import CliRunner\n"
        "from trtdeploy.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['create-onnx', '--saved-model', {str(REPO / 'examples/models/ssd_mobilenet_v2_035_5class_300/saved_model')!r}, '-o', {str(tmp_path / 'm.onnx')!r}])\n"
        "print('EXIT', r.exit_code); print(r.output)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "EXIT 1" in result.stdout, result.stdout + result.stderr
    assert "trtdeploy[tf]" in result.stdout and "Traceback" not in result.stdout
