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
from trtdeploy.nms.heads import SELF_CLIPPING_HEADS


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
        ds_parser=ctx.facts.get("ds_parser"),
    )
    ctx.facts["output_spec"] = spec
    # The EfficientNMS-shaped heads leave their boxes unclipped; batched clips itself (clipBoxes),
    # and a contract without NMS leaves clipping to whoever clusters the boxes.
    if spec.output_contract.has_nms and spec.nms not in SELF_CLIPPING_HEADS:
        _clip_output(graph, spec.names[1], clip_upper(spec.box_format, spec.box_units, ctx.facts["input_hw"]))


def clip_upper(box_format: str, box_units: str, input_hw: tuple[int, int]) -> np.ndarray:
    """Upper clip bound per box coordinate: 1 for normalised boxes, else the image extent along
    each coordinate's own axis (y against the height, x against the width)."""
    if box_units == "normalized":
        return np.ones(4, np.float32)
    height, width = input_hw
    extent = {"y": height, "x": width}
    return np.array([extent[box_format[i]] for i in range(0, 8, 2)], np.float32)


def _clip_output(graph: gs.Graph, name: str, upper: np.ndarray) -> None:
    out = next(t for t in graph.outputs if t.name == name)
    producer = out.inputs[0]
    inner = gs.Variable(f"{name}_unclipped", dtype=out.dtype, shape=out.shape)
    producer.outputs = [inner if t is out else t for t in producer.outputs]
    (low,) = add_node(graph, "Max", [inner, const("clip/zero", np.float32(0.0))], "clip/low")
    node_outputs = [out]
    graph.nodes.append(gs.Node("Min", "clip/high", inputs=[low, const("clip/upper", upper)], outputs=node_outputs))
