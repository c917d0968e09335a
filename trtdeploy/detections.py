"""Detections in one convention, read from any output contract, and matched across runtimes.

The common convention: per image, boxes [N,4] normalised y1,x1,y2,x2, scores [N] sorted
descending, classes [N] int 0-based into the deploy card's labels, and for instance-mask models
masks [N,mask_h,mask_w]: the detected class's mask in the box's frame, as probabilities (TFOD's
``detection_masks``), compared after binarising at MASK_THRESHOLD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trtdeploy.deploy_card import DeployCard
from trtdeploy.errors import InputError

# TFOD binarises its instance masks at 0.5: tensorflow/models research/object_detection/
# colab_tutorials/object_detection_tutorial.ipynb, run_inference_for_single_image, after
# utils_ops.reframe_box_masks_to_image_masks: `tf.cast(detection_masks_reframed > 0.5, tf.uint8)`.
MASK_THRESHOLD = 0.5


@dataclass
class Detections:
    boxes: np.ndarray  # [N,4] float32 normalised y1,x1,y2,x2
    scores: np.ndarray  # [N] float32
    classes: np.ndarray  # [N] int64
    masks: np.ndarray | None = None  # [N,mask_h,mask_w] float32 probabilities (instance-mask models)

    def above(self, threshold: float) -> Detections:
        keep = self.scores >= threshold
        masks = self.masks[keep] if self.masks is not None else None
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep], masks)

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def from_nms_outputs(outputs: list[np.ndarray], card: DeployCard) -> list[Detections]:
    """Split a batch of NMS outputs (count, boxes, scores, classes: an output contract whose
    reader is "nms", trtdeploy.contracts) into Detections."""
    if not card.output.output_contract.has_nms:
        raise InputError(
            f"output layout {card.output.layout!r} ({card.output.output_contract.summary}) has no NMS outputs to read"
        )
    return _split(outputs, card)


def from_raw_outputs(outputs: list[np.ndarray], card: DeployCard) -> list[Detections]:
    """Boxes [B,A,4] or per class [B,A,C,4] and scores [B,A,C] without NMS -> Detections, through
    the EfficientNMS reference with the card's NMS parameters, as a deployment that clusters
    outside the engine would. The raw boxes are unclipped: clipped after NMS, as TFOD does."""
    from trtdeploy.nms.reference import efficient_nms

    nms = card.nms
    ordered = list(efficient_nms(outputs[0], outputs[1], score_threshold=nms.score_threshold,
                                 iou_threshold=nms.iou_threshold, max_output_boxes=nms.max_detections))
    ordered[1] = np.clip(ordered[1], 0.0, 1.0)
    return _split(ordered, card)


def _split(outputs: list[np.ndarray], card: DeployCard) -> list[Detections]:
    count, boxes, scores, classes = outputs[:4]
    # a contract with a masks tensor after the four (tfod-masks): [B,K,mask_h,mask_w] probabilities
    masks = outputs[4] if len(outputs) > 4 and card.output.output_contract.has_masks else None
    result = []
    for b in range(boxes.shape[0]):
        n = int(np.asarray(count[b]).reshape(-1)[0])
        result.append(
            Detections(
                to_normalized_yxyx(boxes[b, :n].astype(np.float32), card),
                scores[b, :n].astype(np.float32),
                np.rint(classes[b, :n]).astype(np.int64) - card.output.class_id_base,
                masks[b, :n].astype(np.float32) if masks is not None else None,
            )
        )
    return result


def from_mask_rows(outputs: list[np.ndarray], card: DeployCard) -> list[Detections]:
    """The DeepStream Mask R-CNN shape (contract ``ds/mrcnn``): rows [B,K,6] of pixel
    y1,x1,y2,x2, class, score and per-class mask logits [B,K,C,mask_h,mask_w] -> Detections
    with the detected class's mask as probabilities. Rows with score 0 are padding."""
    rows, logits = (np.asarray(o) for o in outputs[:2])
    result = []
    for b in range(rows.shape[0]):
        keep = np.flatnonzero(rows[b, :, 5] > 0)
        classes = np.rint(rows[b, keep, 4]).astype(np.int64)
        picked = logits[b, keep, np.clip(classes, 0, logits.shape[2] - 1)].astype(np.float64)
        result.append(
            Detections(
                to_normalized_yxyx(rows[b, keep, :4].astype(np.float32), card),
                rows[b, keep, 5].astype(np.float32),
                classes - card.output.class_id_base,
                (1.0 / (1.0 + np.exp(-picked))).astype(np.float32),
            )
        )
    return result


def to_normalized_yxyx(boxes: np.ndarray, card: DeployCard) -> np.ndarray:
    """Boxes in the card's format/units -> normalised y1,x1,y2,x2."""
    out = boxes.astype(np.float32, copy=True)
    if card.output.box_format == "x1y1x2y2":
        out = out[:, [1, 0, 3, 2]]
    elif card.output.box_format != "y1x1y2x2":
        raise InputError(f"cannot read box format {card.output.box_format!r}")
    if card.output.box_units == "pixels":
        h, w = card.input.height, card.input.width
        out = out / np.array([h, w, h, w], np.float32)
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N,4] with every box in b [M,4] (y1,x1,y2,x2)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a = a.astype(np.float64)[:, None, :]
    b = b.astype(np.float64)[None, :, :]
    inter_h = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_w = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_h * inter_w
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), (np.abs(a - b).sum(-1) == 0).astype(np.float64))


@dataclass
class MatchStats:
    reference: int = 0  # detections in the reference above the threshold
    matched: int = 0
    candidate: int = 0  # detections in the candidate above the threshold
    max_score_diff: float = 0.0
    max_box_diff: float = 0.0
    min_iou: float = 1.0
    count_diff: int = 0  # largest |count difference| over images
    mask_pairs: int = 0  # matched detections whose masks were compared (both sides have masks)
    mask_iou_sum: float = 0.0  # sum of their mask IoUs (binarised at MASK_THRESHOLD)
    min_mask_iou: float = 1.0

    @property
    def matched_fraction(self) -> float:
        return self.matched / self.reference if self.reference else 1.0

    @property
    def mean_mask_iou(self) -> float:
        """Mean mask IoU over the matched detections with masks (1.0 when none was compared)."""
        return self.mask_iou_sum / self.mask_pairs if self.mask_pairs else 1.0

    def merge(self, other: MatchStats) -> MatchStats:
        return MatchStats(
            self.reference + other.reference,
            self.matched + other.matched,
            self.candidate + other.candidate,
            max(self.max_score_diff, other.max_score_diff),
            max(self.max_box_diff, other.max_box_diff),
            min(self.min_iou, other.min_iou),
            max(self.count_diff, other.count_diff),
            self.mask_pairs + other.mask_pairs,
            self.mask_iou_sum + other.mask_iou_sum,
            min(self.min_mask_iou, other.min_mask_iou),
        )


def mask_iou(a: np.ndarray, b: np.ndarray, threshold: float = MASK_THRESHOLD) -> float:
    """IoU of two masks of the same box-frame grid after binarising each at ``threshold``
    (value > threshold is on); two empty masks agree (1.0)."""
    if a.shape != b.shape:
        raise InputError(f"masks of shapes {a.shape} and {b.shape} cannot be compared: same mask size needed")
    on_a, on_b = np.asarray(a) > threshold, np.asarray(b) > threshold
    union = int(np.count_nonzero(on_a | on_b))
    return float(np.count_nonzero(on_a & on_b)) / union if union else 1.0


def match(reference: Detections, candidate: Detections, iou_threshold: float) -> MatchStats:
    """Greedy matching in reference score order: each reference detection takes the unmatched
    candidate of the same class with the highest IoU, if that IoU >= iou_threshold. When both
    sides carry masks, each match's mask IoU (binarised at MASK_THRESHOLD) is added up."""
    stats = MatchStats(reference=len(reference), candidate=len(candidate), count_diff=abs(len(reference) - len(candidate)))
    ious = iou_matrix(reference.boxes, candidate.boxes)
    taken = np.zeros(len(candidate), bool)
    for i in np.argsort(-reference.scores, kind="stable"):
        same = (candidate.classes == reference.classes[i]) & ~taken
        if not same.any():
            continue
        row = np.where(same, ious[i], -1.0)
        j = int(np.argmax(row))
        if row[j] < iou_threshold:
            continue
        taken[j] = True
        stats.matched += 1
        if reference.masks is not None and candidate.masks is not None:
            m = mask_iou(reference.masks[i], candidate.masks[j])
            stats.mask_pairs += 1
            stats.mask_iou_sum += m
            stats.min_mask_iou = min(stats.min_mask_iou, m)
        stats.max_score_diff = max(stats.max_score_diff, float(abs(reference.scores[i] - candidate.scores[j])))
        stats.max_box_diff = max(stats.max_box_diff, float(np.abs(reference.boxes[i] - candidate.boxes[j]).max()))
        stats.min_iou = min(stats.min_iou, float(row[j]))
    return stats
