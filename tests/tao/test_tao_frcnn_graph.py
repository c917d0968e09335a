"""A TAO-FasterRCNN-shaped ONNX: the plugin graph under ONNX Runtime (CPU references) against the
graph with every plugin rewritten into standard ops, and the rewritten graph built with
tensorrt_rtx (issue 16, item 3 for FasterRCNN).

The graph restates what TAO's exporter builds (NVIDIA/tao_tensorflow1_backend main,
nvidia_tao_tf1/cv/faster_rcnn/export/exporter.py): ``_onnx_process_proposal`` l.318-380 (a
Sigmoid on ``rpn_out_class``, ProposalDynamic ``proposal`` on (sigmoid, ``rpn_out_regress``)
with input_height/width, rpn_stride, roi_min_size 1.0, nms_iou_threshold, pre/post_nms_top_n,
anchor sizes and ratios from the spec), ``_onnx_process_crop_and_resize`` l.382-421
(CropAndResizeDynamic on the base feature map and the proposals, crop = roi_pool_size, x2 with
pool_size_2x), ``_onnx_process_nms`` l.423-463 (NMSDynamic_TRT ``NMS`` on (prior, loc, conf):
shareLocation 0, varianceEncodedInTarget 1, backgroundLabelId = num_classes - 1, codeType 1,
inputOrder [1, 2, 0], confSigmoid 0, isNormalized 1, topK = rpn post-NMS top N, keepTopK =
classifier NMS max boxes; outputs ``nms_out``, ``nms_out_1``), and the NmsInputs layer
(nvidia_tao_tf1/cv/faster_rcnn/layers/NmsInputs.py l.58-113: ROIs reordered to x1, y1, x2, y2
and doubled into [N, 2, B*4, 1]; deltas divided by the classifier's regr std and padded with a
dummy background class). Numbers are the tutorial spec's (the shared reference folder tao_specs/
faster_rcnn/specs/default_spec_resnet18.txt: anchor ratios 1, 0.5, 2, rpn_stride 16, pool 7,
rpn NMS 0.7, classifier NMS 0.3, confidence 0.0001), scaled down to a 64x96 input.

TAO exports opset 12 (nvidia_tao_tf1/cv/common/export/app.py l.156-159 ``--target_opset``
default 12), and so does this graph; the CropAndResizeDynamic rewrite needs GridSample (opset
16): the rewrite driver raises the opset with ONNX's version converter first
(``trtdeploy.rewrites._opset.with_opset``; the plugin graph under ONNX Runtime stays at 12, so
the comparison covers the conversion too).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.tao.tao_graphs import _G, KITTI
from trtdeploy import plugins
from trtdeploy.deepstream import parser_emulation
from trtdeploy.exact import SCORE_FLOOR
from trtdeploy.nms.ort_session import make_session
from trtdeploy.rewrites import rewrites
from trtdeploy.rewrites._opset import default_opset, with_opset
from trtdeploy.rewrites.driver import plugin_nodes, rewrite_plugins

H, W, STRIDE = 64, 96, 16
ANCHOR_SIZES, ANCHOR_RATIOS = [16.0, 32.0, 64.0], [1.0, 0.5, 2.0]
PRE, POST, POOL, KEEP = 128, 32, 7, 20
NUM_CLASSES = len(KITTI) + 1  # background last (backgroundLabelId = num_classes - 1)
REGR_STD = (10.0, 10.0, 5.0, 5.0)  # TAO's classifier_regr_std default
OUTPUTS = ("nms_out", "nms_out_1")


def frcnn_graph(seed: int = 16, fixed_sizes: bool = False, batch: int | str = "N") -> onnx.ModelProto:
    """The TAO-shaped FasterRCNN; ``fixed_sizes`` zeroes the RPN's tw/th weights (every box keeps
    its anchor's size, so exp(0) = 1 is exact in every backend)."""
    g = _G(seed)
    x = "input_image"
    for cin, cout in ((3, 8), (8, 8), (8, 8), (8, 8)):  # stride 16: a 4x6 base feature map
        x = g.relu(g.conv(x, cin, cout, stride=2))
    base = g.node("Identity", [x], "base_feature")
    rpn = g.relu(g.conv(base, 8, 8))
    anchors = len(ANCHOR_SIZES) * len(ANCHOR_RATIOS)
    g.node("Identity", [g.conv(rpn, 8, anchors, scale=1.0)], "rpn_out_class")
    weights = (g.rng.standard_normal((4 * anchors, 8, 3, 3)) * 0.05).astype(np.float32)
    bias = (g.rng.standard_normal(4 * anchors) * 0.05).astype(np.float32)
    if fixed_sizes:
        weights[2::4] = weights[3::4] = 0.0
        bias[2::4] = bias[3::4] = 0.0
    g.node("Conv", [rpn, g.init(weights), g.init(bias, "b")], "rpn_out_regress", pads=[1, 1, 1, 1])
    g.node("Sigmoid", ["rpn_out_class"], "sigmoid_output")
    g.nodes.append(helper.make_node(
        "ProposalDynamic", ["sigmoid_output", "rpn_out_regress"], ["proposal_out"], name="proposal",
        input_height=H, input_width=W, rpn_stride=STRIDE, roi_min_size=1.0, nms_iou_threshold=0.7,
        pre_nms_top_n=PRE, post_nms_top_n=POST, anchor_sizes=ANCHOR_SIZES, anchor_ratios=ANCHOR_RATIOS,
    ))  # fmt: skip
    g.nodes.append(helper.make_node(
        "CropAndResizeDynamic", [base, "proposal_out"], ["crop_and_resize_out"], name="CropAndResize_plugin",
        crop_height=POOL, crop_width=POOL,
    ))  # fmt: skip
    flat = g.node("Reshape", ["crop_and_resize_out", g.const([0, POST, -1])])  # [N, P, C*7*7]
    hidden = g.relu(g.node("MatMul", [flat, g.init((g.rng.standard_normal((8 * POOL * POOL, 16)) * 0.1).astype(np.float32))]))
    logits = g.node("MatMul", [hidden, g.init((g.rng.standard_normal((16, NUM_CLASSES)) * 2.0).astype(np.float32))])
    conf = g.node("Softmax", [logits], axis=-1)  # [N, P, C+1], background last
    deltas = g.node("MatMul", [hidden, g.init((g.rng.standard_normal((16, 4 * len(KITTI))) * 0.5).astype(np.float32))])
    _nms_inputs(g, conf, deltas)
    g.nodes.append(helper.make_node(
        "NMSDynamic_TRT", ["nms_inputs_1/prior_data_concat", "nms_inputs_1/loc_data_reshape",
                           "nms_inputs_1/conf_data_reshape"], list(OUTPUTS), name="NMS",
        shareLocation=0, varianceEncodedInTarget=1, backgroundLabelId=NUM_CLASSES - 1, confidenceThreshold=0.0001,
        nmsThreshold=0.3, topK=POST, codeType=1, keepTopK=KEEP, numClasses=NUM_CLASSES, inputOrder=[1, 2, 0],
        confSigmoid=0, isNormalized=1, scoreBits=0,
    ))  # fmt: skip
    inputs = [helper.make_tensor_value_info("input_image", TensorProto.FLOAT, [batch, 3, H, W])]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in OUTPUTS]
    return g.model(inputs, outputs)  # opset 12, as TAO exports


def _nms_inputs(g: _G, conf: str, deltas: str) -> None:
    """NmsInputs.call (l.69-113) in ONNX ops."""
    rois = g.node("Reshape", ["proposal_out", g.const([0, POST, 4, 1])])
    xyxy = g.node("Gather", [rois, g.const([1, 0, 3, 2])], axis=2)  # (y1, x1, y2, x2) -> (x1, y1, x2, y2)
    flat = g.node("Reshape", [xyxy, g.const([0, 1, POST * 4, 1])])
    g.node("Concat", [flat, flat], "nms_inputs_1/prior_data_concat", axis=1)
    g.node("Reshape", [conf, g.const([0, POST * NUM_CLASSES, 1, 1])], "nms_inputs_1/conf_data_reshape")
    loc = g.node("Reshape", [deltas, g.const([0, POST, len(KITTI), 4])])
    scaled = g.node("Mul", [loc, g.init(np.array([1.0 / s for s in REGR_STD], np.float32), "inv_std")])
    dummy = g.node("Slice", [scaled, g.const([0]), g.const([1]), g.const([2])])  # the first class's deltas
    padded = g.node("Concat", [scaled, dummy], axis=2)  # [N, P, C+1, 4]
    g.node("Reshape", [padded, g.const([0, POST * NUM_CLASSES * 4, 1, 1])], "nms_inputs_1/loc_data_reshape")


def _images(batch: int, seed: int) -> dict[str, np.ndarray]:
    """Random pixels, a flat grey image and a bright square on black (structured inputs)."""
    rng = np.random.default_rng(seed)
    random = rng.uniform(-1, 1, (batch, 3, H, W)).astype(np.float32)
    grey = np.full((1, 3, H, W), 0.25, np.float32)
    square = np.zeros((1, 3, H, W), np.float32)
    square[:, :, 16:48, 24:72] = 1.0
    return {"random": random, "grey": grey, "square": square}


@pytest.fixture(scope="module")
def graphs() -> dict[str, tuple[onnx.ModelProto, onnx.ModelProto, list[str]]]:
    out = {}
    for name, fixed in (("fixed_sizes", True), ("free_sizes", False)):
        model = frcnn_graph(fixed_sizes=fixed)
        rewritten, done = rewrite_plugins(model)  # opset 12 -> 16 on the way (rewrites._opset)
        out[name] = (model, rewritten, [r.plugin for r in done])
    return out


def _at_rewrite_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model at the opset its plugins' rewrites need (16, GridSample), plugins untouched."""
    need = max(rewrites()[op].min_opset for _, op in plugin_nodes(model))
    return with_opset(model, need)


def test_the_opset_is_raised_around_the_plugin_nodes() -> None:
    model = frcnn_graph()
    raised = _at_rewrite_opset(model)
    assert default_opset(model) == 12 and default_opset(raised) == 16
    assert [o.domain for o in raised.opset_import] == [""]
    plugin_nodes_before = [n for n in model.graph.node if plugins.get(n.op_type)]
    plugin_nodes_after = [n for n in raised.graph.node if plugins.get(n.op_type)]
    assert plugin_nodes_after == plugin_nodes_before  # op, domain "", inputs, outputs, attributes
    assert with_opset(raised, 16) is raised


def _run(model: onnx.ModelProto, images: np.ndarray, extra: tuple[str, ...] = ()) -> list[np.ndarray]:
    model = _with_outputs(model, extra) if extra else model
    return make_session(model).run(list(OUTPUTS) + list(extra), {"input_image": images})


def _with_outputs(model: onnx.ModelProto, names: tuple[str, ...]) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names)
    return copy


def test_every_plugin_is_rewritten_and_the_outputs_keep_their_names(graphs) -> None:
    model, rewritten, done = graphs["fixed_sizes"]
    assert [op for _, op in plugin_nodes(model)] == ["ProposalDynamic", "CropAndResizeDynamic", "NMSDynamic_TRT"]
    assert sorted(done) == ["CropAndResizeDynamic", "NMSDynamic_TRT", "ProposalDynamic"]
    assert plugin_nodes(rewritten) == []
    assert [o.name for o in rewritten.graph.output] == list(OUTPUTS)
    types = {o.name: o.type.tensor_type.elem_type for o in rewritten.graph.output}
    # the keep count is int32 in the rewrite: the bytes NMS_TRT writes (trtdeploy.rewrites.nms_trt)
    assert types == {"nms_out": TensorProto.FLOAT, "nms_out_1": TensorProto.INT32}


EPS = float(np.finfo(np.float32).eps)
CUT = ("proposal_out", "crop_and_resize_out")  # the two plugin outputs the head reads


@pytest.mark.parametrize("image", ["random", "grey", "square"])
def test_fixed_size_boxes_give_the_same_detections(graphs, image: str) -> None:
    """exp(0) = 1 exactly in both runs: the proposals are bit-identical. The crops differ by
    GridSample's float32 rounding of the sample positions (trtdeploy.rewrites.crop_and_resize
    ``differences``) and the NMS boxes by its decode's exp; the same detections otherwise."""
    model, rewritten, _ = graphs["fixed_sizes"]
    _same_detections(model, rewritten, _images(2, 3)[image], proposals_exact=True)


def test_free_size_boxes_give_the_same_detections(graphs) -> None:
    """With the RPN's tw/th live, exp() is the backend's (ONNX Runtime's float32 Exp is an ulp or
    two from the reference's exactly rounded one, test_tao_frcnn_proposal): the proposals differ
    by a few ulp, the detections by what that, the crop rounding and the NMS decode's exp make."""
    model, rewritten, _ = graphs["free_sizes"]
    _same_detections(model, rewritten, _images(2, 5)["random"], proposals_exact=False)


def _same_detections(model: onnx.ModelProto, rewritten: onnx.ModelProto, images: np.ndarray, proposals_exact: bool) -> None:
    rows, count, rois, crops, base = _run(model, images, (*CUT, "base_feature"))
    got_rows, got_count, got_rois, got_crops = _run(rewritten, images, CUT)
    assert count.dtype == got_count.dtype == np.int32
    np.testing.assert_array_equal(got_count, count)  # the same number of detections per image
    assert count.min() > 0  # there are detections to compare
    live = np.arange(rows.shape[2])[None, None, :] < count.reshape(-1, 1, 1)
    np.testing.assert_array_equal(got_rows[..., :2][live], rows[..., :2][live])  # image ids, labels, order
    roi_bound = 0.0 if proposals_exact else 8 * EPS  # normalised coordinates <= 1: a few ulp
    assert float(np.abs(got_rois - rois).max()) <= roi_bound
    # crops: float32 rounding of the bilinear samples, a few ulp of the largest feature value
    assert float(np.abs(got_crops - crops).max()) <= 8 * EPS * float(np.abs(base).max())
    # From the rewrite's own proposals and crops, the plugin graph's head and NMS give its rows:
    # image ids, labels and scores bit for bit, boxes up to the NMS decode's exp (CENTER_SIZE,
    # codeType 1: trtdeploy.rewrites.nms_trt ``differences``), a few ulp.
    fed = _fed(model, images, {"proposal_out": got_rois, "crop_and_resize_out": got_crops})
    np.testing.assert_array_equal(got_rows[..., :3], fed[..., :3])
    assert float(np.abs(got_rows[..., 3:] - fed[..., 3:]).max()) <= 8 * EPS * max(1.0, float(np.abs(fed[..., 3:]).max()))
    # so the detections differ by float32 rounding only: within verify's score tolerance
    worst = float(np.abs(got_rows[..., 2:][live] - rows[..., 2:][live]).max())
    assert worst <= SCORE_FLOOR, worst
    print(f"largest detection difference: {worst:.3g}")  # reported with -s


def _fed(model: onnx.ModelProto, images: np.ndarray, given: dict[str, np.ndarray]) -> np.ndarray:
    """The plugin graph's detections with the given tensors fed from outside (their producers cut)."""
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    nodes = [n for n in cut.graph.node if not set(n.output) & set(given)]
    del cut.graph.node[:]
    cut.graph.node.extend(nodes)
    cut.graph.input.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)) for name, value in given.items()
    )
    rows, _ = make_session(cut).run(list(OUTPUTS), {"input_image": images, **given})
    return rows


def test_deepstream_parser_reads_the_same_objects(graphs) -> None:
    """TAO FasterRCNN's DeepStream parser is NvDsInferParseCustomNMSTLT (tao_trt.facts: layout
    nms_trt); the plugin engine's keep count is declared float and written int32, the rewrite's
    declared int32: the parser gets the same bytes and the same objects from both."""
    model, rewritten, _ = graphs["free_sizes"]
    images = _images(2, 5)["random"]
    ref, got = _run(model, images), _run(rewritten, images)
    producers = plugins.plugin_outputs_of(model)
    declared = {n: o.declared_dtype() for n, o in zip(OUTPUTS, plugins.get("NMSDynamic_TRT").outputs, strict=True)}
    for image in range(2):
        plugin_raw = parser_emulation.raw_outputs_from_arrays(
            list(zip(OUTPUTS, ref, strict=True)), image, engine_dtypes=declared, producers=producers
        )
        rewritten_raw = parser_emulation.raw_outputs_from_arrays(list(zip(OUTPUTS, got, strict=True)), image)
        assert plugin_raw[1].data == rewritten_raw[1].data  # the keep count's bytes
        thresholds = [0.0] * NUM_CLASSES
        a = parser_emulation.parse("nmstlt", plugin_raw, W, H, NUM_CLASSES, thresholds)
        b = parser_emulation.parse("nmstlt", rewritten_raw, W, H, NUM_CLASSES, thresholds)
        assert len(a) == len(b) > 0
        for x, y in zip(a, b, strict=True):
            assert x.class_id == y.class_id
            np.testing.assert_allclose(  # pixels: the rows' bound (SCORE_FLOOR) times the input size
                [x.left, x.top, x.width, x.height, x.confidence], [y.left, y.top, y.width, y.height, y.confidence],
                rtol=0, atol=SCORE_FLOOR * max(H, W),
            )  # fmt: skip


@pytest.mark.rtx
def test_build_engine_on_rtx_rewrites_the_three_plugins(tmp_path) -> None:
    """build-engine on the plugin graph: TensorRT-RTX has no plugins, so it rewrites all three by
    itself and records it; the engine's outputs are the parser's (keep count int32)."""
    from tests.engine.conftest import rtx_backend
    from trtdeploy.engine import BuildOptions, build_engine

    model = frcnn_graph()  # opset 12, as TAO exports
    onnx.save(model, str(tmp_path / "frcnn.onnx"))
    result = build_engine(tmp_path / "frcnn.onnx", BuildOptions(precision="fp32", batch=2), backend=rtx_backend())
    record = result.sidecar.plugins
    assert record["path"] == "rewritten" and record["kept"] == []
    assert sorted(r["plugin"] for r in record["rewritten"]) == ["CropAndResizeDynamic", "NMSDynamic_TRT", "ProposalDynamic"]
    assert [(t.name, t.dtype) for t in result.sidecar.outputs] == [("nms_out", "float32"), ("nms_out_1", "int32")]
