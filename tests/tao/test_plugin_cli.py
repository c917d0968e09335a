"""`trtdeploy rewrite-plugins`, and the done-when of issue 16 on the DeepStream side: gen-ds-config
on the rewritten model writes the same parser keys as on the plugin model, and ds-run reads both
the same way (TAO-shaped graphs of tests/tao/tao_graphs.py, cards from import-tao on the
tutorial specs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import typer
from typer.testing import CliRunner

from tests.deepstream.ds_helpers import SPECS, need_reference, set_field, set_target_classes
from tests.tao import tao_graphs
from trtdeploy.cli import ds_config, ds_run, import_tao, rewrite_plugins
from trtdeploy.deploy_card import DeployCard
from trtdeploy.files import sha256_file
from trtdeploy.rewrites.driver import plugin_nodes

runner = CliRunner()
app = typer.Typer()
for command in (import_tao, rewrite_plugins, ds_config, ds_run):
    command.register(app)


def _cli(*args, code: int = 0) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def test_rewrite_plugins_command(tmp_path: Path):
    source = tmp_path / "yolo.onnx"
    onnx.save(tao_graphs.yolo_v3().model, str(source))
    before = source.read_bytes()
    out = tmp_path / "yolo.std.onnx"
    text = _cli("rewrite-plugins", source, "-o", out, "--plugin", "BatchedNMSDynamic_TRT")
    assert (
        "1 plugin node(s) rewritten (BatchedNMSDynamic_TRT); kept BatchTilePlugin_TRT, ResizeNearest_TRT"
        in " ".join(text.split())
    )
    assert {op for _, op in plugin_nodes(onnx.load(str(out)))} == {"BatchTilePlugin_TRT", "ResizeNearest_TRT"}
    assert source.read_bytes() == before  # the input is never changed
    assert "exists; pass --force" in _cli("rewrite-plugins", source, "-o", out, code=1)
    _cli("rewrite-plugins", source, "-o", out, "--force")
    assert plugin_nodes(onnx.load(str(out))) == []
    assert "no TensorRT plugin nodes" in _cli("rewrite-plugins", out, "-o", tmp_path / "again.onnx", code=2)
    assert "not a registered TensorRT plugin" in _cli(
        "rewrite-plugins", source, "-o", tmp_path / "x.onnx", "--plugin", "NoSuchPlugin", code=2
    )
    assert "trtdeploy rewrite-plugins ssd_resnet18.onnx -o" in _cli("rewrite-plugins", "--help")  # examples
    assert not (tmp_path / "x.onnx").exists()


CASES = {  # arch -> (graph builder, spec under tao_specs, spec size fields)
    "ssd": (tao_graphs.ssd, "ssd/specs/ssd_retrain_resnet18_kitti.txt"),
    "yolo_v4": (tao_graphs.yolo_v4, "yolo_v4/specs/yolo_v4_retrain_resnet18_kitti.txt"),
}


@pytest.mark.parametrize("arch", list(CASES))
def test_ds_config_and_ds_run_read_the_rewritten_model_as_the_plugin_model(tmp_path: Path, arch: str):
    need_reference()
    make, spec_name = CASES[arch]
    graph = make()
    size = graph.input_shape[1]
    text = set_target_classes((SPECS / spec_name).read_text(), list(tao_graphs.KITTI))
    spec = tmp_path / "spec.txt"
    spec.write_text(set_field(set_field(text, "output_width", size), "output_height", size))
    plugin_onnx = tmp_path / f"{arch}.onnx"
    onnx.save(graph.model, str(plugin_onnx))
    _cli("import-tao", spec, "--arch", arch, "--onnx", plugin_onnx)
    std_onnx = tmp_path / f"{arch}_std.onnx"
    _cli("rewrite-plugins", plugin_onnx, "-o", std_onnx)
    card = DeployCard.load(tmp_path / f"{arch}_std.deploy.json")  # the card follows the model
    assert card.onnx_sha256 == sha256_file(std_onnx)
    assert card.output.names == list(graph.outputs)

    configs = {}
    for name, model in (("plugin", plugin_onnx), ("std", std_onnx)):
        _cli(
            "gen-ds-config", model.with_name(model.stem + ".deploy.json"), "-o", tmp_path / f"ds_{name}", "--name", arch
        )
        text = (tmp_path / f"ds_{name}" / f"config_infer_primary_{arch}.txt").read_text()
        configs[name] = [line for line in text.splitlines() if model.name not in line]
    assert configs["plugin"] == configs["std"]  # every key but the model's file names
    assert any(line.startswith("parse-bbox-func-name=NvDsInferParseCustom") for line in configs["std"])

    from PIL import Image

    image = tmp_path / "frame.png"
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(image)
    found = {}
    for name in ("plugin", "std"):
        _cli(
            "ds-run",
            tmp_path / f"ds_{name}" / f"config_infer_primary_{arch}.txt",
            "-i",
            image,
            "-o",
            tmp_path / f"run_{name}",
        )
        found[name] = json.loads((tmp_path / f"run_{name}" / "frame.json").read_text())
    objects = found["plugin"].get("objects", found["plugin"])
    assert objects, "the plugin model must detect something for the comparison to mean anything"
    assert found["plugin"] == found["std"]
