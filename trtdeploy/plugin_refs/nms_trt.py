"""NMS_TRT and NMSDynamic_TRT (TAO SSD, DSSD, RetinaNet) on a CPU, in float32.

What the plugin computes, read in NVIDIA/TensorRT release/10.16 (the mirror's
``plugin/nmsPlugin/nmsPlugin.cpp`` and ``plugin/common/kernels/*.cu``; ``l.`` are line numbers
of those files on that branch):

Inputs (in node order, picked by ``inputOrder`` = indices of loc, conf, prior; nmsPlugin.cpp
l.248-251): ``loc`` [B, A*L*4, 1, 1] (L = 1 with ``shareLocation``, else numClasses), ``conf``
[B, A*C, 1, 1], ``prior`` [B, 2, A*4, 1] (channel 0 the prior corners xmin, ymin, xmax, ymax,
channel 1 the four variances). A = prior dim 2 / 4 (configurePlugin l.556).

1. Decode (decodeBBoxes.cu l.107-298, ``clip_bbox`` false: detectionForward.cu l.55). The
   dynamic plugin reads a prior per image (``isBatchAgnostic`` is passed as false, nmsPlugin.cpp
   l.260; decodeBBoxes.cu l.131); NMS_TRT uses the attribute (l.239). ``codeType``
   (NvInferPluginUtils.h l.106-112):
   0 CORNER: p + l (``varianceEncodedInTarget``) or p + l*v;
   1 CENTER_SIZE: prior centre/size; cx = (v0*l0)*pw + pcx, cy = (v1*l1)*ph + pcy,
     w = exp(v2*l2)*pw, h = exp(v3*l3)*ph (the v factors dropped when the variance is encoded
     in the target), corners cx -/+ w/2, cy -/+ h/2;
   2 CORNER_SIZE: p_i + (l_i*v_i)*size_i, size pw for x, ph for y;
   3 TF_CENTER: loc is (y, x, h, w): cx = (v0*l1)*pw + pcx, cy = (v1*l0)*ph + pcy,
     w = exp(v2*l3)*pw, h = exp(v3*l2)*ph: it ALWAYS applies the variances (l.248-287 has no
     ``variance_encoded_in_target`` branch).
   Decoded boxes are x1, y1, x2, y2 and not clipped.
2. Scores: conf permuted to [B, C, A]; ``confSigmoid`` applies exp(x) / (1 + exp(x))
   (permuteData.cu l.38-39).
3. Per class (sortScoresPerClass.cu l.64-133, 183-190): the background class and every score
   ``<= confidenceThreshold`` (strict ``>`` keeps, l.94) become a placeholder (score 0, index
   -1); a stable descending radix sort orders each class, ties by prior index.
4. Greedy NMS over the first min(topK, A) sorted entries of each class (allClassNMS.cu
   l.182-304, called with flipXY false and caffeSemantics true, detectionForward.cu l.174-175):
   an entry is suppressed by an earlier kept one when ``IoU > nmsThreshold`` (strict, l.265).
   IoU (l.26-159): corners put in min/max order; disjoint (a strict gap) gives 0; with
   ``isNormalized`` false the sizes are (w+1)(h+1) and the intersection also gets +1 per side;
   an intersection with a non-positive side gives 0. The loop never starts when a class's
   first sorted entry is a placeholder (l.247): then nothing of that class is suppressed.
5. Per image, the C*topK post-NMS entries (class-major; suppressed ones placeholders) are
   stable-sorted by score, descending (sortScoresPerImage.cu l.46-53): equal scores keep class
   order, then rank. The first ``keepTopK`` are written (gatherTopDetections.cu l.56-111):
   detections [B, 1, keepTopK, 7] rows (image id, label, score, xmin, ymin, xmax, ymax), the
   box clamped to [0, 1] (``__saturatef``: NaN gives 0); a placeholder row is (image id, -1, 0,
   0, 0, 0, 0); keep count [B, 1, 1, 1] counts the non-placeholder rows and is written as int32
   (``int* keepCount``, l.52) although TensorRT declares it float (nmsPlugin.cpp l.468-470).
   With keepTopK > topK the kernel returns at once (l.56-57): nothing but a zero count.

``scoreBits`` only changes FP16 engines (sortScoresPerClass.cu l.177-182): no effect here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtdeploy.plugin_refs import Implementation

_F32 = np.float32
TOP_K_LIMIT = 4096  # allClassNMS_gpu: top_k threads x 8 unrolled items per block (allClassNMS.cu l.328-330)
CODE_TYPES = {0: "CORNER", 1: "CENTER_SIZE", 2: "CORNER_SIZE", 3: "TF_CENTER"}


def decode_boxes(
    loc: np.ndarray, prior: np.ndarray, var: np.ndarray, code_type: int, variance_encoded_in_target: bool
) -> np.ndarray:
    """decodeBBoxes.cu for ``loc`` [..., 4] against ``prior`` / ``var`` [..., 4] (broadcast),
    in the kernel's float32 operation order. Returns x1, y1, x2, y2."""
    loc, prior, var = (np.asarray(x, dtype=_F32) for x in (loc, prior, var))
    two = _F32(2)
    if code_type == 0:  # l.136-151
        return (prior + loc) if variance_encoded_in_target else (prior + loc * var)
    pw = prior[..., 2] - prior[..., 0]
    ph = prior[..., 3] - prior[..., 1]
    if code_type == 2:  # l.215-245
        size = np.stack([pw, ph, pw, ph], axis=-1)
        return (prior + loc * size) if variance_encoded_in_target else (prior + (loc * var) * size)
    pcx = (prior[..., 0] + prior[..., 2]) / two
    pcy = (prior[..., 1] + prior[..., 3]) / two
    if code_type == 1:  # l.155-211
        l0, l1, l2, l3 = (loc[..., i] for i in range(4))
        if not variance_encoded_in_target:
            l0, l1, l2, l3 = (var[..., i] * loc[..., i] for i in range(4))
        cx, cy = l0 * pw + pcx, l1 * ph + pcy
        w, h = np.exp(l2) * pw, np.exp(l3) * ph
    elif code_type == 3:  # l.248-287: (y, x, h, w), variances always applied
        cx = (var[..., 0] * loc[..., 1]) * pw + pcx
        cy = (var[..., 1] * loc[..., 0]) * ph + pcy
        w = np.exp(var[..., 2] * loc[..., 3]) * pw
        h = np.exp(var[..., 3] * loc[..., 2]) * ph
    else:
        raise ValueError(f"NMS_TRT codeType {code_type} is not one of {sorted(CODE_TYPES)}")
    return np.stack([cx - w / two, cy - h / two, cx + w / two, cy + h / two], axis=-1).astype(_F32)


def iou_caffe(box: np.ndarray, others: np.ndarray, normalized: bool, caffe_semantics: bool = True) -> np.ndarray:
    """allClassNMS.cu ``jaccardOverlap`` (l.26-159) of one x1, y1, x2, y2 box against many."""
    b = np.concatenate([np.minimum(box[0:2], box[2:4]), np.maximum(box[0:2], box[2:4])])
    o = np.concatenate([np.minimum(others[:, 0:2], others[:, 2:4]), np.maximum(others[:, 0:2], others[:, 2:4])], 1)
    disjoint = (o[:, 0] > b[2]) | (o[:, 2] < b[0]) | (o[:, 1] > b[3]) | (o[:, 3] < b[1])
    plus = _F32(1) if (not normalized and caffe_semantics) else _F32(0)
    iw = np.where(disjoint, _F32(0), np.minimum(b[2], o[:, 2]) - np.maximum(b[0], o[:, 0])) + plus
    ih = np.where(disjoint, _F32(0), np.minimum(b[3], o[:, 3]) - np.maximum(b[1], o[:, 1])) + plus
    one = _F32(0) if normalized else _F32(1)
    size_b = (b[2] - b[0] + one) * (b[3] - b[1] + one)
    size_o = (o[:, 2] - o[:, 0] + one) * (o[:, 3] - o[:, 1] + one)
    inter = iw * ih
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where((iw > 0) & (ih > 0), inter / (size_b + size_o - inter), _F32(0))
    return iou.astype(_F32)


def sigmoid_like_plugin(x: np.ndarray) -> np.ndarray:
    """permuteData.cu l.39: exp(x) / (1 + exp(x)) in float32 (NaN once exp overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.asarray(x, dtype=_F32))
        return (e / (_F32(1) + e)).astype(_F32)


def _split_inputs(inputs: tuple[np.ndarray, ...], input_order: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = [int(i) for i in input_order]
    if sorted(order) != [0, 1, 2]:
        raise ValueError(f"NMS_TRT inputOrder {order} is not a permutation of 0, 1, 2")
    return inputs[order[0]], inputs[order[1]], inputs[order[2]]


def nms_trt(
    *inputs: np.ndarray,
    shareLocation: int,
    varianceEncodedInTarget: int,
    backgroundLabelId: int,
    numClasses: int,
    topK: int,
    keepTopK: int,
    confidenceThreshold: float,
    nmsThreshold: float,
    inputOrder: Any = (0, 2, 1),
    confSigmoid: int = 0,
    isNormalized: int = 1,
    codeType: int = 3,
    scoreBits: int = 16,
    isBatchAgnostic: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """What NMS_TRT / NMSDynamic_TRT write (module docstring): detections float32
    [B,1,keepTopK,7] and the keep count int32 [B,1,1,1]."""
    del scoreBits  # FP16 sorting only
    if len(inputs) != 3:
        raise ValueError(f"NMS_TRT takes 3 inputs (loc, conf, prior), got {len(inputs)}")
    loc, conf, prior = (np.asarray(x, dtype=_F32) for x in _split_inputs(inputs, inputOrder))
    batch, num_classes = loc.shape[0], int(numClasses)
    num_priors = prior.shape[2] // 4
    loc_classes = 1 if shareLocation else num_classes
    if loc[0].size != num_priors * loc_classes * 4 or conf[0].size != num_priors * num_classes:
        raise ValueError(
            f"NMS_TRT inputs do not fit {num_priors} priors x {num_classes} classes: loc {loc.shape}, "
            f"conf {conf.shape}, prior {prior.shape}"
        )
    if prior.shape[0] != batch and not (prior.shape[0] == 1 and isBatchAgnostic):
        raise ValueError(f"NMS_TRT reads one prior set per image: prior batch {prior.shape[0]} for {batch} images")
    if not 0 < topK <= TOP_K_LIMIT:
        raise ValueError(f"NMS_TRT topK {topK} is outside 1..{TOP_K_LIMIT}")
    top_k, keep_top_k = int(topK), int(keepTopK)
    out = np.zeros((batch, 1, keep_top_k, 7), dtype=_F32)
    count = np.zeros((batch, 1, 1, 1), dtype=np.int32)
    if keep_top_k > top_k:  # gatherTopDetections.cu l.56-57: nothing is written
        return out, count
    priors = prior.reshape(prior.shape[0], 2, num_priors, 4)
    if isBatchAgnostic:  # decodeBBoxes.cu l.131: every image reads the first prior set
        priors = priors[:1]
    boxes = decode_boxes(
        loc.reshape(batch, num_priors, loc_classes, 4),
        priors[:, 0, :, None, :],
        priors[:, 1, :, None, :],
        int(codeType),
        bool(varianceEncodedInTarget),
    )  # [B, A, L, 4]
    scores = conf.reshape(batch, num_priors, num_classes)
    if confSigmoid:
        scores = sigmoid_like_plugin(scores)
    threshold = _F32(confidenceThreshold)
    for b in range(batch):
        entries: list[tuple[float, int, int]] = []  # (score, class, prior): post-NMS, class-major
        for c in range(num_classes):
            class_scores = scores[b, :, c]
            valid = class_scores > threshold
            if c == backgroundLabelId:
                valid[:] = False
            masked = np.where(valid, class_scores, _F32(0))
            order = np.argsort(-masked, kind="stable")[: min(top_k, num_priors)]
            kept = valid[order].copy()
            class_boxes = boxes[b, order, 0 if shareLocation else c]
            if len(order) and kept[0]:  # allClassNMS.cu l.247: a placeholder first stops the loop
                for i in range(len(order)):
                    if not kept[i]:
                        continue
                    later = np.arange(i + 1, len(order))
                    later = later[kept[later]]
                    if len(later):
                        overlap = iou_caffe(class_boxes[i], class_boxes[later], bool(isNormalized))
                        kept[later[overlap > _F32(nmsThreshold)]] = False
            entries.extend((float(masked[a]), c, int(a)) for a, k in zip(order, kept, strict=True) if k)
        # Placeholders carry score 0 and sort after every kept entry of a non-negative score
        # (the only case the rewrite accepts); a negative kept score would sort after them.
        ranked = sorted(range(len(entries)), key=lambda j: -entries[j][0])[:keep_top_k]
        out[b, 0, :, 0] = b
        out[b, 0, :, 1] = -1
        for row, j in enumerate(ranked):
            score, c, a = entries[j]
            box = boxes[b, a, 0 if shareLocation else c]
            out[b, 0, row, 1:3] = (c, score)
            out[b, 0, row, 3:7] = np.nan_to_num(np.clip(box, 0.0, 1.0), nan=0.0)
        count[b, 0, 0, 0] = len(ranked)
    return out, count


def nms_dynamic_trt(*inputs: np.ndarray, **attrs: Any) -> tuple[np.ndarray, np.ndarray]:
    """NMSDynamic_TRT: the same kernel, but ``isBatchAgnostic`` is always false (nmsPlugin.cpp l.260)."""
    return nms_trt(*inputs, **{**attrs, "isBatchAgnostic": 0})


_SOURCE = "NVIDIA/TensorRT release/10.16 plugin/nmsPlugin/nmsPlugin.cpp, plugin/common/kernels (module docstring)"
# keep count: int32 bytes (gatherTopDetections.cu l.51-52), see trtdeploy.plugins _NMS_OUTPUTS
IMPLEMENTATIONS = [
    Implementation("NMS_TRT", "TrtDeployNMS", ("float32",) * 3, ("float32", "int32"), nms_trt, source=_SOURCE),
    Implementation(
        "NMSDynamic_TRT", "TrtDeployNMSDynamic", ("float32",) * 3, ("float32", "int32"), nms_dynamic_trt, source=_SOURCE
    ),
]
