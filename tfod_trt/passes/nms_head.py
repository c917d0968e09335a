"""Append the chosen NMS head (trtdeploy.nms) to the decoded boxes and class scores, then
clip the kept boxes to the image.

TFOD clips to the image window AFTER its NMS (IoU is computed on unclipped boxes), so the
head gets unclipped boxes and its box output is clipped. BatchedNMS clips its own outputs
(clipBoxes); ``none`` leaves clipping to whoever clusters the raw boxes.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.errors import GraphError
from trtdeploy.graph_passes import PassContext, add_node, const
from trtdeploy.nms import add_nms_head


def nms_head(graph: gs.Graph, ctx: PassContext) -> None:
    outputs = {t.name: t for t in graph.outputs}
    if set(outputs) != {"boxes", "scores"}:
        raise GraphError(f"{ctx.family}: nms_head expects outputs 'boxes' and 'scores', found {sorted(outputs)}")
    spec = add_nms_head(
        graph,
        outputs["boxes"],
        outputs["scores"],
        kind=ctx.facts["nms"],
        params=ctx.facts["nms_params"],
        layout=ctx.facts["output_layout"],
        input_hw=ctx.facts["input_hw"],
    )
    ctx.facts["output_spec"] = spec
    if spec.layout in ("tfod", "deepstream"):
        height, width = ctx.facts["input_hw"]
        upper = [1.0] * 4 if spec.box_units == "normalized" else [width, height, width, height]
        _clip_output(graph, spec.names[1], np.asarray(upper, np.float32))


def _clip_output(graph: gs.Graph, name: str, upper: np.ndarray) -> None:
    out = next(t for t in graph.outputs if t.name == name)
    producer = out.inputs[0]
    inner = gs.Variable(f"{name}_unclipped", dtype=out.dtype, shape=out.shape)
    producer.outputs = [inner if t is out else t for t in producer.outputs]
    (low,) = add_node(graph, "Max", [inner, const("clip/zero", np.float32(0.0))], "clip/low")
    node_outputs = [out]
    graph.nodes.append(gs.Node("Min", "clip/high", inputs=[low, const("clip/upper", upper)], outputs=node_outputs))
