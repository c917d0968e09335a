"""Append the chosen NMS head (trtdeploy.nms) to the decoded boxes and class scores, then
clip the kept boxes to the image.

TFOD clips to the image window AFTER its NMS (IoU is computed on unclipped boxes), so the
head gets unclipped boxes and its box output is clipped. BatchedNMS clips its own outputs
(clipBoxes); ``none`` leaves clipping to whoever clusters the raw boxes.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.deploy_card import OutputSpec
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
        upper = clip_upper(spec.box_format, spec.box_units, ctx.facts["input_hw"])
        window = ctx.facts.get("clip_window")
        if window is not None:
            upper = _window_upper(graph, window, spec, upper / clip_upper(spec.box_format, "pixels", ctx.facts["input_hw"]))
        _clip_output(graph, spec.names[1], upper)


def clip_upper(box_format: str, box_units: str, input_hw: tuple[int, int]) -> np.ndarray:
    """Upper clip bound per box coordinate: 1 for normalised boxes, else the image extent along
    each coordinate's own axis (y against the height, x against the width)."""
    if box_units == "normalized":
        return np.ones(4, np.float32)
    height, width = input_hw
    extent = {"y": height, "x": width}
    return np.array([extent[box_format[i]] for i in range(0, 8, 2)], np.float32)


def _window_upper(graph: gs.Graph, window_name: str, spec: OutputSpec, per_pixel: np.ndarray) -> gs.Variable:
    """The clip bound of a letterboxed Faster R-CNN: its clip window ``[B,1,4]`` (h, w, h, w
    pixels of the true image area, tfod_trt.two_stage.passes.proposals) in the box order and
    units of the outputs. TFOD clips the second stage's detections to that window after its NMS
    (tensorflow/models research/object_detection, TFOD 2.8.0 core/post_processing.py
    ``multiclass_non_max_suppression``: NMS on the unclipped boxes, then ``_clip_window_prune_boxes``).
    ``per_pixel``: the output unit of one pixel along each coordinate's axis."""
    window = graph.tensors().get(window_name)
    if window is None:
        raise GraphError(f"nms_head: the clip window {window_name!r} is not in the graph")
    axis = [{"y": 0, "x": 1}[spec.box_format[i]] for i in range(0, 8, 2)]  # y bounds from h, x bounds from w
    ordered = add_node(graph, "Gather", [window, const("clip/window_axes", np.array(axis, np.int64))],
                       "clip/window_order", attrs={"axis": 2}, dtypes=[np.float32])[0]
    scale = const("clip/window_scale", per_pixel.astype(np.float32))
    (bound,) = add_node(graph, "Mul", [ordered, scale], "clip/window_upper", dtypes=[np.float32])
    return bound


def _clip_output(graph: gs.Graph, name: str, upper: np.ndarray | gs.Variable) -> None:
    out = next(t for t in graph.outputs if t.name == name)
    producer = out.inputs[0]
    inner = gs.Variable(f"{name}_unclipped", dtype=out.dtype, shape=out.shape)
    producer.outputs = [inner if t is out else t for t in producer.outputs]
    (low,) = add_node(graph, "Max", [inner, const("clip/zero", np.float32(0.0))], "clip/low")
    bound = upper if isinstance(upper, gs.Variable) else const("clip/upper", upper)
    graph.nodes.append(gs.Node("Min", "clip/high", inputs=[low, bound], outputs=[out]))
