"""EfficientNMS_TRT rewritten into standard ops (trtdeploy/rewrites/efficient_nms.py) against its
CPU reference (trtdeploy.nms.reference.efficient_nms, run by ONNX Runtime through
trtdeploy/plugin_refs): the TAO 5 EfficientDet-shaped graph (tests/tao/tao_graphs.py
``efficientdet_tao5``), single plugin nodes on structured inputs (ties, background, per-class
boxes, both box codings, anchors, class_agnostic, more candidates than one TopK takes), a TFOD
``--nms efficient`` head; TensorRT-RTX builds both graphs through build-engine's automatic rewrite;
gen-ds-config writes the same keys for the rewritten model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper

from tests.tao import tao_graphs
from trtdeploy import plugins
from trtdeploy.deploy_card import NmsParams
from trtdeploy.nms import add_nms_head
from trtdeploy.nms.ort_session import make_session
from trtdeploy.rewrites.driver import plugin_nodes, rewrite_plugins

NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
DTYPES = (np.int32, np.float32, np.float32, np.int32)


def _exp_ulps(args: np.ndarray) -> int:
    """Largest ulp distance between ONNX Runtime's Exp and NumPy's exp on ``args`` (float32),
    measured in the run: the only operation where the rewrite and the reference may round apart."""
    node = helper.make_node("Exp", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "exp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    x = np.ascontiguousarray(args, dtype=np.float32).ravel()
    ours = make_session(model).run(None, {"x": x})[0]
    theirs = np.exp(x)
    finite = np.isfinite(theirs) & (theirs > 0)
    return int((np.abs(ours[finite] - theirs[finite]) / np.spacing(theirs[finite])).max(initial=0))


def _assert_same(ref: list[np.ndarray], got: list[np.ndarray], exp_ulps: int | None = None) -> None:
    """Counts and classes exact; boxes and scores exact, or within ``exp_ulps`` + 2 ulp of the
    value (Exp's difference, then at most one rounding of each following operation: the sigmoid's
    add and reciprocal, the decode's multiply and add; half-sizes are never larger than the box's
    largest coordinate on that axis, so its ulp bounds theirs)."""
    for name, r, g, dtype in zip(NAMES, ref, got, DTYPES, strict=True):
        assert g.dtype == dtype and r.dtype == dtype and g.shape == r.shape, name
    np.testing.assert_array_equal(ref[0], got[0])
    np.testing.assert_array_equal(ref[3], got[3])
    if exp_ulps is None:
        np.testing.assert_array_equal(ref[1], got[1])
        np.testing.assert_array_equal(ref[2], got[2])
        return
    n = exp_ulps + 2
    scale = np.maximum(np.abs(ref[1][..., 0:2]), np.abs(ref[1][..., 2:4]))
    box_bound = n * np.spacing(np.concatenate([scale, scale], -1))
    assert (np.abs(ref[1] - got[1]) <= box_bound).all(), np.abs(ref[1] - got[1]).max()
    assert (np.abs(ref[2] - got[2]) <= n * np.spacing(np.abs(ref[2]))).all(), np.abs(ref[2] - got[2]).max()


def _one_node(batch: int, anchors: int, classes: int, *, per_class: bool, with_anchors: bool, **attrs):
    inputs = [("boxes", [batch, anchors, classes, 4] if per_class else [batch, anchors, 4])]
    inputs.append(("scores", [batch, anchors, classes]))
    if with_anchors:
        inputs.append(("anchors", [1, anchors, 4]))
    node = helper.make_node(
        "EfficientNMS_TRT", [n for n, _ in inputs], list(NAMES), name="nms", plugin_version="1", **attrs
    )
    graph = helper.make_graph(
        [node],
        "one_plugin",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, t, None) for n, t in zip(NAMES, (6, 1, 1, 6), strict=True)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _run_both(model, feeds):
    rewritten, records = rewrite_plugins(model)
    assert plugin_nodes(rewritten) == [] and [r.plugin for r in records] == ["EfficientNMS_TRT"]
    assert [o.name for o in rewritten.graph.output] == list(NAMES)
    return make_session(model).run(None, feeds), make_session(rewritten).run(None, feeds)


# ---- the TAO 5 EfficientDet-shaped graph ------------------------------------------------------


@pytest.fixture(scope="module")
def tao5():
    graph = tao_graphs.efficientdet_tao5()
    model, records = rewrite_plugins(graph.model)
    rng = np.random.default_rng(5)
    # two random photos and a black one (every anchor of a level alike: score ties everywhere)
    images = np.concatenate([rng.uniform(0, 255, (2, 64, 64, 3)), np.zeros((1, 64, 64, 3))]).astype(np.float32)
    feeds = {"input": images}
    ref, got = make_session(graph.model).run(None, feeds), make_session(model).run(None, feeds)
    return graph, model, records, ref, got, images


def test_tao5_rewritten_graph_keeps_the_plugin_outputs(tao5):
    graph, model, records = tao5[:3]
    assert plugin_nodes(model) == [] and [(r.node, r.plugin) for r in records] == [
        ("nms/non_maximum_suppression", "EfficientNMS_TRT")
    ]
    spec = plugins.get("EfficientNMS_TRT")
    node = next(n for n in graph.model.graph.node if n.op_type == "EfficientNMS_TRT")
    attrs = spec.resolved_attrs({a.name: helper.get_attribute_value(a) for a in node.attribute})
    shapes = spec.output_shapes(attrs, [["N"]])  # the plugin's getOutputDimensions (trtdeploy.plugins)
    assert [o.name for o in model.graph.output] == list(NAMES)
    for out, want, shape in zip(model.graph.output, DTYPES, shapes, strict=True):
        assert helper.tensor_dtype_to_np_dtype(out.type.tensor_type.elem_type) == np.dtype(want), out.name
        dims = [d.dim_value if d.HasField("dim_value") else None for d in out.type.tensor_type.shape.dim]
        assert dims[1:] == shape[1:], out.name


def test_tao5_same_detections_as_the_plugin(tao5):
    graph, _, _, ref, got, images = tao5
    counts = ref[0].ravel()
    assert counts.min() > 0 and counts.max() < 100, counts  # something found, fewer than the rows
    # the graph's exp arguments: the box deltas' sizes and the negated logits
    model = onnx.utils.Extractor(graph.model).extract_model(["input"], _nms_inputs(graph))
    deltas, logits = make_session(model).run(None, {"input": images})
    ulps = max(_exp_ulps(deltas[..., 2:4]), _exp_ulps(-logits))
    _assert_same(ref, got, exp_ulps=ulps)
    for image, n in enumerate(counts):  # rows past the count are zero in both
        assert not got[1][image, n:].any() and not got[2][image, n:].any() and not got[3][image, n:].any()


def _nms_inputs(graph) -> list[str]:
    node = next(n for n in graph.model.graph.node if n.op_type == "EfficientNMS_TRT")
    return list(node.input[:2])


# ---- single plugin nodes: structured and random inputs ---------------------------------------


def _grid_boxes(rng, shape, scale: float = 1.0) -> np.ndarray:
    """Corners on a 1/8 grid (many IoUs exactly 0.5 or equal to each other), random axis order."""
    lo = rng.integers(0, 5, (*shape, 2)) / 8
    hi = lo + rng.integers(1, 4, (*shape, 2)) / 8
    boxes = np.concatenate([lo, hi], -1) * scale
    flip = rng.random(shape) < 0.2  # some boxes given max corner first: the plugin reorders for IoU
    boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
    return boxes.astype(np.float32)


CASES = {
    # name: (per-class boxes, anchors input, attributes)
    "shared-corners-ties-background": (False, False, dict(box_coding=0, background_class=1)),
    "shared-corners-agnostic": (False, False, dict(box_coding=0, class_agnostic=1)),
    "per-class-centre-size": (True, False, dict(box_coding=1)),
    "per-class-corners-anchors": (True, True, dict(box_coding=0, background_class=0)),
    "shared-centre-size-anchors-sigmoid": (False, True, dict(box_coding=1, score_activation=1)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_detections_as_the_reference(case):
    per_class, with_anchors, attrs = CASES[case]
    seed = list(CASES).index(case)
    rng = np.random.default_rng(40 + seed)
    batch, num, classes = 2, 60, 4
    box_shape = (batch, num, classes) if per_class else (batch, num)
    if attrs["box_coding"] == 1 and not with_anchors:  # centre-size on the grid, sizes > 0
        centres = rng.integers(2, 7, (*box_shape, 2)) / 8
        boxes = np.concatenate([centres, rng.integers(1, 5, (*box_shape, 2)) / 8], -1).astype(np.float32)
    elif with_anchors:  # deltas
        boxes = (rng.integers(-2, 3, (*box_shape, 4)) / 16).astype(np.float32)
    else:
        boxes = _grid_boxes(rng, box_shape)
    if attrs.get("score_activation"):
        scores = (rng.integers(-8, 9, (batch, num, classes)) / 4).astype(np.float32)  # logits, ties
        threshold = 0.5  # sigmoid(0) = 0.5 exactly: logits 0 pass (inclusive)
    else:
        scores = (rng.integers(0, 5, (batch, num, classes)) / 4).astype(np.float32)  # ties on a 0.25 grid
        threshold = 0.5  # scores equal to it pass (inclusive)
    feeds = {"boxes": boxes, "scores": scores}
    if with_anchors:
        if attrs["box_coding"] == 1:  # y, x, h, w
            anchors = np.concatenate([rng.uniform(0.2, 0.8, (1, num, 2)), rng.uniform(0.1, 0.4, (1, num, 2))], -1)
        else:
            anchors = _grid_boxes(rng, (1, num))
        feeds["anchors"] = anchors.astype(np.float32)
    model = _one_node(
        batch, num, classes, per_class=per_class, with_anchors=with_anchors,
        score_threshold=threshold, iou_threshold=0.5, max_output_boxes=40, **attrs,
    )  # fmt: skip
    ref, got = _run_both(model, feeds)
    exp_args = []
    if with_anchors and attrs["box_coding"] == 1:
        exp_args.append(boxes[..., 2:4].ravel())
    if attrs.get("score_activation"):
        exp_args.append(-scores.ravel())
    _assert_same(ref, got, exp_ulps=_exp_ulps(np.concatenate(exp_args)) if exp_args else None)
    counts = ref[0].ravel()
    assert counts.min() > 0, "the case must keep something for the comparison to mean anything"
    classes_out = [ref[3][b, : counts[b]] for b in range(batch)]
    background = attrs.get("background_class", -1)
    if background >= 0:
        assert all((c != background).all() for c in classes_out)
    assert any(len(np.unique(c)) > 1 for c in classes_out)


@pytest.mark.parametrize("per_class, coding, agnostic", [(False, 0, 0), (True, 0, 1), (False, 1, 0), (True, 1, 0)])
def test_random_inputs_identical(per_class, coding, agnostic):
    """Continuous random boxes and scores (no exp on the way: bit-identical), batch 3."""
    rng = np.random.default_rng(60 + 4 * per_class + 2 * coding + agnostic)
    batch, num, classes = 3, 80, 5
    shape = (batch, num, classes) if per_class else (batch, num)
    first = rng.uniform(0, 1, (*shape, 2))
    second = rng.uniform(0.05, 0.3, (*shape, 2)) + (0 if coding else first)  # sizes, or far corners
    feeds = {
        "boxes": np.concatenate([first, second], -1).astype(np.float32),
        "scores": rng.uniform(0, 1, (batch, num, classes)).astype(np.float32),
    }
    model = _one_node(
        batch, num, classes, per_class=per_class, with_anchors=False,
        score_threshold=0.6, iou_threshold=0.3, max_output_boxes=50, box_coding=coding, class_agnostic=agnostic,
    )  # fmt: skip
    ref, got = _run_both(model, feeds)
    _assert_same(ref, got)
    assert ref[0].min() > 0


def test_more_candidates_than_one_topk_ranks():
    """4200 candidates (1400 anchors x 3 classes): the first 3840 ranks come from TopK, ranks
    3840-4095 from the second TopK after ScatterElements; ranks past 4096 never take part. The
    1280 best anchors share one box (one kept per class); the 120 others are disjoint, so what is
    kept beyond the first three are exactly the candidates of ranks 3840-4095. Scores come in
    groups of 7 equal values, so ties straddle both rank 3840 and rank 4096."""
    num, classes = 1400, 3
    flat = np.arange(num * classes)
    scores = (1.0 - (flat // 7) / 1024).astype(np.float32).reshape(1, num, classes)  # rank = flat index
    boxes = np.zeros((1, num, 4), dtype=np.float32)
    boxes[0, :, 2:] = 1.0
    k = np.arange(1280, num)
    boxes[0, 1280:] = np.stack([k * 2.0, np.zeros_like(k), k * 2.0 + 1, np.ones_like(k)], -1)
    model = _one_node(
        1, num, classes, per_class=False, with_anchors=False,
        score_threshold=-10.0, iou_threshold=0.5, max_output_boxes=300,
    )  # fmt: skip
    ref, got = _run_both(model, {"boxes": boxes, "scores": scores})
    _assert_same(ref, got)
    assert ref[0][0, 0] == 3 + (4096 - 3840)


# ---- a TFOD --nms efficient head on a tiny graph ---------------------------------------------


def _tfod_efficient(class_agnostic: bool) -> onnx.ModelProto:
    """Two convs on a 16x16 image -> 64 boxes (y1, x1 in [0, 0.5], y2, x2 in [0.5, 1]) and
    3-class sigmoid scores -> trtdeploy's efficient head, tfod layout."""
    g = tao_graphs._G(7)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])
    raw = g.node("Sigmoid", [g.nhwc_flat(g.conv("image", 3, 4, stride=2, scale=0.5), 4)])
    g.node("Add", [g.node("Mul", [raw, g.init(np.float32(0.5))]), g.init(np.float32([0, 0, 0.5, 0.5]))], "boxes")
    g.node("Sigmoid", [g.nhwc_flat(g.conv("image", 3, 3, stride=2, scale=0.5), 3)], "scores")
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("boxes", "scores")]
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(g.model([image], outs)))
    tensors = graph.tensors()
    boxes, scores = tensors["boxes"], tensors["scores"]
    graph.outputs = []
    params = NmsParams(score_threshold=0.3, iou_threshold=0.5, max_detections=20, class_agnostic=class_agnostic)
    add_nms_head(graph, boxes, scores, "efficient", params, "tfod", (16, 16))
    graph.cleanup().toposort()
    return gs.export_onnx(graph)


@pytest.mark.parametrize("agnostic", [False, True])
def test_tfod_efficient_head_same_detections(agnostic):
    model = _tfod_efficient(agnostic)
    assert {op for _, op in plugin_nodes(model)} == {"EfficientNMS_TRT"}
    images = np.random.default_rng(8).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ref, got = _run_both(model, {"image": images})
    _assert_same(ref, got)
    assert 0 < ref[0][0, 0] <= 20  # without class_agnostic the 20 rows fill: the loop stops early


# ---- TensorRT-RTX: build-engine rewrites by itself ---------------------------------------------


@pytest.mark.rtx
@pytest.mark.parametrize("which", ["tao5", "tfod"])
def test_build_engine_on_rtx_rewrites_efficient_nms(tmp_path: Path, which: str):
    from tests.engine.conftest import rtx_backend
    from trtdeploy.engine.builder import BuildOptions, build_engine

    backend = rtx_backend()
    model = tao_graphs.efficientdet_tao5().model if which == "tao5" else _tfod_efficient(False)
    onnx_path = tmp_path / f"{which}.onnx"
    onnx.save(model, str(onnx_path))
    batch = 2 if which == "tao5" else 1
    result = build_engine(onnx_path, BuildOptions(precision="fp16", batch=batch), backend=backend)
    record = result.sidecar.plugins
    assert record["path"] == "rewritten" and record["kept"] == []
    assert [r["plugin"] for r in record["rewritten"]] == ["EfficientNMS_TRT"]
    outputs = {t.name: t for t in result.sidecar.outputs}
    assert list(outputs) == list(NAMES)
    assert [outputs[n].dtype for n in NAMES] == ["int32", "float32", "float32", "int32"]
    assert plugin_nodes(onnx.load(str(onnx_path)))  # the ONNX on disk keeps its plugin


# ---- DeepStream: the same nvinfer config for the rewritten model -------------------------------


def test_ds_config_same_for_the_rewritten_tao5_model(tmp_path: Path):
    import typer
    from typer.testing import CliRunner

    from tests.deepstream.ds_helpers import SPECS, need_reference
    from trtdeploy.cli import ds_config, ds_run, import_tao
    from trtdeploy.cli import rewrite_plugins as rewrite_cli

    need_reference()
    app = typer.Typer()
    for command in (import_tao, rewrite_cli, ds_config, ds_run):
        command.register(app)
    runner = CliRunner()

    def cli(*args):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    text = (SPECS / "efficientdet_tf2/specs/spec_retrain.yaml").read_text()
    text = text.replace("num_classes: 91", f"num_classes: {len(tao_graphs.KITTI) + 1}")
    text = text.replace("input_width: 512", "input_width: 64").replace("input_height: 512", "input_height: 64")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    labels = tmp_path / "map.yaml"
    labels.write_text("".join(f"{i + 1}: '{name}'\n" for i, name in enumerate(tao_graphs.KITTI)))
    plugin_onnx = tmp_path / "d0.onnx"
    onnx.save(tao_graphs.efficientdet_tao5().model, str(plugin_onnx))
    cli("import-tao", spec, "--arch", "efficientdet", "--onnx", plugin_onnx, "--labels", labels)
    std_onnx = tmp_path / "d0_std.onnx"
    cli("rewrite-plugins", plugin_onnx, "-o", std_onnx)
    configs = {}
    for name, model in (("plugin", plugin_onnx), ("std", std_onnx)):
        cli(
            "gen-ds-config", model.with_name(model.stem + ".deploy.json"), "-o", tmp_path / f"ds_{name}", "--name", "d0"
        )
        text = (tmp_path / f"ds_{name}" / "config_infer_primary_d0.txt").read_text()
        configs[name] = [line for line in text.splitlines() if model.name not in line]
    assert configs["plugin"] == configs["std"]  # every key but the model's file names
    assert "parse-bbox-func-name=NvDsInferParseCustomEfficientDetTAO" in configs["std"]

    # ds-run (nvinfer's preprocessing, the parser emulation) reads the same objects from both
    from PIL import Image

    image = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(image)
    found = {}
    for name in ("plugin", "std"):
        cli(
            "ds-run",
            tmp_path / f"ds_{name}" / "config_infer_primary_d0.txt",
            "-i",
            image,
            "-o",
            tmp_path / f"run_{name}",
        )
        found[name] = json.loads((tmp_path / f"run_{name}" / "frame.json").read_text())
    objects = found["plugin"].get("objects", found["plugin"])
    assert objects, "the plugin model must detect something for the comparison to mean anything"
    assert found["plugin"] == found["std"]


def test_refusals_name_the_node_and_the_fix():
    from trtdeploy.errors import UnsupportedModelError

    dynamic = _one_node(1, 10, 2, per_class=False, with_anchors=False, score_threshold=0.5)
    for value in dynamic.graph.input:  # the number of boxes unknown
        value.type.tensor_type.shape.dim[1].dim_param = "A"
    with pytest.raises(
        UnsupportedModelError, match=r"EfficientNMS_TRT node 'nms': .*static A and C.*fixed input sizes"
    ):
        rewrite_plugins(dynamic)
    coding = _one_node(1, 10, 2, per_class=False, with_anchors=False, box_coding=2)
    with pytest.raises(UnsupportedModelError, match=r"EfficientNMS_TRT node 'nms': box_coding 2 is not 0 or 1"):
        rewrite_plugins(coding)
