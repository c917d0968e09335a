"""A family is one place: a toy detector family written here, in a few dozen lines, goes
through the shared create stage, a TensorRT-RTX build and gen-ds-config without any other
module knowing about it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtdeploy import families
from trtdeploy.deploy_card import DeployCard, InputSpec, NmsParams, Preprocess
from trtdeploy.errors import UnsupportedModelError, UsageError

H = W = 32
ANCHORS, CLASSES = 8, 2


# ---- the toy family: a JSON "training export" holding a tiny detector's weights ---------------
class ToyFamily:
    key, title, framework = "toy_grid", "Toy grid detector", "toy"
    heads, layouts = ("none",), ("raw",)

    def claims(self, source):
        return Path(source.path).name.endswith(".toy.json")

    def recognise(self, source):
        kind = json.loads(Path(source.path).read_text()).get("kind")
        return None if kind == "grid" else f"{self.title}: {source.path} is a {kind!r} toy, not a 'grid' one"

    def read_config(self, source):
        return json.loads(Path(source.path).read_text())

    def convert_core(self, request):
        # Global average pool -> MatMul -> boxes [1,A,4] (sigmoid: normalised) and scores [1,A,C].
        w_box = numpy_helper.from_array(np.array(request["box_weights"], np.float32), "w_box")
        w_cls = numpy_helper.from_array(np.array(request["class_weights"], np.float32), "w_cls")
        shape_b = numpy_helper.from_array(np.array([1, ANCHORS, 4], np.int64), "shape_b")
        shape_s = numpy_helper.from_array(np.array([1, ANCHORS, CLASSES], np.int64), "shape_s")
        nodes = [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled4"]),
            helper.make_node("Flatten", ["pooled4"], ["pooled"]),
            helper.make_node("MatMul", ["pooled", "w_box"], ["box_logits"]),
            helper.make_node("Reshape", ["box_logits", "shape_b"], ["box_r"]),
            helper.make_node("Sigmoid", ["box_r"], ["boxes"]),
            helper.make_node("MatMul", ["pooled", "w_cls"], ["cls_logits"]),
            helper.make_node("Reshape", ["cls_logits", "shape_s"], ["cls_r"]),
            helper.make_node("Sigmoid", ["cls_r"], ["scores"]),
        ]
        graph = helper.make_graph(
            nodes, "toy", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, H, W])],
            [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, ANCHORS, 4]),
             helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, ANCHORS, CLASSES])],
            [w_box, w_cls, shape_b, shape_s],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        return families.Core(model=model, facts={"converted_by": "toy"})

    def core_passes(self, request):
        return []

    def head_passes(self, request):
        def head(graph, ctx):
            from trtdeploy.nms import add_nms_head

            outs = {t.name: t for t in graph.outputs}
            ctx.facts["output_spec"] = add_nms_head(
                graph, outs["boxes"], outs["scores"], kind=ctx.facts["nms"], params=NmsParams(),
                layout="raw", input_hw=(H, W),
            )

        return [("toy_head", head)]

    def deploy_card(self, request, model, facts):
        return DeployCard(
            input=InputSpec(name="image", shape=[1, 3, H, W], layout="NCHW"),
            preprocess=Preprocess(color_order="RGB", scale=1 / 255, offsets=[0.0, 0.0, 0.0]),
            output=facts["output_spec"], labels=list(request["labels"]),
        )

    def ds_hints(self, card, model_path):
        from trtdeploy.deepstream.generate import DsModelHints

        return DsModelHints(parse_func="NvDsInferParseToyGrid", cluster_mode=2)


# -------------------------------------------------------------------------------------------------


@pytest.fixture()
def toy_family():
    family = families.register(ToyFamily())
    yield family
    families.unregister(family.key)


def _toy_export(tmp_path: Path, kind: str = "grid") -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "model.toy.json"
    path.write_text(json.dumps({
        "kind": kind, "labels": ["cat", "dog"],
        "box_weights": rng.normal(size=(3, ANCHORS * 4)).tolist(),
        "class_weights": rng.normal(size=(3, ANCHORS * CLASSES)).tolist(),
    }))  # fmt: skip
    return path


def test_toy_family_is_found_and_converted(tmp_path, toy_family):
    source = families.ModelSource(_toy_export(tmp_path))
    assert families.find_family(source) is toy_family
    created = families.create(source, tmp_path / "toy.onnx", {"nms": "none"})
    card = DeployCard.load(created.card_path)
    assert card.provenance.model_family == "toy_grid"  # recorded by the shared stage
    assert card.output.layout == "raw" and card.output.names == ["boxes", "scores"]
    model = onnx.load(str(created.onnx_path))
    assert [o.name for o in model.graph.output] == ["boxes", "scores"]
    # The written graph computes what the toy's weights say (checked with ONNX Runtime).
    import onnxruntime as ort

    image = np.random.default_rng(1).uniform(0, 1, (1, 3, H, W)).astype(np.float32)
    boxes, scores = ort.InferenceSession(str(created.onnx_path)).run(None, {"image": image})
    pooled = image.mean(axis=(2, 3))
    weights = json.loads(source.path.read_text())
    expected = 1 / (1 + np.exp(-(pooled @ np.array(weights["class_weights"]))))
    np.testing.assert_allclose(scores.reshape(1, -1), expected, rtol=1e-5)
    assert boxes.shape == (1, ANCHORS, 4)


def test_a_head_the_family_does_not_declare_is_refused_before_any_work(tmp_path, toy_family):
    source = families.ModelSource(_toy_export(tmp_path))
    with pytest.raises(UsageError, match="end in --nms none, not --nms efficient"):
        families.create(source, tmp_path / "toy.onnx", {"nms": "efficient"})
    assert list(tmp_path.iterdir()) == [source.path]


def test_a_toy_of_another_kind_is_refused_naming_what_was_found(tmp_path, toy_family):
    source = families.ModelSource(_toy_export(tmp_path, kind="ring"))
    with pytest.raises(UnsupportedModelError, match="'ring' toy"):
        families.find_family(source)
    assert not (tmp_path / "toy.onnx").exists()


def test_an_input_no_family_claims_names_the_known_families(tmp_path, toy_family):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0")
    with pytest.raises(UnsupportedModelError, match="Toy grid detector"):
        families.find_family(families.ModelSource(other))


@pytest.mark.rtx
def test_toy_family_builds_with_rtx_and_gets_a_deepstream_config(tmp_path, toy_family):
    from trtdeploy.deepstream import DsOptions, gen_ds_config, read_config
    from trtdeploy.engine import BuildOptions, build_engine, load_sidecar

    created = families.create(families.ModelSource(_toy_export(tmp_path)), tmp_path / "toy.onnx", {"nms": "none"})
    engine = build_engine(created.onnx_path, BuildOptions(backend="tensorrt_rtx", precision="fp32"))
    sidecar = load_sidecar(engine.engine_path)
    assert [t.name for t in sidecar.tensors if t.mode == "output"] == ["boxes", "scores"]
    card = DeployCard.load(created.card_path)
    hints = families.ds_hints(card, created.onnx_path)  # found through the card's model_family
    result = gen_ds_config(card, created.onnx_path, tmp_path / "ds", DsOptions(name="toy"), hints,
                           engine=engine.engine_path)
    props = read_config(result.paths[0]).properties
    assert props["parse-bbox-func-name"] == "NvDsInferParseToyGrid"
    assert props["cluster-mode"] == "2"
    assert props["num-detected-classes"] == "2"
    assert props["infer-dims"] == f"3;{H};{W}"
    assert float(props["net-scale-factor"]) == pytest.approx(1 / 255)
    assert result.paths[2].read_text() == "cat\ndog\n"
