"""Refusals made before any building starts, from the ONNX and the backend's capabilities.

Each message names the node or option and the fix; nothing is written when one fires.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from trtdeploy.engine.capabilities import NMS_PLUGIN_OPS, Capabilities
from trtdeploy.errors import UnsupportedModelError, UsageError


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return f"{node.name!r} ({node.op_type})" if node.name else f"node #{index} ({node.op_type})"


def check_graph_ops(model: onnx.ModelProto, caps: Capabilities) -> None:
    """Refuse plugin ops and NMS layers this backend cannot build, listing every such node."""
    missing_plugins: list[str] = []
    nms_layers: list[str] = []
    op_types: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if node.op_type == "NonMaxSuppression" and not caps.nms_layer:
            nms_layers.append(_node_label(node, index))
        elif (
            node.domain in ("", "ai.onnx", "trt.plugins")
            and _is_plugin_op(node.op_type)
            and caps.unavailable_plugin(node.op_type)
        ):
            missing_plugins.append(_node_label(node, index))
            op_types.add(node.op_type)
    if missing_plugins:
        nodes = ", ".join(missing_plugins)
        if not caps.plugins:
            raise UnsupportedModelError(
                f"{caps.label} has no plugins, but the ONNX uses plugin node(s) {nodes}; re-export with "
                "`trtdeploy create-onnx --nms none` (DeepStream then clusters the raw boxes) or build with "
                "TensorRT 10/11"
            )
        fix = (
            "re-export with `trtdeploy create-onnx --nms onnx` (standard NonMaxSuppression, the NMS layer)"
            if op_types <= NMS_PLUGIN_OPS  # an NMS plugin: the NMS layer replaces it
            else "re-export without these ops"
        )
        raise UnsupportedModelError(
            f"{caps.label} {caps.version} removed the plugin(s) used by {nodes}; {fix}, or build with TensorRT 10"
        )
    if nms_layers:
        raise UnsupportedModelError(
            f"{caps.label} cannot build the NMS layer made from ONNX NonMaxSuppression node(s) "
            f"{', '.join(nms_layers)}; re-export with `trtdeploy create-onnx --nms none` and let "
            "DeepStream cluster the boxes (cluster-mode=2), or build with TensorRT 10/11"
        )


def _is_plugin_op(op_type: str) -> bool:
    """Plugin ops live in the default domain without an ONNX schema (e.g. EfficientNMS_TRT)."""
    try:
        onnx.defs.get_schema(op_type)
    except onnx.defs.SchemaError:
        return True
    return False


def check_options(
    caps: Capabilities,
    *,
    dla_core: int | None,
    gpu_fallback: bool,
    plugin_libs: Sequence[str],
    compute_capabilities: Sequence[str],
) -> None:
    """Refuse options the backend cannot honour (machine facts like DLA count come later)."""
    if dla_core is not None and not caps.dla:
        raise UsageError(
            f"--dla-core {dla_core}: {caps.label} cannot build for DLA; drop --dla-core (DLA is on Jetson with TensorRT 10)"
        )
    if dla_core is not None and dla_core < 0:
        raise UsageError(f"--dla-core must be >= 0, got {dla_core}")
    if gpu_fallback and dla_core is None:
        raise UsageError("--gpu-fallback only applies with --dla-core N")
    if plugin_libs and not caps.plugins:
        raise UsageError(f"--plugin-lib: {caps.label} cannot load plugin libraries; drop it")
    if compute_capabilities and not caps.ahead_of_time:
        raise UsageError(
            f"--compute-capability is for TensorRT-RTX ahead-of-time builds; {caps.label} builds for the GPU it runs on"
        )


def check_dla_available(caps: Capabilities, dla_core: int | None, num_dla_cores: int) -> None:
    """After the builder exists: refuse a DLA core this machine does not have."""
    if dla_core is None:
        return
    if num_dla_cores == 0:
        raise UsageError(
            f"--dla-core {dla_core}: this machine has no DLA (only Jetson AGX/NX modules do); drop --dla-core"
        )
    if dla_core >= num_dla_cores:
        raise UsageError(
            f"--dla-core {dla_core}: this machine has {num_dla_cores} DLA core(s) (0..{num_dla_cores - 1})"
        )
