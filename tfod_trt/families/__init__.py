"""The TFOD model families, registered with ``trtdeploy.families`` on import (no TensorFlow)."""

from tfod_trt.families.ssd import SSD

__all__ = ["SSD"]
