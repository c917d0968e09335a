"""The CPU references of NMS_TRT / NMSDynamic_TRT, BatchTilePlugin_TRT and ResizeNearest_TRT
(trtdeploy/plugin_refs) against hand-computed values and plain NumPy, on hand-made inputs:
every codeType, shared and per-class boxes, background, ties, strict thresholds, topK before
NMS, keepTopK, pixel IoU. Semantics and line numbers: the modules' docstrings (NVIDIA/TensorRT
release/10.16 plugin/nmsPlugin, plugin/common/kernels)."""

from __future__ import annotations

import numpy as np
import pytest

from trtdeploy.plugin_refs.batch_tile import batch_tile
from trtdeploy.plugin_refs.nms_trt import decode_boxes, nms_dynamic_trt, nms_trt
from trtdeploy.plugin_refs.resize_nearest import resize_nearest

F = np.float32
PRIOR = np.array([0.25, 0.5, 0.75, 1.0], F)  # x1, y1, x2, y2: centre (0.5, 0.75), size 0.5 x 0.5
VAR = np.array([0.1, 0.1, 0.2, 0.2], F)
LOC = np.array([1.0, -2.0, 0.5, 0.25], F)


def _corners(cx, cy, w, h):
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], F)


@pytest.mark.parametrize(
    ("code", "in_target", "expected"),
    [
        # CORNER: prior + loc * variance (README "CodeTypeSSD::CORNER"), or + loc alone
        (0, False, PRIOR + LOC * VAR),
        (0, True, PRIOR + LOC),
        # CENTER_SIZE: centre moves by loc*var*size, size scales by exp(loc*var)
        (1, False, _corners(0.5 + 0.1 * 1.0 * 0.5, 0.75 + 0.1 * -2.0 * 0.5, 0.5 * np.exp(0.1), 0.5 * np.exp(0.05))),
        (1, True, _corners(0.5 + 1.0 * 0.5, 0.75 - 2.0 * 0.5, 0.5 * np.exp(0.5), 0.5 * np.exp(0.25))),
        # CORNER_SIZE: each corner moves by loc*var times the prior width (x) or height (y)
        (2, False, PRIOR + LOC * VAR * 0.5),
        # TF_CENTER: loc is (dy, dx, dh, dw); the variances are used even "in target"
        (
            3,
            False,
            _corners(0.5 + 0.1 * -2.0 * 0.5, 0.75 + 0.1 * 1.0 * 0.5, 0.5 * np.exp(0.2 * 0.25), 0.5 * np.exp(0.2 * 0.5)),
        ),
        (
            3,
            True,
            _corners(0.5 + 0.1 * -2.0 * 0.5, 0.75 + 0.1 * 1.0 * 0.5, 0.5 * np.exp(0.2 * 0.25), 0.5 * np.exp(0.2 * 0.5)),
        ),
    ],
)
def test_decode_each_code_type(code, in_target, expected):
    got = decode_boxes(LOC, PRIOR, VAR, code, in_target)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7)  # float32 vs these float64 formulas


def _inputs(boxes, scores, *, batch=1):
    """CORNER coding with zero offsets: the decoded boxes are the priors themselves.
    ``boxes`` [A, 4] (x1, y1, x2, y2), ``scores`` [A, C] -> (loc, conf, prior) of the plugin."""
    boxes, scores = np.asarray(boxes, F), np.asarray(scores, F)
    a, c = scores.shape
    prior = np.stack([boxes.reshape(-1), np.ones(a * 4, F)])[None, :, :, None]
    loc = np.zeros((batch, a * 4, 1, 1), F)
    return loc, np.tile(scores.reshape(1, a * c, 1, 1), (batch, 1, 1, 1)), np.tile(prior, (batch, 1, 1, 1))


def _run(boxes, scores, **attrs):
    loc, conf, prior = _inputs(boxes, scores)
    base = dict(shareLocation=1, varianceEncodedInTarget=0, backgroundLabelId=0, numClasses=len(scores[0]),
                topK=8, keepTopK=6, confidenceThreshold=0.1, nmsThreshold=0.5, inputOrder=[0, 1, 2],
                confSigmoid=0, isNormalized=1, codeType=0)  # fmt: skip
    return nms_dynamic_trt(loc, conf, prior, **{**base, **attrs})


# Four priors: A and B overlap with IoU exactly 0.5 (B is A's left half), C is far, D = A.
BOXES = [[0, 0, 0.5, 0.5], [0, 0, 0.25, 0.5], [0.75, 0.75, 1, 1], [0, 0, 0.5, 0.5]]


def test_rows_ties_background_and_padding():
    # class 0 is background (its scores are ignored); ties: B and D share 0.5 in class 1, class 2
    # has 0.5 on C too. The plugin's sorts are stable: within a class by prior index, across
    # classes by class; rows are (image, label, score, x1, y1, x2, y2), then padding rows.
    scores = [[0.9, 0.7, 0.0], [0.9, 0.5, 0.05], [0.9, 0.0, 0.5], [0.9, 0.5, 0.0]]
    rows, count = _run(BOXES, scores, nmsThreshold=1.0)  # IoU > 1 never: nothing suppressed
    assert count.dtype == np.int32 and count.shape == (1, 1, 1, 1) and count[0, 0, 0, 0] == 4
    expected = [
        [0, 1, 0.7, *BOXES[0]],
        [0, 1, 0.5, *BOXES[1]],
        [0, 1, 0.5, *BOXES[3]],
        [0, 2, 0.5, *BOXES[2]],
        [0, -1, 0, 0, 0, 0, 0],
        [0, -1, 0, 0, 0, 0, 0],
    ]
    np.testing.assert_array_equal(rows[0, 0], np.array(expected, F))


def test_suppression_is_strict_and_per_class():
    scores = [[0, 0.9, 0.0], [0, 0.8, 0.6], [0, 0.0, 0.0], [0, 0.7, 0.0]]
    rows, count = _run(BOXES, scores, nmsThreshold=0.5)  # IoU(A, B) = 0.5: not > 0.5, B stays
    kept = [(int(r[1]), float(r[2])) for r in rows[0, 0, : count[0, 0, 0, 0]]]
    # D (= A, IoU 1) goes; B in class 2 is its own class: never suppressed by class 1's A
    assert kept == [(1, np.float32(0.9)), (1, np.float32(0.8)), (2, np.float32(0.6))]
    rows, count = _run(BOXES, scores, nmsThreshold=0.49)
    assert [(int(r[1]), float(r[2])) for r in rows[0, 0, : count[0, 0, 0, 0]]] == [
        (1, np.float32(0.9)),
        (2, np.float32(0.6)),
    ]


def test_threshold_is_strict_and_top_k_cuts_before_nms():
    scores = [[0, 0.1, 0], [0, 0.4, 0], [0, 0.3, 0], [0, 0.2, 0]]
    _, count = _run(BOXES, scores, nmsThreshold=0.99)
    assert count[0, 0, 0, 0] == 3  # 0.1 is not > 0.1
    rows, count = _run(BOXES, scores, nmsThreshold=0.99, topK=2, keepTopK=2)
    # only the two best candidates of the class enter NMS: 0.4 (B) and 0.3 (C)
    assert count[0, 0, 0, 0] == 2 and rows[0, 0, :, 2].tolist() == [np.float32(0.4), np.float32(0.3)]


def test_keep_top_k_above_top_k_writes_nothing():
    rows, count = _run(BOXES, [[0, 0.9, 0]] * 4, topK=2, keepTopK=3)  # gatherTopDetections.cu l.56-57
    assert count[0, 0, 0, 0] == 0 and not rows.any()


def test_per_class_boxes_and_batch():
    # shareLocation 0: loc holds one box per (prior, class); class 2's box of prior 0 is C's
    loc = np.zeros((2, 2 * 3 * 4, 1, 1), F)
    prior = np.stack([np.array(BOXES[:2], F).reshape(-1), np.ones(8, F)])[None, :, :, None].repeat(2, 0)
    loc[1, 2 * 4 : 3 * 4, 0, 0] = np.array(BOXES[2], F) - np.array(BOXES[0], F)  # image 1, prior 0, class 2
    conf = np.tile(np.array([[0, 0, 0.9], [0, 0.8, 0]], F).reshape(1, 6, 1, 1), (2, 1, 1, 1))
    attrs = dict(shareLocation=0, varianceEncodedInTarget=1, backgroundLabelId=0, numClasses=3, topK=4,
                 keepTopK=3, confidenceThreshold=0.1, nmsThreshold=0.5, inputOrder=[0, 1, 2], confSigmoid=0,
                 isNormalized=1, codeType=0)  # fmt: skip
    rows, count = nms_dynamic_trt(loc, conf, prior, **attrs)
    assert count.ravel().tolist() == [2, 2]
    np.testing.assert_array_equal(rows[0, 0, 0], np.array([0, 2, 0.9, *BOXES[0]], F))
    np.testing.assert_array_equal(rows[1, 0, 0], np.array([1, 2, 0.9, *BOXES[2]], F))  # image id 1
    np.testing.assert_array_equal(rows[1, 0, 1], np.array([1, 1, 0.8, *BOXES[1]], F))


def test_pixel_boxes_sigmoid_and_clamp():
    # isNormalized 0: sizes (w+1)(h+1), intersection +1 per side, even for disjoint boxes (1x1):
    # two 3x3-pixel boxes two pixels apart have IoU 1/(16+16-1) = 0.032 > 0.03: suppressed.
    boxes = [[0, 0, 3, 3], [5, 5, 8, 8]]
    logits = np.array([[-30, np.log(9)], [-30, np.log(1.5)]])  # sigmoid: 0.9 and 0.6
    common = dict(numClasses=2, confSigmoid=1, isNormalized=0, confidenceThreshold=0.5)
    rows, count = _run(boxes, logits, nmsThreshold=0.03, **common)
    assert count[0, 0, 0, 0] == 1
    assert rows[0, 0, 0, 2] == pytest.approx(0.9, abs=1e-6)  # the sigmoid of the logit
    np.testing.assert_array_equal(rows[0, 0, 0, 3:], [0, 0, 1, 1])  # boxes are clamped to [0, 1]
    _, count = _run(boxes, logits, nmsThreshold=0.04, **common)
    assert count[0, 0, 0, 0] == 2


def test_batch_agnostic_priors_only_for_nms_trt():
    loc, conf, prior = _inputs(BOXES, [[0, 0.9, 0]] * 4, batch=2)
    attrs = dict(shareLocation=1, varianceEncodedInTarget=1, backgroundLabelId=0, numClasses=3, topK=4,
                 keepTopK=4, confidenceThreshold=0.1, nmsThreshold=0.99, inputOrder=[0, 1, 2], confSigmoid=0,
                 isNormalized=1, codeType=0)  # fmt: skip
    with pytest.raises(ValueError, match="one prior set per image"):
        nms_dynamic_trt(loc, conf, prior[:1], **attrs)  # NMSDynamic_TRT ignores isBatchAgnostic
    rows, _ = nms_trt(loc, conf, prior[:1], **attrs, isBatchAgnostic=1)
    np.testing.assert_array_equal(rows[0, 0, :, 3:], rows[1, 0, :, 3:])


def test_batch_tile_and_resize_nearest_against_numpy():
    tile = np.arange(24, dtype=F).reshape(1, 2, 3, 4)
    (tiled,) = batch_tile(np.zeros((3, 7), F), tile)
    np.testing.assert_array_equal(tiled, np.concatenate([tile] * 3))
    x = np.arange(2 * 3 * 4, dtype=F).reshape(1, 2, 3, 4)
    (up,) = resize_nearest(x, scale=2.0)
    np.testing.assert_array_equal(up, x.repeat(2, axis=2).repeat(2, axis=3))
    (odd,) = resize_nearest(x, scale=1.5)  # out 4 x 6; source int(o / 1.5) = 0, 0, 1, 2, 2, 3
    assert odd.shape == (1, 2, 4, 6)
    np.testing.assert_array_equal(odd[0, 0, 0], x[0, 0, 0, [0, 0, 1, 2, 2, 3]])
