"""What nvinfer does with a detector parser's objects: thresholds, clustering, mapping to the frame.

From the DeepStream sources: the community mirror hiennguyen9874/deepstream-sources, branch 6.3
(line numbers below), and NVIDIA's own NVIDIA/DeepStream, branch DeepStream-9.0 ("9.0 l." below),
where every rule here is the same code (compared token by token):

* per-class parameters and their defaults: gstnvinfer_property_parser.h l.20-27
  (pre-cluster-threshold 0.2, post-cluster-threshold 0.0, nms-iou-threshold 0.3, topk -1; 9.0
  l.26-33);
  ``[class-attrs-all]`` is applied to every class, then ``[class-attrs-<id>]`` groups override
  (gstnvinfer_property_parser.cpp l.1171-1249; 9.0 l.1349-1433); detected-min/max-w/h and roi
  offsets default to 0 (l.1180; 9.0 l.1357).
* nvdsinfer_context_impl_output_parsing.cpp (``DetectPostprocessor``; 9.0: preClusteringThreshold
  l.185-195, filterTopKOutputs l.201-211, nonMaximumSuppression l.214-265, NMS l.268-331, DBSCAN
  l.394-455, hybrid l.461-489, unclustered l.495-530, fillDetectionOutput l.717-796):
  ``preClusteringThreshold`` l.155-169 drops class ids >= num-detected-classes and confidences
  below the class's pre-cluster-threshold; ``clusterAndFillDetectionOutputNMS`` l.236-297 runs a
  per-class greedy NMS (stable sort by confidence, keep while IoU <= nms-iou-threshold, IoU on
  left/top/width/height without +1, l.189-233), keeps confidences STRICTLY above
  post-cluster-threshold, then topk (l.175-187, negative = all); ``fillUnclusteredOutput``
  l.451-482 (cluster-mode 4) groups by class and applies topk only; DBSCAN (l.356-413) runs only
  when minBoxes > 0, otherwise it only filters confidence < post-cluster-threshold and topk; the
  hybrid mode (l.419-445) is DBSCAN then NMS. Objects come out grouped by class id, ascending.
* cluster-mode 0 (OpenCV groupRectangles): the SDK builds libnvds_infer without OpenCV
  (sources/libs/nvdsinfer/Makefile l.16 ``WITH_OPENCV?=0``; 9.0 src/utils/nvdsinfer/Makefile l.23),
  and then nvdsinfer_context_impl.cpp l.1021-1030 (9.0 l.1257-1267) switches a detector to NMS with
  topk 20 and nms-iou-threshold 0.5 for every class.
* gstnvinfer_meta_utils.cpp ``attach_metadata_detector`` l.53-118 (6.3; 9.0 l.74-140, the same for
  full frames: 9.0 only adds a rotation angle and changes the nvdspreprocess ROI clipping, which the
  dry run does not model): boxes are mapped back with
  ``(left - offset_left) / ratio_x`` (float arithmetic, ratios double), top/left clamped at 0 (the
  width/height are NOT reduced), then filter-out-class-ids, detected-min-w/h (``<`` drops),
  detected-max-w/h (when > 0, ``>`` drops) and, without crop-objects-to-roi-boundary, a box whose
  top is above roi-top-offset or whose bottom goes past ``frame height - roi-bottom-offset`` is
  DROPPED (not clipped). The frame is the input surface (gstnvinfer.cpp l.1546; 9.0 l.1796); ratios
  are gdouble, offsets and roi_left/top guint (gstnvinfer_impl.h l.57-68; 9.0 l.60-71), so e.g. a box touching the
  bottom of an 872-row frame can come out 0.00006 px past it in float32 and be dropped.
* Earlier releases map back differently (``MAPPING``, chosen with ``release``): 6.2 clamps top/left
  at 0 only inside the crop-objects-to-roi-boundary branch (6.2 gstnvinfer_meta_utils.cpp l.97-101),
  so without the key a box with a negative top is dropped by the roi-top-offset rule and a negative
  left is kept; 6.0, 6.0.1, 6.1 and 6.1.1 have no such key (first read in 6.2,
  gstnvinfer_property_parser.cpp l.475; 6.1 only warns "Unknown or legacy key", l.476) and never
  clamp (6.1 gstnvinfer_meta_utils.cpp l.60-82). 7.x and 8.0: no public source; 6.3 and 9.0 agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from trtdeploy.deepstream.nvinfer_preprocess import ScaleGeometry
from trtdeploy.errors import UnsupportedModelError

GROUP_RECTANGLES, DBSCAN, NMS, DBSCAN_NMS, NONE = range(5)  # nvdsinfer_context.h l.222-228 (9.0 l.237-241)


@dataclass(frozen=True)
class FrameMapping:
    """How one release's attach_metadata_detector treats boxes reaching past the frame."""

    clamp_top_left: bool  # top/left set to 0 before the filters (6.3, 9.0)
    reads_crop_key: bool  # crop-objects-to-roi-boundary exists (6.2 on)


# DeepStream releases whose gst-nvinfer source was read, and their mapping back to the frame
# (module docstring). 6.2 clamps top/left too, but only when it crops.
MAPPING = {
    "6.0": FrameMapping(False, False),
    "6.0.1": FrameMapping(False, False),
    "6.1": FrameMapping(False, False),
    "6.1.1": FrameMapping(False, False),
    "6.2": FrameMapping(False, True),
    "6.3": FrameMapping(True, True),
    "9.0": FrameMapping(True, True),
}
DEFAULT_RELEASE = "9.0"
CLUSTER_MODE_NAMES = {GROUP_RECTANGLES: "group rectangles", DBSCAN: "DBSCAN", NMS: "NMS",
                      DBSCAN_NMS: "DBSCAN + NMS", NONE: "none"}


@dataclass(frozen=True)
class ClassParams:
    """One class's [class-attrs-*] values, defaulted as nvinfer does."""

    pre_cluster_threshold: float = 0.2
    post_cluster_threshold: float = 0.0
    nms_iou_threshold: float = 0.3
    topk: int = -1
    min_boxes: int = 0  # DBSCAN's minBoxes: DBSCAN runs only when > 0
    detected_min_w: int = 0
    detected_min_h: int = 0
    detected_max_w: int = 0
    detected_max_h: int = 0
    roi_top_offset: int = 0
    roi_bottom_offset: int = 0


@dataclass(frozen=True)
class NvObject:
    """One detected object as DeepStream's C structs hold it: a parser's objectList entry and what
    nvinfer keeps after clustering. NVIDIA/DeepStream@DeepStream-9.0:includes/nvdsinfer.h
    L150-L171 ``NvDsInferObjectDetectionInfo`` (classId, left, top, width, height,
    detectionConfidence; 9.0's rotation_angle for oriented boxes is not modelled) and L181-L207
    ``NvDsInferInstanceMaskInfo`` (the same fields plus mask, mask_width, mask_height,
    mask_size). The box is in network pixels, or frame pixels after :func:`to_frame`."""

    class_id: int  # the C unsigned int classId: a parser's class id -1 shows as 4294967295
    left: float
    top: float
    width: float
    height: float
    confidence: float
    # instance segmentation: the parser's float mask [mask_height, mask_width], copied as it is
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    # The parsers set mask_width/mask_height from the same dims they copy the mask block with
    # (DeepStream-9.0 src/utils/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp L699-L702),
    # so the array's shape is the one source of both.
    @property
    def mask_width(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[1])

    @property
    def mask_height(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])


def pre_cluster_filter(objects: Iterable[NvObject], params: Sequence[ClassParams]) -> list[NvObject]:
    """Drop class ids outside [0, num-detected-classes) and confidences below pre-cluster-threshold."""
    n = len(params)
    return [o for o in objects if 0 <= o.class_id < n and not o.confidence < params[o.class_id].pre_cluster_threshold]


def iou(a: NvObject, b: NvObject) -> float:
    """nvinfer's computeIoU (float, no +1 on widths, 0 when the union is 0)."""
    f = np.float32

    def overlap(a_min: np.float32, a_max: np.float32, b_min: np.float32, b_max: np.float32) -> np.float32:
        if a_min > b_min:
            a_min, b_min = b_min, a_min
            a_max, b_max = b_max, a_max
        return f(0) if a_max < b_min else f(min(a_max, b_max)) - f(b_min)

    ox = overlap(f(a.left), f(a.left) + f(a.width), f(b.left), f(b.left) + f(b.width))
    oy = overlap(f(a.top), f(a.top) + f(a.height), f(b.top), f(b.top) + f(b.height))
    inter = f(ox * oy)
    union = f(a.width) * f(a.height) + f(b.width) * f(b.height) - inter
    return 0.0 if union == 0 else float(inter / union)


def _by_class(objects: Iterable[NvObject], num_classes: int) -> list[list[NvObject]]:
    lists: list[list[NvObject]] = [[] for _ in range(num_classes)]
    for o in objects:
        lists[o.class_id].append(o)
    return lists


def _top_k(objects: list[NvObject], k: int) -> list[NvObject]:
    if k < 0:
        return objects
    return sorted(objects, key=lambda o: -o.confidence)[:k]  # sorted() is stable, as std::stable_sort


def _nms(objects: list[NvObject], iou_threshold: float) -> list[NvObject]:
    order = sorted(objects, key=lambda o: -o.confidence)
    kept: list[NvObject] = []
    for o in order:
        if all(iou(o, k) <= iou_threshold for k in kept):
            kept.append(o)
    return kept


def effective_params(mode: int, params: Sequence[ClassParams]) -> tuple[int, list[ClassParams]]:
    """cluster-mode 0 becomes NMS with topk 20 and IoU 0.5 in the SDK's OpenCV-less build."""
    if mode == GROUP_RECTANGLES:
        return NMS, [replace(p, topk=20, nms_iou_threshold=0.5) for p in params]
    return mode, list(params)


def cluster(objects: Iterable[NvObject], mode: int, params: Sequence[ClassParams]) -> list[NvObject]:
    """nvinfer's clustering of pre-cluster-filtered objects, grouped by class id ascending."""
    mode, params = effective_params(mode, params)
    if mode not in CLUSTER_MODE_NAMES:
        raise UnsupportedModelError(f"cluster-mode={mode} is not one of 0-4")
    lists = _by_class(objects, len(params))
    out: list[NvObject] = []
    for c, (found, p) in enumerate(zip(lists, params, strict=True)):
        if mode in (DBSCAN, DBSCAN_NMS) and p.min_boxes > 0:
            raise UnsupportedModelError(
                f"cluster-mode={mode} ({CLUSTER_MODE_NAMES[mode]}) with minBoxes={p.min_boxes} for class {c}: "
                "the dry run does not emulate DBSCAN; use cluster-mode 2 (NMS) or 4 (none)"
            )
        if mode == NONE:
            out += _top_k(found, p.topk)
        elif mode == DBSCAN:  # DBSCAN skipped (minBoxes 0): confidence < post threshold dropped, topk
            out += _top_k([o for o in found if not o.confidence < p.post_cluster_threshold], p.topk)
        else:  # NMS, or hybrid whose DBSCAN step is skipped
            kept = [o for o in _nms(found, p.nms_iou_threshold) if o.confidence > p.post_cluster_threshold]
            out += _top_k(kept, p.topk)
    return out


def to_frame(
    objects: Iterable[NvObject],
    geometry: ScaleGeometry,
    params: Sequence[ClassParams],
    filter_out_class_ids: Iterable[int] = (),
    crop_objects_to_roi_boundary: bool = False,
    release: str = DEFAULT_RELEASE,
) -> list[NvObject]:
    """Map network-pixel boxes to the frame and apply the detection filters, in float32 as
    attach_metadata_detector does (NvDsInferObject's fields are float, the ratios double), the
    way DeepStream ``release`` does it (a key of MAPPING)."""
    if release not in MAPPING:
        raise UnsupportedModelError(f"DeepStream {release}: the dry run knows {', '.join(MAPPING)}")
    rules = MAPPING[release]
    crop = crop_objects_to_roi_boundary and rules.reads_crop_key
    f = np.float32
    g = geometry
    skip = set(filter_out_class_ids)
    frame_w = f(g.frame_width)
    out = []
    for o in objects:
        p = params[o.class_id]
        left = f(float(f(o.left) - f(g.offset_left)) / g.ratio_x)
        top = f(float(f(o.top) - f(g.offset_top)) / g.ratio_y)
        width = f(float(f(o.width)) / g.ratio_x)
        height = f(float(f(o.height)) / g.ratio_y)
        if rules.clamp_top_left:
            top, left = max(top, f(0)), max(left, f(0))
        if o.class_id in skip:
            continue
        if width < p.detected_min_w or height < p.detected_min_h:
            continue
        if (p.detected_max_w > 0 and width > p.detected_max_w) or (p.detected_max_h > 0 and height > p.detected_max_h):
            continue
        bottom_limit = f(g.frame_height - p.roi_bottom_offset)
        if crop:
            top, left = max(top, f(0)), max(left, f(0))  # 6.2 clamps here only; a no-op later
            top = max(top, f(p.roi_top_offset))
            if left + width >= frame_w:
                width = frame_w - left
            if top + height > bottom_limit:
                height = bottom_limit - top
        elif top < p.roi_top_offset or top + height > bottom_limit:
            continue
        out.append(replace(o, left=float(left), top=float(top), width=float(width), height=float(height)))
    return out
