"""Run graph surgery as a list of small named passes, checking the graph after each.

A pass is a function ``(graph, ctx) -> None`` that edits an onnx-graphsurgeon graph in place.
The driver cleans up, converts back to ONNX, runs ``onnx.checker`` and shape inference after
every pass, and names the pass that broke the graph. With a debug folder it writes the graph
after every pass as ``NN_<pass>.onnx``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnx_graphsurgeon as gs

from trtdeploy import plugins
from trtdeploy.errors import GraphError, TrtDeployError
from trtdeploy.log import get_logger

log = get_logger("graph")

# TensorRT plugin ops live in the default domain (TensorRT's parser looks plugins up by op
# type), so the checker must not insist on a schema for them. The list is trtdeploy.plugins'.
PLUGIN_OPS = plugins.op_types()


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
    custom domain, and shape inference runs through them with the output shapes and dtypes of
    the plugin registry (``_infer_through_plugins``); the model is returned as given then."""
    has_plugins = any(_is_plugin(node) for node in model.graph.node)
    light = _skeleton(model)
    checked = _plugins_in_check_domain(light) if has_plugins else light
    try:
        onnx.checker.check_model(checked, full_check=False)
        if has_plugins:
            _infer_through_plugins(checked)
        else:
            _take_shapes(model, onnx.shape_inference.infer_shapes(checked, strict_mode=True))
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphError(f"{family}: graph invalid after pass '{after}': {first}") from exc
    return model


# An initializer with more elements than this is a weight: the checker and shape inference need
# its type and shape, never its values (shape inference reads only small tensors: shapes, axes).
WEIGHT_ELEMENTS = 4096


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without the data of its weights: each large initializer becomes a graph input
    of the same type and shape. The checker and shape inference serialise the model they are
    given; on a two-stage model (100 MB of weights) that copy was most of a pass's time."""
    weights = [t for t in model.graph.initializer if math.prod(t.dims) > WEIGHT_ELEMENTS]
    if not weights:
        return model
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    graph, source = light.graph, model.graph
    graph.name = source.name
    graph.node.extend(source.node)
    graph.input.extend(source.input)
    graph.output.extend(source.output)
    graph.value_info.extend(source.value_info)
    graph.sparse_initializer.extend(source.sparse_initializer)
    big = {t.name for t in weights}
    graph.initializer.extend(t for t in source.initializer if t.name not in big)
    declared = {v.name for v in source.input}
    graph.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                       for t in weights if t.name not in declared)
    return light


def _take_shapes(model: onnx.ModelProto, inferred: onnx.ModelProto) -> None:
    """Put shape inference's results on the skeleton ``inferred`` into ``model`` itself."""
    if inferred is model:
        return
    declared = {v.name for v in model.graph.input}
    del model.graph.value_info[:]
    model.graph.value_info.extend(v for v in inferred.graph.value_info if v.name not in declared)
    for out, found in zip(model.graph.output, inferred.graph.output, strict=True):
        out.CopyFrom(found)
    del model.graph.node[:]  # subgraphs (Loop bodies) carry value infos of their own
    model.graph.node.extend(inferred.graph.node)


def _is_plugin(node: onnx.NodeProto) -> bool:
    return node.op_type in PLUGIN_OPS and node.domain in ("", "ai.onnx")


def _plugins_in_check_domain(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose plugin nodes are in a domain of their own, so the ONNX checker
    and shape inference take them for custom ops instead of refusing unknown standard ones."""
    checked = onnx.ModelProto()
    checked.CopyFrom(model)
    for node in checked.graph.node:
        if _is_plugin(node):
            node.domain = plugins.CHECK_DOMAIN
    checked.opset_import.add(domain=plugins.CHECK_DOMAIN, version=1)
    return checked


_ONNX_DTYPES = {"float32": onnx.TensorProto.FLOAT, "int32": onnx.TensorProto.INT32, "float16": onnx.TensorProto.FLOAT16}


def infer_shapes_through_plugins(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with the value infos ONNX shape inference finds when plugin nodes
    pass the shapes of the plugin registry through (non-strict: unknown stays unknown)."""
    checked = _plugins_in_check_domain(model)
    known = _infer_through_plugins(checked, strict=False)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    declared = {v.name for v in (*out.graph.input, *out.graph.output)}
    del out.graph.value_info[:]
    out.graph.value_info.extend(v for name, v in known.items() if name not in declared)
    return out


def _infer_through_plugins(checked: onnx.ModelProto, strict: bool = True) -> dict[str, onnx.ValueInfoProto]:
    """Strict shape inference of a graph with plugin nodes (in ``plugins.CHECK_DOMAIN``).

    Each plugin whose output shapes the registry models is replaced, in a copy, by graph
    inputs of its output shapes and declared dtypes (computed from its inferred input shapes),
    so ONNX inference checks every consumer. Repeated until no further plugin can be modelled
    (a plugin fed by another one). Unmodelled plugins stay and are skipped by inference.
    Returns the value infos known at the end."""
    replaced: dict[str, onnx.ValueInfoProto] = {}
    pending = [n for n in checked.graph.node if n.domain == plugins.CHECK_DOMAIN]
    while True:
        trial = _without_plugins(checked, replaced)
        inferred = onnx.shape_inference.infer_shapes(trial, strict_mode=strict)
        known = {v.name: v for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)}
        progress = False
        for node in list(pending):
            outputs = _plugin_outputs(node, known)
            if outputs is not None:
                replaced.update((v.name, v) for v in outputs)
                pending.remove(node)
                progress = True
        if not progress:
            return known


def _without_plugins(model: onnx.ModelProto, replaced: dict[str, onnx.ValueInfoProto]) -> onnx.ModelProto:
    trial = onnx.ModelProto()
    trial.CopyFrom(model)
    keep = [n for n in trial.graph.node if not (n.domain == plugins.CHECK_DOMAIN and set(n.output) <= set(replaced))]
    del trial.graph.node[:]
    trial.graph.node.extend(keep)
    # TensorRT decides a plugin output's dtype, whatever the ONNX declares for it.
    outputs = [o for o in trial.graph.output if o.name not in replaced]
    del trial.graph.output[:]
    trial.graph.output.extend(outputs)
    trial.graph.input.extend(replaced.values())
    return trial


def _plugin_outputs(node: onnx.NodeProto, known: dict[str, onnx.ValueInfoProto]) -> list[onnx.ValueInfoProto] | None:
    """The value infos of a plugin node's outputs, or None when they cannot be modelled yet."""
    plugin = plugins.get(node.op_type)
    if plugin is None or plugin.shapes is None or len(node.output) != len(plugin.outputs):
        return None
    if not node.input or node.input[0] not in known:
        return None
    shapes = [_shape_of(known[name]) if name in known else None for name in node.input]
    given = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    try:
        attrs = plugin.resolved_attrs(given, node.name)
    except TrtDeployError:
        return None  # a required attribute missing: TensorRT's parser reports it
    out_shapes = plugin.output_shapes(attrs, shapes)
    if out_shapes is None:
        return None
    first = known[node.input[0]].type.tensor_type.elem_type
    input_dtype = onnx.helper.tensor_dtype_to_np_dtype(first).name if first else "float32"
    infos = []
    for name, spec, shape in zip(node.output, plugin.outputs, out_shapes, strict=True):
        elem = _ONNX_DTYPES.get(spec.declared_dtype(input_dtype), first)
        infos.append(onnx.helper.make_tensor_value_info(name, elem, shape))
    return infos


def _shape_of(info: onnx.ValueInfoProto) -> list[int | str | None] | None:
    tensor = info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim]


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

