"""Which way build-engine takes a graph's TensorRT plugin nodes: kept or rewritten.

TensorRT 10 ships every registered plugin (they stay, loaded from libnvinfer_plugin or
``--plugin-lib``); TensorRT 11 lacks the NMS_TRT, BatchedNMS, BatchTile, Proposal... families
and TensorRT-RTX has no plugin library (``trtdeploy.plugins`` flags, read through
``Capabilities.unavailable_plugin``). A node the backend lacks is rewritten into standard ops
when ``trtdeploy.rewrites`` has a rewrite for it; otherwise the preflight check refuses it. The
path taken goes into the engine sidecar (``plugins``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx

from trtdeploy.engine.capabilities import Capabilities
from trtdeploy.log import get_logger

log = get_logger("engine")

NONE, KEPT, REWRITTEN, MIXED = "none", "kept", "rewritten", "kept+rewritten"
REWRITE_PREFIX = "rewrite/"  # the node names of the standard ops a rewrite adds (trtdeploy.rewrites)


@dataclass
class PluginPath:
    path: str = NONE  # NONE | KEPT | REWRITTEN | MIXED
    kept: list[str] = field(default_factory=list)  # plugin op types left for the backend's plugin library
    rewritten: list[dict[str, Any]] = field(default_factory=list)  # trtdeploy.rewrites.driver.Rewritten dicts

    @property
    def rewritten_ops(self) -> frozenset[str]:
        return frozenset(r["plugin"] for r in self.rewritten)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kept": list(self.kept), "rewritten": [dict(r) for r in self.rewritten]}


def resolve_plugins(model: onnx.ModelProto, caps: Capabilities) -> tuple[onnx.ModelProto, PluginPath]:
    """``model`` with the plugins ``caps`` lacks rewritten (when all of them can be), and the path.

    When a lacking plugin has no rewrite the model is returned unchanged: the preflight check
    then names every node the backend cannot build."""
    from trtdeploy.rewrites import rewritable
    from trtdeploy.rewrites.driver import plugin_nodes, rewrite_plugins

    present = {op for _, op in plugin_nodes(model)}
    if not present:
        return model, PluginPath()
    lacking = {op for op in present if caps.unavailable_plugin(op)}
    if lacking - rewritable():
        return model, PluginPath(KEPT, sorted(present))
    done: list[Any] = []
    if lacking:
        model, done = rewrite_plugins(model, only=lacking)
        log.info(
            "%s lacks plugin(s) %s: rewritten into standard ops (%d node(s))",
            caps.label,
            ", ".join(sorted(lacking)),
            len(done),
        )
    kept = sorted(present - lacking)
    path = MIXED if kept and done else (REWRITTEN if done else KEPT)
    return model, PluginPath(path, kept, [r.to_dict() for r in done])
