"""Decode SSD box deltas against the anchors, as TFOD's faster_rcnn_box_coder does.

For deltas (ty, tx, th, tw) divided by the box-coder scales and anchors with centre
(ya, xa) and size (ha, wa): centre = t * size_a + centre_a, size = exp(t) * size_a;
output corners y1,x1,y2,x2 = centre -/+ size/2. Not clipped here: TFOD runs NMS on the
unclipped boxes and clips the kept ones (see the nms_head pass).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.errors import GraphError
from trtdeploy.graph_passes import PassContext, add_node, const

BOXES = "boxes"


def decode_boxes(graph: gs.Graph, ctx: PassContext) -> None:
    encodings = next((t for t in graph.outputs if t.name == "raw_box_encodings"), None)
    if encodings is None:
        raise GraphError(f"{ctx.family}: decode_boxes expects a graph output 'raw_box_encodings'")
    anchors = np.asarray(ctx.facts["anchors"], np.float32)  # [A,4] y1,x1,y2,x2
    if encodings.shape is not None and encodings.shape[1] not in (anchors.shape[0], None) and isinstance(
        encodings.shape[1], int
    ):
        raise GraphError(
            f"{ctx.family}: {encodings.shape[1]} box encodings but {anchors.shape[0]} anchors; "
            "the input size does not match the one the anchors were generated for"
        )
    size_a = anchors[:, 2:] - anchors[:, :2]  # ha, wa
    centre_a = anchors[:, :2] + size_a / 2.0
    scales = np.asarray(ctx.facts["box_coder_scales"], np.float32)

    (scaled,) = add_node(graph, "Div", [encodings, const("decode/scales", scales)], "decode/scaled")
    starts, ends, axes = const("decode/s0", [0]), const("decode/e0", [2]), const("decode/axis", [2])
    (t_centre,) = add_node(graph, "Slice", [scaled, starts, ends, axes], "decode/t_centre")
    (t_size,) = add_node(graph, "Slice", [scaled, ends, const("decode/e1", [4]), axes], "decode/t_size")
    (c_mul,) = add_node(graph, "Mul", [t_centre, const("decode/anchor_size", size_a)], "decode/centre_mul")
    (centre,) = add_node(graph, "Add", [c_mul, const("decode/anchor_centre", centre_a)], "decode/centre")
    (exp,) = add_node(graph, "Exp", [t_size], "decode/exp")
    (size,) = add_node(graph, "Mul", [exp, const("decode/anchor_size2", size_a)], "decode/size")
    (half,) = add_node(graph, "Div", [size, const("decode/two", np.float32(2.0))], "decode/half")
    (low,) = add_node(graph, "Sub", [centre, half], "decode/low")
    (high,) = add_node(graph, "Add", [centre, half], "decode/high")
    (boxes,) = add_node(graph, "Concat", [low, high], BOXES, dtypes=[np.float32], attrs={"axis": 2})
    boxes.shape = [encodings.shape[0], anchors.shape[0], 4]
    graph.outputs = [boxes if t is encodings else t for t in graph.outputs]
