"""NMS heads built into tiny graphs and run whole (plugin nodes included) with make_session."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from tests.nms.slow_nms import random_inputs, slow_batched_nms, slow_efficient_nms
from trtdeploy.deploy_card import NmsParams
from trtdeploy.errors import GraphError, UsageError
from trtdeploy.nms import NMS_KINDS, add_nms_head, make_session
from trtdeploy.nms.ort_session import with_reference_ops

INPUT_HW = (300, 400)
TFOD_OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
LAYOUT = {"efficient": "tfod", "onnx": "tfod", "batched": "batched", "none": "raw"}


def build(kind, num_anchors, num_classes, params, layout=None, opset=17, batch="batch", ds_parser=None):
    graph = gs.Graph(opset=opset)
    boxes = gs.Variable("in_boxes", np.float32, [batch, num_anchors, 4])
    scores = gs.Variable("in_scores", np.float32, [batch, num_anchors, num_classes])
    graph.inputs = [boxes, scores]
    spec = add_nms_head(graph, boxes, scores, kind, params, layout or LAYOUT[kind], INPUT_HW, ds_parser=ds_parser)
    graph.cleanup().toposort()
    return gs.export_onnx(graph), spec


def run(model, boxes, scores):
    return make_session(model).run(None, {"in_boxes": boxes, "in_scores": scores})


def assert_same(actual, expected):
    for got, want, what in zip(actual, expected, ("num", "boxes", "scores", "classes"), strict=True):
        assert got.dtype == want.dtype, what
        assert got.shape == want.shape, what
        np.testing.assert_array_equal(got, want, err_msg=what)


PARAMS = NmsParams(
    score_threshold=0.4, iou_threshold=0.45, max_detections=12, max_detections_per_class=12
)


def crafted_cases():
    """(name, boxes [B,A,4], scores [B,A,C]) covering overlaps, ties, thresholds, K, emptiness."""
    cases = []
    # heavy overlap + IoU exactly 0.5 + a score exactly at the threshold 0.4
    boxes = np.zeros((1, 6, 4), np.float32)
    boxes[0, :4] = [[0, 0, 1, 1], [0, 0, 0.5, 1], [0.1, 0.1, 0.9, 0.9], [0, 0, 0.25, 0.25]]
    boxes[0, 4:] = [[0.5, 0.5, 0.75, 0.75], [0.5, 0.5, 0.75, 0.76]]
    scores = np.array(
        [[[0.9, 0.1], [0.8, 0.8], [0.7, 0.45], [0.4, 0.39], [0.6, 0.6], [0.6, 0.6]]], np.float32
    )
    cases.append(("overlap_ties_thresholds", boxes, scores))
    # many disjoint candidates: more than K survive NMS
    grid = [[y / 8, x / 8, y / 8 + 0.1, x / 8 + 0.1] for y in range(8) for x in range(8)]
    boxes = np.array([grid], np.float32)
    scores = np.random.default_rng(5).uniform(0.5, 1.0, (1, 64, 2)).astype(np.float32)
    cases.append(("more_than_k", boxes, scores))
    # nothing above the threshold
    cases.append(
        ("zero_detections", np.array([grid[:6]], np.float32), np.full((1, 6, 2), 0.2, np.float32))
    )
    # batch of 4 images with different content, one of them empty
    boxes, scores = random_inputs(np.random.default_rng(7), batch=4, num_anchors=40, num_classes=3)
    scores[2] *= 0.3
    cases.append(("batch4_mixed", boxes, scores))
    return cases


@pytest.mark.parametrize("case", crafted_cases(), ids=lambda c: c[0])
def test_efficient_head_matches_slow_oracle_on_crafted_inputs(case):
    _, boxes, scores = case
    model, _ = build("efficient", boxes.shape[1], scores.shape[2], PARAMS)
    got = run(model, boxes, scores)
    assert_same(got, slow_efficient_nms(boxes, scores, 0.4, 0.45, 12))


@pytest.mark.parametrize("case", crafted_cases(), ids=lambda c: c[0])
def test_onnx_head_equals_efficient_head_on_crafted_inputs(case):
    _, boxes, scores = case
    onnx_model, _ = build("onnx", boxes.shape[1], scores.shape[2], PARAMS)
    efficient_model, _ = build("efficient", boxes.shape[1], scores.shape[2], PARAMS)
    assert_same(run(onnx_model, boxes, scores), run(efficient_model, boxes, scores))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_onnx_and_efficient_heads_match_oracle_on_random_batches(seed, agnostic, ties):
    rng = np.random.default_rng(seed)
    boxes, scores = random_inputs(rng, batch=4, num_anchors=80, num_classes=5)
    if ties:  # few distinct scores: the tie-breaking order decides
        scores = (np.round(scores * 8) / 8).astype(np.float32)
    params = NmsParams(
        score_threshold=0.3,
        iou_threshold=0.5,
        max_detections=20,
        max_detections_per_class=20,
        class_agnostic=agnostic,
    )
    expected = slow_efficient_nms(boxes, scores, 0.3, 0.5, 20, class_agnostic=agnostic)
    for kind in ("efficient", "onnx"):
        model, _ = build(kind, 80, 5, params)
        assert_same(run(model, boxes, scores), expected)


def test_dynamic_batch_same_session_batch_1_and_4():
    boxes, scores = random_inputs(np.random.default_rng(3), batch=4, num_anchors=30, num_classes=2)
    for kind in ("efficient", "onnx"):
        model, _ = build(kind, 30, 2, PARAMS)
        session = make_session(model)
        four = session.run(None, {"in_boxes": boxes, "in_scores": scores})
        for i in range(4):
            one = session.run(None, {"in_boxes": boxes[i : i + 1], "in_scores": scores[i : i + 1]})
            assert_same(one, [t[i : i + 1] for t in four])


def test_onnx_head_pads_when_fewer_pairs_than_k():
    boxes, scores = random_inputs(np.random.default_rng(4), batch=2, num_anchors=3, num_classes=2)
    params = NmsParams(
        score_threshold=0.0, iou_threshold=0.5, max_detections=10, max_detections_per_class=10
    )
    onnx_out = run(build("onnx", 3, 2, params)[0], boxes, scores)
    assert onnx_out[1].shape == (2, 10, 4)
    assert_same(onnx_out, run(build("efficient", 3, 2, params)[0], boxes, scores))
    assert_same(onnx_out, slow_efficient_nms(boxes, scores, 0.0, 0.5, 10))


def test_onnx_head_applies_per_class_cap():
    # EfficientNMS has no per-class cap; the ONNX head caps each class at max_detections_per_class.
    grid = np.array([[[i / 10, 0, i / 10 + 0.05, 0.05] for i in range(10)]], np.float32)
    scores = np.linspace(0.9, 0.5, 10, dtype=np.float32).reshape(1, 10, 1)
    params = NmsParams(
        score_threshold=0.1, iou_threshold=0.5, max_detections=8, max_detections_per_class=3
    )
    num, *_ = run(build("onnx", 10, 1, params)[0], grid, scores)
    assert num[0, 0] == 3


def test_batched_head_matches_slow_oracle():
    boxes, scores = random_inputs(np.random.default_rng(11), batch=4, num_anchors=50, num_classes=3)
    boxes[1, 0] = [-0.2, 0.1, 0.4, 1.3]  # the plugin clips to [0, 1]
    scores[1, 0] = 1.0  # highest score of image 1
    scores[2] *= 0.42  # few candidates: padding rows
    params = NmsParams(score_threshold=0.4, iou_threshold=0.45, max_detections=15)
    model, spec = build("batched", 50, 3, params)
    node = next(n for n in model.graph.node if n.op_type == "BatchedNMSDynamic_TRT")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["topK"] == 50 and attrs["keepTopK"] == 15 and attrs["shareLocation"] == 1
    got = run(model, boxes, scores)
    assert_same(got, slow_batched_nms(boxes, scores, 0.4, 0.45, top_k=50, keep_top_k=15))
    num, out_boxes, _, classes = got
    assert 0 < num[2, 0] < 15 and (classes[2, num[2, 0] :] == -1).all()
    assert classes.dtype == np.float32 and out_boxes.min() >= 0 and out_boxes.max() <= 1
    np.testing.assert_array_equal(out_boxes[1, 0], np.array([0.0, 0.1, 0.4, 1.0], np.float32))
    assert spec.names == ["num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes"]


@pytest.mark.parametrize("kind", ["efficient", "onnx"])
def test_deepstream_layout_is_pixel_y1x1y2x2_with_float_classes(kind):
    boxes, scores = random_inputs(np.random.default_rng(9), batch=2, num_anchors=40, num_classes=3)
    tfod = run(build(kind, 40, 3, PARAMS)[0], boxes, scores)
    model, spec = build(kind, 40, 3, PARAMS, layout="deepstream")
    assert [o.name for o in model.graph.output] == spec.names
    assert spec.names == ["num_detections", "detection_boxes", "detection_scores", "detection_classes"]
    assert (spec.box_format, spec.box_units, spec.class_dtype) == ("y1x1y2x2", "pixels", "float32")
    count, px, ds_scores, ds_classes = run(model, boxes, scores)
    height, width = INPUT_HW
    assert count.dtype == np.int32 and ds_classes.dtype == np.float32
    np.testing.assert_array_equal(count, tfod[0])
    np.testing.assert_allclose(
        px, tfod[1] * np.array([height, width, height, width], np.float32), rtol=1e-6
    )
    np.testing.assert_array_equal(ds_scores, tfod[2])
    np.testing.assert_array_equal(ds_classes, tfod[3].astype(np.float32))
    # Decode the first detection the way the DeepStream parser does: left = box[1], top = box[0].
    y1, x1, y2, x2 = tfod[1][0, 0]
    left, top, w, h = px[0, 0, 1], px[0, 0, 0], px[0, 0, 3] - px[0, 0, 1], px[0, 0, 2] - px[0, 0, 0]
    np.testing.assert_allclose(
        [left, top, w, h],
        [x1 * width, y1 * height, (x2 - x1) * width, (y2 - y1) * height],
        rtol=1e-5,
    )
    assert px.max() >= 2  # the parser asserts pixel boxes


# What each DeepStream parser variant reads, from the parsers' C source (not from our table):
# (output names in order, count dtype, box units, box order, class dtype).
DS_READS = {
    # hiennguyen9874/deepstream-sources 6.3 sources/libs/nvdsinfer_customparser/
    # nvdsinfer_custombboxparser.cpp NvDsInferParseCustomTfSSD l. 214-278: layers by name, FLOAT only
    # (l. 221), count read as float (l. 240), classes as float (l. 249), boxes normalised
    # y1,x1,y2,x2 (enum at l. 254, scaled by the network size l. 256-260).
    "sdk-tfssd": (TFOD_OUTPUTS, np.float32, "normalized", "y1x1y2x2", np.float32),
    # same file NvDsInferParseCustomEfficientDetTAO l. 607-672: by position, count int* (l. 620),
    # classes float* (l. 627), left = box[1], top = box[0] (l. 658-659), pixels (assert l. 640).
    "sdk-efficientdet": (TFOD_OUTPUTS, np.int32, "pixels", "y1x1y2x2", np.float32),
    # NVIDIA-AI-IOT/deepstream_tao_apps master post_processor/nvdsinfer_custombboxparser_tao.cpp
    # l. 469-531: by name (l. 486-497), count int*, classes int* (l. 495), left = box[1] (l. 517).
    "tao-efficientdet": (TFOD_OUTPUTS, np.int32, "pixels", "y1x1y2x2", np.int32),
    # deepstream-sources 6.3 NvDsInferParseCustomBatchedNMSTLT l. 467-530: by position, count int*
    # (l. 484), classes float* (l. 487), left = box[0] * width, top = box[1] * height (l. 518-519).
    "batchednms": (("num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes"), np.int32, "normalized",
                   "x1y1x2y2", np.float32),
}


@pytest.mark.parametrize("variant", sorted(DS_READS))
def test_deepstream_variants_emit_what_their_parser_reads(variant):
    names, count_dtype, units, order, class_dtype = DS_READS[variant]
    boxes, scores = random_inputs(np.random.default_rng(4), batch=2, num_anchors=40, num_classes=3)
    batched = variant == "batchednms"
    kind = "batched" if batched else "efficient"
    reference_model, _ = build(kind, 40, 3, PARAMS)  # the tfod / plain batched contract
    reference = run(reference_model, boxes, scores)
    model, spec = build(kind, 40, 3, PARAMS, layout="batched" if batched else "deepstream", ds_parser=variant)
    assert [o.name for o in model.graph.output] == list(names) == spec.names
    assert spec.ds_parser == variant
    count, out_boxes, out_scores, out_classes = run(model, boxes, scores)
    assert count.dtype == count_dtype and out_classes.dtype == class_dtype
    assert out_boxes.dtype == np.float32 and out_scores.dtype == np.float32
    np.testing.assert_array_equal(count.astype(np.int32), reference[0])
    np.testing.assert_array_equal(out_scores, reference[2])
    np.testing.assert_array_equal(out_classes.astype(np.int64), reference[3].astype(np.int64))
    expected = reference[1]  # normalised y1,x1,y2,x2
    if order == "x1y1x2y2":
        expected = expected[..., [1, 0, 3, 2]]
    if units == "pixels":
        height, width = INPUT_HW
        along = [height, width] if order == "y1x1y2x2" else [width, height]
        expected = expected * np.array(along * 2, np.float32)
    np.testing.assert_allclose(out_boxes, expected, rtol=1e-6)
    # the card says the same as the buffers
    assert (spec.box_units, spec.box_format) == (units, order)
    assert (spec.count_dtype, spec.class_dtype) == (np.dtype(count_dtype).name, np.dtype(class_dtype).name)


@pytest.mark.parametrize(
    ("kind", "layout", "variant", "match"),
    [
        ("efficient", "deepstream", "sdk-ssd", "unknown DeepStream parser variant"),
        ("efficient", "deepstream", "batchednms", "needs --nms batched"),
        ("batched", "batched", "tao-efficientdet", "needs --nms efficient or onnx"),
    ],
)
def test_deepstream_variant_mismatches_are_refused(kind, layout, variant, match):
    with pytest.raises(UsageError, match=match):
        build(kind, 30, 3, PARAMS, layout=layout, ds_parser=variant)


def test_none_head_outputs_inputs_unchanged():
    boxes, scores = random_inputs(np.random.default_rng(1), batch=3, num_anchors=20, num_classes=4)
    model, spec = build("none", 20, 4, PARAMS)
    assert spec.names == ["boxes", "scores"] and spec.layout == "raw" and spec.nms == "none"
    out_boxes, out_scores = run(model, boxes, scores)
    np.testing.assert_array_equal(out_boxes, boxes)
    np.testing.assert_array_equal(out_scores, scores)


@pytest.mark.parametrize("kind", NMS_KINDS)
def test_emitted_graph_passes_checker_and_has_deterministic_names(kind):
    model, spec = build(kind, 30, 3, PARAMS)
    again, _ = build(kind, 30, 3, PARAMS)
    assert model.SerializeToString() == again.SerializeToString()
    assert all(node.name.startswith("nms/") for node in model.graph.node)
    assert [o.name for o in model.graph.output] == spec.names
    assert spec.num_classes == 3 and spec.max_detections == 12 and spec.nms == kind
    if kind in ("onnx", "none"):
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        assert len(inferred.graph.output) == len(spec.names)
    else:
        # plugin ops have no ONNX schema in the default domain; check the rest of the graph
        plugin = {"efficient": "EfficientNMS_TRT", "batched": "BatchedNMSDynamic_TRT"}[kind]
        node = next(n for n in model.graph.node if n.op_type == plugin)
        assert node.domain == ""
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["plugin_version"] == b"1"
        onnx.checker.check_model(with_reference_ops(model))


def test_efficient_node_attributes():
    params = NmsParams(
        score_threshold=0.25, iou_threshold=0.6, max_detections=7, class_agnostic=True
    )
    model, spec = build("efficient", 30, 3, params)
    node = next(n for n in model.graph.node if n.op_type == "EfficientNMS_TRT")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs == {
        "plugin_version": b"1",
        "score_threshold": pytest.approx(0.25),
        "iou_threshold": pytest.approx(0.6),
        "max_output_boxes": 7,
        "background_class": -1,
        "score_activation": 0,
        "class_agnostic": 1,
        "box_coding": 0,
    }
    assert [(o.name, o.type.tensor_type.elem_type) for o in model.graph.output] == [
        ("num_detections", onnx.TensorProto.INT32),
        ("detection_boxes", onnx.TensorProto.FLOAT),
        ("detection_scores", onnx.TensorProto.FLOAT),
        ("detection_classes", onnx.TensorProto.INT32),
    ]
    assert (spec.layout, spec.box_format, spec.box_units, spec.class_dtype) == (
        "tfod",
        "y1x1y2x2",
        "normalized",
        "int32",
    )


def test_make_session_accepts_paths(tmp_path):
    boxes, scores = random_inputs(np.random.default_rng(2), batch=1, num_anchors=10, num_classes=2)
    model, _ = build("efficient", 10, 2, PARAMS)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    from_path = make_session(path).run(None, {"in_boxes": boxes, "in_scores": scores})
    from_str = make_session(str(path)).run(None, {"in_boxes": boxes, "in_scores": scores})
    assert_same(from_path, from_str)
    assert model.graph.node[-1].domain == ""  # the caller's model is not rewritten


@pytest.mark.parametrize(
    ("kind", "layout", "params", "opset", "error", "match"),
    [
        ("fast", "tfod", PARAMS, 17, UsageError, "unknown NMS kind"),
        ("batched", "tfod", PARAMS, 17, UsageError, "cannot produce"),
        ("none", "deepstream", PARAMS, 17, UsageError, "cannot produce"),
        (
            "batched",
            "batched",
            NmsParams(class_agnostic=True, max_detections=5),
            17,
            UsageError,
            "class-agnostic",
        ),
        ("batched", "batched", NmsParams(max_detections=31), 17, UsageError, "topK"),
        (
            "onnx",
            "tfod",
            NmsParams(max_detections_per_class=0),
            17,
            UsageError,
            "max_detections_per_class",
        ),
        ("onnx", "tfod", PARAMS, 11, GraphError, "opset"),
    ],
)
def test_bad_options_are_refused(kind, layout, params, opset, error, match):
    with pytest.raises(error, match=match):
        build(kind, 30, 3, params, layout=layout, opset=opset)


def test_dynamic_box_count_is_refused():
    graph = gs.Graph(opset=17)
    boxes = gs.Variable("b", np.float32, ["batch", "anchors", 4])
    scores = gs.Variable("s", np.float32, ["batch", "anchors", 3])
    with pytest.raises(GraphError, match="static"):
        add_nms_head(graph, boxes, scores, "efficient", PARAMS, "tfod", INPUT_HW)


@pytest.mark.rtx
def test_none_head_builds_with_tensorrt_rtx():
    # TensorRT-RTX cannot build NMS layers or plugins, so only the `none` head is built here.
    trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx not installed")
    graph = gs.Graph(opset=17)
    raw_boxes = gs.Variable("raw_boxes", np.float32, ["batch", 50, 4])
    logits = gs.Variable("logits", np.float32, ["batch", 50, 3])
    graph.inputs = [raw_boxes, logits]
    boxes = gs.Variable("decoded", np.float32, ["batch", 50, 4])
    scores = gs.Variable("activated", np.float32, ["batch", 50, 3])
    graph.nodes += [
        gs.Node("Sigmoid", "decode", inputs=[raw_boxes], outputs=[boxes]),
        gs.Node("Sigmoid", "activate", inputs=[logits], outputs=[scores]),
    ]
    add_nms_head(graph, boxes, scores, "none", PARAMS, "raw", INPUT_HW)
    model = gs.export_onnx(graph.cleanup().toposort())

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString()), [
        parser.get_error(i).desc() for i in range(parser.num_errors)
    ]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("raw_boxes", (1, 50, 4), (2, 50, 4), (4, 50, 4))
    profile.set_shape("logits", (1, 50, 3), (2, 50, 3), (4, 50, 3))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    assert engine is not None and engine.nbytes > 0
    assert [network.get_output(i).name for i in range(network.num_outputs)] == ["boxes", "scores"]


@pytest.mark.parametrize(
    ("kind", "layout", "taken"),
    [("onnx", "tfod", "detection_scores"), ("efficient", "deepstream", "detection_boxes")],
)
def test_output_name_clash_is_refused(kind, layout, taken):
    graph = gs.Graph(opset=17)
    boxes = gs.Variable("b", np.float32, ["batch", 30, 4])
    scores = gs.Variable(taken, np.float32, ["batch", 30, 3])
    graph.inputs = [boxes, scores]
    with pytest.raises(GraphError, match=taken):
        add_nms_head(graph, boxes, scores, kind, PARAMS, layout, INPUT_HW)


@pytest.mark.parametrize("opset", [13, 19])  # ReduceMax takes axes as an attribute before 18
def test_onnx_head_across_opsets(opset):
    params = NmsParams(
        score_threshold=0.3,
        iou_threshold=0.5,
        max_detections=12,
        max_detections_per_class=12,
        class_agnostic=True,
    )
    boxes, scores = random_inputs(
        np.random.default_rng(opset), batch=3, num_anchors=40, num_classes=3
    )
    model, _ = build("onnx", 40, 3, params, opset=opset)
    assert_same(
        run(model, boxes, scores),
        slow_efficient_nms(boxes, scores, 0.3, 0.5, 12, class_agnostic=True),
    )


@pytest.mark.rtx
def test_onnx_head_parses_with_tensorrt_onnx_parser():
    # TensorRT-RTX parses ONNX like TensorRT 10/11 but cannot build the NMS layer ("no runners"),
    # so this checks that every op of the head is accepted by the parser, not the engine.
    trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx not installed")
    model, _ = build("onnx", 40, 3, PARAMS)
    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString()), [
        parser.get_error(i).desc() for i in range(parser.num_errors)
    ]
    layer_types = {network.get_layer(i).type for i in range(network.num_layers)}
    assert trt.LayerType.NMS in layer_types and trt.LayerType.TOPK in layer_types
    assert [network.get_output(i).name for i in range(network.num_outputs)] == list(TFOD_OUTPUTS)


def test_class_agnostic_onnx_head_ignores_per_class_cap():
    grid = np.array([[[i / 10, 0, i / 10 + 0.05, 0.05] for i in range(10)]], np.float32)
    scores = np.stack([np.linspace(0.9, 0.5, 10), np.linspace(0.5, 0.9, 10)], -1)[None].astype(
        np.float32
    )
    params = NmsParams(
        score_threshold=0.1,
        iou_threshold=0.5,
        max_detections=8,
        max_detections_per_class=3,
        class_agnostic=True,
    )
    got = run(build("onnx", 10, 2, params)[0], grid, scores)
    assert got[0][0, 0] == 8
    assert_same(got, slow_efficient_nms(grid, scores, 0.1, 0.5, 8, class_agnostic=True))
