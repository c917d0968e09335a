"""Run graphs that contain TensorRT plugin nodes in ONNX Runtime, on a CPU.

ONNX Runtime has no kernels for TensorRT plugins (EfficientNMS_TRT, NMS_TRT, ...).
``make_session`` runs such a graph by registering the CPU references of ``trtdeploy.plugin_refs``
as onnxruntime-extensions Python custom ops and pointing the plugin nodes at them in an
in-memory copy of the model (domain ``ai.onnx.contrib``, a private op type, missing
attributes filled with the plugin defaults, TensorRT-only attributes dropped). The model
given by the caller is not changed. Graphs without plugin nodes run unchanged.

onnxruntime-extensions hands a Python op's outputs back to ONNX Runtime as Python lists
(onnxruntime_extensions/_ocos.py ``_on_pyop_invocation``: ``r.flatten().tolist()``), a cost that
grows with the output: a two-stage detector's CropAndResizeDynamic writes 300x1024x14x14 floats.
So a graph with a plugin node of ``SPLIT_PLUGINS`` among its top-level nodes runs as a
``SplitSession`` instead: ONNX Runtime pieces in topological order, the split plugin nodes'
references called in between on the NumPy arrays (the same ``Implementation.compute`` and the
same attribute values as the custom ops get); its other plugin nodes stay custom ops inside the
pieces. Plugin nodes inside subgraphs (Loop bodies) are left as they are.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from trtdeploy import plugin_refs, plugins
from trtdeploy.errors import InputError, MissingDependencyError, UnsupportedModelError

if TYPE_CHECKING:
    import onnxruntime

CUSTOM_DOMAIN = "ai.onnx.contrib"

_registered = False
_lock = threading.Lock()


def has_plugin_nodes(model: onnx.ModelProto) -> bool:
    referenced = plugin_refs.referenced_plugins()
    return any(node.op_type in referenced and node.domain in ("", "ai.onnx") for node in model.graph.node)


def make_session(
    model: onnx.ModelProto | str | Path, optimize: bool = True
) -> onnxruntime.InferenceSession | PluginSession | SplitSession:
    """A CPU ONNX Runtime session for ``model`` (a ModelProto or a path), plugin nodes included
    (then a PluginSession or a SplitSession, which report a reference's error as an InputError).
    ``optimize=False``: ONNX Runtime's graph optimisations off (ORT_DISABLE_ALL) in every session."""
    if not isinstance(model, onnx.ModelProto):
        path = Path(model)
        if not path.is_file():
            raise InputError(f"ONNX model {path} not found")
        model = onnx.load(str(path))
    _refuse_plugins_without_reference(model)
    if any(_splits_at(node) for node in model.graph.node):
        return SplitSession(model, optimize)
    return _one_session(model, optimize)


def _one_session(model: onnx.ModelProto, optimize: bool = True) -> onnxruntime.InferenceSession | PluginSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if not has_plugin_nodes(model):
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    model = with_reference_ops(model)
    options.register_custom_ops_library(_extensions_library())
    return PluginSession(ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]))


# An exception raised inside a Python custom op does not come back through ONNX Runtime: it
# terminates the process (pybind11::error_already_set thrown through C++, exit 134). So the
# references' adapters record it here and return empty outputs; PluginSession.run raises it.
_failures: list[tuple[str, Exception]] = []
_failures_lock = threading.Lock()


class PluginSession:
    """An ONNX Runtime session whose plugin nodes run CPU references: ``run`` raises what a
    reference raised (as one InputError naming the plugin) instead of letting it end the process."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self.session = session

    def __getattr__(self, name: str) -> Any:  # get_inputs, get_outputs, ...
        return getattr(self.session, name)

    def run(self, *args: Any, **kwargs: Any) -> list[Any]:
        with _failures_lock:
            _failures.clear()
        try:
            result = self.session.run(*args, **kwargs)
        except Exception:
            _raise_failure()
            raise
        _raise_failure()
        return result


def _raise_failure() -> None:
    with _failures_lock:
        failure = _failures[0] if _failures else None
        _failures.clear()
    if failure is not None:
        plugin, exc = failure
        raise InputError(f"the {plugin} node cannot run on its CPU reference: {exc}") from exc


def _refuse_plugins_without_reference(model: onnx.ModelProto) -> None:
    """A registered plugin with no NumPy reference cannot run on a CPU: say so, naming it."""
    lacking = sorted(
        {
            node.op_type
            for node in model.graph.node
            if plugins.is_plugin_node(node.op_type, node.domain) and plugin_refs.for_node(node) is None
        }
    )
    if lacking:
        raise UnsupportedModelError(
            f"the ONNX uses TensorRT plugin(s) {', '.join(lacking)}, which have no CPU reference in "
            "trtdeploy yet, so ONNX Runtime cannot run it; check it with TensorRT instead"
        )


def with_reference_ops(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose plugin nodes call the NumPy reference custom ops. List
    attributes travel as comma-separated strings (onnxruntime-extensions Python ops take
    scalar attributes only) and are decoded back before ``compute`` sees them."""
    model = copy.deepcopy(model)
    written: dict[str, str] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        impl = plugin_refs.for_node(node)
        if impl is None:
            continue
        plugin = plugins.get(node.op_type)
        assert plugin is not None  # plugin_refs checks every implementation's plugin is registered
        given = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        table = plugin.attribute_table()
        attrs = [
            onnx.helper.make_attribute(name, _encode(table[name][0], value))
            for name, value in plugin.resolved_attrs(given, node.name).items()
        ]
        del node.attribute[:]
        node.attribute.extend(attrs)
        node.op_type = impl.custom_op
        node.domain = CUSTOM_DOMAIN
        written.update({name: dtype for name, dtype in zip(node.output, impl.outputs, strict=False) if name})
    _declare_written_dtypes(model, written)
    if not any(o.domain == CUSTOM_DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(CUSTOM_DOMAIN, 1))
    return model


def _declare_written_dtypes(model: onnx.ModelProto, written: dict[str, str]) -> None:
    """Declare each reference output with the dtype the reference writes (the plugin kernel's:
    NMS_TRT's keep count is declared float but written int32), else ONNX Runtime refuses the
    graph's float declaration of an int32 output."""
    for info in (*model.graph.output, *model.graph.value_info):
        dtype = written.get(info.name)
        if dtype is not None and info.type.HasField("tensor_type"):
            info.type.tensor_type.elem_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _encode(kind: str, value: Any) -> Any:
    if kind == "f":
        return float(value)
    if kind == "i":
        return int(value)
    return ",".join(repr(float(v)) if kind == "floats" else str(int(v)) for v in value)


def _decode(kind: str, value: Any) -> Any:
    if kind in ("ints", "floats"):
        items = [v for v in str(value).split(",") if v]
        return [float(v) for v in items] if kind == "floats" else [int(v) for v in items]
    return value


def _extensions_library() -> str:
    """Register the reference ops (once per process) and return the extensions library path."""
    global _registered
    try:
        import onnxruntime_extensions as ortx
    except ImportError as exc:
        raise MissingDependencyError(
            f"running TensorRT NMS plugin nodes on a CPU needs onnxruntime-extensions ({exc}); "
            "pip install onnxruntime-extensions"
        ) from exc
    with _lock:
        if not _registered:
            _register(ortx)
            _registered = True
    return ortx.get_library_path()


def _register(ortx: Any) -> None:
    types = ortx.PyCustomOpDef
    dtypes = {"float32": types.dt_float, "int32": types.dt_int32, "int64": types.dt_int64}
    kinds = {"f": types.dt_float, "i": types.dt_int64, "ints": types.dt_string, "floats": types.dt_string}
    for impl in plugin_refs.implementations():
        plugin = plugins.get(impl.plugin)
        assert plugin is not None
        table = plugin.attribute_table()
        ortx.onnx_op(
            op_type=impl.custom_op,
            inputs=[dtypes[d] for d in impl.inputs],
            outputs=[dtypes[d] for d in impl.outputs],
            attrs={name: kinds[kind] for name, (kind, _) in table.items()},
        )(_adapter(impl, table))


def _adapter(impl: plugin_refs.Implementation, table: dict[str, tuple[str, Any]]) -> Any:
    def run(*arrays: np.ndarray, **attrs: Any) -> tuple:
        try:
            return impl.compute(*arrays, **{name: _decode(table[name][0], value) for name, value in attrs.items()})
        except Exception as exc:  # must not reach ONNX Runtime: see _failures
            with _failures_lock:
                _failures.append((impl.plugin, exc))
            return tuple(np.zeros((0,), dtype=dtype) for dtype in impl.outputs)

    return run


# Plugins whose nodes run outside ONNX Runtime (see the module docstring): those whose output is
# large. Measured on the Faster R-CNN fixture's dynamic efficient export (tests/tfod/
# test_faster_rcnn.py; batch 1, one photo, twice each, 2 shared cores): one session 16.7-20.0 s;
# split at CropAndResizeDynamic 5.1-5.2 s; split at its two EfficientNMS_TRT nodes too 6.0-6.8 s
# (outputs bit-identical in all three), so the small plugins stay custom ops.
SPLIT_PLUGINS = frozenset({"CropAndResizeDynamic"})


def _splits_at(node: onnx.NodeProto) -> bool:
    return node.domain in ("", "ai.onnx") and node.op_type in SPLIT_PLUGINS and plugin_refs.for_node(node) is not None


@dataclass(frozen=True)
class Arg:
    """What ``get_inputs``/``get_outputs`` give (the fields of onnxruntime.NodeArg callers read)."""

    name: str
    shape: list[int | str | None]
    type: str


@dataclass(frozen=True)
class _Piece:
    session: Any  # onnxruntime.InferenceSession | PluginSession
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: tuple[onnx.NodeProto, ...]


@dataclass(frozen=True)
class _Call:
    node: onnx.NodeProto
    impl: plugin_refs.Implementation
    attrs: dict[str, Any]


class SplitSession:
    """A graph run as ONNX Runtime pieces with some plugin nodes (``_splits_at``) run on their
    references in between, in topological order; ``run``, ``get_inputs``, ``get_outputs`` and
    ``get_providers`` as an InferenceSession's, a reference's error as one InputError naming it.

    Each node gets a stage: the number of split plugin nodes on its longest path from the graph
    inputs. Piece k holds the other nodes of stage k (ONNX requires the graph's nodes in
    topological order, onnx/docs/IR.md "Graphs", so graph order within a piece is one); the
    plugin nodes of stage k read tensors of stages <= k only and write stage k+1."""

    def __init__(self, model: onnx.ModelProto, optimize: bool = True) -> None:
        graph = model.graph
        initializers = {i.name: i for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        stage: dict[str, int] = {}
        staged: list[tuple[int, onnx.NodeProto]] = []
        for node in graph.node:
            k = max((stage.get(name, 0) for name in _reads(node)), default=0)
            split = _splits_at(node)
            staged.append((k, node))
            for name in node.output:
                if name:
                    stage[name] = k + 1 if split else k
        last = max((k for k, _ in staged), default=0)
        # what a step after (or the caller) reads: graph outputs, then every node's inputs
        wanted_after: list[set[str]] = []
        wanted = {o.name for o in graph.output}
        steps: list[tuple[int, bool, list[onnx.NodeProto]]] = []
        for k in range(last + 1):
            steps.append((k, False, [n for j, n in staged if j == k and not _splits_at(n)]))
            steps.append((k, True, [n for j, n in staged if j == k and _splits_at(n)]))
        steps = [s for s in steps if s[2]]
        for _, _, nodes in reversed(steps):
            wanted_after.append(set(wanted))
            wanted |= {name for n in nodes for name in _reads(n)}
        wanted_after.reverse()
        self._steps: list[_Piece | _Call] = []
        dtypes: dict[str, int] = {i.name: i.type.tensor_type.elem_type for i in inputs}
        infos = _declared(model)
        for (_, split, nodes), later in zip(steps, wanted_after, strict=True):
            if split:
                self._steps.extend(_call(node) for node in nodes)
                for node in nodes:
                    impl = plugin_refs.for_node(node)
                    assert impl is not None
                    for name, dtype in zip(node.output, impl.outputs, strict=False):
                        dtypes[name] = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
                continue
            if not any(name in later for n in nodes for name in n.output):
                continue  # nothing here is read later (ONNX Runtime would drop these nodes too)
            piece = _make_piece(model, nodes, later, dtypes, initializers, infos, optimize)
            self._steps.append(piece)
            for arg in piece.session.get_outputs():
                dtypes[arg.name] = _ELEM[arg.type]
        # initializers a split plugin node reads, or that the graph outputs directly
        direct = {name for s in self._steps if isinstance(s, _Call) for name in _reads(s.node)}
        direct |= {o.name for o in graph.output}
        self._constants = {
            name: onnx.numpy_helper.to_array(initializers[name]) for name in direct if name in initializers
        }
        self._inputs = [_arg(i) for i in inputs]
        self._outputs = [_arg(infos.get(o.name, o)) for o in graph.output]

    @property
    def pieces(self) -> list[_Piece]:
        return [s for s in self._steps if isinstance(s, _Piece)]

    @property
    def split_nodes(self) -> list[onnx.NodeProto]:
        return [s.node for s in self._steps if isinstance(s, _Call)]

    def get_inputs(self) -> list[Arg]:
        return list(self._inputs)

    def get_outputs(self) -> list[Arg]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any], run_options: Any = None) -> list[Any]:
        names = [o.name for o in self._outputs] if output_names is None else list(output_names)
        known = {o.name for o in self._outputs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InputError(f"the model has no output(s) {', '.join(unknown)}")
        # the steps whose outputs are needed, walking back from the requested names
        needed = set(names)
        plan: list[tuple[_Piece | _Call, list[str]]] = []
        for step in reversed(self._steps):
            made = step.outputs if isinstance(step, _Piece) else tuple(n for n in step.node.output if n)
            used = [n for n in made if n in needed]
            if used:
                plan.append((step, used))
                needed |= set(step.inputs if isinstance(step, _Piece) else _reads(step.node))
        values: dict[str, Any] = {**self._constants, **input_feed}
        for step, used in reversed(plan):
            if isinstance(step, _Piece):
                feed = {n: values[n] for n in step.inputs if n in values}
                values.update(zip(used, step.session.run(used, feed, run_options), strict=True))
            else:
                values.update(_run_call(step, values))
        return [values[n] for n in names]


_ELEM: dict[str, int] = {
    f"tensor({name})": int(elem)
    for name, elem in (
        ("float", onnx.TensorProto.FLOAT),
        ("double", onnx.TensorProto.DOUBLE),
        ("float16", onnx.TensorProto.FLOAT16),
        ("bool", onnx.TensorProto.BOOL),
        ("int8", onnx.TensorProto.INT8),
        ("uint8", onnx.TensorProto.UINT8),
        ("int16", onnx.TensorProto.INT16),
        ("int32", onnx.TensorProto.INT32),
        ("int64", onnx.TensorProto.INT64),
        ("string", onnx.TensorProto.STRING),
    )
}
_TYPE: dict[int, str] = {elem: name for name, elem in _ELEM.items()}


def _arg(info: onnx.ValueInfoProto) -> Arg:
    tensor = info.type.tensor_type
    shape: list[int | str | None] = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param if d.HasField("dim_param") else None)
        for d in tensor.shape.dim
    ]
    return Arg(info.name, shape, _TYPE.get(tensor.elem_type, "tensor(float)"))


def _declared(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """The graph's value infos and outputs by name, a plugin output's dtype the one its
    reference writes (as ``_declare_written_dtypes`` declares it for the one-session run)."""
    written: dict[str, str] = {}
    for node in model.graph.node:
        impl = plugin_refs.for_node(node) if node.domain in ("", "ai.onnx") else None
        if impl is not None:
            written.update({name: dtype for name, dtype in zip(node.output, impl.outputs, strict=False) if name})
    infos: dict[str, onnx.ValueInfoProto] = {}
    for info in (*model.graph.value_info, *model.graph.output):
        dtype = written.get(info.name)
        if dtype is not None and info.type.HasField("tensor_type"):
            info = copy.deepcopy(info)
            info.type.tensor_type.elem_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        infos[info.name] = info
    return infos


def _reads(node: onnx.NodeProto) -> list[str]:
    """The tensors ``node`` reads: its inputs and, for a node with subgraphs (Loop, If, Scan),
    the outer-scope names its subgraphs use."""
    names = [name for name in node.input if name]
    for attr in node.attribute:
        for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
            names.extend(_outer_names(sub))
    return list(dict.fromkeys(names))


def _outer_names(graph: onnx.GraphProto) -> list[str]:
    local = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    names: list[str] = []
    for node in graph.node:
        names.extend(name for name in _reads(node) if name not in local)
        local.update(node.output)
    names.extend(o.name for o in graph.output if o.name not in local)
    return names


def _make_piece(
    model: onnx.ModelProto,
    nodes: list[onnx.NodeProto],
    later: set[str],
    dtypes: dict[str, int],
    initializers: dict[str, onnx.TensorProto],
    infos: dict[str, onnx.ValueInfoProto],
    optimize: bool,
) -> _Piece:
    """One ONNX Runtime session of ``nodes``: its inputs, outputs (the tensors a later step or
    the caller reads) and inner tensors declared as the graph declares them, so that ONNX Runtime
    knows the shapes it knows in the one-session run (its layout and fusion passes depend on
    them: without them the Faster R-CNN efficient head's scores differed by 1.7e-5 from the
    one-session run's); an input's dtype is the one it was made with, a tensor the graph does
    not declare is left to ONNX Runtime's inference."""
    made = [name for n in nodes for name in n.output if name]
    reads = [name for n in nodes for name in _reads(n)]
    made_set = set(made)
    outside = [name for name in dict.fromkeys(reads) if name not in made_set]
    feeds = [name for name in outside if name not in initializers]
    outputs = [name for name in made if name in later]
    piece = onnx.ModelProto()
    piece.ir_version = model.ir_version
    piece.opset_import.extend(model.opset_import)
    piece.graph.name = model.graph.name
    piece.graph.node.extend(nodes)
    piece.graph.input.extend(_typed(infos.get(name), name, dtypes[name]) for name in feeds)
    piece.graph.output.extend(infos.get(name) or onnx.helper.make_value_info(name, onnx.TypeProto()) for name in outputs)
    ends = set(feeds) | set(outputs)
    piece.graph.value_info.extend(infos[name] for name in made if name in infos and name not in ends)
    piece.graph.initializer.extend(initializers[name] for name in outside if name in initializers)
    return _Piece(_one_session(piece, optimize), tuple(feeds), tuple(outputs), tuple(nodes))


def _typed(info: onnx.ValueInfoProto | None, name: str, dtype: int) -> onnx.ValueInfoProto:
    if info is None or not info.type.HasField("tensor_type"):
        return onnx.helper.make_tensor_value_info(name, dtype, None)
    info = copy.deepcopy(info)
    info.type.tensor_type.elem_type = dtype
    return info


def _call(node: onnx.NodeProto) -> _Call:
    """A split plugin node's reference and its attribute values, as the custom op would get
    them (the defaults filled in, through the same encoding)."""
    impl = plugin_refs.for_node(node)
    plugin = plugins.get(node.op_type)
    assert impl is not None and plugin is not None
    given = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    table = plugin.attribute_table()
    attrs = {
        name: _decode(table[name][0], _encode(table[name][0], value))
        for name, value in plugin.resolved_attrs(given, node.name).items()
    }
    return _Call(node, impl, attrs)


def _run_call(call: _Call, values: dict[str, Any]) -> dict[str, np.ndarray]:
    impl, node = call.impl, call.node
    arrays = [values[name] for name in node.input if name]
    for i, (array, dtype) in enumerate(zip(arrays, impl.inputs, strict=False)):
        if np.asarray(array).dtype != np.dtype(dtype):
            raise InputError(
                f"the {impl.plugin} node cannot run on its CPU reference: input {i} is "
                f"{np.asarray(array).dtype}, the reference takes {dtype}"
            )
    try:
        result = impl.compute(*arrays, **call.attrs)
    except Exception as exc:  # noqa: BLE001 - any reference error is the node's input error
        raise InputError(f"the {impl.plugin} node cannot run on its CPU reference: {exc}") from exc
    return {
        name: np.ascontiguousarray(array, dtype=dtype)
        for name, dtype, array in zip(node.output, impl.outputs, result, strict=False)
        if name
    }
