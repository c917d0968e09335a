"""Convert an ONNX graph to FP16 for strongly typed TensorRT (11.x, TensorRT-RTX).

Strongly typed builders take each tensor's type from the network, so "build in FP16" means
handing them an FP16 graph. We keep the graph's inputs and outputs float32 (DeepStream and
our runners feed and read float32), keep NMS / TopK / Q/DQ / plugin nodes and any node the
user names in float32, and insert Casts where a float32 and a float16 region meet.

Which input of a node may be float16 is read from the ONNX operator schema (e.g. Resize's
``scales`` is always float32), not from a hand-kept list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trtdeploy.engine.capabilities import NMS_PLUGIN_OPS
from trtdeploy.errors import GraphError
from trtdeploy.log import get_logger

log = get_logger("engine")

FLOAT = TensorProto.FLOAT
HALF = TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)

# Ops that stay float32: NMS and selection need the exact scores; Q/DQ scales are float32 in
# older opsets; plugin ops have no ONNX schema to tell us what they accept.
KEEP_FP32_OPS = (
    frozenset({"NonMaxSuppression", "TopK", "QuantizeLinear", "DequantizeLinear", "RoiAlign"}) | NMS_PLUGIN_OPS
)


@dataclass
class Fp16Report:
    converted_nodes: int
    kept_nodes: list[str]
    casts_added: int
    initializers_converted: int
    clipped_values: int


def _opset(model: onnx.ModelProto, domain: str) -> int:
    for entry in model.opset_import:
        if entry.domain == domain or (domain in ("", "ai.onnx") and entry.domain in ("", "ai.onnx")):
            return entry.version
    return 0


def _schema(node: onnx.NodeProto, model: onnx.ModelProto) -> onnx.defs.OpSchema | None:
    domain = node.domain or ""
    try:
        return onnx.defs.get_schema(node.op_type, _opset(model, domain), domain)
    except onnx.defs.SchemaError:
        return None


def _formal(params: list, index: int):  # type: ignore[no-untyped-def]
    if index < len(params):
        return params[index]
    last = params[-1] if params else None
    if last is not None and last.option == onnx.defs.OpSchema.FormalParameterOption.Variadic:
        return last
    return None


def _accepts_half(schema: onnx.defs.OpSchema, formal) -> bool:  # type: ignore[no-untyped-def]
    if formal is None:
        return False
    for constraint in schema.type_constraints:
        if constraint.type_param_str == formal.type_str:
            return "tensor(float16)" in constraint.allowed_type_strs
    return formal.type_str == "tensor(float16)"


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types: dict[str, int] = {}
    graph = inferred.graph
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
            types[value.name] = value.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    return types


def _to_half(array: np.ndarray) -> tuple[np.ndarray, int]:
    clipped = int(np.count_nonzero(np.abs(array[np.isfinite(array)]) > FP16_MAX))
    return np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16), clipped


def convert_to_fp16(model: onnx.ModelProto, keep_nodes: Iterable[str] = ()) -> tuple[onnx.ModelProto, Fp16Report]:
    """Return an FP16 copy of ``model`` with float32 I/O, and what was done."""
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    model = model_copy
    graph = model.graph
    keep_names = set(keep_nodes)
    missing = keep_names - {n.name for n in graph.node}
    if missing:
        raise GraphError(f"--layer-precision names nodes not in the ONNX: {sorted(missing)}")
    types = _value_types(model)

    def is_float(name: str) -> bool:
        return types.get(name) == FLOAT

    converted, kept = _nodes_to_convert(model, keep_names, is_float)
    wants_half, slot_type, half_params = _consumer_types(model, converted, is_float)
    produced, init_count, clipped_total = _producer_types(model, converted, is_float, wants_half, half_params)
    casts = _cast_graph_outputs_back(graph, produced)
    casts += _cast_inputs(graph, slot_type, produced)
    graph.node.extend(casts)
    del graph.value_info[:]
    _toposort(graph)
    model = _checked(model)
    if clipped_total:
        log.warning("FP16 conversion clipped %d weight values beyond +-%g", clipped_total, FP16_MAX)
    report = Fp16Report(len(converted), kept, len(casts), init_count, clipped_total)
    return model, report


def _nodes_to_convert(
    model: onnx.ModelProto, keep_names: set[str], is_float: Callable[[str], bool]
) -> tuple[set[int], list[str]]:
    """Indices of the nodes converted to float16, and the names of float nodes kept float32."""
    kept: list[str] = []
    converted: set[int] = set()
    # A subgraph (Loop/If body) reads outer values by name, with no cast in between: their
    # producers stay float32 like the node that owns the subgraph.
    read_inside = _names_read_by_subgraphs(model.graph)
    for index, node in enumerate(model.graph.node):
        has_subgraph = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        feeds_subgraph = any(name in read_inside for name in node.output)
        if (
            node.op_type in KEEP_FP32_OPS
            or node.name in keep_names
            or has_subgraph
            or feeds_subgraph
            or _schema(node, model) is None
        ):
            if any(is_float(v) for v in list(node.input) + list(node.output)):
                kept.append(node.name or node.op_type)
            continue
        converted.add(index)
    return converted, kept


def _names_read_by_subgraphs(graph: onnx.GraphProto) -> set[str]:
    """Every value name read by a node inside any subgraph of ``graph``'s nodes (recursively)."""
    names: set[str] = set()
    for node in graph.node:
        for attr in node.attribute:
            bodies = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for body in bodies:
                names.update(n for inner in body.node for n in inner.input if n)
                names |= _names_read_by_subgraphs(body)
    return names


def _consumer_types(
    model: onnx.ModelProto, converted: set[int], is_float: Callable[[str], bool]
) -> tuple[dict[str, bool], dict[tuple[int, int], int], dict[int, set[str]]]:
    """Which float32 values each consumer wants as float16: value -> any consumer wants half,
    (node, input slot) -> wanted type, node -> its type parameters bound to half."""
    wants_half: dict[str, bool] = {}
    slot_type: dict[tuple[int, int], int] = {}
    half_params: dict[int, set[str]] = {}
    for index, node in enumerate(model.graph.node):
        schema = _schema(node, model) if index in converted else None
        for slot, name in enumerate(node.input):
            if not name or not is_float(name):
                continue
            want = FLOAT
            if schema is not None:
                formal = _formal(list(schema.inputs), slot)
                if _accepts_half(schema, formal):
                    want = HALF
                    half_params.setdefault(index, set()).add(formal.type_str)
            slot_type[(index, slot)] = want
            wants_half[name] = wants_half.get(name, False) or want == HALF
    return wants_half, slot_type, half_params


def _producer_types(
    model: onnx.ModelProto,
    converted: set[int],
    is_float: Callable[[str], bool],
    wants_half: dict[str, bool],
    half_params: dict[int, set[str]],
) -> tuple[dict[str, int], int, int]:
    """What each float32 value becomes where it is produced (initializers wanted as half are
    converted in place); also the number of converted initializers and of clipped weights."""
    graph = model.graph
    produced: dict[str, int] = {}
    for value in graph.input:
        if is_float(value.name):
            produced[value.name] = FLOAT
    init_count = clipped_total = 0
    for init in graph.initializer:
        if init.data_type == FLOAT and wants_half.get(init.name, False):
            half, clipped = _to_half(numpy_helper.to_array(init))
            clipped_total += clipped
            init.CopyFrom(numpy_helper.from_array(half, init.name))
            produced[init.name] = HALF
            init_count += 1
        elif init.data_type == FLOAT:
            produced[init.name] = FLOAT
    for index, node in enumerate(graph.node):
        schema = _schema(node, model) if index in converted else None
        for slot, name in enumerate(node.output):
            if not name or not is_float(name):
                continue
            produced[name] = FLOAT
            if schema is None:
                continue
            formal = _formal(list(schema.outputs), slot)
            if not _accepts_half(schema, formal):
                continue
            if _retype_attributes(node) or formal.type_str in half_params.get(index, set()):
                produced[name] = HALF
    return produced, init_count, clipped_total


def _cast_graph_outputs_back(graph: onnx.GraphProto, produced: dict[str, int]) -> list[onnx.NodeProto]:
    """Graph outputs stay float32: a half-producing output gets renamed and cast back."""
    casts: list[onnx.NodeProto] = []
    for out in graph.output:
        if produced.get(out.name) == HALF:
            inner = f"{out.name}__fp16"
            for node in graph.node:
                node.output[:] = [inner if v == out.name else v for v in node.output]
                node.input[:] = [inner if v == out.name else v for v in node.input]
            produced[inner] = HALF
            casts.append(helper.make_node("Cast", [inner], [out.name], to=FLOAT, name=f"{out.name}__to_fp32"))
    return casts


def _cast_inputs(
    graph: onnx.GraphProto, slot_type: dict[tuple[int, int], int], produced: dict[str, int]
) -> list[onnx.NodeProto]:
    """One Cast per (value, wanted type) where a consumer wants another type than produced."""
    casts: list[onnx.NodeProto] = []
    cast_names: dict[tuple[str, int], str] = {}
    for (index, slot), want in slot_type.items():
        node = graph.node[index]
        name = node.input[slot]
        have = produced.get(name, FLOAT)
        if have == want:
            continue
        key = (name, want)
        if key not in cast_names:
            suffix = "fp16" if want == HALF else "fp32"
            cast_out = f"{name}__to_{suffix}"
            casts.append(helper.make_node("Cast", [name], [cast_out], to=want, name=cast_out))
            cast_names[key] = cast_out
        node.input[slot] = cast_names[key]
    return casts


def _checked(model: onnx.ModelProto) -> onnx.ModelProto:
    """The converted model, checked (and shape-inferred when it has no plugin node)."""
    try:
        # The checker knows no TensorRT plugin op (an EfficientNMS_TRT head): check the graph
        # without them and what follows them, which holds every node this conversion changed.
        from calibration.ort_calibrate import runnable_part

        checked, removed = runnable_part(model)
        onnx.checker.check_model(checked)
        inferred = onnx.shape_inference.infer_shapes(checked, check_type=True, strict_mode=True)
        if not removed:
            model = inferred
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise GraphError(
            f"FP16 conversion produced an invalid graph ({exc}); keep the failing node float32 "
            "with --layer-precision NAME=fp32 and report the model"
        ) from exc
    return model


def _retype_attributes(node: onnx.NodeProto) -> bool:
    """Switch attribute-typed float32 outputs (Cast to, Constant value) to float16."""
    changed = False
    for attr in node.attribute:
        if node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT:
            attr.i = HALF
            changed = True
        elif node.op_type in ("Constant", "ConstantOfShape") and attr.name == "value" and attr.t.data_type == FLOAT:
            half, _ = _to_half(numpy_helper.to_array(attr.t))
            attr.t.CopyFrom(numpy_helper.from_array(half, attr.t.name))
            changed = True
        elif node.op_type == "Constant" and attr.name in ("value_float", "value_floats"):
            raise GraphError(f"Constant node {node.name!r} uses {attr.name}; FP16 conversion needs a 'value' tensor")
    return changed


def _toposort(graph: onnx.GraphProto) -> None:
    """Order nodes so every input is produced before use (casts were appended at the end)."""
    available = {v.name for v in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        progress = False
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
                progress = True
            else:
                rest.append(node)
        if not progress:
            raise GraphError(f"FP16 conversion: cannot order nodes {[n.name for n in rest][:5]} (a cycle?)")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def has_qdq(model: onnx.ModelProto) -> bool:
    """True when the graph carries explicit quantization (QuantizeLinear nodes)."""
    return any(node.op_type == "QuantizeLinear" for node in model.graph.node)
