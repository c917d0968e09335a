"""The TFOD model families, registered with ``trtdeploy.families`` on import (no TensorFlow)."""

# SSD first: registration order is the order find_family asks, so a TFOD export is asked first.
from tfod_trt.families.ssd import SSD  # noqa: I001
from tfod_trt.automl.family import AUTOML
from tfod_trt.families.faster_rcnn import FASTER_RCNN

__all__ = ["AUTOML", "FASTER_RCNN", "SSD"]
