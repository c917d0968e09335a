"""import-tao: a TAO ONNX + spec -> ONNX + deploy card, read by gen-ds-config and build-engine.

Done-when of issue 12: on the reference TAO specs (set up as tests/deepstream/
test_tao_reference_configs.py sets them up), the card import-tao writes makes gen-ds-config
write byte-for-byte the configs and labels its --tao-spec route writes, and build-engine reads
the card (a tiny ONNX with the TAO output names stands in for the TAO model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.deepstream.ds_helpers import (
    NVINFER,
    SPECS,
    need_reference,
    reference_properties,
    set_field,
    set_target_classes,
    tiny_onnx,
)
from tests.deepstream.test_tao_reference_configs import (
    BATCHED_NMS,
    EFFICIENT_NMS,
    FRCNN_NMS,
    KITTI4,
    NMS_TRT,
    SSD_LIKE,
    typed_onnx,
)
from trtdeploy.cli import ds_config, import_tao
from trtdeploy.deploy_card import DeployCard

runner = CliRunner()
# The two commands on an app of their own (the same register() calls trtdeploy.cli.main makes).
app = typer.Typer()
for command in (import_tao, ds_config):
    command.register(app)


def _cli(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _ssd_like(tmp_path: Path, arch: str, spec: str):
    text = set_target_classes((SPECS / spec).read_text(), KITTI4)
    text = set_field(set_field(text, "output_width", 960), "output_height", 544)
    outputs = NMS_TRT if "yolo" not in arch else BATCHED_NMS
    return text, typed_onnx(tmp_path / f"{arch}.onnx", "Input", [-1, 3, 544, 960], outputs), None


def _faster_rcnn(tmp_path: Path):
    text = set_target_classes((SPECS / "faster_rcnn/specs/default_spec_resnet18.txt").read_text(), KITTI4)
    text = set_field(set_field(text, "height", 544), "width", 960)
    return text, typed_onnx(tmp_path / "frcnn.onnx", "input_image", [-1, 3, 544, 960], FRCNN_NMS), None


def _mask_rcnn(tmp_path: Path):
    text = (SPECS / "mask_rcnn/specs/maskrcnn_train_resnet50.txt").read_text()
    text = set_field(text, "num_classes", 2).replace('image_size: "(832, 1344)"', 'image_size: "(576, 960)"')
    (tmp_path / "people.txt").write_text("people\n")
    # Rows of 6 values (the parser's read of generate_detections) and per-class 28x28 mask logits.
    outputs = [("generate_detections", "float32", [1, 100, 6]), ("mask_fcn_logits/BiasAdd", "float32", [1, 100, 2, 28, 28])]
    model = typed_onnx(tmp_path / "mrcnn.onnx", "Input", [-1, 3, 576, 960], outputs)
    return text, model, tmp_path / "people.txt"


def _unet(tmp_path: Path):
    text = set_field((SPECS / "unet/tao_isbi/specs/unet_train_resnet_unet_isbi.txt").read_text(),
                     "model_input_channels", 3)
    return text, tiny_onnx(tmp_path / "unet.onnx", "input_1", [-1, 3, 320, 320], ["argmax_1"]), None


def _efficientdet(tmp_path: Path):
    text = (SPECS / "efficientdet_tf2/specs/spec_train.yaml").read_text().replace("num_classes: 91", "num_classes: 2")
    text = text.replace("input_width: 512", "input_width: 960").replace("input_height: 512", "input_height: 544")
    (tmp_path / "map.yaml").write_text("1: 'car'\n")
    return text, typed_onnx(tmp_path / "d0.onnx", "input", [-1, 544, 960, 3], EFFICIENT_NMS), tmp_path / "map.yaml"


def _detectnet_v2(tmp_path: Path):
    text = (SPECS / "detectnet_v2/specs/detectnet_v2_train_resnet18_kitti.txt").read_text()
    text = set_field(set_field(text, "output_image_width", 960), "output_image_height", 544)
    model = tiny_onnx(tmp_path / "dnv2.onnx", "input_1:0", [-1, 3, 544, 960],
                      ["output_bbox/BiasAdd:0", "output_cov/Sigmoid:0"])
    return text, model, None


def _classification(tmp_path: Path):
    text = (SPECS / "classification_tf1/tao_voc/specs/classification_spec.cfg").read_text()
    (tmp_path / "classes.txt").write_text("cat\ndog\nhorse\n")
    model = typed_onnx(tmp_path / "cls.onnx", "input_1", [-1, 3, 224, 224], [("predictions/Softmax", "float32", [1, 3])])
    return text, model, tmp_path / "classes.txt"


def _multitask(tmp_path: Path):
    """Two tasks: one labels line each, one softmax output each; the card holds the labels flat and
    the outputs' class counts split them back into lines."""
    text = (SPECS / "multitask_classification/specs/mclassification_spec.cfg").read_text()
    (tmp_path / "tasks.txt").write_text("black;blue;red\nbag;shoe\n")
    outputs = [("base_color/Softmax", "float32", [1, 3]), ("category/Softmax", "float32", [1, 2])]
    return text, typed_onnx(tmp_path / "mtl.onnx", "input_1", [-1, 3, 80, 60], outputs), tmp_path / "tasks.txt"


CASES = {
    **{arch: (lambda tmp, a=arch, s=spec: _ssd_like(tmp, a, s)) for arch, spec, _, _ in SSD_LIKE},
    "faster_rcnn": _faster_rcnn,
    "mask_rcnn": _mask_rcnn,
    "unet": _unet,
    "efficientdet": _efficientdet,
    "detectnet_v2": _detectnet_v2,
    "classification": _classification,
    "multitask_classification": _multitask,
}


@pytest.mark.parametrize("arch", list(CASES))
def test_import_tao_card_gives_the_spec_routes_configs(tmp_path: Path, arch: str) -> None:
    need_reference()
    text, model, labels = CASES[arch](tmp_path)
    spec = tmp_path / ("spec.yaml" if arch == "efficientdet" else "spec.txt")
    spec.write_text(text)
    label_args = ["--labels", labels] if labels else []
    # today's route: the spec straight into gen-ds-config
    _cli("gen-ds-config", "--tao-spec", spec, "--arch", arch, "--onnx", model, *label_args,
         "-o", tmp_path / "ds_spec", "--name", arch)
    # the card route: import-tao, then gen-ds-config on the card alone
    before = model.read_bytes()
    out = _cli("import-tao", spec, "--arch", arch, "--onnx", model, *label_args)
    assert f"tao_{arch}" in out
    assert model.read_bytes() == before  # the input is not changed
    card_path = model.with_name(model.stem + ".deploy.json")
    _cli("gen-ds-config", card_path, "-o", tmp_path / "ds_card", "--name", arch)
    spec_files = sorted(p.name for p in (tmp_path / "ds_spec").iterdir())
    assert spec_files == sorted(p.name for p in (tmp_path / "ds_card").iterdir())
    assert len(spec_files) == 3  # .txt, .yml, labels
    for name in spec_files:
        assert (tmp_path / "ds_card" / name).read_text() == (tmp_path / "ds_spec" / name).read_text(), name
    card = DeployCard.load(card_path)
    assert card.provenance.model_family == f"tao_{arch}" and card.provenance.framework == "tao"
    assert set(card.provenance.source_files) == {"spec", "onnx"} | ({"labels"} if labels else set())


def test_output_copy_is_the_same_bytes_and_inputs_are_never_overwritten(tmp_path: Path) -> None:
    need_reference()
    text, model, _ = _ssd_like(tmp_path, "ssd", SSD_LIKE[0][1])
    spec = tmp_path / "spec.txt"
    spec.write_text(text)
    out = tmp_path / "models" / "ssd_copy.onnx"
    _cli("import-tao", spec, "--arch", "ssd", "--onnx", model, "-o", out)
    assert out.read_bytes() == model.read_bytes()
    card = DeployCard.load(tmp_path / "models" / "ssd_copy.deploy.json")
    import hashlib

    assert card.onnx_sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    again = runner.invoke(app, ["import-tao", str(spec), "--arch", "ssd", "--onnx", str(model), "-o", str(out)])
    assert again.exit_code == 1 and "exists; pass --force" in again.output
    # an -o that is an input (here a link to the spec) is refused even with --force; the spec is untouched
    spec_as_output = tmp_path / "x.onnx"
    spec_as_output.symlink_to(spec)
    refused = runner.invoke(app, ["import-tao", str(spec), "--arch", "ssd", "--onnx", str(model), "-o",
                                  str(spec_as_output), "--force"])
    assert refused.exit_code != 0 and spec.read_text() == text


def test_refusals_are_one_line(tmp_path: Path) -> None:
    model = tiny_onnx(tmp_path / "m.onnx", "Input", [-1, 3, 544, 960], ["NMS", "NMS_1"])
    spec = tmp_path / "spec.txt"
    spec.write_text("dataset_config { }\n")
    unknown = runner.invoke(app, ["import-tao", str(spec), "--arch", "yolo_v9", "--onnx", str(model)])
    assert unknown.exit_code == 2 and "not a TAO architecture" in unknown.output
    etlt = tmp_path / "m.etlt"
    etlt.write_bytes(b"\0\0\0\0payload")
    refused = runner.invoke(app, ["import-tao", str(spec), "--arch", "ssd", "--onnx", str(etlt)])
    assert refused.exit_code == 1 and "encrypted .etlt" in refused.output
    missing = runner.invoke(app, ["import-tao", str(spec), "--arch", "ssd", "--onnx", str(tmp_path / "no.onnx")])
    assert missing.exit_code == 1 and "not found" in missing.output
    for result in (unknown, refused, missing):
        assert [line for line in result.output.splitlines() if line.startswith("error:")] != []


def _buildable_ssd_onnx(path: Path) -> Path:
    """The TAO SSD outputs (NMS f32 [1,1,K,7], NMS_1 i32 [1,1,1,1]) computed from the input, so
    TensorRT has a network to build (the real model ends in the NMS_TRT plugin)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = NMS_TRT[0][2][2]
    nodes = [
        helper.make_node("ReduceMean", ["Input"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", ["mean", "rows"], ["NMS"]),
        helper.make_node("Cast", ["mean"], ["NMS_1"], to=TensorProto.INT32),
    ]
    graph = helper.make_graph(
        nodes, "tao_ssd_stand_in", [helper.make_tensor_value_info("Input", TensorProto.FLOAT, [1, 3, 544, 960])],
        [helper.make_tensor_value_info("NMS", TensorProto.FLOAT, [1, 1, k, 7]),
         helper.make_tensor_value_info("NMS_1", TensorProto.INT32, [1, 1, 1, 1])],
        [numpy_helper.from_array(np.ones((1, 1, k, 7), np.float32), "rows")],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.rtx
def test_build_engine_reads_the_import_tao_card(tmp_path: Path) -> None:
    need_reference()
    from trtdeploy.engine import BuildOptions, build_engine, load_sidecar

    text, _, _ = _ssd_like(tmp_path, "ssd", SSD_LIKE[0][1])
    spec = tmp_path / "spec.txt"
    spec.write_text(text)
    model = _buildable_ssd_onnx(tmp_path / "export.onnx")
    out = tmp_path / "models" / "ssd.onnx"
    _cli("import-tao", spec, "--arch", "ssd", "--onnx", model, "-o", out)
    card = DeployCard.load(out.with_name("ssd.deploy.json"))
    result = build_engine(out, BuildOptions(backend="tensorrt_rtx", precision="fp32"))
    sidecar = load_sidecar(result.engine_path)
    assert sidecar.deploy_card == card.to_dict()  # build-engine read the card import-tao wrote
    assert [(t.name, t.dtype) for t in sidecar.tensors if t.mode == "output"] == [("NMS", "float32"),
                                                                                 ("NMS_1", "int32")]
    # and gen-ds-config takes card + engine: the engine's name, precision and the TAO parser
    _cli("gen-ds-config", out.with_name("ssd.deploy.json"), "--engine", result.engine_path, "-o", tmp_path / "ds")
    from trtdeploy.deepstream import read_config

    props = read_config(tmp_path / "ds" / "config_infer_primary_ssd.txt").properties
    assert props["network-mode"] == "0" and props["parse-bbox-func-name"] == "NvDsInferParseCustomNMSTLT"
    assert props["model-engine-file"].endswith(result.engine_path.name)
    ref = reference_properties(NVINFER / SSD_LIKE[0][2])  # deepstream_tao_apps' own SSD config
    assert props["offsets"] == ref["offsets"] and props["model-color-format"] == ref["model-color-format"]


def test_calibration_preprocesses_a_tao_card_as_deepstream_does(tmp_path: Path) -> None:
    """calibration reads the import-tao card: BGR pixels minus the means, the net-scale-factor
    and offsets of deepstream_tao_apps' own SSD config (nvinfer: y = scale * (x - offset[c]))."""
    need_reference()
    import numpy as np
    from PIL import Image

    from calibration.preprocess import PreprocessSpec

    text, model, _ = _ssd_like(tmp_path, "ssd", SSD_LIKE[0][1])
    spec = tmp_path / "spec.txt"
    spec.write_text(text)
    _cli("import-tao", spec, "--arch", "ssd", "--onnx", model)
    card = DeployCard.load(model.with_name(model.stem + ".deploy.json"))
    pre = PreprocessSpec.from_card_dict(card.to_dict())
    rgb = (10, 20, 30)
    tensor = pre.tensor(Image.new("RGB", (960, 544), rgb))
    ref = reference_properties(NVINFER / SSD_LIKE[0][2])
    offsets = [float(v) for v in ref["offsets"].split(";")]
    bgr = rgb[::-1]  # model-color-format=1 in the reference: BGR
    assert ref["model-color-format"] == "1"
    expected = [float(ref["net-scale-factor"]) * (bgr[c] - offsets[c]) for c in range(3)]
    assert tensor.shape == (3, 544, 960)
    np.testing.assert_allclose(tensor[:, 0, 0], expected, rtol=1e-6)


def test_a_model_of_another_input_size_or_an_existing_card_is_refused(tmp_path: Path) -> None:
    need_reference()
    text, _, _ = _ssd_like(tmp_path, "ssd", SSD_LIKE[0][1])  # the spec says 544x960
    spec = tmp_path / "spec.txt"
    spec.write_text(text)
    other = typed_onnx(tmp_path / "other.onnx", "Input", [-1, 3, 300, 300], NMS_TRT)
    wrong = runner.invoke(app, ["import-tao", str(spec), "--arch", "ssd", "--onnx", str(other)])
    assert wrong.exit_code == 1 and "544x960" in wrong.output and "300x300" in wrong.output
    assert not (tmp_path / "other.deploy.json").exists()
    model = typed_onnx(tmp_path / "ssd.onnx", "Input", [-1, 3, 544, 960], NMS_TRT)
    _cli("import-tao", spec, "--arch", "ssd", "--onnx", model)
    again = runner.invoke(app, ["import-tao", str(spec), "--arch", "ssd", "--onnx", str(model)])
    assert again.exit_code == 1 and "ssd.deploy.json exists" in again.output
    _cli("import-tao", spec, "--arch", "ssd", "--onnx", model, "--force")
    folder = runner.invoke(app, ["import-tao", str(spec), "--arch", "ssd", "--onnx", str(model), "-o", str(tmp_path)])
    assert folder.exit_code == 2 and ".onnx file" in folder.output
