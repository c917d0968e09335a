"""BatchTilePlugin_TRT rewritten into ONNX Expand.

The plugin (``trtdeploy.plugin_refs.batch_tile``: release/10.16 batchTilePlugin.cpp l.60-168)
copies input 1, [1, d1, d2, d3], once per image of input 0's batch: Expand of input 1 to
[batch of input 0, d1, d2, d3] gives the same tensor, bit for bit.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.rewrites import Rewrite
from trtdeploy.rewrites._nms_core import Ops


def _apply(graph: gs.Graph, node: gs.Node) -> None:
    source, tile = node.inputs[0], node.inputs[1]
    op = Ops(graph, f"rewrite/{node.name or node.op}")
    batch = op("Slice", [op("Shape", [source]), *(op.const([v], np.int64, "s") for v in (0, 1, 0))])
    rest = op("Slice", [op("Shape", [tile]), *(op.const([v], np.int64, "s") for v in (1, 4, 0))])
    shape = op("Concat", [batch, rest], axis=0)
    out = node.outputs[0]
    node.outputs.clear()
    node.inputs.clear()
    op.into("Expand", [tile, shape], out, "expand")
    out.dtype = np.float32


REWRITES = [
    Rewrite(
        "BatchTilePlugin_TRT",
        _apply,
        11,
        "none (a copy either way)",
        "NVIDIA/TensorRT release/10.16 plugin/batchTilePlugin/batchTilePlugin.cpp l.60-168",
    )
]
