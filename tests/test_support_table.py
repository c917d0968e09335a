"""The README's support tables are the capability matrix's, and the matrix says what the sources say."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO
from trtdeploy import capabilities, contracts
from trtdeploy.errors import UsageError


def _generator():
    spec = importlib.util.spec_from_file_location("gen_support_table", REPO / "docs" / "gen_support_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_are_the_matrix():
    gen = _generator()
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert gen.sections(text) == {name: make() for name, make in capabilities.GENERATED_SECTIONS.items()}, (
        "README.md's support tables are out of date: run python docs/gen_support_table.py"
    )


def test_a_changed_matrix_is_caught(monkeypatch):
    gen = _generator()
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert gen.rendered(text) == text
    monkeypatch.setitem(capabilities.TARGETS, "trt9", ("tensorrt", "10.0"))  # one more column
    assert gen.rendered(text) != text


def _row(head: str, contract: str):
    return next(r for r in capabilities.matrix() if r.family.key == "tfod_ssd" and r.head == head
                and r.contract.key == contract)


@pytest.mark.parametrize(
    ("head", "contract", "expected"),
    [
        # TensorRT 11.0 removed BatchedNMS(Dynamic)_TRT; TensorRT-RTX ships no plugin library
        # but ROIAlign_TRT; RTX parses NonMaxSuppression but cannot build it (DOMAIN.md s.1,
        # engine/capabilities.py). A plugin the backend lacks is built after build-engine's
        # rewrite into standard ops (trtdeploy/rewrites: BatchedNMS and EfficientNMS have one);
        # the NMS layer has no such way round on RTX.
        ("batched", "batched", {"trt10": "yes", "trt11": "rewritten", "rtx": "rewritten"}),
        ("efficient", "tfod", {"trt10": "yes", "trt11": "yes", "rtx": "rewritten"}),
        ("onnx", "tfod", {"trt10": "yes", "trt11": "yes", "rtx": "no"}),
        ("none", "raw", {"trt10": "yes", "trt11": "yes", "rtx": "yes"}),
    ],
)
def test_backend_cells(head, contract, expected):
    row = _row(head, contract)

    def kind(support):
        if not support.ok:
            return "no"
        return "rewritten" if support.cell().startswith("yes (build-engine rewrites ") else "yes"

    assert {t: kind(row.support(t)) for t in capabilities.TARGETS} == expected


def test_deepstream_column():
    # NvDsInferParseCustomBatchedNMSTLT reads left = box[0] * width (hiennguyen9874/deepstream-sources
    # branch 6.3, sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp l. 518-523):
    # x1,y1,x2,y2 boxes, so the y1,x1,y2,x2 batched contract has no parser and ds/batchednms has it.
    assert _row("batched", "batched").ds_parsers == ()
    assert _row("batched", "ds/batchednms").ds_parsers == ("batchednms",)
    # NvDsInferParseCustomTfSSD finds its layers by name only if they are FLOAT (same file, l. 221):
    # the tfod contract's int32 classes are not read; ds/sdk-tfssd is.
    assert _row("efficient", "tfod").ds_parsers == ()
    assert _row("onnx", "ds/sdk-tfssd").ds_parsers == ("sdk-tfssd",)


@pytest.mark.parametrize(("head", "target", "hint"), [
    ("onnx", "rtx", "use --nms efficient or batched or none"),
])
def test_refusals_name_what_builds(head, target, hint):
    with pytest.raises(UsageError, match=f"--nms {head} cannot be built for --target {target}.*{hint}$"):
        capabilities.check_head(head, target)


def test_supported_and_unknown_targets():
    capabilities.check_head("batched", "trt10")
    capabilities.check_head("none", "rtx")
    capabilities.check_head("efficient", None)
    with pytest.raises(UsageError, match="--target 'trt9' is not one of trt10, trt11, rtx"):
        capabilities.check_head("none", "trt9")


def test_every_card_layout_maps_to_one_contract():
    for key, contract in contracts.CONTRACTS.items():
        found = contracts.contract_for_output(contract.layout, contract.ds_parser, contract.box_format)
        assert found.key == key
    # written before parser variants existed: --output-layout deepstream made sdk-efficientdet
    assert contracts.contract_for_output("deepstream").key == "ds/sdk-efficientdet"


# --- create-onnx asks the matrix before converting -------------------------------------------


def _create_onnx(tmp_path, *args):
    from typer.testing import CliRunner

    from trtdeploy.cli.main import app

    out = tmp_path / "m.onnx"
    return CliRunner().invoke(app, ["create-onnx", "--saved-model", str(tmp_path / "none"), "-o", str(out), *args]), out


@pytest.mark.parametrize(("args", "message"), [
    (["--nms", "onnx", "--target", "rtx"], "--nms onnx cannot be built for --target rtx"),
    (["--nms", "onnx", "--output-layout", "deepstream", "--target", "rtx"], "cannot build the NMS layer"),
    (["--nms", "none", "--target", "trt12"], "--target 'trt12' is not one of"),
])
def test_create_onnx_refuses_heads_the_target_cannot_build(tmp_path, args, message):
    result, out = _create_onnx(tmp_path, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize("args", [
    ["--nms", "none", "--target", "rtx"], ["--target", "rtx"], ["--target", "trt11"],
    # plugins the target lacks, which build-engine rewrites into standard ops
    ["--nms", "batched", "--target", "trt11"], ["--ds-parser", "batchednms", "--target", "rtx"],
    ["--nms", "efficient", "--target", "rtx"], ["--output-layout", "deepstream", "--target", "rtx"],
])
def test_create_onnx_with_a_buildable_target_goes_on_to_read_the_model(tmp_path, args):
    result, _ = _create_onnx(tmp_path, *args)
    assert result.exit_code == 1 and "not found" in result.output  # refused later, for the missing model


def test_the_default_head_is_the_first_the_target_builds():
    assert capabilities.default_head(None) == "efficient"
    assert capabilities.default_head("trt11") == "efficient"  # EfficientNMS_TRT is still shipped in 11
    # RTX: no plugins, no NMS layer; the heads it builds only after a rewrite come after
    assert capabilities.default_head("rtx") == "none"
