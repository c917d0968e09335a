"""ProposalDynamic / Proposal (TAO FasterRCNN's RPN head) on a CPU.

Semantics read in NVIDIA/TensorRT release/10.16:
* plugin/proposalPlugin/proposalPlugin.cpp: two inputs, ``rpn_prob`` [N, A, H, W] (foreground
  probabilities, TAO puts a Sigmoid before it) and ``rpn_regr`` [N, 4A, H, W] (enqueue
  l.342-344 pass inputs[0], inputs[1] to proposalInference_gpu; configurePlugin l.618-619 take
  H, W from input 0); A = len(anchor_sizes) * len(anchor_ratios); the creator stores
  sqrt(ratio) (l.753-758); rpn_std_scaling is the constant 1.0 (l.39); one float32 output
  (N, post_nms_top_n, 4, 1) (l.264-280, l.564-572).
* plugin/common/kernels/proposalKernel.cu ``_inverse_transform_gpu`` l.439-503: anchor
  a = size_index * n_ratios + ratio_index, w = size * sqrt(r), h = size / sqrt(r), centre
  ((x + 0.5) * stride, (y + 0.5) * stride); deltas of anchor a at channels 4a..4a+3 as
  (tx, ty, tw, th): cx = acx + w*tx, cy = acy + h*ty, w' = exp(tw)*w, h' = exp(th)*h,
  x1 = cx - w'/2, y1 = cy - h'/2, x2 = x1 + w', y2 = y1 + h'; each clipped to [0, W-1] /
  [0, H-1]; a box with x2-x1 <= roi_min_size or y2-y1 <= roi_min_size gets score -inf (it
  is NOT dropped: it sorts last and can still be output). Proposals are indexed (a, y, x).
* plugin/common/kernels/nmsLayer.cu: per image a stable descending radix sort of all
  A*H*W scores (``SortPairsDescending`` l.292-314: ties keep index order), greedy NMS over the
  first pre_nms_top_n (nmsKernel1 l.53-125; nmsKernel2 for > 12288 is the same greedy) with
  IoU in pixel units, +1 on widths and heights (l.38-49), a box suppressed when IoU > threshold;
  at most post_nms_top_n kept, the output zeroed first (l.230) so missing rows are 0.
* proposalKernel.cu ``_normalize_rois_kernel`` l.604-617: every row is rewritten as
  (y1/(H_in-1), x1/(W_in-1), y2/(H_in-1), x2/(W_in-1)) with H_in, W_in the plugin's
  input_height/input_width.

Not modelled: pre_nms_top_n larger than A*H*W (the kernel then reads past the image's
proposals; here it is capped), the CUDA fast ``__expf`` (exp here is the exact value rounded to
float32, ``exact_exp``, a few ulp from any float32 exp), and nvcc's default multiply-add
contraction (``--fmad=true``: ``anchor_cx + anchor_w * tx`` may be one fused rounding on the GPU,
two here): the plugin's coordinates can differ from these by an ulp or so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtdeploy.plugin_refs import Implementation

SOURCE = (
    "NVIDIA/TensorRT release/10.16 plugin/proposalPlugin/proposalPlugin.cpp l.39, l.264-280, l.342-344, "
    "l.618-619, l.753-758; plugin/common/kernels/proposalKernel.cu l.439-503, l.604-617; "
    "plugin/common/kernels/nmsLayer.cu l.38-125, l.230, l.292-314"
)
STD_SCALING = np.float32(1.0)  # kRPN_STD_SCALING, proposalPlugin.cpp l.39


def anchor_table(anchor_sizes: list[float], anchor_ratios: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(widths [A], heights [A]) in float32, anchor a = size_index * len(ratios) + ratio_index."""
    sizes = np.asarray(anchor_sizes, dtype=np.float32)
    roots = np.sqrt(np.asarray(anchor_ratios, dtype=np.float32))  # createPlugin l.753-758
    if sizes.size == 0 or roots.size == 0 or (sizes <= 0).any() or (roots <= 0).any():
        raise ValueError(f"ProposalDynamic needs positive anchor sizes and ratios, got {anchor_sizes}, {anchor_ratios}")
    widths = (sizes[:, None] * roots[None, :]).reshape(-1)
    heights = (sizes[:, None] / roots[None, :]).reshape(-1)
    return widths, heights


def anchor_centres(height: int, width: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(cx [W], cy [H]) = ((i + 0.5) * stride) in float32."""
    cx = (np.arange(width, dtype=np.float32) + np.float32(0.5)) * np.float32(stride)
    cy = (np.arange(height, dtype=np.float32) + np.float32(0.5)) * np.float32(stride)
    return cx, cy


def exact_exp(x: np.ndarray) -> np.ndarray:
    """exp rounded once to float32 (computed in float64). The kernel's CUDA ``__expf`` and every
    float32 exp of a CPU library are approximations of this value within a few ulp."""
    return np.exp(np.asarray(x, dtype=np.float64)).astype(np.float32)


def decode(
    scores: np.ndarray, deltas: np.ndarray, input_height: int, input_width: int, rpn_stride: int,
    roi_min_size: float, anchor_sizes: list[float], anchor_ratios: list[float],
) -> tuple[np.ndarray, np.ndarray]:
    """(boxes [N, A*H*W, 4] as x1, y1, x2, y2 in input pixels, scores [N, A*H*W] with -inf
    for boxes at or under the minimum size), indexed (a, y, x) like the kernel."""
    scores = np.asarray(scores, dtype=np.float32)
    deltas = np.asarray(deltas, dtype=np.float32)
    widths, heights = anchor_table(anchor_sizes, anchor_ratios)
    n, a, h, w = scores.shape
    if a != widths.size or deltas.shape != (n, 4 * a, h, w):
        raise ValueError(
            f"ProposalDynamic: scores {scores.shape} and deltas {deltas.shape} do not fit {widths.size} anchors"
        )
    d = deltas.reshape(n, a, 4, h, w) / STD_SCALING
    cx, cy = anchor_centres(h, w, rpn_stride)
    aw, ah = widths[None, :, None, None], heights[None, :, None, None]
    centre_x = cx[None, None, None, :] + aw * d[:, :, 0]
    centre_y = cy[None, None, :, None] + ah * d[:, :, 1]
    box_w = exact_exp(d[:, :, 2]) * aw
    box_h = exact_exp(d[:, :, 3]) * ah
    x1 = centre_x - box_w / np.float32(2.0)
    y1 = centre_y - box_h / np.float32(2.0)
    x2, y2 = box_w + x1, box_h + y1
    max_x, max_y = np.float32(input_width - 1.0), np.float32(input_height - 1.0)
    x1, x2 = np.clip(x1, 0, max_x), np.clip(x2, 0, max_x)
    y1, y2 = np.clip(y1, 0, max_y), np.clip(y2, 0, max_y)
    small = (x2 - x1 <= np.float32(roi_min_size)) | (y2 - y1 <= np.float32(roi_min_size))
    fg = np.where(small, np.float32(-np.inf), scores).astype(np.float32)
    boxes = np.stack([x1, y1, x2, y2], axis=-1).astype(np.float32)
    return boxes.reshape(n, -1, 4), fg.reshape(n, -1)


def pixel_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one x1,y1,x2,y2 box with each of ``others``, +1 on sides, in float32 (nmsLayer.cu l.38-49)."""
    one = np.float32(1.0)
    left, right = np.maximum(box[0], others[:, 0]), np.minimum(box[2], others[:, 2])
    top, bottom = np.maximum(box[1], others[:, 1]), np.minimum(box[3], others[:, 3])
    inter = np.maximum(right - left + one, 0) * np.maximum(bottom - top + one, 0)
    area_a = (box[2] - box[0] + one) * (box[3] - box[1] + one)
    area_b = (others[:, 2] - others[:, 0] + one) * (others[:, 3] - others[:, 1] + one)
    return (inter / (area_a + area_b - inter)).astype(np.float32)


def greedy_nms(boxes: np.ndarray, iou_threshold: float, keep_max: int) -> list[int]:
    """Indices kept by greedy NMS over ``boxes`` in their given (score) order."""
    alive = np.ones(len(boxes), dtype=bool)
    kept: list[int] = []
    threshold = np.float32(iou_threshold)
    for i in range(len(boxes)):
        if len(kept) == keep_max:
            break
        if not alive[i]:
            continue
        kept.append(i)
        later = slice(i + 1, None)
        alive[later] &= ~(pixel_iou(boxes[i], boxes[later]) > threshold)
    return kept


def proposal(scores: np.ndarray, deltas: np.ndarray, **attrs: Any) -> tuple[np.ndarray]:
    """The plugin's output (N, post_nms_top_n, 4, 1): kept boxes as normalised y1, x1, y2, x2."""
    boxes, fg = decode(
        scores, deltas, int(attrs["input_height"]), int(attrs["input_width"]), int(attrs["rpn_stride"]),
        float(attrs["roi_min_size"]), list(attrs["anchor_sizes"]), list(attrs["anchor_ratios"]),
    )
    post, pre = int(attrs["post_nms_top_n"]), int(attrs["pre_nms_top_n"])
    out = np.zeros((boxes.shape[0], post, 4), dtype=np.float32)
    for image in range(boxes.shape[0]):
        order = np.argsort(-fg[image], kind="stable")[: min(pre, fg.shape[1])]
        kept = order[greedy_nms(boxes[image, order], float(attrs["nms_iou_threshold"]), post)]
        out[image, : len(kept)] = boxes[image, kept]
    scale = np.array(
        [attrs["input_height"] - 1.0, attrs["input_width"] - 1.0] * 2, dtype=np.float32
    )
    normalised = out[:, :, [1, 0, 3, 2]] / scale  # y1, x1, y2, x2 over (H-1, W-1)
    return (normalised.astype(np.float32)[..., None],)


IMPLEMENTATIONS = [
    Implementation(op, f"TrtDeploy{op}", ("float32", "float32"), ("float32",), proposal, source=SOURCE)
    for op in ("ProposalDynamic", "Proposal")
]
