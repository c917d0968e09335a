"""Run graph surgery as a list of small named passes, checking the graph after each.

A pass is a function ``(graph, ctx) -> None`` that edits an onnx-graphsurgeon graph in place.
The driver cleans up, converts back to ONNX, runs ``onnx.checker`` and shape inference after
every pass, and names the pass that broke the graph. With a debug folder it writes the graph
after every pass as ``NN_<pass>.onnx``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnx_graphsurgeon as gs

from trtdeploy.errors import GraphError
from trtdeploy.log import get_logger

log = get_logger("graph")

# ONNX Runtime / TensorRT plugin ops we emit live in the default domain (TensorRT's parser
# looks plugins up by op type), so the checker must not insist on a schema for them.
PLUGIN_OPS = frozenset({"EfficientNMS_TRT", "BatchedNMS_TRT", "BatchedNMSDynamic_TRT", "NMS_TRT", "NMSDynamic_TRT"})


@dataclass
class PassContext:
    """What passes may read (facts found so far) and write (new facts for later passes)."""

    family: str  # model family, for error messages, e.g. "TFOD SSD"
    facts: dict[str, Any] = field(default_factory=dict)
    debug_dir: Path | None = None
    # Prefix of the debug files, so the stages of one conversion sort in order in one folder.
    stage: str = "passes"


GraphPass = Callable[[gs.Graph, PassContext], None]


def run_passes(
    model: onnx.ModelProto,
    passes: Sequence[tuple[str, GraphPass]],
    ctx: PassContext,
) -> onnx.ModelProto:
    """Apply ``passes`` in order; return the checked model."""
    if ctx.debug_dir is not None:
        ctx.debug_dir.mkdir(parents=True, exist_ok=True)
        _save_debug(model, ctx.debug_dir / f"{ctx.stage}-00_input.onnx")
    for index, (name, graph_pass) in enumerate(passes, start=1):
        start = time.perf_counter()
        graph = gs.import_onnx(model)
        graph_pass(graph, ctx)
        graph.cleanup().toposort()
        model = gs.export_onnx(graph)
        if ctx.debug_dir is not None:
            _save_debug(model, ctx.debug_dir / f"{ctx.stage}-{index:02d}_{name}.onnx")
        model = check_graph(model, after=name, family=ctx.family)
        log.debug("pass %s done in %.2f s (%d nodes)", name, time.perf_counter() - start, len(model.graph.node))
    return model


def check_graph(model: onnx.ModelProto, after: str, family: str) -> onnx.ModelProto:
    """onnx.checker + strict shape inference; raises GraphError naming the pass.

    Plugin nodes have no ONNX schema, so the checker sees a copy in which they sit in a
    custom domain, and shape inference (which cannot see through them) is skipped."""
    checked = model
    has_plugins = any(node.op_type in PLUGIN_OPS for node in model.graph.node)
    if has_plugins:
        checked = onnx.ModelProto()
        checked.CopyFrom(model)
        for node in checked.graph.node:
            if node.op_type in PLUGIN_OPS:
                node.domain = "trt.plugins"
        checked.opset_import.add(domain="trt.plugins", version=1)
    try:
        onnx.checker.check_model(checked, full_check=False)
        if not has_plugins:
            model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphError(f"{family}: graph invalid after pass '{after}': {first}") from exc
    return model


def _save_debug(model: onnx.ModelProto, path: Path) -> None:
    onnx.save(model, str(path))
    log.info("debug graph written: %s", path)


# Small graph helpers shared by passes and heads (our own module: nothing is registered
# onto gs.Graph, which would change it for every other user in the process).


def const(name: str, value: Any) -> gs.Constant:
    """A named constant from anything numpy can turn into an array."""
    import numpy as np

    return gs.Constant(name, np.asarray(value))


def add_node(
    graph: gs.Graph,
    op: str,
    inputs: Sequence[gs.Tensor],
    name: str,
    num_outputs: int = 1,
    dtypes: Sequence[Any] | None = None,
    attrs: dict[str, Any] | None = None,
    domain: str | None = None,
) -> list[gs.Variable]:
    """Append a node; its outputs are named ``<name>_out<i>`` (or ``name`` when there is one)."""
    outputs = []
    for i in range(num_outputs):
        out_name = name if num_outputs == 1 else f"{name}_out{i}"
        dtype = dtypes[i] if dtypes else None
        outputs.append(gs.Variable(out_name, dtype=dtype))
    node = gs.Node(op=op, name=name, inputs=list(inputs), outputs=outputs, attrs=attrs or {})
    if domain is not None:
        node.domain = domain
    graph.nodes.append(node)
    return outputs

