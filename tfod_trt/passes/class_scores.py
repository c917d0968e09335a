"""Drop TFOD's background column so scores are [B, A, num_classes], class id = column."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.errors import GraphError, InputError
from trtdeploy.graph_passes import PassContext, add_node, const

SCORES = "scores"


def select_class_scores(graph: gs.Graph, ctx: PassContext) -> None:
    raw = next((t for t in graph.outputs if t.name == "raw_box_scores"), None)
    if raw is None:
        raise GraphError(f"{ctx.family}: select_class_scores expects a graph output 'raw_box_scores'")
    num_classes = ctx.facts["num_classes"]
    columns = ctx.facts["num_score_columns"]
    if columns == num_classes + 1:
        first = 1
        ctx.facts["background"] = "column 0 of the class predictions (background) dropped"
    elif columns == num_classes:
        first = 0
        ctx.facts["background"] = "none (the model predicts no background column)"
    else:
        raise InputError(
            f"pipeline.config says num_classes={num_classes} but the saved model predicts {columns} score "
            "columns; use the pipeline.config the model was exported with"
        )
    (scores,) = add_node(
        graph,
        "Slice",
        [raw, const("scores/start", [first]), const("scores/end", [columns]), const("scores/axis", [2])],
        SCORES,
        dtypes=[np.float32],
    )
    scores.shape = [raw.shape[0], len(ctx.facts["anchors"]), num_classes]
    graph.outputs = [scores if t is raw else t for t in graph.outputs]
