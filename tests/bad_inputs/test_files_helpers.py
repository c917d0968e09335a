"""trtdeploy.files' guards that every command uses (issue 11 item 1): inputs are never outputs,
output names stay in the output folder, an output folder must really be writable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trtdeploy.errors import InputError, OutputExistsError, UsageError
from trtdeploy.files import check_not_input, check_output, check_output_name, check_same_outputs, write_text_atomic


def test_an_input_is_refused_even_with_force(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    with pytest.raises(UsageError, match="is an input of this command"):
        check_output(model, force=True, inputs=[model])
    assert model.read_bytes() == b"onnx"


def test_the_same_file_through_symlinks_and_dotdot_is_an_input(tmp_path: Path) -> None:
    real = tmp_path / "data"
    real.mkdir()
    (real / "labels.pbtxt").write_text("item {}")
    os.symlink(real, tmp_path / "alias")
    os.symlink(real / "labels.pbtxt", tmp_path / "link.pbtxt")
    for output in (tmp_path / "alias" / "labels.pbtxt", tmp_path / "link.pbtxt", real / ".." / "data" / "labels.pbtxt"):
        with pytest.raises(UsageError, match="is an input"):
            check_not_input(output, [real / "labels.pbtxt"])
    check_not_input(tmp_path / "alias" / "other.pbtxt", [real / "labels.pbtxt"])  # a new file is fine


def test_an_output_through_a_symlinked_folder_that_does_not_exist_yet(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    model = tmp_path / "real" / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(UsageError):
        check_not_input(tmp_path / "alias" / "m.onnx", [tmp_path / "alias" / ".." / "real" / "m.onnx"])


def test_two_outputs_may_not_be_one_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="are the same file"):
        check_same_outputs([tmp_path / "a.cache", None, tmp_path / "x" / ".." / "a.cache"])
    check_same_outputs([tmp_path / "a.cache", tmp_path / "a.cache.json"])


@pytest.mark.parametrize("name", ["../../evil", "a/b", "a\\b", "..", ".", "", " x", "x ", ".hidden", "-rf", "a\x00b", "a\nb", "c:d"])
def test_output_names_stay_in_the_output_folder(name: str) -> None:
    with pytest.raises(UsageError, match="--name"):
        check_output_name(name)


@pytest.mark.parametrize("name", ["ds", "model_v1.2", "ssd-mobilenet", "ÉtéModel"])
def test_plain_output_names_pass(name: str) -> None:
    assert check_output_name(name) == name


def test_output_folder_and_existing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder"):
        check_output(tmp_path, force=True)
    existing = tmp_path / "e.txt"
    existing.write_text("keep")
    with pytest.raises(OutputExistsError, match="--force"):
        check_output(existing, force=False)
    check_output(existing, force=True)
    assert existing.read_text() == "keep"  # checking writes nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.txt"]  # and leaves no probe file


def test_unwritable_output_folder_is_found_by_trying(tmp_path: Path) -> None:
    """/proc refuses new files even to root (os.access says yes there): the probe file decides."""
    with pytest.raises(InputError, match="cannot write to output folder /proc"):
        check_output(Path("/proc/trtdeploy-test/out.onnx"), force=False)
    with pytest.raises(InputError, match="cannot write to output folder"):
        check_output(Path("/proc/self/out.onnx"), force=False)


def test_atomic_outputs_get_0666_minus_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
