"""Run graphs that contain TensorRT plugin nodes in ONNX Runtime, on a CPU.

ONNX Runtime has no kernels for TensorRT plugins (EfficientNMS_TRT, NMS_TRT, ...).
``make_session`` runs such a graph by registering the CPU references of ``trtdeploy.plugin_refs``
as onnxruntime-extensions Python custom ops and pointing the plugin nodes at them in an
in-memory copy of the model (domain ``ai.onnx.contrib``, a private op type, missing
attributes filled with the plugin defaults, TensorRT-only attributes dropped). The model
given by the caller is not changed. Graphs without plugin nodes run unchanged.
"""

from __future__ import annotations

import copy
import threading
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


def make_session(model: onnx.ModelProto | str | Path) -> onnxruntime.InferenceSession | PluginSession:
    """A CPU ONNX Runtime session for ``model`` (a ModelProto or a path), plugin nodes included
    (then wrapped in a PluginSession, which reports a reference's error as an InputError)."""
    import onnxruntime as ort

    if not isinstance(model, onnx.ModelProto):
        path = Path(model)
        if not path.is_file():
            raise InputError(f"ONNX model {path} not found")
        model = onnx.load(str(path))
    _refuse_plugins_without_reference(model)
    options = ort.SessionOptions()
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
