"""check-ds-config: keys nvinfer does not read, keys set twice, label-file defects, Triton configs.

Key facts from the parser source: gst_nvinfer_parse_props / parse_other_attribute print
"Unknown or legacy key specified" and go on (hiennguyen9874/deepstream-sources 6.3,
sources/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp line 481); 'strongly-typed' is
read by NVIDIA/DeepStream DeepStream-9.0 (src/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp)
and not by 6.3; the YAML parser does not read 'is-classifier' (6.3 gstnvinfer_yaml_parser.cpp has
no such key); GKeyFile keeps the last of two equal keys (GLib gkeyfile.c,
g_key_file_add_key_value_pair); labels are read byte for byte, only empty lines skipped
(nvdsinfer_context_impl.cpp lines 472-503), and a named labels file that cannot be opened fails
the start (lines 476-478, 516-518).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.deepstream.test_ds_paths import _config
from trtdeploy.cli.main import app
from trtdeploy.deepstream import check_ds_config
from trtdeploy.errors import UsageError


def _errors(config: Path, **kw: str) -> list[str]:
    return [p.message for p in check_ds_config(config, **kw) if p.level == "error"]


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    config = _config(tmp_path, "model-engine-file=m.engine\nnet-scale-factr=0.0039\n")
    errors = _errors(config)
    assert len(errors) == 1 and "unknown key 'net-scale-factr'" in errors[0], errors
    assert "did you mean net-scale-factor" in errors[0]
    result = CliRunner().invoke(app, ["check-ds-config", str(config)])
    assert result.exit_code == 1 and "net-scale-factr" in result.output


def test_unknown_class_attrs_key(tmp_path: Path) -> None:
    config = _config(tmp_path, "\n[class-attrs-all]\npre-cluster-treshold=0.4\n")
    assert any("unknown key 'pre-cluster-treshold' in [class-attrs-all]" in e for e in _errors(config))


def test_duplicated_key_names_both_lines_and_the_winner(tmp_path: Path) -> None:
    config = _config(tmp_path, "batch-size=1\nbatch-size=4\n")
    errors = _errors(config)
    dup = [e for e in errors if "batch-size is set 2 times" in e]
    assert dup and "line 13" in dup[0] and "(line 13)" in dup[0], errors  # the 2nd one (line 13) wins


def test_duplicated_key_in_yaml(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    config = tmp_path / "c.yml"
    config.write_text("property:\n  gpu-id: 0\n  labelfile-path: labels.txt\n  num-detected-classes: 2\n  gpu-id: 1\n")
    assert any("gpu-id is set 2 times" in e for e in _errors(config))


def test_key_of_a_later_release(tmp_path: Path) -> None:
    config = _config(tmp_path, "strongly-typed=1\n")
    assert not any("strongly-typed" in e for e in _errors(config))
    assert any("from DeepStream 9.0 on, not by 6.3" in e for e in _errors(config, deepstream="6.3"))
    with pytest.raises(UsageError, match="--deepstream 7.7"):
        check_ds_config(config, deepstream="7.7")


def test_legacy_key_in_yaml_is_ignored_by_nvinfer(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("cat\n")
    config = tmp_path / "c.yml"
    config.write_text("property:\n  labelfile-path: labels.txt\n  is-classifier: 1\n")
    assert any("is-classifier is a legacy key" in e for e in _errors(config))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\xef\xbb\xbfcat\ndog\n", "byte-order mark"),
        (b"cat \ndog\n", "trailing whitespace on line(s) [1]"),
        (b"cat\ndog\t\n", "trailing whitespace on line(s) [2]"),
    ],
)
def test_label_file_defects(tmp_path: Path, content: bytes, needle: str) -> None:
    config = _config(tmp_path, "")
    (tmp_path / "labels.txt").write_bytes(content)
    assert any(needle in e for e in _errors(config)), _errors(config)


def test_missing_labels_file_is_an_error(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    (tmp_path / "labels.txt").unlink()
    assert any("labels.txt does not exist" in e and "fails to start" in e for e in _errors(config))


def test_nvinferserver_config_is_recognised_and_not_checked(tmp_path: Path) -> None:
    config = tmp_path / "config_triton.txt"
    config.write_text('infer_config {\n  unique_id: 1\n  backend {\n    triton { model_name: "ssd" }\n  }\n}\n')
    result = CliRunner().invoke(app, ["check-ds-config", str(config)])
    assert result.exit_code == 2, result.output
    assert "nvinferserver" in result.output and "no errors" not in result.output


def test_whitespace_only_label_line_is_a_label_for_nvinfer(tmp_path: Path) -> None:
    """Only EMPTY lines are skipped (line.empty(), nvdsinfer_context_impl.cpp 6.3 line 486): a line
    of spaces is a class, so 'cat / spaces / dog' is 3 labels for num-detected-classes=2."""
    config = _config(tmp_path, "")
    (tmp_path / "labels.txt").write_text("cat\n   \ndog\n")
    errors = _errors(config)
    assert any("holding only whitespace" in e for e in errors), errors
    assert any("num-detected-classes=2 but the labels file has 3" in e for e in errors), errors
