"""NumPy reference implementations of TensorRT's NMS plugins, for running graphs on a CPU.

These follow the plugins' CUDA sources in the TensorRT OSS repository
(``plugin/efficientNMSPlugin/efficientNMSInference.cu``, ``plugin/batchedNMSPlugin/*`` and
``plugin/common/kernels/{sortScoresPerClass,allClassNMS}.cu``) and their READMEs; the exact
rules, including where the two plugins differ, are written in each function's docstring.
Written for clarity first: a greedy loop per image (and per class), its IoU rows computed a block at a time.

Only float32 is modelled. The FP16 paths of the plugins (``scoreBits`` < 11 sorts only the
top mantissa bits) are not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# EfficientNMS_TRT feeds at most this many sorted candidates per image into the NMS kernel
# (EfficientNMSParameters::numSelectedBoxes).
EFFICIENT_NMS_MAX_CANDIDATES = 4096
# BatchedNMS_TRT rejects topK above 512 threads x 8 blocks (checkParams in batchedNMSPlugin.cpp).
BATCHED_NMS_MAX_TOP_K = 4096


def _corners_sorted(boxes: np.ndarray) -> np.ndarray:
    """Reorder each [a1, b1, a2, b2] box so that a1 <= a2 and b1 <= b2 (both plugins do this)."""
    lo = np.minimum(boxes[..., 0:2], boxes[..., 2:4])
    hi = np.maximum(boxes[..., 0:2], boxes[..., 2:4])
    return np.concatenate([lo, hi], axis=-1)


def _iou_efficient(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """EfficientNMS IoU of boxes ``a`` [m,4] against ``b`` [n,4] (corners sorted), [m,n] float32,
    no +1 on sizes.

    Intersection area <= 0 gives 0; a box with zero width or height has area 0; a union <= 0
    gives 0. Vertical-first and horizontal-first coordinates give the same result.
    """
    a, b = a[:, None, :], b[None, :, :]
    ih = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    iw = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.where((ih > 0) & (iw > 0), ih * iw, np.float32(0))

    def area(x: np.ndarray) -> np.ndarray:
        h = x[..., 2] - x[..., 0]
        w = x[..., 3] - x[..., 1]
        return np.where((h > 0) & (w > 0), h * w, np.float32(0))

    union = area(a) + area(b) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where((inter > 0) & (union > 0), inter / union, np.float32(0))
    return iou.astype(np.float32)


_BLOCK = 256  # candidates whose IoU rows are computed at once (a block of rows x all later ones)


def _greedy_keep(
    corners: np.ndarray,
    overlaps: Callable[[np.ndarray, np.ndarray], np.ndarray],
    limit: int,
) -> list[int]:
    """Greedy NMS over candidates already in rank order: a candidate is kept unless a kept,
    higher-ranked one overlaps it (``overlaps(a, b)`` -> bool [len(a), len(b)]); stops after
    ``limit`` keeps. The IoU rows are computed a block at a time, which gives the one-box-at-a-
    time loop's result exactly (the same float32 operations per pair) at a fraction of its cost."""
    n = len(corners)
    alive = np.ones(n, dtype=bool)
    kept: list[int] = []
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        if len(kept) >= limit:
            break
        if not alive[start:stop].any():
            continue
        over = overlaps(corners[start:stop], corners[start:])
        for i in range(start, stop):
            if not alive[i]:
                continue
            if len(kept) >= limit:
                break
            kept.append(i)
            alive[i + 1 :] &= ~over[i - start, i - start + 1 :]
    return kept


def _greedy_keep_per_class(
    corners: np.ndarray,
    overlaps: Callable[[np.ndarray, np.ndarray], np.ndarray],
    limit: int,
    classes: np.ndarray,
) -> list[int]:
    """``_greedy_keep`` where only candidates of the same class suppress each other. Each
    class's greedy run is independent of the others, so the one-loop result (keep in rank
    order, stop after ``limit``) is the first ``limit`` in rank order of the per-class keeps."""
    kept: list[int] = []
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        kept.extend(int(i) for i in idx[_greedy_keep(corners[idx], overlaps, limit)])
    return sorted(kept)[:limit]


def _decode_center_size(boxes: np.ndarray) -> np.ndarray:
    """[c1, c2, s1, s2] (centre, size; either axis first) -> corners in the same axis order."""
    half = boxes[..., 2:4] * np.float32(0.5)
    return np.concatenate([boxes[..., 0:2] - half, boxes[..., 0:2] + half], axis=-1)


def efficient_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    anchors: np.ndarray | None = None,
    *,
    score_threshold: float,
    iou_threshold: float,
    max_output_boxes: int,
    background_class: int = -1,
    score_activation: bool = False,
    class_agnostic: bool = False,
    box_coding: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What EfficientNMS_TRT (plugin_version "1") computes, per image of the batch.

    Inputs: ``boxes`` [B,A,4] (shared by all classes) or [B,A,C,4] (per class); ``scores``
    [B,A,C]; optional ``anchors`` [1,A,4] or [B,A,4] (then ``boxes`` are deltas).

    1. Candidates are the (anchor, class) pairs with ``score >= score_threshold`` (inclusive;
       with ``score_activation`` the comparison is ``sigmoid(score) >= score_threshold``, which
       the plugin does as logit >= inverse-sigmoid(threshold)), skipping ``background_class``.
    2. Candidates are sorted by score, descending. Ties: the plugin's GPU filter collects
       candidates with atomics, so equal scores come out in an unspecified order; its dense
       path (score_threshold < 0.007) and this reference order ties by the flat index
       ``anchor * C + class``, ascending.
    3. Only the first 4096 sorted candidates take part in NMS.
    4. Greedy NMS in that order: a candidate is kept unless an already kept candidate of the
       same class (any class when ``class_agnostic``) overlaps it with ``IoU >= iou_threshold``
       (inclusive). It stops once ``max_output_boxes`` are kept. There is no per-class limit.
       IoU: corners reordered to min/max, no +1 on sizes (normalised or pixel boxes alike),
       0 when the intersection or the union is not positive.
    5. Outputs are in kept order, zero padded to ``max_output_boxes``: num_detections int32
       [B,1], boxes float32 [B,K,4] as corners in the input's axis order (not clipped; with
       box_coding 1 converted from centre-size), scores float32 [B,K] (sigmoid applied when
       ``score_activation``), classes int32 [B,K].

    Box decoding with anchors: box_coding 0 adds the anchor corners to the deltas; box_coding
    1 uses centre-size: ``c = d_c * anchor_size + anchor_c``, ``size = anchor_size *
    exp(d_size)``, then converts to corners.

    Known plugin quirk not reproduced: in its dense path (threshold < 0.007) a below-threshold
    score is replaced by -32768 but still sorted, so with very few candidates such entries
    can reach the output; here they never do.
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 3:
        raise ValueError(f"EfficientNMS scores must be [B,A,C], got shape {scores.shape}")
    batch, num_anchors, num_classes = scores.shape
    if boxes.ndim == 3:
        boxes = boxes[:, :, None, :]
    if boxes.ndim != 4 or boxes.shape[:2] != (batch, num_anchors) or boxes.shape[2] not in (1, num_classes):
        raise ValueError(f"EfficientNMS boxes shape {boxes.shape} does not match scores {scores.shape}")
    if anchors is not None:
        anchors = np.asarray(anchors, dtype=np.float32)
        anchors = np.broadcast_to(anchors[:, :, None, :], (batch, num_anchors, 1, 4))
        if box_coding == 1:
            centre = boxes[..., 0:2] * anchors[..., 2:4] + anchors[..., 0:2]
            size = anchors[..., 2:4] * np.exp(boxes[..., 2:4])
            boxes = np.concatenate([centre, size], axis=-1)
        else:
            boxes = boxes + anchors
    if box_coding == 1:
        boxes = _decode_center_size(boxes)
    boxes = boxes.astype(np.float32)

    k = int(max_output_boxes)
    out_num = np.zeros((batch, 1), dtype=np.int32)
    out_boxes = np.zeros((batch, k, 4), dtype=np.float32)
    out_scores = np.zeros((batch, k), dtype=np.float32)
    out_classes = np.zeros((batch, k), dtype=np.int32)
    threshold = np.float32(score_threshold)
    iou_threshold32 = np.float32(iou_threshold)
    for b in range(batch):
        image_scores = scores[b]
        passing = 1.0 / (1.0 + np.exp(-image_scores)) if score_activation else image_scores
        mask = passing >= threshold
        if 0 <= background_class < num_classes:
            mask[:, background_class] = False
        anchor_idx, class_idx = np.nonzero(mask)  # row-major: flat index a*C + c ascending
        cand_scores = image_scores[anchor_idx, class_idx]
        order = _top_candidates(cand_scores, EFFICIENT_NMS_MAX_CANDIDATES)
        anchor_idx, class_idx, cand_scores = anchor_idx[order], class_idx[order], cand_scores[order]
        box_class = class_idx if boxes.shape[2] > 1 else np.zeros_like(class_idx)
        cand_boxes = boxes[b, anchor_idx, box_class]
        corners = _corners_sorted(cand_boxes)

        def overlaps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return _iou_efficient(x, y) >= iou_threshold32

        if class_agnostic:
            keep = _greedy_keep(corners, overlaps, k)
        else:
            keep = _greedy_keep_per_class(corners, overlaps, k, class_idx)
        kept = len(keep)
        out_boxes[b, :kept] = cand_boxes[keep]
        kept_scores = cand_scores[keep]
        # the sigmoid of the float32 exp in float64, rounded once (as the scalar formula did)
        sigmoid = 1.0 / (1.0 + np.exp(-kept_scores).astype(np.float64))
        out_scores[b, :kept] = sigmoid if score_activation else kept_scores
        out_classes[b, :kept] = class_idx[keep]
        out_num[b, 0] = kept
    return out_num, out_boxes, out_scores, out_classes


def _top_candidates(scores: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the ``limit`` highest scores, descending, ties by index: the first ``limit`` of
    a stable descending argsort, without sorting every candidate (a 90-class EfficientDet at a
    low threshold has ~10^6): only the scores at or above the limit-th largest are sorted."""
    if len(scores) > limit:
        kth = np.partition(-scores, limit - 1)[limit - 1]
        subset = np.nonzero(-scores <= kth)[0]  # ascending index, so ties keep their order
        return subset[np.argsort(-scores[subset], kind="stable")][:limit]
    return np.argsort(-scores, kind="stable")[:limit]


def _iou_batched(a: np.ndarray, b: np.ndarray, normalized: bool, caffe_semantics: bool) -> np.ndarray:
    """BatchedNMS (allClassNMS.cu ``jaccardOverlap``) IoU of boxes ``a`` [m,4] against ``b``
    [n,4] (corners sorted), [m,n] float32.

    Boxes that do not touch give 0, except pixel boxes (``normalized`` false) with
    ``caffe_semantics``: sizes are then (w+1)*(h+1) and the intersection gets +1 on each side,
    also the zeroed intersection of boxes that do not touch (1x1). The intersection must have
    positive width and height, else IoU is 0.
    """
    a, b = a[:, None, :], b[None, :, :]
    one = np.float32(0 if normalized else 1)
    disjoint = (b[..., 0] > a[..., 2]) | (b[..., 2] < a[..., 0]) | (b[..., 1] > a[..., 3]) | (b[..., 3] < a[..., 1])
    inter_one = np.float32(0) if (normalized or not caffe_semantics) else np.float32(1)
    # A disjoint pair gets a zeroed intersection box to which the +1 is still added, so pixel
    # boxes with caffe semantics overlap by 1x1 (release/10.16 allClassNMS.cu l.55-62, l.138-150).
    ih = np.where(disjoint, np.float32(0), np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    iw = np.where(disjoint, np.float32(0), np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    ih, iw = ih + inter_one, iw + inter_one
    valid = (ih > 0) & (iw > 0)
    inter = np.where(valid, ih * iw, np.float32(0))
    size_a = (a[..., 2] - a[..., 0] + one) * (a[..., 3] - a[..., 1] + one)
    size_b = (b[..., 2] - b[..., 0] + one) * (b[..., 3] - b[..., 1] + one)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(valid, inter / (size_a + size_b - inter), np.float32(0))
    return iou.astype(np.float32)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    *,
    share_location: bool = True,
    background_label_id: int = -1,
    num_classes: int,
    top_k: int,
    keep_top_k: int,
    score_threshold: float,
    iou_threshold: float,
    is_normalized: bool = True,
    clip_boxes: bool = True,
    score_bits: int = 16,
    caffe_semantics: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What BatchedNMS_TRT / BatchedNMSDynamic_TRT compute, per image (float32).

    Inputs: ``boxes`` [B,A,1,4] (``share_location``) or [B,A,C,4]; ``scores`` [B,A,C] (or
    [B,A,C,1]).

    1. Per class (skipping ``background_label_id``): candidates are anchors with
       ``score > score_threshold`` (strict, unlike EfficientNMS), sorted by score descending,
       ties by anchor index ascending (stable radix sort); only the first ``top_k`` per class
       go into NMS.
    2. Greedy NMS per class: a candidate is suppressed by a kept, higher-ranked one when
       ``IoU > iou_threshold`` (strict, unlike EfficientNMS). IoU: see ``_iou_batched``.
    3. All kept detections of the image are sorted by score descending; ties keep the
       class-major order (class ascending, then rank within the class). The first
       ``keep_top_k`` are written.
    4. Outputs: num_detections int32 [B,1]; nmsed_boxes float32 [B,K,4] in the input's
       coordinate order, clamped to [0,1] when ``clip_boxes`` (the plugin default); nmsed_scores
       float32 [B,K]; nmsed_classes float32 [B,K]. Padding rows have box 0, score 0 and
       class -1 (not 0).

    ``score_bits`` (default 16) only changes FP16 engines (values 1..10 sort fewer mantissa
    bits); it has no effect in float32 and is accepted for completeness.

    The plugin itself misbehaves (silently) when ``top_k`` > A (it reads the next class's
    candidates) or ``keep_top_k`` > ``top_k`` (it writes no outputs at all), and refuses
    ``top_k`` > 4096; this reference raises ValueError for all three.
    """
    del score_bits  # FP16-only optimisation, see docstring
    boxes = np.asarray(boxes, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim == 4 and scores.shape[3] == 1:
        scores = scores[..., 0]
    if scores.ndim != 3 or scores.shape[2] != num_classes:
        raise ValueError(f"BatchedNMS scores must be [B,A,{num_classes}], got shape {scores.shape}")
    batch, num_anchors, _ = scores.shape
    loc_classes = 1 if share_location else num_classes
    if boxes.shape != (batch, num_anchors, loc_classes, 4):
        raise ValueError(f"BatchedNMS boxes must be [{batch},{num_anchors},{loc_classes},4], got {boxes.shape}")
    if top_k > BATCHED_NMS_MAX_TOP_K:
        raise ValueError(f"BatchedNMS topK {top_k} exceeds the plugin limit {BATCHED_NMS_MAX_TOP_K}")
    if top_k > num_anchors:
        raise ValueError(f"BatchedNMS topK {top_k} exceeds the number of boxes {num_anchors}")
    if keep_top_k > top_k:
        raise ValueError(f"BatchedNMS keepTopK {keep_top_k} exceeds topK {top_k}")

    out_num = np.zeros((batch, 1), dtype=np.int32)
    out_boxes = np.zeros((batch, keep_top_k, 4), dtype=np.float32)
    out_scores = np.zeros((batch, keep_top_k), dtype=np.float32)
    out_classes = np.full((batch, keep_top_k), -1.0, dtype=np.float32)
    threshold = np.float32(score_threshold)
    iou_threshold32 = np.float32(iou_threshold)
    for b in range(batch):
        kept: list[tuple[float, int, int]] = []  # (score, class, anchor) in class-major order
        for c in range(num_classes):
            if c == background_label_id:
                continue
            class_scores = scores[b, :, c]
            anchors = np.nonzero(class_scores > threshold)[0]
            anchors = anchors[np.argsort(-class_scores[anchors], kind="stable")][:top_k]
            class_boxes = boxes[b, anchors, 0 if share_location else c]
            # A class's detections after its first keep_top_k can never reach the output:
            # k detections of the same class score at least as high and come first on ties.
            keep = _greedy_keep(
                _corners_sorted(class_boxes),
                lambda x, y: _iou_batched(x, y, is_normalized, caffe_semantics) > iou_threshold32,
                keep_top_k,
            )
            kept.extend((float(class_scores[anchors[i]]), c, int(anchors[i])) for i in keep)
        order = sorted(range(len(kept)), key=lambda j: -kept[j][0])[:keep_top_k]  # stable
        for row, j in enumerate(order):
            score, c, a = kept[j]
            box = boxes[b, a, 0 if share_location else c]
            out_boxes[b, row] = np.clip(box, 0.0, 1.0) if clip_boxes else box
            out_scores[b, row] = score
            out_classes[b, row] = c
        out_num[b, 0] = len(order)
    return out_num, out_boxes, out_scores, out_classes
