"""Give the converted graph stable tensor names and a named batch dimension."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from trtdeploy.errors import GraphError
from trtdeploy.graph_passes import PassContext

INPUT = "input_tensor"
ENCODINGS = "raw_box_encodings"
SCORES = "raw_box_scores"


def name_io(graph: gs.Graph, ctx: PassContext) -> None:
    if len(graph.inputs) != 1 or len(graph.outputs) != 2:
        raise GraphError(
            f"{ctx.family}: expected one input and two outputs (box encodings, scores) from the cut graph, "
            f"found {[t.name for t in graph.inputs]} -> {[t.name for t in graph.outputs]}"
        )
    image = graph.inputs[0]
    encodings, scores = graph.outputs
    if not encodings.name.split(":")[0].endswith("raw_box_encodings"):
        encodings, scores = scores, encodings
    image.name, encodings.name, scores.name = INPUT, ENCODINGS, SCORES
    batch = ctx.facts["batch"]
    dim0 = batch if batch is not None else "batch"
    image.shape = [dim0, *image.shape[1:]]
    encodings.shape = [dim0, *encodings.shape[1:]]
    scores.shape = [dim0, *scores.shape[1:]]
