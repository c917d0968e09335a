"""Independent, deliberately slow pure-Python NMS used as the test oracle.

Written from the plugins' documented rules (see trtdeploy/nms/reference.py docstrings), with
plain loops and Python floats, sharing no code with the implementation under test.
"""

from __future__ import annotations

import numpy as np


def _iou(a, b, plus_one: float = 0.0) -> float:
    ay1, ax1, ay2, ax2 = min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]), max(a[1], a[3])
    by1, bx1, by2, bx2 = min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])
    ih = min(ay2, by2) - max(ay1, by1) + plus_one
    iw = min(ax2, bx2) - max(ax1, bx1) + plus_one
    if ih <= 0 or iw <= 0:
        return 0.0
    inter = ih * iw
    area_a = (ay2 - ay1 + plus_one) * (ax2 - ax1 + plus_one)
    area_b = (by2 - by1 + plus_one) * (bx2 - bx1 + plus_one)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def slow_efficient_nms(
    boxes, scores, score_threshold, iou_threshold, max_output_boxes, class_agnostic=False
):
    """EfficientNMS_TRT rules: score >= thr, sort (score desc, a*C+c asc), 4096 candidates,
    suppress IoU >= thr within class (or across classes), stop at K, zero padding."""
    batch, num_anchors, num_classes = scores.shape
    k = max_output_boxes
    num = np.zeros((batch, 1), np.int32)
    out_boxes = np.zeros((batch, k, 4), np.float32)
    out_scores = np.zeros((batch, k), np.float32)
    out_classes = np.zeros((batch, k), np.int32)
    for b in range(batch):
        candidates = []
        for a in range(num_anchors):
            for c in range(num_classes):
                score = float(scores[b, a, c])
                if score >= score_threshold:
                    candidates.append((score, a * num_classes + c, a, c))
        candidates.sort(key=lambda t: (-t[0], t[1]))
        candidates = candidates[:4096]
        kept = []
        for score, _, a, c in candidates:
            if len(kept) == k:
                break
            box = [float(v) for v in boxes[b, a]]
            suppressed = False
            for _, ka, kc in kept:
                if (class_agnostic or kc == c) and _iou(
                    box, [float(v) for v in boxes[b, ka]]
                ) >= iou_threshold:
                    suppressed = True
                    break
            if not suppressed:
                kept.append((score, a, c))
        num[b, 0] = len(kept)
        for i, (score, a, c) in enumerate(kept):
            out_boxes[b, i] = boxes[b, a]
            out_scores[b, i] = score
            out_classes[b, i] = c
    return num, out_boxes, out_scores, out_classes


def slow_batched_nms(boxes, scores, score_threshold, iou_threshold, top_k, keep_top_k):
    """BatchedNMS_TRT rules (shared boxes [B,A,4], normalised, clip on): per class score > thr,
    top_k per class, suppress IoU > thr, merge sorted by score (class-major on ties),
    keep_top_k, padding class -1."""
    batch, num_anchors, num_classes = scores.shape
    num = np.zeros((batch, 1), np.int32)
    out_boxes = np.zeros((batch, keep_top_k, 4), np.float32)
    out_scores = np.zeros((batch, keep_top_k), np.float32)
    out_classes = np.full((batch, keep_top_k), -1.0, np.float32)
    for b in range(batch):
        kept_all = []
        for c in range(num_classes):
            cands = [
                (float(scores[b, a, c]), a)
                for a in range(num_anchors)
                if float(scores[b, a, c]) > score_threshold
            ]
            cands.sort(key=lambda t: (-t[0], t[1]))
            cands = cands[:top_k]
            kept = []
            for score, a in cands:
                box = [float(v) for v in boxes[b, a]]
                if all(
                    _iou(box, [float(v) for v in boxes[b, ka]]) <= iou_threshold for _, ka in kept
                ):
                    kept.append((score, a))
            kept_all.extend((score, c, a) for score, a in kept)
        kept_all.sort(key=lambda t: -t[0])  # stable: class-major order on ties
        kept_all = kept_all[:keep_top_k]
        num[b, 0] = len(kept_all)
        for i, (score, c, a) in enumerate(kept_all):
            out_boxes[b, i] = np.clip(boxes[b, a], 0.0, 1.0)
            out_scores[b, i] = score
            out_classes[b, i] = c
    return num, out_boxes, out_scores, out_classes


def random_inputs(rng, batch, num_anchors, num_classes, clustered=True):
    """Boxes normalised y1,x1,y2,x2 (clustered so that many overlap) and scores in [0,1]."""
    if clustered:
        centres = rng.uniform(0.1, 0.9, (batch, 5, 2))
        pick = rng.integers(0, 5, (batch, num_anchors))
        centre = np.take_along_axis(centres, pick[..., None], axis=1) + rng.normal(
            0, 0.03, (batch, num_anchors, 2)
        )
    else:
        centre = rng.uniform(0, 1, (batch, num_anchors, 2))
    size = rng.uniform(0.05, 0.3, (batch, num_anchors, 2))
    boxes = np.clip(np.concatenate([centre - size / 2, centre + size / 2], axis=-1), 0, 1).astype(
        np.float32
    )
    scores = rng.uniform(0, 1, (batch, num_anchors, num_classes)).astype(np.float32)
    return boxes, scores
