"""trtdeploy: trained detectors to TensorRT engines and DeepStream configs.

Importing this package never imports TensorFlow or TensorRT; they load inside the
functions that need them.
"""

from trtdeploy.errors import TrtDeployError

__version__ = "0.1.0"

__all__ = ["TrtDeployError", "__version__"]
