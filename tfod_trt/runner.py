"""Run a TFOD saved model on preprocessed images and return detections in our convention."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trtdeploy.detections import Detections
from trtdeploy.errors import InputError
from trtdeploy.lazy import require

# TFOD's detection_classes are label-map ids: column index + 1 (label_id_offset).
LABEL_ID_OFFSET = 1


class TfodRunner:
    """The saved model's serving signature, one image at a time (the export's batch may be 1)."""

    def __init__(self, saved_model: Path) -> None:
        tf = require("tensorflow")
        self._tf = tf
        try:
            self._model = tf.saved_model.load(str(saved_model))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load saved model {saved_model}: {exc}") from exc
        self._fn = self._model.signatures["serving_default"]
        self._input = next(iter(self._fn.structured_input_signature[1]))

    def detections(self, images: np.ndarray) -> list[Detections]:
        """images: float32 [N,H,W,3] RGB 0-255 at the model's input size."""
        result = []
        for image in images:
            out = self._fn(**{self._input: self._tf.constant(image[None].astype(np.float32))})
            n = int(out["num_detections"].numpy()[0])
            result.append(
                Detections(
                    out["detection_boxes"].numpy()[0, :n].astype(np.float32),
                    out["detection_scores"].numpy()[0, :n].astype(np.float32),
                    np.rint(out["detection_classes"].numpy()[0, :n]).astype(np.int64) - LABEL_ID_OFFSET,
                )
            )
        return result
