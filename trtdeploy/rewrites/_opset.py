"""Raise a plugin graph's ONNX opset to what a rewrite needs, with ONNX's own version converter.

TAO exports at opset 12 (NVIDIA/tao_tensorflow1_backend main, nvidia_tao_tf1/cv/common/export/
app.py l.156-159: ``--target_opset`` default 12), while some rewrites need newer ops (the
CropAndResizeDynamic rewrite uses GridSample, opset 16). ``onnx.version_converter`` rewrites the
standard nodes whose definition changed (e.g. Softmax 12 -> 13 keeps its 2-D semantics) but
refuses ops it does not know, so the plugin nodes ride through in a private domain, which the
converter leaves alone, and are put back in the default domain afterwards.
"""

from __future__ import annotations

import onnx

from trtdeploy import plugins
from trtdeploy.errors import UnsupportedModelError

_PARKED = "trtdeploy.parked_plugins"  # a domain the converter does not touch


def default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def with_opset(model: onnx.ModelProto, need: int) -> onnx.ModelProto:
    """``model`` itself when its default-domain opset is >= ``need``, else a converted copy whose
    plugin nodes are unchanged. Raises UnsupportedModelError when ONNX cannot convert it."""
    have = default_opset(model)
    if have >= need:
        return model
    parked = onnx.ModelProto()
    parked.CopyFrom(model)
    moved = [n for n in parked.graph.node if plugins.is_plugin_node(n.op_type, n.domain)]
    domains = {tuple(n.output): (n.HasField("domain"), n.domain) for n in moved}  # restored as they were
    for node in moved:
        node.domain = _PARKED
    parked.opset_import.append(onnx.helper.make_opsetid(_PARKED, 1))
    try:
        converted = onnx.version_converter.convert_version(parked, need)
    except Exception as exc:  # noqa: BLE001 - the converter raises RuntimeError and C++ errors
        raise UnsupportedModelError(
            f"cannot raise the model's opset {have} to {need} (needed by a plugin rewrite): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; re-export with opset >= {need}"
        ) from exc
    for node in converted.graph.node:
        if node.domain == _PARKED:
            had, domain = domains.get(tuple(node.output), (False, ""))
            node.domain = domain
            if not had:
                node.ClearField("domain")
    kept = [o for o in converted.opset_import if o.domain != _PARKED]
    del converted.opset_import[:]
    converted.opset_import.extend(kept)
    return converted
