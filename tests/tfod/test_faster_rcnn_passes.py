"""The Faster R-CNN glue passes on tiny hand-made graphs (no TensorFlow): the letterbox's true
image area, and the proposal NMS of each head against a NumPy greedy NMS."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from tfod_trt.two_stage.passes import proposals
from trtdeploy.graph_passes import PassContext


def _session(graph: gs.Graph):
    import onnxruntime as ort

    from trtdeploy.nms.ort_session import make_session

    model = gs.export_onnx(graph.cleanup().toposort())
    model.ir_version = 8
    if any(n.op_type == "EfficientNMS_TRT" for n in model.graph.node):
        return make_session(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _proposal_graph(nms: str, num_anchors: int, n: int, letterbox: bool, hw=(16, 16)):
    image = gs.Variable("input_tensor", dtype=np.float32, shape=[2, *hw, 3])
    boxes = gs.Variable("boxes_in", dtype=np.float32, shape=[2, num_anchors, 4])
    scores = gs.Variable("scores_in", dtype=np.float32, shape=[2, num_anchors, 1])
    rpn_boxes = gs.Variable("rpn_boxes", dtype=np.float32, shape=[2, num_anchors, 4])
    rpn_scores = gs.Variable("rpn_scores", dtype=np.float32, shape=[2, num_anchors, 1])
    graph = gs.Graph(inputs=[image, boxes, scores], outputs=[rpn_boxes, rpn_scores], opset=17)
    graph.nodes += [gs.Node("Identity", inputs=[boxes], outputs=[rpn_boxes]),
                    gs.Node("Identity", inputs=[scores], outputs=[rpn_scores])]
    facts = {"nms": nms, "num_proposals": n, "anchors": np.zeros((num_anchors, 4)), "input_hw": hw,
             "first_stage_iou": 0.5, "first_stage_score": 0.1, "letterbox": letterbox}
    proposals(graph, PassContext("test", facts))
    return _session(graph)


def _greedy(boxes: np.ndarray, scores: np.ndarray, iou: float, score: float, n: int) -> list[int]:
    """TensorFlow's NonMaxSuppression: score > threshold, suppress IoU > threshold, by score."""
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > score]
    kept: list[int] = []
    for i in order:
        if len(kept) == n:
            break
        ok = True
        for j in kept:
            y1, x1 = np.maximum(boxes[i, :2], boxes[j, :2])
            y2, x2 = np.minimum(boxes[i, 2:], boxes[j, 2:])
            inter = max(y2 - y1, 0) * max(x2 - x1, 0)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > iou:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@pytest.mark.parametrize("nms", ["onnx", "none", "efficient"])
def test_proposals_are_greedy_nms_sorted_clipped_padded(nms):
    rng = np.random.default_rng(3)
    num, n = 60, 12
    corner = rng.uniform(-4, 14, (2, num, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(1, 8, (2, num, 2))], axis=2).astype(np.float32)
    scores = rng.uniform(0, 1, (2, num, 1)).astype(np.float32)
    scores[1, 5:, 0] = 0.05  # image 2: only 5 boxes above the score threshold -> padding rows
    image = np.ones((2, 16, 16, 3), np.float32)
    session = _proposal_graph(nms, num, n, letterbox=False)
    picked, valid, window = session.run(["proposal_boxes", "proposal_valid", "clip_window"],
                                        {"input_tensor": image, "boxes_in": boxes, "scores_in": scores})
    assert window.shape == (1, 1, 4) and window.reshape(-1).tolist() == [16.0] * 4  # as declared: [1,1,4]
    for b in range(2):
        expected = _greedy(boxes[b], scores[b, :, 0], 0.5, 0.1, n)
        assert valid[b].sum() == len(expected)
        assert np.allclose(picked[b, :len(expected)], np.clip(boxes[b, expected], 0, 16))
        assert not picked[b, len(expected):].any()  # zero padding


def test_letterbox_window_is_the_lit_area():
    """Rows and columns up to the last non-zero pixel: 10x7 of a 16x16 input; a black image
    keeps the whole input."""
    image = np.zeros((2, 16, 16, 3), np.float32)
    image[0, :10, :7] = 128.0
    image[0, 3, 2] = 0.0  # a black pixel inside the image does not matter
    boxes = np.tile(np.array([[0.0, 0.0, 15.0, 15.0]], np.float32), (2, 4, 1))
    scores = np.full((2, 4, 1), 0.9, np.float32)
    session = _proposal_graph("onnx", 4, 2, letterbox=True)
    picked, window = session.run(["proposal_boxes", "clip_window"],
                                 {"input_tensor": image, "boxes_in": boxes, "scores_in": scores})
    assert window[0, 0].tolist() == [10.0, 7.0, 10.0, 7.0]
    assert window[1, 0].tolist() == [16.0] * 4
    assert picked[0, 0].tolist() == [0.0, 0.0, 10.0, 7.0]
    assert picked[1, 0].tolist() == [0.0, 0.0, 15.0, 15.0]


def test_onnx_head_per_class_boxes_equals_efficient_nms():
    """Per-class boxes [B,A,C,4] (a second stage without share_box_across_classes): the onnx head
    and EfficientNMS_TRT's CPU reference keep the same detections."""
    from trtdeploy.deploy_card import NmsParams
    from trtdeploy.nms import add_nms_head

    rng = np.random.default_rng(5)
    b, a, c = 2, 40, 3
    corner = rng.uniform(0, 0.8, (b, a, c, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.05, 0.3, (b, a, c, 2))], axis=3).astype(np.float32)
    scores = rng.uniform(0, 1, (b, a, c)).astype(np.float32)
    params = NmsParams(score_threshold=0.2, iou_threshold=0.4, max_detections=25, max_detections_per_class=25)
    results = {}
    for kind in ("onnx", "efficient"):
        bx = gs.Variable("boxes", dtype=np.float32, shape=[b, a, c, 4])
        sc = gs.Variable("scores", dtype=np.float32, shape=[b, a, c])
        graph = gs.Graph(inputs=[bx, sc], opset=17)
        add_nms_head(graph, bx, sc, kind, params, "tfod", (64, 64))
        results[kind] = _session(graph).run(None, {"boxes": boxes, "scores": scores})
    onnx_out, efficient_out = results["onnx"], results["efficient"]
    assert onnx_out[0].tolist() == efficient_out[0].tolist() and onnx_out[0].min() > 5
    for got, want in zip(onnx_out[1:], efficient_out[1:], strict=True):
        assert np.array_equal(got, want)
    # the kept boxes are the per-class ones: each detection's box is its class's box of its anchor
    n = int(onnx_out[0][0, 0])
    for box, cls in zip(onnx_out[1][0, :n], onnx_out[3][0, :n], strict=True):
        assert any(np.array_equal(box, boxes[0, i, cls]) for i in range(a))


@pytest.mark.parametrize("nms", ["onnx", "efficient"])
def test_mask_crop_reads_the_boxes_in_tfods_true_area_frame(nms):
    """Mask R-CNN's third crop (passes._mask_crop): the final boxes (normalised on the network
    input) cropped where TFOD crops them, clipped to the clip window and normalised on it, then
    read on the padded feature map (faster_rcnn_meta_arch.py _predict_third_stage), with the
    head's crop op; against the CropAndResize reference at rois worked out here."""
    from tfod_trt.two_stage.passes import _mask_crop
    from trtdeploy.plugin_refs.crop_and_resize import crop_and_resize

    hw, size, k, depth = (32, 32), 4, 3, 2
    boxes_in = gs.Variable("boxes_in", dtype=np.float32, shape=[1, k, 4])
    features_in = gs.Variable("features_in", dtype=np.float32, shape=[1, 8, 8, depth])
    window_in = gs.Variable("window_in", dtype=np.float32, shape=[1, 1, 4])
    mask_crops = gs.Variable("mask_crops", dtype=np.float32, shape=[k, size, size, depth])
    named = {n: gs.Variable(n, dtype=np.float32) for n in ("detection_boxes", "feature_map", "clip_window", "out")}
    named["detection_boxes"].shape = [1, k, 4]
    named["feature_map"].shape, named["clip_window"].shape = [1, 8, 8, depth], [1, 1, 4]
    named["out"].shape = [k, size, size, depth]
    graph = gs.Graph(inputs=[boxes_in, features_in, window_in, mask_crops],
                     outputs=[named["detection_boxes"], named["out"]], opset=17)
    graph.nodes += [gs.Node("Identity", inputs=[src], outputs=[named[dst]]) for src, dst in
                    ((boxes_in, "detection_boxes"), (features_in, "feature_map"), (window_in, "clip_window"),
                     (mask_crops, "out"))]
    _mask_crop(graph, PassContext("test", {"input_hw": hw, "crop_size": size, "nms": nms, "matmul_crop": False}))
    assert [t.name for t in graph.inputs] == ["boxes_in", "features_in", "window_in"]
    rng = np.random.default_rng(14)
    features = rng.standard_normal((1, 8, 8, depth)).astype(np.float32)
    boxes = np.array([[[0.1, 0.2, 0.5, 0.9], [0.0, 0.0, 0.75, 1.0], [0.6, 0.1, 0.9, 0.4]]], np.float32)
    window = np.array([[[24.0, 32.0, 24.0, 32.0]]], np.float32)  # a landscape photo letterboxed: 24 of 32 rows
    from trtdeploy.nms.ort_session import make_session

    model = gs.export_onnx(graph.cleanup().toposort())
    model.ir_version = 8
    session = make_session(model)  # the plugin's CPU reference for --nms efficient
    out = session.run(["out"], {"boxes_in": boxes, "features_in": features, "window_in": window})[0]
    # TFOD's frame: y clipped to the 24 true rows and divided by them, x unchanged (the full width)
    rois = np.minimum(boxes * 32.0, window) / window
    assert rois[0, 2, 2] == 1.0 and rois[0, 1, 2] == 1.0 and rois[0, 2, 0] == np.float32(0.8)
    expected = crop_and_resize(np.moveaxis(features, -1, 1), rois, size, size)  # [1,k,D,s,s]
    np.testing.assert_allclose(out, np.moveaxis(expected[0], 1, -1), atol=5e-5)
    stretched_wrong = crop_and_resize(np.moveaxis(features, -1, 1), boxes, size, size)  # the input frame
    assert np.abs(out - np.moveaxis(stretched_wrong[0], 1, -1)).max() > 0.1


@pytest.mark.parametrize(("ds_parser", "layout"), [(None, "tfod"), ("sdk-efficientdet", "deepstream")])
def test_final_boxes_are_clipped_to_the_letterbox_window(ds_parser, layout):
    """A letterboxed Faster R-CNN's detections are clipped to its clip window (the true image
    area), after the NMS, as TFOD clips them (post_processing.py _clip_window_prune_boxes): a box
    reaching into the padding ends at the window, in normalised and in pixel outputs."""
    from tfod_trt.passes.nms_head import nms_head
    from trtdeploy.deploy_card import NmsParams

    hw = (64, 64)
    boxes_in = gs.Variable("boxes_in", dtype=np.float32, shape=[2, 3, 4])
    scores_in = gs.Variable("scores_in", dtype=np.float32, shape=[2, 3, 1])
    window_in = gs.Variable("window_in", dtype=np.float32, shape=[2, 1, 4])
    boxes, scores = (gs.Variable(n, dtype=np.float32, shape=s) for n, s in (("boxes", [2, 3, 4]), ("scores", [2, 3, 1])))
    window = gs.Variable("clip_window", dtype=np.float32, shape=[2, 1, 4])
    graph = gs.Graph(inputs=[boxes_in, scores_in, window_in], outputs=[boxes, scores], opset=17)
    graph.nodes += [gs.Node("Identity", inputs=[boxes_in], outputs=[boxes]),
                    gs.Node("Identity", inputs=[scores_in], outputs=[scores]),
                    gs.Node("Identity", inputs=[window_in], outputs=[window])]
    facts = {"nms": "onnx", "nms_params": NmsParams(0.0, 0.5, 3, 3), "output_layout": layout, "input_hw": hw,
             "ds_parser": ds_parser, "clip_window": "clip_window"}
    nms_head(graph, PassContext("test", facts))
    # image 0: true area 40 rows x 64 columns (landscape); image 1: 64 x 24 (portrait)
    windows = np.array([[[40, 64, 40, 64]], [[64, 24, 64, 24]]], np.float32)
    box = np.array([[0.1, 0.1, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.55, 0.55]], np.float32)
    feed = {"boxes_in": np.stack([box, box]), "scores_in": np.array([[[0.9], [0.8], [0.7]]] * 2, np.float32),
            "window_in": windows}
    names = [t.name for t in graph.outputs]
    out = dict(zip(names, _session(graph).run(None, feed), strict=True))
    got = out[names[1]].astype(np.float64)
    scale = 1.0 if layout == "tfod" else 64.0  # pixel boxes of a 64x64 input
    expected = np.stack([np.minimum(box, windows[b, 0] / 64.0) for b in range(2)]) * scale
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
