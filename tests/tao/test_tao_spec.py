"""TAO spec parsing: every tutorial spec parses; malformed ones give line:column; label rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tao_trt import facts_from_spec, load_spec, parse_proto_text, read_etlt_header
from tests.data import reference_path
from trtdeploy.errors import InputError


def test_every_reference_spec_parses() -> None:
    specs = reference_path("tao_specs")
    files = [
        p
        for p in sorted(specs.rglob("*"))
        if p.suffix in (".txt", ".cfg", ".yaml") and "labels" not in p.name
    ]
    assert len(files) >= 60
    for path in files:
        spec = load_spec(path)
        assert spec is not None and (spec.fields if hasattr(spec, "fields") else spec), path


@pytest.mark.parametrize(
    ("text", "where"),
    [("a {\n  b: 1\n", r" 2:7: "), ("a: 1\nb {\n  c: [1, 2\n}\n", r" 4:1: "), ("a 5\n", r" 1:3: ")],
)
def test_malformed_spec_reports_line_and_column(text: str, where: str) -> None:
    with pytest.raises(InputError, match=where):
        parse_proto_text(text, "bad.txt")


def test_malformed_yaml_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("model:\n  a: [1, 2\n")
    with pytest.raises(InputError, match=r"s.yaml:\d+:\d+"):
        load_spec(path)


SSD_SPEC = """
augmentation_config { output_width: 960 output_height: 544 output_channel: 3 }
nms_config { confidence_threshold: 0.2 clustering_iou_threshold: 0.6 top_k: 100 }
dataset_config {
  target_class_mapping { key: 'Car' value: 'Car' }
  target_class_mapping { key: 'van' value: 'Car' }
  target_class_mapping { key: 'Pedestrian' value: 'person' }
  target_class_mapping { key: "cyclist" value: "Bicycle" }
}
"""


@pytest.mark.parametrize(
    ("arch", "labels"),
    [
        ("ssd", ["background", "bicycle", "car", "person"]),
        ("retinanet", ["background", "bicycle", "car", "person"]),
        ("yolo_v4", ["bicycle", "car", "person"]),
    ],
)
def test_label_rules_lower_case_then_sort(arch: str, labels: list[str]) -> None:
    facts = facts_from_spec(parse_proto_text(SSD_SPEC), arch)
    assert facts.labels == labels
    assert (facts.height, facts.width, facts.color, facts.offsets) == (
        544,
        960,
        "BGR",
        [103.939, 116.779, 123.68],
    )
    assert (facts.score_threshold, facts.iou_threshold, facts.top_k) == (0.2, 0.6, 100)


def test_etlt_header(tmp_path: Path) -> None:
    uff = tmp_path / "a.etlt"
    uff.write_bytes(b"\x05\x00\x00\x00Input" + b"\x00" * 8)
    assert read_etlt_header(uff).input_name == "Input" and read_etlt_header(uff).is_uff
    onnx = tmp_path / "b.etlt"
    onnx.write_bytes(b"\x00\x00\x00\x00payload")
    assert not read_etlt_header(onnx).is_uff
    bad = tmp_path / "c.etlt"
    bad.write_bytes(b"\xff\xff\xff\x7fxx")
    with pytest.raises(InputError, match="not an .etlt"):
        read_etlt_header(bad)


def test_cli_gen_ds_config_from_tao_spec(tmp_path: Path) -> None:
    from trtdeploy.cli.main import app

    spec = tmp_path / "ssd.txt"
    spec.write_text(SSD_SPEC)
    etlt = tmp_path / "ssd.etlt"
    etlt.write_bytes(b"\x00\x00\x00\x00payload")
    args = [
        "gen-ds-config",
        "--tao-spec",
        str(spec),
        "--arch",
        "ssd",
        "--etlt",
        str(etlt),
        "--key",
        "k",
        "-o",
        str(tmp_path / "o"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "o" / "config_infer_primary_ssd.txt").read_text()
    assert (
        "num-detected-classes=4" in text
        and "parse-bbox-func-name=NvDsInferParseCustomNMSTLT" in text
    )
    assert (tmp_path / "o" / "ssd_labels.txt").read_text() == "background\nbicycle\ncar\nperson\n"
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "--force" in again.output
    assert CliRunner().invoke(app, ["gen-ds-config", "--help"]).exit_code == 0


def test_import_tao_trt_does_not_import_heavy_modules() -> None:
    import subprocess
    import sys

    code = "import sys, tao_trt, trtdeploy.deepstream; bad=[m for m in ('tensorflow','tensorrt','tensorrt_rtx','tf2onnx') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=False).returncode
        == 0
    )
