"""EfficientNMS_TRT on a CPU: ``trtdeploy.nms.reference.efficient_nms`` (semantics and
citations there), with and without the optional anchors input."""

from __future__ import annotations

from typing import Any

import numpy as np

from trtdeploy.nms import reference
from trtdeploy.plugin_refs import Implementation


def _efficient(boxes: np.ndarray, scores: np.ndarray, anchors: np.ndarray | None = None, **attrs: Any) -> tuple:
    return reference.efficient_nms(
        boxes,
        scores,
        anchors,
        score_threshold=attrs["score_threshold"],
        iou_threshold=attrs["iou_threshold"],
        max_output_boxes=attrs["max_output_boxes"],
        background_class=attrs["background_class"],
        score_activation=bool(attrs["score_activation"]),
        class_agnostic=bool(attrs["class_agnostic"]),
        box_coding=attrs["box_coding"],
    )


_OUTPUTS = ("int32", "float32", "float32", "int32")
_SOURCE = "NVIDIA/TensorRT release/10.16 plugin/efficientNMSPlugin (see trtdeploy/nms/reference.py)"

IMPLEMENTATIONS = [
    Implementation(
        "EfficientNMS_TRT",
        "TrtDeployEfficientNMS",
        ("float32", "float32"),
        _OUTPUTS,
        _efficient,
        applies=lambda node: len(node.input) == 2,
        source=_SOURCE,
    ),
    Implementation(
        "EfficientNMS_TRT",
        "TrtDeployEfficientNMSAnchors",
        ("float32",) * 3,
        _OUTPUTS,
        _efficient,
        applies=lambda node: len(node.input) == 3,
        source=_SOURCE,
    ),
]
