"""Plugin nodes rewritten into standard ONNX ops, for backends without the plugin.

TensorRT 11 removed the NMS_TRT and BatchedNMS families, and TensorRT-RTX has no plugins at
all; a graph that keeps the same output tensors (names, order, shapes, dtypes) built from
standard ops stays readable by the same DeepStream parser. One module per plugin declares a
module-level list ``REWRITES`` of ``Rewrite`` objects; ``rewrites()`` imports every module of
this package and collects them (no list to edit when a plugin is added).

``apply(graph, node)`` replaces ``node`` in the onnx-graphsurgeon ``graph`` with standard ops
that write the node's own output tensors, then detaches the node (``graph.cleanup()`` is the
caller's). ``differences`` says, measured, where the result can differ from the plugin (tie
order, score quantisation, ...): it goes into the deploy card and the docs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rewrite:
    plugin: str  # op type of the plugin node it replaces (registered in trtdeploy.plugins)
    apply: Callable[[Any, Any], None]  # (gs.Graph, gs.Node) -> None
    min_opset: int  # the lowest ONNX opset the standard ops need
    differences: str  # where and by how much the result can differ from the plugin, measured
    source: str = ""  # where the plugin's semantics were read
    # True: ``plugin`` names a standard ONNX op some backend cannot build (NonMaxSuppression on
    # TensorRT-RTX), rewritten only when asked for by name (rewrite_plugins(only=...))
    standard: bool = False


_found: dict[str, Rewrite] | None = None


def rewrites() -> dict[str, Rewrite]:
    """Every rewrite by plugin op type (modules imported once)."""
    global _found
    if _found is None:
        import onnx

        from trtdeploy import plugins

        found: dict[str, Rewrite] = {}
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for rewrite in getattr(module, "REWRITES", ()):
                if rewrite.plugin in found:
                    raise ValueError(f"two rewrites for plugin {rewrite.plugin}")
                if rewrite.standard:
                    if not onnx.defs.has(rewrite.plugin):
                        raise ValueError(f"rewrite for {rewrite.plugin}, which is not a standard ONNX op")
                elif plugins.get(rewrite.plugin) is None:
                    raise ValueError(f"rewrite for {rewrite.plugin}, which trtdeploy.plugins does not register")
                found[rewrite.plugin] = rewrite
        _found = found
    return dict(_found)


def rewritable() -> frozenset[str]:
    """Plugin op types that have a standard-op rewrite."""
    return frozenset(op for op, r in rewrites().items() if not r.standard)


def rewritable_standard() -> frozenset[str]:
    """Standard ONNX op types that have a rewrite (for backends that cannot build them)."""
    return frozenset(op for op, r in rewrites().items() if r.standard)
