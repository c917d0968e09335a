"""BatchedNMS_TRT and BatchedNMSDynamic_TRT on a CPU: ``trtdeploy.nms.reference.batched_nms``
(semantics and citations there). Both creators build the same kernel."""

from __future__ import annotations

from typing import Any

import numpy as np

from trtdeploy.nms import reference
from trtdeploy.plugin_refs import Implementation


def _batched(boxes: np.ndarray, scores: np.ndarray, **attrs: Any) -> tuple:
    return reference.batched_nms(
        boxes,
        scores,
        share_location=bool(attrs["shareLocation"]),
        background_label_id=attrs["backgroundLabelId"],
        num_classes=attrs["numClasses"],
        top_k=attrs["topK"],
        keep_top_k=attrs["keepTopK"],
        score_threshold=attrs["scoreThreshold"],
        iou_threshold=attrs["iouThreshold"],
        is_normalized=bool(attrs["isNormalized"]),
        clip_boxes=bool(attrs["clipBoxes"]),
        score_bits=attrs["scoreBits"],
        caffe_semantics=bool(attrs["caffeSemantics"]),
    )


# nmsed_classes is float (the input type): release/10.16 batchedNMSPlugin.cpp l.567-585.
_OUTPUTS = ("int32", "float32", "float32", "float32")
_SOURCE = "NVIDIA/TensorRT release/10.16 plugin/batchedNMSPlugin (see trtdeploy/nms/reference.py)"

IMPLEMENTATIONS = [
    Implementation("BatchedNMS_TRT", "TrtDeployBatchedNMS", ("float32", "float32"), _OUTPUTS, _batched, source=_SOURCE),
    Implementation(
        "BatchedNMSDynamic_TRT",
        "TrtDeployBatchedNMSDynamic",
        ("float32", "float32"),
        _OUTPUTS,
        _batched,
        source=_SOURCE,
    ),
]
