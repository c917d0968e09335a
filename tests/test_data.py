"""The test-data resolver (tests/data.py) and the TensorFlow mark guard (tests/conftest.py),
each exercised in a subprocess pytest run of a tiny test file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.data import REPO

TINY_DATA_TEST = '''
from tests.data import fixture_dir, reference_path

def test_needs_a_fixture():
    fixture_dir("ssd_mobilenet_v2_035_5class_300")

def test_needs_a_reference():
    reference_path("tao_specs")
'''

TINY_TF_TESTS = '''
import pytest

def test_unmarked_uses_tensorflow():
    import tensorflow as tf
    tf.constant(1.0)

def test_unmarked_imports_a_submodule():
    from tensorflow.core.protobuf import config_pb2  # noqa: F401

@pytest.mark.tf
def test_marked_tf_only():
    pass

def test_unmarked_without_tensorflow():
    assert 1 + 1 == 2
'''


def _pytest(test_file: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("TRTDEPLOY_TEST_DATA", "TRTDEPLOY_REQUIRE_DATA")}
    environ.update(env)
    # tests/conftest.py as a plugin, the repo's pytest settings (marks); the file lives in tmp.
    command = [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "tests.conftest", "-c", str(REPO / "pyproject.toml"),
               "--rootdir", str(REPO), "-p", "no:cacheprovider", str(test_file)]
    return subprocess.run(command, cwd=REPO, env=environ, capture_output=True, text=True, timeout=120)


def _tiny(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test_tiny.py"
    path.write_text(text)
    return path


def test_missing_data_skips_with_how_to_get_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _pytest(_tiny(tmp_path, TINY_DATA_TEST), TRTDEPLOY_TEST_DATA=str(empty))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "2 skipped" in out, out
    assert "TRTDEPLOY_TEST_DATA" in out and "../shared/fixtures" in out, out  # says how to get the data
    assert str(empty / "fixtures" / "ssd_mobilenet_v2_035_5class_300") in out, out


def test_missing_data_fails_when_required_naming_the_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _pytest(_tiny(tmp_path, TINY_DATA_TEST), TRTDEPLOY_TEST_DATA=str(empty), TRTDEPLOY_REQUIRE_DATA="1")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "2 failed" in out, out
    assert f"test data missing: {empty / 'fixtures' / 'ssd_mobilenet_v2_035_5class_300'}" in out, out
    assert f"test data missing: {empty / 'reference' / 'tao_specs'}" in out, out


def test_present_data_neither_skips_nor_fails(tmp_path):
    root = tmp_path / "data"
    (root / "fixtures" / "ssd_mobilenet_v2_035_5class_300").mkdir(parents=True)
    (root / "reference" / "tao_specs").mkdir(parents=True)
    result = _pytest(_tiny(tmp_path, TINY_DATA_TEST), TRTDEPLOY_TEST_DATA=str(root), TRTDEPLOY_REQUIRE_DATA="1")
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout + result.stderr


def test_tensorflow_use_without_the_marks_fails(tmp_path):
    result = _pytest(_tiny(tmp_path, TINY_TF_TESTS))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert re.search(r"test_unmarked_uses_tensorflow uses TensorFlow but is not marked .*tensorflow\.constant", out), out
    assert "test_marked_tf_only is marked tf but not slow" in out, out
    assert re.search(r"test_unmarked_imports_a_submodule uses TensorFlow .*tensorflow\.__path__", out), out
    assert "3 failed, 1 passed" in out, out


def test_no_test_builds_its_own_data_path():
    """Every test reaches ../shared through tests/data.py (one resolver, one skip/fail rule)."""
    offenders = []
    pattern = re.compile(r"""["']shared["']|/shared\b|\.\./shared""")
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path.name in ("data.py", "test_data.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "build data paths with tests/data.py instead:\n" + "\n".join(offenders)


def test_ci_runs_the_readme_test_command_with_data_required():
    assert "make test" in (REPO / "README.md").read_text()
    text = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^export TRTDEPLOY_REQUIRE_DATA=1$", text, re.M), text
    assert re.search(r"^make test$", text, re.M), text
