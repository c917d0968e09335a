"""ProposalDynamic (TAO FasterRCNN's RPN plugin): the CPU reference against hand-computed values
and a plain-loop NumPy restatement of the TensorRT 10.16 kernels, then the standard-op rewrite
against the reference under ONNX Runtime, and the rewrite built with tensorrt_rtx.

Kernel facts (NVIDIA/TensorRT release/10.16): plugin/common/kernels/proposalKernel.cu
l.439-503 (decode, clip, min size -> -inf) and l.604-617 (normalised y1, x1, y2, x2),
plugin/common/kernels/nmsLayer.cu l.38-49 (+1 IoU), l.53-125 (greedy), l.230 (zeroed output),
l.292-314 (stable descending sort), plugin/proposalPlugin/proposalPlugin.cpp l.753-758 (sqrt of
the ratios).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trtdeploy.nms.ort_session import make_session
from trtdeploy.plugin_refs.proposal import exact_exp, proposal
from trtdeploy.rewrites.driver import rewrite_plugins

EPS = float(np.finfo(np.float32).eps)


def attrs(**over):
    base = dict(
        input_height=128, input_width=160, rpn_stride=16, roi_min_size=1.0, nms_iou_threshold=0.7,
        pre_nms_top_n=400, post_nms_top_n=50, anchor_sizes=[16.0, 32.0, 64.0], anchor_ratios=[1.0, 0.5, 2.0],
    )
    base.update(over)
    return base


def proposal_model(a: dict, anchors: int, h: int, w: int, batch: int | None = None) -> onnx.ModelProto:
    node = helper.make_node("ProposalDynamic", ["rpn_prob", "rpn_regr"], ["proposal_out"], name="proposal", **a)
    graph = helper.make_graph(
        [node], "rpn",
        [helper.make_tensor_value_info("rpn_prob", TensorProto.FLOAT, [batch, anchors, h, w]),
         helper.make_tensor_value_info("rpn_regr", TensorProto.FLOAT, [batch, 4 * anchors, h, w])],
        [helper.make_tensor_value_info("proposal_out", TensorProto.FLOAT, [batch, a["post_nms_top_n"], 4, 1])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


# ---- a plain restatement: one proposal at a time, Python floats rounded to float32 ----------


def f32(x: float) -> float:
    return float(np.float32(x))


def loop_proposals(scores: np.ndarray, deltas: np.ndarray, a: dict) -> np.ndarray:
    sizes, ratios = a["anchor_sizes"], [f32(math.sqrt(f32(r))) for r in a["anchor_ratios"]]
    n, na, h, w = scores.shape
    out = np.zeros((n, a["post_nms_top_n"], 4, 1), np.float32)
    for image in range(n):
        cands = []  # (score, index, box) in the kernel's (a, y, x) index order
        for anc in range(na):
            aw = f32(sizes[anc // len(ratios)] * ratios[anc % len(ratios)])
            ah = f32(sizes[anc // len(ratios)] / ratios[anc % len(ratios)])
            for y in range(h):
                for x in range(w):
                    tx, ty, tw, th = (float(deltas[image, anc * 4 + k, y, x]) for k in range(4))
                    cx = f32(f32((x + 0.5) * a["rpn_stride"]) + f32(aw * tx))
                    cy = f32(f32((y + 0.5) * a["rpn_stride"]) + f32(ah * ty))
                    bw, bh = f32(f32(math.exp(tw)) * aw), f32(f32(math.exp(th)) * ah)
                    x1, y1 = f32(cx - f32(bw / 2)), f32(cy - f32(bh / 2))
                    x2, y2 = f32(bw + x1), f32(bh + y1)
                    x1, x2 = (min(max(v, 0.0), a["input_width"] - 1.0) for v in (x1, x2))
                    y1, y2 = (min(max(v, 0.0), a["input_height"] - 1.0) for v in (y1, y2))
                    small = f32(x2 - x1) <= a["roi_min_size"] or f32(y2 - y1) <= a["roi_min_size"]
                    score = -math.inf if small else float(scores[image, anc, y, x])
                    cands.append((score, len(cands), (x1, y1, x2, y2)))
        ordered = sorted(cands, key=lambda c: (-c[0], c[1]))[: a["pre_nms_top_n"]]
        kept: list[tuple] = []
        suppressed = [False] * len(ordered)
        for i, (_, _, box) in enumerate(ordered):
            if len(kept) == a["post_nms_top_n"]:
                break
            if suppressed[i]:
                continue
            kept.append(box)
            for j in range(i + 1, len(ordered)):
                if iou_plus_one(box, ordered[j][2]) > f32(a["nms_iou_threshold"]):
                    suppressed[j] = True
        for row, (x1, y1, x2, y2) in enumerate(kept):
            hh, ww = a["input_height"] - 1.0, a["input_width"] - 1.0
            out[image, row, :, 0] = [f32(y1 / hh), f32(x1 / ww), f32(y2 / hh), f32(x2 / ww)]
    return out


def iou_plus_one(p: tuple, q: tuple) -> float:
    iw = max(f32(f32(min(p[2], q[2]) - max(p[0], q[0])) + 1), 0.0)
    ih = max(f32(f32(min(p[3], q[3]) - max(p[1], q[1])) + 1), 0.0)
    inter = f32(iw * ih)
    sa = f32(f32(p[2] - p[0] + 1) * f32(p[3] - p[1] + 1))
    sb = f32(f32(q[2] - q[0] + 1) * f32(q[3] - q[1] + 1))
    return f32(inter / f32(f32(sa + sb) - inter))


# ---- hand-made cases ------------------------------------------------------------------------


def test_zero_deltas_give_the_anchors_clipped_and_normalised() -> None:
    """One anchor, size 32, ratio 4 (stored as sqrt 2): 64 wide, 16 high, centred at
    ((x + 0.5) * 16, (y + 0.5) * 16), on a 1x3 map of a 16x48 input (H-1 = 15, W-1 = 47)."""
    a = attrs(input_height=16, input_width=48, anchor_sizes=[32.0], anchor_ratios=[4.0],
              pre_nms_top_n=3, post_nms_top_n=4, nms_iou_threshold=0.99)
    scores = np.array([[[[0.2, 0.9, 0.5]]]], np.float32)  # order: x=1, x=2, x=0
    (rois,) = proposal(scores, np.zeros((1, 4, 1, 3), np.float32), **a)
    # x=1: cx 24 -> x 24-32 = -8 -> 0 .. 56 -> 47; y 8-8 = 0 .. 16 -> 15
    # x=2: cx 40 -> 8 .. 72 -> 47; x=0: cx 8 -> -24 -> 0 .. 40
    expected = np.array([[0, 0, 15, 47], [0, 8, 15, 47], [0, 0, 15, 40], [0, 0, 0, 0]], np.float32)
    expected = expected / np.array([15, 47, 15, 47], np.float32)
    np.testing.assert_array_equal(rois[0, :, :, 0], expected.astype(np.float32))
    assert rois.shape == (1, 4, 4, 1) and rois.dtype == np.float32


def test_decode_moves_and_scales_the_anchor() -> None:
    """tx = 0.25 moves the centre by a quarter anchor width, tw = ln 2 doubles the width."""
    a = attrs(input_height=200, input_width=200, rpn_stride=100, anchor_sizes=[40.0], anchor_ratios=[1.0],
              pre_nms_top_n=1, post_nms_top_n=1)
    deltas = np.array([0.25, -0.5, math.log(2.0), 0.0], np.float32).reshape(1, 4, 1, 1)
    (rois,) = proposal(np.ones((1, 1, 1, 1), np.float32), deltas, **a)
    w = np.float32(exact_exp(np.float32(math.log(2.0)))) * np.float32(40)  # ~80
    cx, cy = np.float32(50 + 40 * 0.25), np.float32(50 - 40 * 0.5)  # 60, 30
    x1, y1 = cx - w / np.float32(2), cy - np.float32(20)
    want = np.array([y1, x1, y1 + np.float32(40), x1 + w], np.float32) / np.float32(199)
    np.testing.assert_array_equal(rois[0, 0, :, 0], want)


def test_small_boxes_score_minus_inf_but_are_still_output_after_the_others() -> None:
    """Two anchors at one position: the first is under roi_min_size (score -inf, sorted last,
    NOT dropped); the second is kept first although its score is lower."""
    a = attrs(input_height=64, input_width=64, rpn_stride=16, anchor_sizes=[0.5, 30.0], anchor_ratios=[1.0],
              roi_min_size=1.0, nms_iou_threshold=0.7, pre_nms_top_n=2, post_nms_top_n=3)
    scores = np.array([0.9, 0.1], np.float32).reshape(1, 2, 1, 1)
    (rois,) = proposal(scores, np.zeros((1, 8, 1, 1), np.float32), **a)
    big = np.array([0, 0, 23, 23], np.float32) / 63  # centre 8, half 15: -7 -> 0 .. 23
    small = np.array([7.75, 7.75, 8.25, 8.25], np.float32) / np.float32(63)
    np.testing.assert_array_equal(rois[0, 0, :, 0], big.astype(np.float32))
    np.testing.assert_array_equal(rois[0, 1, :, 0], small)  # IoU with the big one is tiny: kept
    np.testing.assert_array_equal(rois[0, 2, :, 0], np.zeros(4, np.float32))


def test_ties_keep_the_lower_index_and_iou_counts_plus_one_pixels() -> None:
    """Identical scores: the kernel's stable sort keeps index order. Two boxes 10 px wide
    overlapping by 5 px: +1 IoU = 6*11 / (2*11*11 - 6*11) = 0.375 (plain IoU would be 1/3)."""
    a = attrs(input_height=100, input_width=100, rpn_stride=5, anchor_sizes=[10.0], anchor_ratios=[1.0],
              roi_min_size=0.0, pre_nms_top_n=3, post_nms_top_n=3)
    scores = np.full((1, 1, 1, 3), 0.5, np.float32)
    deltas = np.zeros((1, 4, 1, 3), np.float32)
    deltas[0, 0], deltas[0, 1] = 1.0, 5.0  # 10 px right, 50 px down: x 7.5-17.5, 12.5-22.5, 17.5-27.5
    for threshold, rows in ((0.36, [7.5, 17.5]), (0.38, [7.5, 12.5, 17.5])):  # 0.375 suppresses at 0.36 only
        (rois,) = proposal(scores, deltas, **{**a, "nms_iou_threshold": threshold})
        kept = rois[0, :, :, 0]
        live = kept[kept.sum(axis=1) > 0]
        # index order among the tied scores; the first and third touch (1 px, IoU 11/231): both kept
        np.testing.assert_array_equal(live[:, 1], np.array(rows, np.float32) / np.float32(99))
    assert iou_plus_one((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(6 * 11 / (2 * 121 - 66))


def test_pre_nms_top_n_limits_the_candidates() -> None:
    """Far-apart boxes never suppress each other: the output has pre_nms_top_n rows, not post."""
    a = attrs(input_height=400, input_width=400, rpn_stride=100, anchor_sizes=[20.0], anchor_ratios=[1.0],
              pre_nms_top_n=2, post_nms_top_n=4)
    scores = np.array([[[[0.1, 0.4], [0.3, 0.2]]]], np.float32)
    (rois,) = proposal(scores, np.zeros((1, 4, 2, 2), np.float32), **a)
    live = rois[0, :, :, 0]
    assert (live.sum(axis=1) > 0).tolist() == [True, True, False, False]
    np.testing.assert_array_equal(live[0], np.array([40, 140, 60, 160], np.float32) / 399)  # y, x of (0, 1)


def test_reference_matches_the_plain_loops_on_random_maps() -> None:
    rng = np.random.default_rng(7)
    a = attrs(pre_nms_top_n=300, post_nms_top_n=40, nms_iou_threshold=0.6, roi_min_size=4.0)
    scores = rng.random((2, 9, 8, 10), dtype=np.float32)
    scores[1] = np.round(scores[1] * 8) / 8  # many ties in image 1
    deltas = rng.normal(0, 0.6, (2, 36, 8, 10)).astype(np.float32)
    deltas[:, 2::4][:, :, :2] = -4.0  # tiny boxes: -inf scores
    np.testing.assert_array_equal(proposal(scores, deltas, **a)[0], loop_proposals(scores, deltas, a))


# ---- the rewrite ------------------------------------------------------------------------------


def _cases():
    rng = np.random.default_rng(11)
    yield "random", attrs(), rng.random((2, 9, 8, 10), dtype=np.float32), rng.normal(0, 0.5, (2, 36, 8, 10))
    ties = np.round(rng.random((2, 9, 8, 10)) * 4) / 4
    yield "ties", attrs(nms_iou_threshold=0.5), ties.astype(np.float32), rng.normal(0, 0.3, (2, 36, 8, 10))
    small = rng.normal(0, 1.0, (1, 36, 8, 10))
    small[:, 2::4] -= 3.0  # most boxes under the min size
    yield "small", attrs(roi_min_size=6.0), rng.random((1, 9, 8, 10), dtype=np.float32), small
    yield "pre>R", attrs(pre_nms_top_n=2000, post_nms_top_n=100), rng.random((1, 9, 8, 10), dtype=np.float32), \
        rng.normal(0, 0.5, (1, 36, 8, 10))
    yield "pre<post", attrs(pre_nms_top_n=20, post_nms_top_n=60), rng.random((2, 9, 8, 10), dtype=np.float32), \
        rng.normal(0, 0.5, (2, 36, 8, 10))


def _exp_ulps(deltas: np.ndarray) -> int:
    """Largest distance in ulp of ONNX Runtime's float32 Exp from exact_exp on these values."""
    graph = helper.make_graph(
        [helper.make_node("Exp", ["x"], ["y"])], "exp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    (y,) = make_session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])).run(None, {"x": deltas})
    return int(np.abs(y.view(np.int32).astype(np.int64) - exact_exp(deltas).view(np.int32)).max())


@pytest.mark.parametrize("case", ["random", "ties", "small", "pre>R", "pre<post"])
def test_rewrite_keeps_the_same_proposals_as_the_reference(case: str) -> None:
    name, a, scores, deltas = next(c for c in _cases() if c[0] == case)
    deltas = deltas.astype(np.float32)
    model = proposal_model(a, 9, 8, 10)
    rewritten, done = rewrite_plugins(model)
    assert [r.plugin for r in done] == ["ProposalDynamic"]
    assert not [n for n in rewritten.graph.node if n.op_type in ("ProposalDynamic", "TopK", "NonMaxSuppression")]
    assert [o.name for o in rewritten.graph.output] == ["proposal_out"]
    feeds = {"rpn_prob": scores, "rpn_regr": deltas}
    (want,) = make_session(model).run(None, feeds)
    (got,) = make_session(rewritten).run(None, feeds)
    assert got.shape == want.shape == (scores.shape[0], a["post_nms_top_n"], 4, 1) and got.dtype == np.float32
    live_want, live_got = np.abs(want).sum(axis=(2, 3)) > 0, np.abs(got).sum(axis=(2, 3)) > 0
    assert (live_want == live_got).all()  # the same rows kept (and padded with zeros)
    # Coordinates: exp is the backend's. Bound from this run: the exp error (in ulp) scales the
    # width, halved and added (<= 1 ulp of the coordinate each), then divided (<= 0.5 ulp).
    bound = (_exp_ulps(deltas) + 2.5) * EPS  # normalised coordinates are <= 1
    assert np.abs(got - want).max() <= bound, (np.abs(got - want).max(), bound)


@pytest.mark.rtx
def test_rewritten_proposal_builds_with_tensorrt_rtx(tmp_path) -> None:
    from trtdeploy.engine import BuildOptions, build_engine

    rewritten, _ = rewrite_plugins(proposal_model(attrs(pre_nms_top_n=6000, post_nms_top_n=300), 9, 8, 10, batch=1))
    onnx.save(rewritten, str(tmp_path / "rpn.onnx"))  # pre_nms_top_n 6000 > TensorRT's TopK limit: no TopK used
    result = build_engine(tmp_path / "rpn.onnx", BuildOptions(backend="tensorrt_rtx", precision="fp32"))
    assert result.engine_path.stat().st_size > 0
