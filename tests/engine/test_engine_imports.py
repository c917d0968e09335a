"""Importing the engine package and running `--help` never loads TensorRT."""

from __future__ import annotations

import subprocess
import sys

BLOCK_HEAVY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'tensorrt', 'tensorrt_rtx', 'tensorflow', 'tf2onnx'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK_HEAVY + code], capture_output=True, text=True, timeout=120)


def test_engine_package_imports_without_tensorrt():
    result = _run("import trtdeploy.engine, trtdeploy.engine.builder, trtdeploy.cli.build_engine; print('ok')")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_help_and_missing_tensorrt_message():
    code = (
        "from typer.testing import CliRunner\n"
        "from trtdeploy.cli.main import app\n"
        "r = CliRunner().invoke(app, ['build-engine', '--help'])\n"
        "assert r.exit_code == 0 and '--precision' in r.output, r.output\n"
        "r = CliRunner().invoke(app, ['inspect', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "import onnx, tempfile, os\n"
        "d = tempfile.mkdtemp(); p = os.path.join(d, 'm.onnx')\n"
        "onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], 'g', [], [])), p)\n"
        "r = CliRunner().invoke(app, ['build-engine', p])\n"
        "print(r.exit_code, r.output)\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 ") and "no TensorRT found" in result.stdout
