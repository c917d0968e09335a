"""make_session on a graph with CropAndResizeDynamic nodes between standard ops: a SplitSession
(ONNX Runtime pieces, the crop reference called between them) that gives what the one-session
run (every plugin an onnxruntime-extensions custom op) gives, bit for bit. No TensorFlow."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trtdeploy import plugin_refs
from trtdeploy.errors import InputError
from trtdeploy.nms import make_session
from trtdeploy.nms.ort_session import PluginSession, SplitSession, _one_session

BOXES = 5
OUTPUTS = ["feat", "crops", "pooled", "second", "num", "nms_boxes", "nms_scores", "nms_classes"]


def two_crop_model() -> onnx.ModelProto:
    """Relu -> crop -> mean -> (EfficientNMS_TRT; a second crop of the scaled map) -> mean: the
    second crop reads the first's result, so three stages; EfficientNMS stays a custom op."""
    nodes = [
        helper.make_node("Relu", ["x"], ["feat"]),
        helper.make_node("Add", ["feat", "feat"], ["doubled"]),
        helper.make_node("CropAndResizeDynamic", ["feat", "rois"], ["crops"], crop_height=3, crop_width=4),
        helper.make_node("ReduceMean", ["crops"], ["pooled"], axes=[3, 4], keepdims=0),  # [1,N,C]
        helper.make_node("Sigmoid", ["pooled"], ["scores"]),
        helper.make_node(
            "EfficientNMS_TRT", ["rois", "scores"], ["num", "nms_boxes", "nms_scores", "nms_classes"],
            score_threshold=0.0, iou_threshold=0.5, max_output_boxes=4,
        ),
        helper.make_node("ReduceMax", ["pooled"], ["peak"], keepdims=1),
        helper.make_node("Mul", ["doubled", "peak"], ["scaled"]),
        helper.make_node("CropAndResizeDynamic", ["scaled", "rois"], ["crops2"], crop_height=2, crop_width=2),
        helper.make_node("ReduceMean", ["crops2"], ["second"], axes=[2, 3, 4], keepdims=0),
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 10]),
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, [1, BOXES, 4]),
    ]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in OUTPUTS]
    outputs[4] = helper.make_tensor_value_info("num", TensorProto.INT32, [1, 1])
    outputs[7] = helper.make_tensor_value_info("nms_classes", TensorProto.INT32, None)
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def feeds(boxes: int = BOXES) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    corner = rng.random((1, boxes, 2), dtype=np.float32) * 0.5
    return {"x": rng.standard_normal((1, 3, 8, 10), dtype=np.float32),
            "rois": np.concatenate([corner, corner + 0.4], -1)}


def with_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph's tensors declared as create-onnx declares them (check_graph's inferred shapes):
    the pieces carry these declarations."""
    shapes = {"crops": [1, BOXES, 3, 3, 4], "pooled": [1, BOXES, 3], "crops2": [1, BOXES, 3, 2, 2],
              "scaled": [1, 3, 8, 10], "doubled": [1, 3, 8, 10]}
    model.graph.value_info.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in shapes.items()
    )
    return model


@pytest.mark.parametrize("declared", [False, True], ids=["bare", "value_info"])
def test_split_outputs_are_the_one_session_outputs_bit_for_bit(declared):
    model = with_shapes(two_crop_model()) if declared else two_crop_model()
    split = make_session(model)
    assert isinstance(split, SplitSession)
    one = _one_session(model)
    assert isinstance(one, PluginSession)
    expected = one.run(None, feeds())
    got = split.run(None, feeds())
    assert [o.name for o in split.get_outputs()] == [o.name for o in one.get_outputs()] == OUTPUTS
    assert [o.type for o in split.get_outputs()] == [o.type for o in one.get_outputs()]
    assert [(i.name, i.shape, i.type) for i in split.get_inputs()] == [
        (i.name, i.shape, i.type) for i in one.get_inputs()
    ]
    assert split.get_providers() == ["CPUExecutionProvider"]
    for name, a, b in zip(OUTPUTS, expected, got, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
    assert expected[1].shape == (1, BOXES, 3, 3, 4) and 0 < int(expected[4][0, 0]) <= 4
    plain = make_session(model, optimize=False).run(None, feeds())  # ORT's graph optimisations off
    assert all(np.array_equal(a, b) for a, b in zip(_one_session(model, False).run(None, feeds()), plain, strict=True))
    assert np.abs(expected[3]).max() > 0  # the second crop read real values


def test_the_pieces_hold_exactly_the_graph_nodes_in_stage_order():
    model = two_crop_model()
    split = make_session(model)
    assert isinstance(split, SplitSession)
    pieces = [[n.name or n.output[0] for n in p.nodes] for p in split.pieces]
    assert [n.output[0] for n in split.split_nodes] == ["crops", "crops2"]
    assert [[n for n in p] for p in pieces] == [
        ["feat", "doubled"],
        ["pooled", "scores", "num", "peak", "scaled"],
        ["second"],
    ]
    placed = [n for p in split.pieces for n in p.nodes] + split.split_nodes
    assert sorted(n.SerializeToString() for n in placed) == sorted(n.SerializeToString() for n in model.graph.node)
    # the NMS stays a custom op in its piece; pieces without plugins are plain sessions
    assert [type(p.session).__name__ for p in split.pieces] == ["InferenceSession", "PluginSession", "InferenceSession"]


def test_requested_subsets_and_order():
    model = two_crop_model()
    split = make_session(model)
    full = dict(zip(OUTPUTS, split.run(None, feeds()), strict=True))
    for names in (["second", "feat"], ["crops"], ["num", "pooled"], ["feat"]):
        got = split.run(names, feeds())
        assert all(np.array_equal(full[n], g) for n, g in zip(names, got, strict=True)), names
    with pytest.raises(InputError, match="no output"):
        split.run(["scores_typo"], feeds())


def test_a_failing_reference_is_one_input_error_naming_the_plugin():
    split = make_session(two_crop_model())
    bad = feeds()
    bad["rois"] = bad["rois"][..., :3].copy()  # 15 numbers: not boxes of 4
    with pytest.raises(InputError, match=r"^the CropAndResizeDynamic node cannot run on its CPU reference: "):
        split.run(None, bad)
    ints = feeds()
    ints["rois"] = ints["rois"].astype(np.int64)
    with pytest.raises(InputError, match="CropAndResizeDynamic node cannot run.*input 1 is int64"):
        make_session(_with_int_rois(two_crop_model())).run(["crops"], ints)
    assert split.run(["crops"], feeds())[0].shape == (1, BOXES, 3, 3, 4)  # still usable


def test_the_reference_object_is_the_registered_one(monkeypatch):
    """The split node runs ``plugin_refs.for_node``'s Implementation (the one the custom op runs)."""
    seen = []
    original = plugin_refs.for_node

    def spying(node):
        impl = original(node)
        if impl is not None and node.op_type == "CropAndResizeDynamic":
            inner = impl.compute

            def compute(*arrays, **attrs):
                seen.append(attrs)
                return inner(*arrays, **attrs)

            return replace(impl, compute=compute)
        return impl

    monkeypatch.setattr(plugin_refs, "for_node", spying)
    make_session(two_crop_model()).run(["second"], feeds())
    assert seen == [{"crop_width": 4, "crop_height": 3}, {"crop_width": 2, "crop_height": 2}]


def _with_int_rois(model: onnx.ModelProto) -> onnx.ModelProto:
    """Only the first crop (its rois an int64 graph input)."""
    graph = model.graph
    keep = [n for n in graph.node if n.output[0] in ("feat", "crops")]
    del graph.node[:]
    graph.node.extend(keep)
    graph.input[1].type.tensor_type.elem_type = TensorProto.INT64
    kept = [o for o in graph.output if o.name in ("feat", "crops")]
    del graph.output[:]
    graph.output.extend(kept)
    return model
