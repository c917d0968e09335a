"""Graph passes for TFOD SSD models, one per file, run in order by trtdeploy.graph_passes."""

from tfod_trt.passes.class_scores import select_class_scores
from tfod_trt.passes.decode_boxes import decode_boxes
from tfod_trt.passes.name_io import name_io
from tfod_trt.passes.nms_head import nms_head
from tfod_trt.passes.stable_names import stable_names

CORE_PASSES = [
    ("stable_names", stable_names),
    ("name_io", name_io),
    ("decode_boxes", decode_boxes),
    ("select_class_scores", select_class_scores),
]
HEAD_PASSES = [("nms_head", nms_head)]

__all__ = [
    "CORE_PASSES",
    "HEAD_PASSES",
    "decode_boxes",
    "name_io",
    "nms_head",
    "select_class_scores",
    "stable_names",
]
