"""Drop TFOD's background column so scores are [B, A, num_classes], class id = column."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from trtdeploy.errors import GraphError, InputError
from trtdeploy.graph_passes import PassContext, add_node, const

SCORES = "scores"


def first_class_column(num_classes: int, columns: int) -> int:
    """Where the classes start among the model's score columns: 1 after a background column,
    0 without one; InputError when pipeline.config's num_classes fits neither."""
    if columns == num_classes + 1:
        return 1
    if columns == num_classes:
        return 0
    raise InputError(
        f"pipeline.config says num_classes={num_classes} but the saved model predicts {columns} score "
        "columns; use the pipeline.config the model was exported with"
    )


def select_class_scores(graph: gs.Graph, ctx: PassContext) -> None:
    raw = next((t for t in graph.outputs if t.name == "raw_box_scores"), None)
    if raw is None:
        raise GraphError(f"{ctx.family}: select_class_scores expects a graph output 'raw_box_scores'")
    num_classes = ctx.facts["num_classes"]
    columns = ctx.facts["num_score_columns"]
    first = first_class_column(num_classes, columns)
    ctx.facts["background"] = (
        "column 0 of the class predictions (background) dropped" if first else "none (the model predicts no background column)"
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
