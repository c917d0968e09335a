"""nvinfer's thresholds, clustering and mapping back to the frame, on hand-made boxes.

Expectations from hiennguyen9874/deepstream-sources branch 6.3:
sources/libs/nvdsinfer/nvdsinfer_context_impl_output_parsing.cpp (preClusteringThreshold
l.155-169, filterTopKOutputs l.175-187, nonMaximumSuppression l.189-233, NMS clustering
l.236-297, unclustered l.451-482), nvdsinfer_context_impl.cpp l.1021-1030 (cluster-mode 0 without
OpenCV) and sources/gst-plugins/gst-nvinfer/gstnvinfer_meta_utils.cpp l.53-118 (mapping, filters).
NVIDIA/DeepStream branch DeepStream-9.0 has the same code (output_parsing.cpp l.185-530,
nvdsinfer_context_impl.cpp l.1257-1267, gstnvinfer_meta_utils.cpp l.74-140); 6.0-6.2 map back
differently (test_to_frame_per_deepstream_release).
"""

from __future__ import annotations

import numpy as np
import pytest

from trtdeploy.deepstream.clustering import (
    DBSCAN,
    GROUP_RECTANGLES,
    NMS,
    NONE,
    ClassParams,
    NvObject,
    cluster,
    iou,
    pre_cluster_filter,
    to_frame,
)
from trtdeploy.deepstream.nvinfer_preprocess import scale_geometry
from trtdeploy.errors import UnsupportedModelError

A = NvObject(0, 0, 0, 10, 10, 0.9)
HALF = NvObject(0, 0, 0, 10, 5, 0.8)  # inside A, half its area: IoU = 50 / 100 = 0.5


def test_mask_sizes_follow_the_mask_rows_and_columns() -> None:
    # NvDsInferInstanceMaskInfo (DeepStream-9.0 includes/nvdsinfer.h L181-L207): the mrcnn parser sets
    # mask_width = d[3], mask_height = d[2] of the mask it copies (nvdsinfer_custombboxparser.cpp L699-L702).
    obj = NvObject(0, 0, 0, 1, 1, 0.5, np.zeros((2, 3), np.float32))
    assert (obj.mask_width, obj.mask_height) == (3, 2)
    assert (A.mask_width, A.mask_height) == (0, 0)
    assert obj == NvObject(0, 0, 0, 1, 1, 0.5)  # the mask is no part of equality, as in the dry run's comparisons


def test_iou_has_no_plus_one() -> None:
    assert iou(A, HALF) == 0.5
    assert iou(A, NvObject(0, 10, 0, 10, 10, 0.5)) == 0.0  # touching edges


def test_pre_cluster_filter() -> None:
    params = [ClassParams(pre_cluster_threshold=0.5)] * 2
    objs = [NvObject(0, 0, 0, 1, 1, 0.5), NvObject(0, 0, 0, 1, 1, 0.49), NvObject(2, 0, 0, 1, 1, 0.99),
            NvObject(1, 0, 0, 1, 1, 0.7)]
    # equal to the threshold is kept ('<' drops), class 2 >= num-detected-classes 2 is dropped
    assert pre_cluster_filter(objs, params) == [objs[0], objs[3]]


def test_nms_keeps_iou_equal_to_threshold() -> None:
    keep = [ClassParams(nms_iou_threshold=0.5)]
    assert cluster([HALF, A], NMS, keep) == [A, HALF]  # keep = overlap <= threshold; sorted by confidence
    suppress = [ClassParams(nms_iou_threshold=0.49)]
    assert cluster([HALF, A], NMS, suppress) == [A]


def test_post_cluster_threshold_is_strict_in_nms_and_topk_follows() -> None:
    far = NvObject(0, 100, 100, 10, 10, 0.3)
    params = [ClassParams(post_cluster_threshold=0.3, topk=1, nms_iou_threshold=0.6)]
    # 'far' has confidence == post threshold: dropped ('>' keeps); then topk 1 keeps the best
    assert cluster([far, HALF, A], NMS, params) == [A]


def test_output_grouped_by_class() -> None:
    b = NvObject(1, 50, 50, 5, 5, 0.99)
    out = cluster([b, A], NMS, [ClassParams(), ClassParams()])
    assert [o.class_id for o in out] == [0, 1]


def test_cluster_mode_none_keeps_overlaps_and_applies_topk() -> None:
    c = NvObject(0, 1, 1, 10, 10, 0.95)
    assert cluster([A, HALF, c], NONE, [ClassParams()]) == [A, HALF, c]
    assert cluster([A, HALF, c], NONE, [ClassParams(topk=2)]) == [c, A]


def test_group_rectangles_becomes_nms_topk20_iou05() -> None:
    # nms-iou-threshold 0.1 would suppress HALF; the OpenCV-less build forces 0.5 (keeps it)
    assert cluster([A, HALF], GROUP_RECTANGLES, [ClassParams(nms_iou_threshold=0.1)]) == [A, HALF]
    many = [NvObject(0, 20 * i, 0, 10, 10, 0.5 + i / 100) for i in range(25)]
    assert len(cluster(many, GROUP_RECTANGLES, [ClassParams()])) == 20


def test_dbscan_without_min_boxes_filters_only_and_with_min_boxes_is_refused() -> None:
    low = NvObject(0, 30, 30, 5, 5, 0.1)
    assert cluster([A, HALF, low], DBSCAN, [ClassParams(post_cluster_threshold=0.1)]) == [A, HALF, low]
    with pytest.raises(UnsupportedModelError, match="DBSCAN"):
        cluster([A], DBSCAN, [ClassParams(min_boxes=3)])


def test_to_frame_scales_and_clamps_without_shrinking() -> None:
    g = scale_geometry(600, 400, 300, 200)  # ratios 0.5 both ways
    obj = NvObject(0, -10, 20, 50, 40, 0.9)
    (out,) = to_frame([obj], g, [ClassParams()])
    # left = -10/0.5 = -20 -> clamped to 0, width stays 50/0.5 = 100 (meta_utils l.60-88)
    assert (out.left, out.top, out.width, out.height) == (0.0, 40.0, 100.0, 80.0)


def test_to_frame_drops_boxes_past_the_bottom_and_small_ones() -> None:
    g = scale_geometry(600, 400, 300, 200)
    past = NvObject(0, 0, 150, 10, 51, 0.9)  # bottom 201 net px -> 402 > 400: dropped, not clipped
    small = NvObject(0, 0, 0, 4, 50, 0.9)  # width 8 px < detected-min-w 10
    edge = NvObject(0, 0, 150, 10, 50, 0.9)  # bottom exactly 400: kept
    params = [ClassParams(detected_min_w=10)]
    assert to_frame([past, small, edge], g, params) == [NvObject(0, 0.0, 300.0, 20.0, 100.0, 0.9)]
    # with crop-objects-to-roi-boundary the box is cut at the frame bottom instead (l.103-111)
    (cut,) = to_frame([past], g, params, crop_objects_to_roi_boundary=True)
    assert cut.top == 300.0 and cut.height == 100.0


def test_to_frame_undoes_symmetric_padding_and_filters_classes() -> None:
    g = scale_geometry(640, 480, 300, 300, maintain_aspect_ratio=True, symmetric_padding=True)  # 300x225 at top 37
    obj = NvObject(1, 30, 37 + 45, 60, 90, 0.8)
    params = [ClassParams(), ClassParams()]
    (out,) = to_frame([obj], g, params)
    ratio = 300 / 640
    assert out.left == pytest.approx(30 / ratio) and out.top == pytest.approx(45 / ratio)
    assert out.width == pytest.approx(60 / ratio) and out.height == pytest.approx(90 / ratio)
    assert to_frame([obj], g, params, filter_out_class_ids=[1]) == []


def test_to_frame_per_deepstream_release() -> None:
    # hiennguyen9874/deepstream-sources gstnvinfer_meta_utils.cpp: 6.1 l.60-82 (no clamp, no crop
    # key), 6.2 l.97-117 (clamp only when cropping), 6.3 l.85-117; NVIDIA/DeepStream DeepStream-9.0
    # l.108-140 (= 6.3). Frame 600x400 from a 300x200 network: ratios 0.5.
    g = scale_geometry(600, 400, 300, 200)
    params = [ClassParams()]
    above = NvObject(0, 10, -5, 20, 20, 0.9)  # top -10 in the frame
    left_out = NvObject(0, -5, 10, 20, 20, 0.9)  # left -10 in the frame
    below = NvObject(0, 10, 150, 20, 60, 0.9)  # top 300, bottom 420 > 400

    def boxes(objs: list[NvObject], release: str, crop: bool = False) -> list[tuple[float, ...]]:
        return [(o.left, o.top, o.width, o.height)
                for o in to_frame(objs, g, params, crop_objects_to_roi_boundary=crop, release=release)]

    # 6.1: the negative top fails the roi-top-offset rule (0), a negative left is kept as it is,
    # and crop-objects-to-roi-boundary is not read: the box past the bottom is dropped all the same
    assert boxes([above, left_out, below], "6.1", crop=True) == [(-10.0, 20.0, 40.0, 40.0)]
    # 6.2 without the key: the same as 6.1
    assert boxes([above, left_out, below], "6.2") == [(-10.0, 20.0, 40.0, 40.0)]
    # 6.2 with it: top/left clamped to 0 (sizes kept), the bottom cut at 400 (height 400 - 300)
    cropped = [(20.0, 0.0, 40.0, 40.0), (0.0, 20.0, 40.0, 40.0), (20.0, 300.0, 40.0, 100.0)]
    assert boxes([above, left_out, below], "6.2", crop=True) == cropped
    # 6.3 and 9.0 clamp top/left always: without the key only the box past the bottom goes
    for release in ("6.3", "9.0"):
        assert boxes([above, left_out, below], release) == cropped[:2]
        assert boxes([above, left_out, below], release, crop=True) == cropped
    with pytest.raises(UnsupportedModelError, match="DeepStream 7.1"):
        to_frame([above], g, params, release="7.1")
