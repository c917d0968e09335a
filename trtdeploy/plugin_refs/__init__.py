"""CPU reference implementations of TensorRT plugins, run as ONNX Runtime custom ops.

One module per plugin (``nms.py``, ``crop_and_resize.py``, ...) declares a module-level list
``IMPLEMENTATIONS`` of ``Implementation`` objects; ``implementations()`` imports every module of
this package and collects them, so adding a reference is adding one module (no list to edit).
``trtdeploy.nms.ort_session.make_session`` points each plugin node at the private custom op of
the implementation that ``for_node`` picks for it.

``compute`` gets the node's input arrays and its attributes as keyword arguments, completed with
the plugin's defaults (``trtdeploy.plugins``) and converted to Python values: floats, ints, and
lists for the list kinds ("ints", "floats"). It returns a tuple of arrays with the dtypes of
``outputs`` (the dtypes the plugin's kernel WRITES, see ``PluginOutput.written``).

Modules here import numpy at most; the package imports onnx only for type checking.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

DTYPES = ("float32", "int32", "int64")


@dataclass(frozen=True)
class Implementation:
    plugin: str  # op type of the plugin node it runs (registered in trtdeploy.plugins)
    custom_op: str  # private ONNX Runtime custom-op type (domain ai.onnx.contrib), unique
    inputs: tuple[str, ...]  # input dtypes (DTYPES), in node order
    outputs: tuple[str, ...]  # output dtypes as written by the plugin's kernel
    compute: Callable[..., tuple[Any, ...]]
    # None: every node of ``plugin``; else only nodes for which it is true (e.g. an optional input)
    applies: Callable[[onnx.NodeProto], bool] | None = None
    source: str = ""  # where the semantics were read (repository, branch, file, lines)


_found: list[Implementation] | None = None


def implementations() -> tuple[Implementation, ...]:
    """Every implementation of every module of this package (imported once)."""
    global _found
    if _found is None:
        found: list[Implementation] = []
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.extend(getattr(module, "IMPLEMENTATIONS", ()))
        _check(found)
        _found = found
    return tuple(_found)


def _check(found: list[Implementation]) -> None:
    from trtdeploy import plugins

    ops = [impl.custom_op for impl in found]
    doubled = sorted({op for op in ops if ops.count(op) > 1})
    if doubled:
        raise ValueError(f"plugin reference custom ops declared twice: {', '.join(doubled)}")
    for impl in found:
        if plugins.get(impl.plugin) is None:
            raise ValueError(
                f"reference {impl.custom_op} is for {impl.plugin}, which trtdeploy.plugins does not register"
            )
        bad = [d for d in (*impl.inputs, *impl.outputs) if d not in DTYPES]
        if bad:
            raise ValueError(f"reference {impl.custom_op}: dtypes {bad} are not among {DTYPES}")


def referenced_plugins() -> frozenset[str]:
    """Op types of the plugins that have at least one CPU reference."""
    return frozenset(impl.plugin for impl in implementations())


def for_node(node: onnx.NodeProto) -> Implementation | None:
    """The implementation that runs ``node`` (a plugin node), or None when there is none."""
    for impl in implementations():
        if impl.plugin == node.op_type and (impl.applies is None or impl.applies(node)):
            return impl
    return None
