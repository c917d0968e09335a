"""Run graphs that contain TensorRT NMS plugin nodes in ONNX Runtime, on a CPU.

ONNX Runtime has no EfficientNMS_TRT or BatchedNMS(Dynamic)_TRT kernels. ``make_session``
runs such a graph by registering the NumPy references of ``trtdeploy.nms.reference`` as
onnxruntime-extensions Python custom ops and pointing the plugin nodes at them in an
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

from trtdeploy import plugins
from trtdeploy.errors import InputError, MissingDependencyError, UnsupportedModelError
from trtdeploy.nms import reference

if TYPE_CHECKING:
    import onnxruntime

CUSTOM_DOMAIN = "ai.onnx.contrib"

# Plugins with a NumPy reference, from the registry: op type -> the plugin (its ``reference`` is
# the private custom-op type, its attributes (with the creators' defaults) what the op declares).
_PLUGINS = {p.op_type: p for p in plugins.all_plugins() if p.reference is not None}
_EFFICIENT_ATTRS = plugins.get("EfficientNMS_TRT").attribute_table()  # type: ignore[union-attr]
_BATCHED_ATTRS = plugins.get("BatchedNMS_TRT").attribute_table()  # type: ignore[union-attr]
_EFFICIENT_WITH_ANCHORS = "TrtDeployEfficientNMSAnchors"

_registered = False
_lock = threading.Lock()


def has_plugin_nodes(model: onnx.ModelProto) -> bool:
    return any(
        node.op_type in _PLUGINS and node.domain in ("", "ai.onnx") for node in model.graph.node
    )


def make_session(model: onnx.ModelProto | str | Path) -> onnxruntime.InferenceSession:
    """A CPU ONNX Runtime session for ``model`` (a ModelProto or a path), plugin nodes included."""
    import onnxruntime as ort

    if not isinstance(model, onnx.ModelProto):
        path = Path(model)
        if not path.is_file():
            raise InputError(f"ONNX model {path} not found")
        model = onnx.load(str(path))
    _refuse_plugins_without_reference(model)
    options = ort.SessionOptions()
    if has_plugin_nodes(model):
        model = with_reference_ops(model)
        options.register_custom_ops_library(_extensions_library())
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _refuse_plugins_without_reference(model: onnx.ModelProto) -> None:
    """A registered plugin with no NumPy reference cannot run on a CPU: say so, naming it."""
    lacking = sorted(
        {
            node.op_type
            for node in model.graph.node
            if node.op_type not in _PLUGINS and plugins.is_plugin_node(node.op_type, node.domain)
        }
    )
    if lacking:
        raise UnsupportedModelError(
            f"the ONNX uses TensorRT plugin(s) {', '.join(lacking)}, which have no CPU reference in "
            "trtdeploy yet, so ONNX Runtime cannot run it; check it with TensorRT instead"
        )


def with_reference_ops(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose plugin nodes call the NumPy reference custom ops."""
    model = copy.deepcopy(model)
    for node in model.graph.node:
        if node.op_type not in _PLUGINS or node.domain not in ("", "ai.onnx"):
            continue
        plugin = _PLUGINS[node.op_type]
        op_type = plugin.reference
        if node.op_type == "EfficientNMS_TRT" and len(node.input) == 3:
            op_type = _EFFICIENT_WITH_ANCHORS
        given = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        table = plugin.attribute_table()
        attrs = [
            onnx.helper.make_attribute(name, float(value) if table[name][0] == "f" else int(value))
            for name, value in plugin.resolved_attrs(given, node.name).items()
        ]
        del node.attribute[:]
        node.attribute.extend(attrs)
        node.op_type = op_type
        node.domain = CUSTOM_DOMAIN
    if not any(o.domain == CUSTOM_DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(CUSTOM_DOMAIN, 1))
    return model


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
    f32, i32 = types.dt_float, types.dt_int32

    def declared(table: dict[str, tuple[str, Any]]) -> dict[str, Any]:
        return {
            name: (types.dt_float if kind == "f" else types.dt_int64)
            for name, (kind, _) in table.items()
        }

    def efficient(
        boxes: np.ndarray, scores: np.ndarray, anchors: np.ndarray | None = None, **attrs: Any
    ) -> tuple:
        return reference.efficient_nms(
            boxes,
            scores,
            anchors,
            score_threshold=attrs["score_threshold"],
            iou_threshold=attrs["iou_threshold"],
            max_output_boxes=attrs["max_output_boxes"],
            background_class=attrs["background_class"],
            score_activation=bool(attrs["score_activation"]),
            class_agnostic=bool(attrs["class_agnostic"]),
            box_coding=attrs["box_coding"],
        )

    def batched(boxes: np.ndarray, scores: np.ndarray, **attrs: Any) -> tuple:
        return reference.batched_nms(
            boxes,
            scores,
            share_location=bool(attrs["shareLocation"]),
            background_label_id=attrs["backgroundLabelId"],
            num_classes=attrs["numClasses"],
            top_k=attrs["topK"],
            keep_top_k=attrs["keepTopK"],
            score_threshold=attrs["scoreThreshold"],
            iou_threshold=attrs["iouThreshold"],
            is_normalized=bool(attrs["isNormalized"]),
            clip_boxes=bool(attrs["clipBoxes"]),
            score_bits=attrs["scoreBits"],
            caffe_semantics=bool(attrs["caffeSemantics"]),
        )

    detections = [i32, f32, f32, i32]
    ortx.onnx_op(
        op_type="TrtDeployEfficientNMS",
        inputs=[f32, f32],
        outputs=detections,
        attrs=declared(_EFFICIENT_ATTRS),
    )(efficient)
    ortx.onnx_op(
        op_type=_EFFICIENT_WITH_ANCHORS,
        inputs=[f32, f32, f32],
        outputs=detections,
        attrs=declared(_EFFICIENT_ATTRS),
    )(efficient)
    ortx.onnx_op(
        op_type="TrtDeployBatchedNMS",
        inputs=[f32, f32],
        outputs=[i32, f32, f32, f32],
        attrs=declared(_BATCHED_ATTRS),
    )(batched)
