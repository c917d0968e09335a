"""NMS heads for detector graphs and CPU references of TensorRT's NMS plugins.

``add_nms_head`` appends a head (efficient / batched / onnx / none) with a fixed output
contract; ``make_session`` runs any resulting graph in ONNX Runtime on a CPU, plugin nodes
included. Importing this package does not import ONNX Runtime or TensorRT.
"""

from trtdeploy.nms.heads import KIND_LAYOUTS, NMS_KINDS, add_nms_head
from trtdeploy.nms.ort_session import make_session

__all__ = ["KIND_LAYOUTS", "NMS_KINDS", "add_nms_head", "make_session"]
