"""The NumPy plugin references against the slow oracle and hand-made cases (no ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.nms.slow_nms import random_inputs, slow_batched_nms, slow_efficient_nms
from trtdeploy.nms.reference import batched_nms, efficient_nms


def _assert_same(actual, expected):
    for got, want, what in zip(actual, expected, ("num", "boxes", "scores", "classes"), strict=True):
        assert got.dtype == want.dtype, what
        np.testing.assert_array_equal(got, want, err_msg=what)


@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_efficient_matches_slow_oracle_on_random_batches(seed, agnostic):
    rng = np.random.default_rng(seed)
    boxes, scores = random_inputs(rng, batch=4, num_anchors=60, num_classes=4)
    kwargs = {"score_threshold": 0.4, "iou_threshold": 0.45, "max_output_boxes": 15}
    got = efficient_nms(boxes, scores, class_agnostic=agnostic, **kwargs)
    _assert_same(got, slow_efficient_nms(boxes, scores, class_agnostic=agnostic, **kwargs))
    assert len(set(got[0].ravel().tolist())) > 1 or got[0].min() == 15  # images really differ


@pytest.mark.parametrize("seed", [0, 1])
def test_batched_matches_slow_oracle_on_random_batches(seed):
    rng = np.random.default_rng(seed)
    boxes, scores = random_inputs(rng, batch=4, num_anchors=60, num_classes=4)
    got = batched_nms(
        boxes[:, :, None, :],
        scores,
        num_classes=4,
        top_k=50,
        keep_top_k=20,
        score_threshold=0.4,
        iou_threshold=0.45,
    )
    _assert_same(got, slow_batched_nms(boxes, scores, 0.4, 0.45, top_k=50, keep_top_k=20))


def test_thresholds_inclusive_for_efficient_and_strict_for_batched():
    # box 1 overlaps box 0 with IoU exactly 0.5; box 2 has a score exactly at the threshold.
    boxes = np.array([[[0, 0, 1, 1], [0, 0, 0.5, 1], [0, 0, 0.25, 0.25]]], np.float32)
    scores = np.array([[[0.9], [0.8], [0.5]]], np.float32)
    num, _, out_scores, _ = efficient_nms(
        boxes, scores, score_threshold=0.5, iou_threshold=0.5, max_output_boxes=5
    )
    # IoU 0.5 >= 0.5 suppresses box 1; score 0.5 >= 0.5 keeps box 2
    assert num[0, 0] == 2 and out_scores[0, :2].tolist() == pytest.approx([0.9, 0.5])
    num, _, out_scores, _ = batched_nms(
        boxes[:, :, None, :],
        scores,
        num_classes=1,
        top_k=3,
        keep_top_k=3,
        score_threshold=0.5,
        iou_threshold=0.5,
    )
    # IoU 0.5 is not > 0.5 so box 1 stays; score 0.5 is not > 0.5 so box 2 goes
    assert num[0, 0] == 2 and out_scores[0, :2].tolist() == pytest.approx([0.9, 0.8])


def test_efficient_ties_keep_lower_anchor_and_class_first():
    # Two almost identical boxes with the same score: the lower anchor index wins;
    # same anchor in two classes with equal scores: class 0 comes first.
    boxes = np.array(
        [[[0.5, 0.5, 0.6, 0.6], [0.0, 0.0, 0.1, 0.1], [0.0, 0.0, 0.1, 0.11]]], np.float32
    )
    scores = np.array([[[0.7, 0.7], [0.2, 0.6], [0.2, 0.6]]], np.float32)
    num, out_boxes, _, classes = efficient_nms(
        boxes, scores, score_threshold=0.5, iou_threshold=0.5, max_output_boxes=4
    )
    assert num[0, 0] == 3
    assert classes[0, :3].tolist() == [0, 1, 1]
    np.testing.assert_array_equal(
        out_boxes[0, 2], boxes[0, 1]
    )  # anchor 1 kept, anchor 2 suppressed


def test_efficient_stops_at_k_and_pads_with_zeros():
    boxes = np.array(
        [[[i / 10, 0, i / 10 + 0.05, 0.05] for i in range(10)]], np.float32
    )  # disjoint
    scores = np.linspace(0.9, 0.5, 10, dtype=np.float32).reshape(1, 10, 1)
    num, out_boxes, out_scores, classes = efficient_nms(
        boxes, scores, score_threshold=0.1, iou_threshold=0.5, max_output_boxes=4
    )
    assert num[0, 0] == 4
    np.testing.assert_array_equal(out_scores[0], scores[0, :4, 0])
    num, out_boxes, out_scores, classes = efficient_nms(
        boxes, scores, score_threshold=0.85, iou_threshold=0.5, max_output_boxes=4
    )
    assert (
        num[0, 0] == 2
        and not out_boxes[0, 2:].any()
        and not out_scores[0, 2:].any()
        and not classes[0, 2:].any()
    )


def test_efficient_zero_detections():
    boxes = np.zeros((2, 5, 4), np.float32)
    scores = np.full((2, 5, 3), 0.1, np.float32)
    num, out_boxes, out_scores, classes = efficient_nms(
        boxes, scores, score_threshold=0.5, iou_threshold=0.5, max_output_boxes=3
    )
    assert not num.any() and not out_boxes.any() and not out_scores.any() and not classes.any()
    assert out_boxes.shape == (2, 3, 4) and classes.dtype == np.int32


def test_efficient_considers_only_4096_best_candidates():
    # Candidate 0 suppresses the identical candidates 1..4095; the plugin never looks at
    # candidate 4096 (a disjoint box), so only one detection comes out.
    count = 4100
    boxes = np.tile(np.array([0.1, 0.1, 0.2, 0.2], np.float32), (1, count, 1))
    boxes[0, 4096:] = [0.6, 0.6, 0.7, 0.7]
    scores = np.linspace(0.99, 0.5, count, dtype=np.float32).reshape(1, count, 1)
    num, *_ = efficient_nms(
        boxes, scores, score_threshold=0.1, iou_threshold=0.5, max_output_boxes=10
    )
    assert num[0, 0] == 1


def test_efficient_box_coding_and_anchors_and_activation():
    anchors = np.array([[[0.5, 0.5, 0.2, 0.4]]], np.float32)  # centre y,x; size h,w
    deltas = np.array([[[0.5, 0.0, 0.0, np.log(0.5)]]], np.float32)
    logits = np.array([[[2.0]]], np.float32)
    num, out_boxes, out_scores, _ = efficient_nms(
        deltas,
        logits,
        anchors,
        score_threshold=0.5,
        iou_threshold=0.5,
        max_output_boxes=1,
        score_activation=True,
        box_coding=1,
    )
    # centre y = 0.5*0.2 + 0.5 = 0.6, x = 0.5; h = 0.2, w = 0.4*0.5 = 0.2
    np.testing.assert_allclose(out_boxes[0, 0], [0.5, 0.4, 0.7, 0.6], atol=1e-6)
    assert out_scores[0, 0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert num[0, 0] == 1


def test_batched_clips_boxes_and_pads_classes_with_minus_one():
    boxes = np.array([[[[-0.1, 0.2, 0.5, 1.2]], [[0.0, 0.0, 0.1, 0.1]]]], np.float32)
    scores = np.array([[[0.9, 0.1], [0.05, 0.05]]], np.float32)
    num, out_boxes, out_scores, classes = batched_nms(
        boxes, scores, num_classes=2, top_k=2, keep_top_k=2, score_threshold=0.2, iou_threshold=0.5
    )
    assert num[0, 0] == 1
    np.testing.assert_array_equal(out_boxes[0, 0], np.array([0.0, 0.2, 0.5, 1.0], np.float32))
    assert classes.dtype == np.float32 and classes[0].tolist() == [0.0, -1.0]
    assert out_scores[0, 1] == 0 and not out_boxes[0, 1].any()


@pytest.mark.parametrize(
    ("top_k", "keep_top_k", "match"),
    [(5000, 10, "limit"), (3, 2, "number of boxes"), (2, 3, "keepTopK")],
)
def test_batched_refuses_what_the_plugin_gets_wrong(top_k, keep_top_k, match):
    boxes = np.zeros((1, 2 if top_k == 3 else 5000, 1, 4), np.float32)
    scores = np.zeros(boxes.shape[:2] + (1,), np.float32)
    with pytest.raises(ValueError, match=match):
        batched_nms(
            boxes,
            scores,
            num_classes=1,
            top_k=top_k,
            keep_top_k=keep_top_k,
            score_threshold=0.1,
            iou_threshold=0.5,
        )
