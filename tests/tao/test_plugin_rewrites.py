"""Issue 16 done-when (NMS-type plugins): for each TAO-shaped graph (tests/tao/tao_graphs.py) the
plugin graph under ONNX Runtime (CPU references, trtdeploy/plugin_refs) and the rewritten graph
(trtdeploy/rewrites) give the same detections on random and structured inputs, DeepStream's
parser reads the same objects from both, and the rewritten graph builds with TensorRT-RTX
(build-engine rewriting by itself, the sidecar saying so)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.tao import tao_graphs
from trtdeploy import plugins
from trtdeploy.deepstream import parser_emulation
from trtdeploy.nms.ort_session import make_session
from trtdeploy.rewrites.driver import plugin_nodes, rewrite_plugins

# NMS_TRT decodes with exp and RetinaNet's sigmoid is exp(x)/(1+exp(x)): ONNX Runtime's Exp and
# NumPy's may differ in the last bit. Boxes are clamped to [0, 1] and scores <= 1, so 4 ulp of 1.0
# bounds a few ulp of either (measured: 1 ulp of 0.5..1, 5.96e-8). BatchedNMS does no exp: exact.
EXP_BOUND = 4 * float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def converted():
    """arch -> (TaoGraph, rewritten model, records): each graph rewritten once."""
    out = {}
    for arch, make in tao_graphs.ALL.items():
        graph = make()
        model, records = rewrite_plugins(graph.model)
        out[arch] = (graph, model, records)
    return out


def _images(shape, seed: int) -> np.ndarray:
    """Two random images and an all-zero one (every anchor of a level alike: score ties)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal((2, *shape)), np.zeros((1, *shape))]).astype(np.float32)


@pytest.fixture(scope="module")
def runs(converted):
    """arch -> (plugin outputs, rewritten outputs) on the same three images."""
    out = {}
    for arch, (graph, model, _) in converted.items():
        feeds = {"Input": _images(graph.input_shape, seed=len(arch))}
        out[arch] = (make_session(graph.model).run(None, feeds), make_session(model).run(None, feeds))
    return out


ARCHS = list(tao_graphs.ALL)


@pytest.mark.parametrize("arch", ARCHS)
def test_rewritten_graph_has_no_plugin_and_the_same_outputs(converted, arch):
    graph, model, records = converted[arch]
    assert plugin_nodes(model) == []
    assert {r.plugin for r in records} == {op for _, op in plugin_nodes(graph.model)}
    assert [o.name for o in model.graph.output] == list(graph.outputs)  # names and order
    plugin_node = next(
        n for n in graph.model.graph.node if n.op_type in ("NMSDynamic_TRT", "BatchedNMSDynamic_TRT", "BatchedNMS_TRT")
    )
    spec = plugins.get(plugin_node.op_type)
    attrs = spec.resolved_attrs({a.name: helper.get_attribute_value(a) for a in plugin_node.attribute})
    shapes = spec.output_shapes(attrs, [["N"]])  # the plugin's getOutputDimensions (trtdeploy.plugins)
    for out, want, shape in zip(model.graph.output, spec.outputs, shapes, strict=True):
        # the dtype of the bytes the plugin writes (NMS_TRT's keep count: int32, declared float by the plugin)
        assert onnx.helper.tensor_dtype_to_np_dtype(out.type.tensor_type.elem_type) == np.dtype(want.bytes_dtype())
        dims = [d.dim_value if d.HasField("dim_value") else None for d in out.type.tensor_type.shape.dim]
        assert dims[1:] == shape[1:], out.name


@pytest.mark.parametrize("arch", ARCHS)
def test_same_detections_as_the_plugin(runs, converted, arch):
    ref, got = runs[arch]
    graph = converted[arch][0]
    bound = EXP_BOUND if graph.parser == "nmstlt" else 0.0
    counts = ref[1] if graph.parser == "nmstlt" else ref[0]
    assert counts.max() > 0, "the graph must detect something for the comparison to mean anything"
    for name, r, g in zip(graph.outputs, ref, got, strict=True):
        assert r.shape == g.shape, name
        if r.dtype == np.int32:
            np.testing.assert_array_equal(r, g, err_msg=name)
        elif graph.parser == "nmstlt":
            # Rows: scores within the bound; two scores that differ by an ulp in one exp and tie in
            # the other may swap rows, so each image's rows are compared in a canonical order
            # (image id and label exact, score and box within the bound).
            for a, b in zip(_canonical(r), _canonical(g), strict=True):
                np.testing.assert_array_equal(a[:, :2], b[:, :2], err_msg=name)
                assert np.abs(a[:, 2:] - b[:, 2:]).max() <= bound, name
        else:
            np.testing.assert_array_equal(r, g, err_msg=name)


def _canonical(rows: np.ndarray) -> list[np.ndarray]:
    """Each image's [K, 7] rows sorted by label, then box, then score (rounded past the bound)."""
    out = []
    for image in rows[:, 0]:
        keys = np.round(image[:, [6, 5, 4, 3, 2, 1]].astype(np.float64), 5).T
        out.append(image[np.lexsort(keys)])
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_deepstream_parser_reads_the_same_objects(runs, converted, arch):
    graph, model, _ = converted[arch]
    ref, got = runs[arch]
    producers = plugins.plugin_outputs_of(graph.model)
    declared = {name: o.declared_dtype() for name, o in zip(graph.outputs, _spec_of(graph).outputs, strict=True)}
    for image in range(3):
        # the plugin engine: TensorRT declares the plugin's dtypes, the bytes are what its kernel writes
        plugin_raw = parser_emulation.raw_outputs_from_arrays(
            list(zip(graph.outputs, ref, strict=True)), image, engine_dtypes=declared, producers=producers
        )
        rewritten_raw = parser_emulation.raw_outputs_from_arrays(list(zip(graph.outputs, got, strict=True)), image)
        if graph.parser != "nmstlt":  # NMS_TRT rows may differ in the last bits (EXP_BOUND)
            assert [r.data for r in plugin_raw] == [r.data for r in rewritten_raw]
        else:
            assert plugin_raw[1].data == rewritten_raw[1].data  # the keep count's bytes
        h, w = graph.input_shape[1:]
        thresholds = [0.0] * graph.num_classes
        a = parser_emulation.parse(graph.parser, plugin_raw, w, h, graph.num_classes, thresholds)
        b = parser_emulation.parse(graph.parser, rewritten_raw, w, h, graph.num_classes, thresholds)
        assert len(a) == len(b) > 0
        for x, y in zip(a, b, strict=True):
            assert x.class_id == y.class_id
            assert np.allclose(
                [x.left, x.top, x.width, x.height, x.confidence],
                [y.left, y.top, y.width, y.height, y.confidence],
                rtol=0,
                atol=EXP_BOUND * max(h, w),
            )


def _spec_of(graph):
    node = next(
        n for n in graph.model.graph.node if n.op_type in ("NMSDynamic_TRT", "BatchedNMSDynamic_TRT", "BatchedNMS_TRT")
    )
    return plugins.get(node.op_type)


# ---- structured inputs straight into one plugin node: ties everywhere -------------------------


def _single_node_model(op_type: str, inputs: list[tuple[str, list]], outputs: list[tuple[str, int]], **attrs):
    node = helper.make_node(op_type, [n for n, _ in inputs], [n for n, _ in outputs], name="nms", **attrs)
    graph = helper.make_graph(
        [node],
        "one_plugin",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _compare_exact(model, feeds):
    rewritten, _ = rewrite_plugins(model)
    ref = make_session(model).run(None, feeds)
    got = make_session(rewritten).run(None, feeds)
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_array_equal(r, g)
    return ref


@pytest.mark.parametrize("share", [1, 0])
@pytest.mark.parametrize("normalized", [1, 0])
def test_nms_trt_ties_exact(share, normalized):
    """Scores on a 0.25 grid (ties within and across classes), CORNER coding (no exp: exact),
    boxes on a coarse grid so that many IoUs equal the threshold exactly."""
    rng = np.random.default_rng(10 + 2 * share + normalized)
    batch, num, classes = 2, 40, 4
    locs = 1 if share else classes
    scale = 1.0 if normalized else 64.0
    x1y1 = rng.integers(0, 4, (batch, num, 2)) / 8
    prior = np.concatenate([x1y1, x1y1 + rng.integers(1, 4, (batch, num, 2)) / 8], -1) * scale
    prior = np.stack([prior.reshape(batch, -1), np.ones((batch, num * 4))], 1)[..., None].astype(np.float32)
    loc = (rng.integers(-1, 2, (batch, num * locs * 4, 1, 1)) / 16 * scale).astype(np.float32)
    conf = (rng.integers(0, 5, (batch, num * classes, 1, 1)) / 4).astype(np.float32)
    model = _single_node_model(
        "NMSDynamic_TRT",
        # inputs (conf, prior, loc): inputOrder gives loc, conf, prior's positions
        [("conf", [batch, num * classes, 1, 1]), ("prior", [batch, 2, num * 4, 1]), ("loc", [batch, num * locs * 4, 1, 1])],
        [("NMS", TensorProto.FLOAT), ("NMS_1", TensorProto.FLOAT)],
        shareLocation=share, varianceEncodedInTarget=1, backgroundLabelId=1, confidenceThreshold=0.25,
        nmsThreshold=0.5, topK=30, codeType=0, keepTopK=25, numClasses=classes, inputOrder=[2, 0, 1],
        confSigmoid=0, isNormalized=normalized,
    )  # fmt: skip
    ref = _compare_exact(model, {"prior": prior, "loc": loc, "conf": conf})
    assert 0 < ref[1].min() and ref[1].max() <= 25


@pytest.mark.parametrize("caffe", [1, 0])
def test_batched_nms_ties_exact_pixel_boxes(caffe):
    rng = np.random.default_rng(20 + caffe)
    batch, num, classes = 2, 50, 3
    x1y1 = rng.integers(0, 6, (batch, num, 1, 2)).astype(np.float32)
    boxes = np.concatenate([x1y1, x1y1 + rng.integers(1, 5, (batch, num, 1, 2))], -1).astype(np.float32)
    scores = (rng.integers(0, 6, (batch, num, classes)) / 5).astype(np.float32)
    model = _single_node_model(
        "BatchedNMS_TRT",
        [("boxes", [batch, num, 1, 4]), ("scores", [batch, num, classes])],
        [("n", TensorProto.INT32), ("b", TensorProto.FLOAT), ("s", TensorProto.FLOAT), ("c", TensorProto.FLOAT)],
        shareLocation=1, backgroundLabelId=0, numClasses=classes, topK=40, keepTopK=30, scoreThreshold=0.2,
        iouThreshold=0.4, isNormalized=0, clipBoxes=0, caffeSemantics=caffe,
    )  # fmt: skip
    ref = _compare_exact(model, {"boxes": boxes, "scores": scores})
    assert 0 < ref[0].min() and ref[3].max() == 2 and (ref[3][ref[2] > 0] != 0).all()  # background 0 never out


# ---- TensorRT-RTX: build-engine rewrites by itself and says so -------------------------------


@pytest.mark.rtx
@pytest.mark.parametrize("arch", ARCHS)
def test_build_engine_on_rtx_rewrites_the_plugins(tmp_path: Path, arch):
    from tests.engine.conftest import rtx_backend
    from trtdeploy.engine.builder import BuildOptions, build_engine

    backend = rtx_backend()
    graph = tao_graphs.ALL[arch]()
    onnx_path = tmp_path / f"{arch}.onnx"
    onnx.save(graph.model, str(onnx_path))
    # fp16, the default: the backbone converted, the rewritten plugins kept float32 (Loop bodies too)
    result = build_engine(onnx_path, BuildOptions(precision="fp16", batch=2), backend=backend)
    record = result.sidecar.plugins
    assert record["path"] == "rewritten" and record["kept"] == []
    assert {r["plugin"] for r in record["rewritten"]} == {op for _, op in plugin_nodes(graph.model)}
    outputs = {t.name: t for t in result.sidecar.outputs}
    assert list(outputs) == list(graph.outputs)
    spec = _spec_of(graph)
    assert [outputs[n].dtype for n in graph.outputs] == [o.bytes_dtype() for o in spec.outputs]
    assert plugin_nodes(onnx.load(str(onnx_path)))  # the ONNX on disk still has its plugins


def test_plugin_path_by_backend(converted):
    """TensorRT 10 keeps every plugin; TensorRT 11 rewrites what it lacks (BatchedNMS, BatchTile)
    and keeps what it ships (ResizeNearest_TRT, deprecated but present); RTX rewrites all."""
    from trtdeploy.engine.capabilities import capabilities_for
    from trtdeploy.engine.plugin_path import resolve_plugins

    graph = converted["yolo_v3"][0]
    model, path = resolve_plugins(graph.model, capabilities_for("tensorrt", "10.16.0"))
    assert model is graph.model and path.to_dict() == {
        "path": "kept",
        "kept": ["BatchTilePlugin_TRT", "BatchedNMSDynamic_TRT", "ResizeNearest_TRT"],
        "rewritten": [],
    }
    model, path = resolve_plugins(graph.model, capabilities_for("tensorrt", "11.1.0"))
    assert path.path == "kept+rewritten" and path.kept == ["ResizeNearest_TRT"]
    assert path.rewritten_ops == {"BatchTilePlugin_TRT", "BatchedNMSDynamic_TRT"}
    assert {op for _, op in plugin_nodes(model)} == {"ResizeNearest_TRT"}
    model, path = resolve_plugins(graph.model, capabilities_for("tensorrt_rtx", "1.2.0"))
    assert path.path == "rewritten" and plugin_nodes(model) == []


def test_fp16_conversion_of_a_rewritten_graph(converted):
    """The FP16 converter (build-engine's strongly typed fp16 path) keeps the producers of the
    values a Loop body reads in float32: without that the NMS loop's body read float16 values it
    declares float32 and the converted graph was invalid (GraphError)."""
    from trtdeploy.engine.fp16 import convert_to_fp16

    graph, model, _ = converted["ssd"]
    half, report = convert_to_fp16(model)
    assert report.converted_nodes > 0
    feeds = {"Input": _images(graph.input_shape, seed=0)}
    rows, count = make_session(half).run(None, feeds)
    assert rows.dtype == np.float32 and count.dtype == np.int32 and count.max() > 0


def test_nms_trt_batch_agnostic_priors_exact():
    """NMS_TRT (not the dynamic one) honours isBatchAgnostic: one prior set [1, 2, A*4, 1] for
    every image (decodeBBoxes.cu l.131); CENTER_SIZE coding with variances."""
    rng = np.random.default_rng(30)
    batch, num, classes = 3, 24, 3
    centres, sizes = rng.uniform(0.2, 0.8, (num, 2)), rng.uniform(0.1, 0.4, (num, 2))
    corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1).reshape(-1)
    prior = np.stack([corners, np.tile([0.1, 0.1, 0.2, 0.2], num)])[None, :, :, None].astype(np.float32)
    loc = rng.standard_normal((batch, num * 4, 1, 1)).astype(np.float32)
    conf = (rng.integers(0, 9, (batch, num * classes, 1, 1)) / 8).astype(np.float32)
    model = _single_node_model(
        "NMS_TRT",
        [("loc", [batch, num * 4, 1, 1]), ("conf", [batch, num * classes, 1, 1]), ("prior", [1, 2, num * 4, 1])],
        [("NMS", TensorProto.FLOAT), ("NMS_1", TensorProto.FLOAT)],
        shareLocation=1, varianceEncodedInTarget=0, backgroundLabelId=0, confidenceThreshold=0.3,
        nmsThreshold=0.45, topK=20, codeType=1, keepTopK=15, numClasses=classes, inputOrder=[0, 1, 2],
        confSigmoid=0, isNormalized=1, isBatchAgnostic=1,
    )  # fmt: skip
    rewritten, _ = rewrite_plugins(model)
    feeds = {"loc": loc, "conf": conf, "prior": prior}
    ref, got = make_session(model).run(None, feeds), make_session(rewritten).run(None, feeds)
    np.testing.assert_array_equal(ref[1], got[1])
    assert ref[1].min() > 0
    for a, b in zip(_canonical(ref[0]), _canonical(got[0]), strict=True):
        np.testing.assert_array_equal(a[:, :2], b[:, :2])
        assert np.abs(a[:, 2:] - b[:, 2:]).max() <= EXP_BOUND
