"""ONNX NonMaxSuppression rewritten into standard ops (trtdeploy/rewrites/non_max_suppression.py)
against ONNX Runtime's own NonMaxSuppression kernel on the same inputs: selected_indices equal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tests.tao import tao_graphs
from trtdeploy.deploy_card import NmsParams
from trtdeploy.nms import add_nms_head
from trtdeploy.rewrites.driver import rewrite_plugins


def _nms_model(batch: int, classes: int, boxes: int, *, center: int, max_out, iou, score, opset: int = 13):
    """One NonMaxSuppression node; ``None`` leaves an optional input out (trailing) or empty."""
    consts = []
    names = ["boxes", "scores"]
    for name, value, dtype in (("max_out", max_out, np.int64), ("iou", iou, np.float32), ("score", score, np.float32)):
        if value is None:
            names.append("")
            continue
        consts.append(onnx.numpy_helper.from_array(np.asarray([value], dtype=dtype), name))
        names.append(name)
    while names[-1] == "":
        names.pop()
    node = helper.make_node("NonMaxSuppression", names, ["selected"], name="nms", center_point_box=center)
    graph = helper.make_graph(
        [node],
        "one_nms",
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [batch, boxes, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, classes, boxes]),
        ],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, None)],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _rewritten(model: onnx.ModelProto) -> onnx.ModelProto:
    out, done = rewrite_plugins(model, only={"NonMaxSuppression"})
    assert [r.plugin for r in done] == ["NonMaxSuppression"]
    assert not any(n.op_type == "NonMaxSuppression" for n in out.graph.node)
    return out


def _assert_same(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    ref = _session(model).run(None, feeds)[0]
    got = _session(_rewritten(model)).run(None, feeds)[0]
    assert got.dtype == np.int64 and ref.dtype == np.int64
    np.testing.assert_array_equal(got, ref)
    return ref


def _random_boxes(rng: np.random.Generator, batch: int, n: int, center: int) -> np.ndarray:
    a = rng.uniform(0, 1, (batch, n, 2)).astype(np.float32)
    b = rng.uniform(0, 1, (batch, n, 2)).astype(np.float32)
    if center:  # centre + sizes (some zero-size boxes)
        size = rng.uniform(0, 0.4, (batch, n, 2)).astype(np.float32)
        size[:, ::7] = 0
        return np.concatenate([a, size], -1)
    return np.concatenate([a, b], -1)  # corners in either order (min/max taken)


@pytest.mark.parametrize("center", [0, 1])
def test_random_inputs_same_as_onnxruntime(center):
    rng = np.random.default_rng(center)
    batch, classes, n = 2, 3, 40
    feeds = {
        "boxes": _random_boxes(rng, batch, n, center),
        "scores": rng.uniform(0, 1, (batch, classes, n)).astype(np.float32),
    }
    for max_out, iou, score in ((5, 0.3, 0.2), (100, 0.5, None), (3, 0.0, 0.9)):
        ref = _assert_same(_nms_model(batch, classes, n, center=center, max_out=max_out, iou=iou, score=score), feeds)
        assert len(ref) > 0
        counts = np.unique(ref[:, :2], axis=0, return_counts=True)[1]
        assert counts.max() <= max_out


def test_ties_limits_and_exact_thresholds():
    """Equal scores (lower index first), IoU exactly at the threshold (not suppressed), scores
    exactly at the threshold (not candidates), identical boxes, the per-class limit cutting."""
    boxes = np.array(
        [[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0.5, 1, 1.5], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3], [0, 0, 0, 0]]],
        dtype=np.float32,
    )  # box 2 has IoU exactly 1/3 with boxes 0, 1, 3
    scores = np.array(
        [[[0.5, 0.5, 0.5, 0.4, 0.7, 0.7, 0.9], [0.25, 0.5, 0.25, 0.5, 0.25, 0.25, 0.25]]], dtype=np.float32
    )
    feeds = {"boxes": np.repeat(boxes, 2, axis=0), "scores": np.repeat(scores, 2, axis=0)}
    feeds["scores"][1] = feeds["scores"][1, ::-1]
    cases = [
        (10, np.float32(1 / 3), 0.25, [[0, 0, 6], [0, 0, 4], [0, 0, 0], [0, 0, 2], [0, 1, 1]]),
        (10, 0.3, None, None),
        (2, 0.5, 0.0, None),
        (0, 0.5, 0.0, []),  # no box per class asked for
        (-1, 0.5, 0.0, []),
        (10, 1.0, None, None),  # nothing suppressed: identical boxes too
    ]
    for max_out, iou, score, first_image in cases:
        ref = _assert_same(_nms_model(2, 2, 7, center=0, max_out=max_out, iou=iou, score=score), feeds)
        if first_image is not None:
            np.testing.assert_array_equal(ref[ref[:, 0] == 0].reshape(-1, 3), np.array(first_image).reshape(-1, 3))


def test_absent_optional_inputs():
    rng = np.random.default_rng(3)
    feeds = {"boxes": _random_boxes(rng, 1, 12, 0), "scores": rng.uniform(0, 1, (1, 2, 12)).astype(np.float32)}
    assert len(_assert_same(_nms_model(1, 2, 12, center=0, max_out=4, iou=None, score=None), feeds)) == 8
    assert len(_assert_same(_nms_model(1, 2, 12, center=0, max_out=None, iou=None, score=None), feeds)) == 0


# ---- a TFOD --nms onnx head on a tiny graph ---------------------------------------------------


def _tfod_onnx_head() -> onnx.ModelProto:
    """Two convs on a 16x16 image -> 64 boxes and 3-class sigmoid scores -> the onnx head."""
    g = tao_graphs._G(7)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])
    raw = g.node("Sigmoid", [g.nhwc_flat(g.conv("image", 3, 4, stride=2, scale=0.5), 4)])
    g.node("Add", [g.node("Mul", [raw, g.init(np.float32(0.5))]), g.init(np.float32([0, 0, 0.5, 0.5]))], "boxes")
    g.node("Sigmoid", [g.nhwc_flat(g.conv("image", 3, 3, stride=2, scale=0.5), 3)], "scores")
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("boxes", "scores")]
    model = g.model([image], outs)
    model.opset_import[0].version = 13  # the onnx head's minimum (TAO-shaped graphs are opset 12: no op changed)
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))
    tensors = graph.tensors()
    graph.outputs = []
    params = NmsParams(score_threshold=0.3, iou_threshold=0.5, max_detections=20, class_agnostic=False)
    add_nms_head(graph, tensors["boxes"], tensors["scores"], "onnx", params, "tfod", (16, 16))
    graph.cleanup().toposort()
    return gs.export_onnx(graph)


@pytest.fixture(scope="module")
def tfod_head() -> onnx.ModelProto:
    model = _tfod_onnx_head()
    assert any(n.op_type == "NonMaxSuppression" for n in model.graph.node)
    return model


def test_tfod_onnx_head_same_detections(tfod_head):
    feeds = {"image": np.random.default_rng(8).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    ref = _session(tfod_head).run(None, feeds)
    got = _session(_rewritten(tfod_head)).run(None, feeds)
    assert [o.name for o in _rewritten(tfod_head).graph.output] == [o.name for o in tfod_head.graph.output]
    for r, g in zip(ref, got, strict=True):
        assert r.dtype == g.dtype and r.shape == g.shape
        np.testing.assert_array_equal(r, g)
    assert ref[0].ravel()[0] > 0  # some detections


@pytest.mark.rtx
def test_rtx_cannot_build_the_rewritten_selection(tmp_path: Path, tfod_head):
    """Why build-engine does not rewrite NonMaxSuppression for TensorRT-RTX: the rewrite's
    variable-length output needs NonZero, a plugin RTX's parser asks for and does not have.
    When this starts to build, build-engine's automatic path can take the rewrite."""
    from tests.engine.conftest import rtx_backend
    from trtdeploy.engine.builder import BuildError, BuildOptions, build_engine

    backend = rtx_backend()
    onnx_path = tmp_path / "tfod_onnx_rewritten.onnx"
    onnx.save(_rewritten(tfod_head), str(onnx_path))
    with pytest.raises(BuildError, match="NonZero"):
        build_engine(onnx_path, BuildOptions(precision="fp32", batch=1), backend=backend)


def test_rewritten_only_when_named():
    """NonMaxSuppression is a standard op: rewrite_plugins leaves it unless ``only`` names it, and
    it is not among the plugin rewrites build-engine takes by itself."""
    from trtdeploy.rewrites import rewritable, rewritable_standard

    model = _nms_model(1, 2, 12, center=0, max_out=4, iou=0.5, score=0.1)
    out, done = rewrite_plugins(model)
    assert done == [] and out is model
    assert "NonMaxSuppression" in rewritable_standard() and "NonMaxSuppression" not in rewritable()
