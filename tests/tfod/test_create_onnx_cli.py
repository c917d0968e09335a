"""create-onnx on the command line: the demo model end to end, and every kind of bad input
gets one readable error line, a non-zero exit, no traceback and no output file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import DEMO_MODEL
from tests.data import fixtures_root
from trtdeploy.cli.main import app

runner = CliRunner()
SAVED_MODEL = DEMO_MODEL / "saved_model"


def run(*args: str):
    return runner.invoke(app, list(args))


def assert_clean_failure(result, pattern: str, output: Path) -> None:
    text = result.output
    assert result.exit_code != 0, text
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    assert pattern in errors[0], errors[0]
    assert not output.exists()
    assert not output.with_name(output.stem + ".deploy.json").exists()
    assert not list(output.parent.glob(".*.tmp")) if output.parent.exists() else True


def fake_saved_model(root: Path, pipeline: str) -> Path:
    """A folder that looks like an export (saved_model.pb present) with a given pipeline.config;
    enough for checks that happen before TensorFlow loads anything."""
    (root / "saved_model").mkdir(parents=True)
    (root / "saved_model" / "saved_model.pb").write_bytes(b"")
    (root / "pipeline.config").write_text(pipeline)
    return root / "saved_model"


def test_missing_saved_model(tmp_path):
    out = tmp_path / "m.onnx"
    assert_clean_failure(run("create-onnx", "--saved-model", str(tmp_path / "nope"), "-o", str(out)), "not found", out)


def test_folder_that_is_not_a_saved_model(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "m.onnx"
    result = run("create-onnx", "--saved-model", str(tmp_path / "empty"), "-o", str(out))
    assert_clean_failure(result, "is not a TensorFlow saved model", out)


def test_faster_rcnn_refused(tmp_path):
    sm = fake_saved_model(tmp_path / "frcnn", "model { faster_rcnn { num_classes: 2 } }")
    out = tmp_path / "m.onnx"
    assert_clean_failure(run("create-onnx", "--saved-model", str(sm), "-o", str(out)), "Faster R-CNN", out)


def test_existing_output_without_force(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep me")
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "-o", str(out))
    assert result.exit_code == 1 and "--force" in result.output and "Traceback" not in result.output
    assert out.read_bytes() == b"keep me"


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "m.onnx"  # its parent is a file: the folder cannot be created
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "-o", str(out))
    assert result.exit_code == 1 and "output folder" in result.output
    assert "Traceback" not in result.output


def test_label_map_with_ids_beyond_num_classes(tmp_path):
    labels = tmp_path / "labels.pbtxt"
    labels.write_text("item { id: 1 name: 'a' }\nitem { id: 9 name: 'b' }\n")
    out = tmp_path / "m.onnx"
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "--label-map", str(labels), "-o", str(out))
    assert_clean_failure(result, "label id 9", out)


def test_conflicting_batch_options(tmp_path):
    out = tmp_path / "m.onnx"
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "-o", str(out), "--batch", "2", "--dynamic-batch")
    assert result.exit_code == 2 and "exclude each other" in result.output


@pytest.mark.parametrize("opset", ["9", "19"])  # refused before TensorFlow loads
def test_unsupported_opset(tmp_path, opset):
    out = tmp_path / "m.onnx"
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "-o", str(out), "--opset", opset)
    assert_clean_failure(result, f"--opset {opset} is not supported: use 10-18", out)
    assert result.exit_code == 2


@pytest.mark.slow
@pytest.mark.tf  # the class-count mismatch shows once TensorFlow has loaded the saved model
def test_pipeline_config_that_does_not_match_the_saved_model(tmp_path, monkeypatch):
    """Refused from the saved model's signature (raw_detection_scores [.., 6]), before tf2onnx runs."""
    import tfod_trt.tf_graph

    def no_conversion(*args, **kwargs):
        raise AssertionError("tf2onnx ran before the class-count check")

    monkeypatch.setattr(tfod_trt.tf_graph, "_tf2onnx", no_conversion)
    # The 5-class saved model with a 90-class model's pipeline.config.
    other = fixtures_root() / "ssd_mobilenet_v2_320x320_coco17_tpu-8"  # optional: a fallback follows
    config = tmp_path / "pipeline.config"
    if (other / "pipeline.config").is_file():
        shutil.copy(other / "pipeline.config", config)
    else:
        config.write_text((DEMO_MODEL / "pipeline.config").read_text().replace("num_classes: 5", "num_classes: 90"))
    out = tmp_path / "m.onnx"
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "--pipeline-config", str(config), "-o", str(out))
    assert_clean_failure(result, "num_classes=90", out)


@pytest.mark.slow
@pytest.mark.tf
def test_demo_end_to_end(tmp_path):
    """The README demo: create-onnx, then verify against TensorFlow exits 0."""
    out = tmp_path / "model.onnx"
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "--label-map", str(DEMO_MODEL / "label_map.pbtxt"),
                 "-o", str(out), "--nms", "onnx", "--dynamic-batch")
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_name("model.deploy.json").read_text())
    assert card["labels"] == ["person", "bicycle", "car", "traffic light", "dog"]
    assert card["input"]["shape"] == [-1, 300, 300, 3]
    assert card["output"]["names"] == ["num_detections", "detection_boxes", "detection_scores", "detection_classes"]
    # --exact: the score tolerance from TensorFlow's own float32 error measured in this run
    result = run("verify", "--saved-model", str(SAVED_MODEL), "--onnx", str(out), "--batch", "4", "--exact")
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "TF vs exact" in result.output and "float32 noise" in result.output


@pytest.mark.slow
@pytest.mark.tf
def test_nchw_static_batch_matches_tensorflow_and_debug_dir(tmp_path):
    """--input-format nchw --batch 2: a [2,3,H,W] input (tf2onnx transposes inside the graph) that still
    gives TensorFlow's detections when fed channels-first pixels. --debug-dir: the graph before
    and after every pass, in order, each a valid ONNX model."""
    import onnx

    from tfod_trt.passes import CORE_PASSES, HEAD_PASSES

    out = tmp_path / "nchw.onnx"
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "-o", str(out), "--input-format", "nchw",
                 "--batch", "2", "--debug-dir", str(tmp_path / "debug"))
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "debug").iterdir())
    expected = ["1-core-00_input.onnx", *(f"1-core-{i:02d}_{name}.onnx" for i, (name, _) in enumerate(CORE_PASSES, 1)),
                "2-head-00_input.onnx", *(f"2-head-{i:02d}_{name}.onnx" for i, (name, _) in enumerate(HEAD_PASSES, 1))]
    assert written == expected
    final = onnx.load(str(tmp_path / "debug" / expected[-1]))
    assert [o.name for o in final.graph.output] == [o.name for o in onnx.load(str(out)).graph.output]
    card = json.loads(out.with_name("nchw.deploy.json").read_text())
    assert card["input"]["shape"] == [2, 3, 300, 300] and card["input"]["layout"] == "NCHW"
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 300, 300]
    result = run("verify", "--saved-model", str(SAVED_MODEL), "--onnx", str(out), "--exact")  # NCHW, batch 2
    assert result.exit_code == 0, result.output
    assert "│     2 │" in result.output  # the table row of a run at the static batch of 2
    assert "ONNX vs exact" in result.output and "conversion error" not in result.output


@pytest.mark.slow
@pytest.mark.tf
def test_input_size_other_than_the_export_is_refused(tmp_path):
    """TFOD exports bake their input size and anchors: another --input-size cannot be honoured."""
    out = tmp_path / "m.onnx"
    result = run("create-onnx", "--saved-model", str(SAVED_MODEL), "-o", str(out), "--input-size", "320x320")
    assert_clean_failure(result, "resizes every image to 300x300, not the requested 320x320", out)
