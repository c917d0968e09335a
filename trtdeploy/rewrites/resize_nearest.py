"""ResizeNearest_TRT rewritten into ONNX Resize.

The plugin (``trtdeploy.plugin_refs.resize_nearest``: release/10.16 resizeNearestPlugin.cpp
l.109-127, maskRCNNKernels.cu l.2911-2930) reads input pixel int(o / scale) for output pixel o
on the last two axes, output size int(d * scale). ONNX Resize with ``scales``, mode nearest,
coordinate_transformation_mode asymmetric (x_in = x_out / scale) and nearest_mode floor is the
same rule with the same output size (floor(d * scale)).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.errors import UnsupportedModelError
from trtdeploy.rewrites import Rewrite
from trtdeploy.rewrites._nms_core import Ops


def _apply(graph: gs.Graph, node: gs.Node) -> None:
    scale = float(node.attrs.get("scale", 0.0))
    if scale <= 0:
        raise UnsupportedModelError(f"ResizeNearest_TRT node {node.name!r}: scale {scale} must be > 0")
    x = node.inputs[0]
    rank = len(x.shape) if x.shape is not None else 4
    op = Ops(graph, f"rewrite/{node.name or node.op}")
    scales = op.const([1.0] * (rank - 2) + [scale, scale], np.float32, "scales")
    out = node.outputs[0]
    node.outputs.clear()
    node.inputs.clear()
    op.into(
        "Resize",
        [x, op.const(np.zeros(0), np.float32, "roi"), scales],  # an empty roi (required below opset 13)
        out,
        "resize",
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    out.dtype = np.float32


REWRITES = [
    Rewrite(
        "ResizeNearest_TRT",
        _apply,
        11,
        "none for scales whose quotient o / scale is exact in float32 (2.0, the value TAO exports); otherwise "
        "the backend's Resize may compute the source index in another precision than the plugin's float32",
        "NVIDIA/TensorRT release/10.16 plugin/resizeNearestPlugin/resizeNearestPlugin.cpp l.109-127",
    )
]
