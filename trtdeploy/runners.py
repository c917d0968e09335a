"""Runners with one call shape: float RGB 0-255 images [N,H,W,3] in, detections out.

The ONNX Runtime runner applies the deploy card's preprocessing and layout, runs the whole
graph (plugin NMS nodes through their CPU reference implementations) and reads the outputs
through the card's output contract.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from trtdeploy.deploy_card import DeployCard
from trtdeploy.detections import Detections, from_nms_outputs
from trtdeploy.errors import InputError


def to_input_tensor(images: np.ndarray, card: DeployCard) -> np.ndarray:
    """RGB 0-255 [N,H,W,3] -> the model input: colour order, scale*(x - offsets), layout."""
    pre = card.preprocess
    x = images.astype(np.float32)
    if pre.color_order == "BGR":
        x = x[..., ::-1]
    elif pre.color_order == "GRAY":
        raise InputError("grey-input models are not supported by this runner")
    x = np.float32(pre.scale) * (x - np.asarray(pre.offsets, np.float32))
    if card.input.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


class OnnxRuntimeRunner:
    def __init__(self, onnx_path: Path, card: DeployCard) -> None:
        from trtdeploy.nms import make_session

        self.card = card
        self.session = make_session(Path(onnx_path))
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        batch = self.card.input.shape[0]
        if batch != -1 and images.shape[0] != batch:
            raise InputError(f"the ONNX has a static batch of {batch}; got {images.shape[0]} images")
        outputs = self.session.run(None, {self.input_name: to_input_tensor(images, self.card)})
        return dict(zip(self.output_names, outputs, strict=True))

    def detections(self, images: np.ndarray) -> list[Detections]:
        outputs = self.run(images)
        ordered = [outputs[name] for name in self.card.output.names]
        if self.card.output.layout == "raw":
            # No NMS in the graph: apply the EfficientNMS reference with the card's parameters,
            # as a deployment that clusters outside the engine would.
            from trtdeploy.nms.reference import efficient_nms

            nms = self.card.nms
            ordered = list(efficient_nms(ordered[0], ordered[1], score_threshold=nms.score_threshold,
                                         iou_threshold=nms.iou_threshold, max_output_boxes=nms.max_detections))
            ordered[1] = np.clip(ordered[1], 0.0, 1.0)  # raw boxes are unclipped (clip after NMS)
            return from_nms_outputs(ordered, replace(self.card, output=replace(self.card.output, layout="tfod")))
        return from_nms_outputs(ordered, self.card)
