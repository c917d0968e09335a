"""import-onnx on tiny hand-made graphs shaped like the tf2onnx efficientdet tutorial's ONNX
(uint8 image of open size in, ``detections`` [B,K,7] out): input fix, row rewrite, refusals."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trtdeploy.deploy_card import DeployCard, card_path_for
from trtdeploy.errors import OutputExistsError, UnsupportedModelError, UsageError
from trtdeploy.import_onnx import ImportOnnxOptions, import_onnx

ROWS = np.array([[
    [0, 10, 20, 110, 220, 0.9, 3],  # image id, ymin, xmin, ymax, xmax (pixels), score, class (1-based)
    [0, 50, 60, 70, 80, 0.5, 1],
    [0, 0, 0, 0, 0, -1e5, 0],  # padding as AutoML's TF1 export writes it (_DUMMY_DETECTION_SCORE)
    [0, 0, 0, 0, 0, 0, 0],  # padding as today's export leaves it
]], np.float32)


def tutorial_like(path, rows=ROWS, dtype=TensorProto.UINT8, name="detections", cast_first=True):
    """image -> Cast to float -> mean * 0 + rows: the rows come out whatever the pixels. Without
    ``cast_first`` the image passes an Identity first (a graph that does not start with the cast)."""
    cast_input = "image"
    nodes = []
    if not cast_first:
        nodes.append(helper.make_node("Identity", ["image"], ["same"]))
        cast_input = "same"
    nodes += [
        helper.make_node("Cast", [cast_input], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["rows", "nothing"], [name]),
    ]
    graph = helper.make_graph(
        nodes, "tutorial_like",
        [helper.make_tensor_value_info("image", dtype, [1, None, None, 3])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(rows.shape))],
        [helper.make_tensor("rows", TensorProto.FLOAT, rows.shape, rows.ravel()),
         helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def run(path, card, hw=(256, 512)):
    from trtdeploy.runners import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(path, card)
    pixels = np.random.default_rng(0).integers(0, 256, (1, *hw, 3)).astype(np.float32)
    return runner, runner.infer(pixels), runner.detections(pixels)


def test_tfod_layout_rows_become_detections(tmp_path):
    src = tutorial_like(tmp_path / "tutorial.onnx")
    result = import_onnx(ImportOnnxOptions(src, tmp_path / "m.onnx", num_classes=4, input_size=(256, 512),
                                           output_layout="tfod"))
    card = DeployCard.load(card_path_for(tmp_path / "m.onnx"))
    assert card.input.shape == [1, 256, 512, 3] and card.input.dtype == "float32" and card.output.layout == "tfod"
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert not any(n.op_type == "Cast" and n.input[0] == model.graph.input[0].name for n in model.graph.node)
    assert "cast removed" in result.card.provenance.architecture
    _, outputs, (dets,) = run(tmp_path / "m.onnx", card)
    assert outputs["num_detections"].tolist() == [[2]] and outputs["detection_classes"].dtype == np.int32
    np.testing.assert_allclose(dets.boxes, [[10 / 256, 20 / 512, 110 / 256, 220 / 512], [50 / 256, 60 / 512, 70 / 256, 80 / 512]],
                               rtol=1e-6)
    assert dets.classes.tolist() == [2, 0] and dets.scores.tolist() == pytest.approx([0.9, 0.5])
    assert card.labels == ["class_1", "class_2", "class_3", "class_4"]


@pytest.mark.parametrize(("box_format", "columns"), [
    ("x1y1x2y2", [20, 10, 220, 110]),  # AutoML tf2 generate_detections_from_nms_output
    ("yxhw", [10, 20, 100, 200]),  # AutoML TF1 _generate_detections_tf: y, x, height, width
])
def test_other_box_columns(box_format, columns, tmp_path):
    rows = ROWS.copy()
    rows[0, 0, 1:5] = columns
    src = tutorial_like(tmp_path / "t.onnx", rows)
    import_onnx(ImportOnnxOptions(src, tmp_path / "m.onnx", num_classes=4, input_size=(256, 512),
                                  output_layout="tfod", box_format=box_format))
    _, _, (dets,) = run(tmp_path / "m.onnx", DeployCard.load(card_path_for(tmp_path / "m.onnx")))
    np.testing.assert_allclose(dets.boxes[0], [10 / 256, 20 / 512, 110 / 256, 220 / 512], rtol=1e-6)


def test_deepstream_layout_and_labels(tmp_path):
    """The default output is shaped for the default DeepStream parser variant (pixel boxes etc.)."""
    from trtdeploy import contracts
    from trtdeploy.deploy_card import default_ds_parser

    (tmp_path / "labels.txt").write_text("cat\ndog\n\nbird\nfish\n", encoding="utf-8")
    src = tutorial_like(tmp_path / "t.onnx", cast_first=False)
    import_onnx(ImportOnnxOptions(src, tmp_path / "m.onnx", labels=tmp_path / "labels.txt", input_size=(256, 512)))
    card = DeployCard.load(card_path_for(tmp_path / "m.onnx"))
    expected = contracts.ds_contracts()[default_ds_parser()]
    assert card.output.output_contract.key == expected.key and card.labels == ["cat", "dog", "bird", "fish"]
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert [o.name for o in model.graph.output] == list(expected.names)
    assert any(n.op_type == "Cast" and n.input[0] == model.graph.input[0].name for n in model.graph.node)  # kept inside
    _, _, (dets,) = run(tmp_path / "m.onnx", card)
    assert dets.classes.tolist() == [2, 0]
    np.testing.assert_allclose(dets.boxes[0], [10 / 256, 20 / 512, 110 / 256, 220 / 512], rtol=1e-5)


def test_refusals(tmp_path):
    src = tutorial_like(tmp_path / "t.onnx")
    opts = dict(num_classes=4, output_layout="tfod")
    with pytest.raises(UsageError, match="--input-size"):
        import_onnx(ImportOnnxOptions(src, tmp_path / "m.onnx", **opts))
    with pytest.raises(UsageError, match="--labels FILE or --num-classes"):
        import_onnx(ImportOnnxOptions(src, tmp_path / "m.onnx", input_size=(256, 512)))
    other = tutorial_like(tmp_path / "other.onnx", name="boxes", rows=ROWS[..., :4].copy())
    with pytest.raises(UnsupportedModelError, match=r"expected one output 'detections' \[B,K,7\]"):
        import_onnx(ImportOnnxOptions(other, tmp_path / "m.onnx", input_size=(256, 512), **opts))
    with pytest.raises(UsageError, match="box-format"):
        import_onnx(ImportOnnxOptions(src, tmp_path / "m.onnx", box_format="xywh", input_size=(256, 512), **opts))
    import_onnx(ImportOnnxOptions(src, tmp_path / "m.onnx", input_size=(256, 512), **opts))
    with pytest.raises(OutputExistsError):
        import_onnx(ImportOnnxOptions(src, tmp_path / "m.onnx", input_size=(256, 512), **opts))
    with pytest.raises(UsageError):  # never over its input, not even with --force
        import_onnx(ImportOnnxOptions(src, src, input_size=(256, 512), force=True, **opts))


def test_cli_writes_and_summarises(tmp_path):
    from typer.testing import CliRunner

    from trtdeploy.cli.main import app

    src = tutorial_like(tmp_path / "t.onnx")
    args = ["import-onnx", str(src), "-o", str(tmp_path / "m.onnx"), "--num-classes", "4"]
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 2 and "--input-size" in bad.output and "Traceback" not in bad.output
    ok = CliRunner().invoke(app, [*args, "--input-size", "256x512"])
    assert ok.exit_code == 0, ok.output
    assert "wrote" in ok.output and (tmp_path / "m.deploy.json").is_file()
    again = CliRunner().invoke(app, [*args, "--input-size", "256x512"])
    assert again.exit_code == 1 and "--force" in again.output
