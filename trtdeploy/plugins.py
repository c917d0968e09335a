"""TensorRT plugins as registered objects: the one list every module reads.

A ``Plugin`` holds what a graph with that plugin node needs to be checked, run and built:
op name and plugin version, the creator's attributes with their defaults, the output dtypes
(declared by ``getOutputDataType`` and actually written by the kernel: they differ for NMS_TRT),
the output shapes (so ``graph_passes.check_graph`` runs shape inference through plugin nodes),
and which backends ship it. CPU references (ONNX Runtime custom ops) live in
``trtdeploy.plugin_refs``, standard-op rewrites in ``trtdeploy.rewrites``, one module per plugin.

Facts are read in NVIDIA/TensorRT (mirror /work/.mirror/NVIDIA+TensorRT/repo):
* names, versions, attributes: ``plugin/<dir>/<plugin>.cpp`` on release/10.16 (the creator's
  ``PluginField`` list and ``createPlugin``);
* TensorRT 11: the plugin directory is absent from ``plugin/`` on release/11.0 and release/11.1
  (batchTilePlugin, batchedNMSPlugin, nmsPlugin, proposalPlugin, cropAndResizePluginLegacy.cpp);
  release/11.0 plugin/README.md lists what is left;
* TensorRT-RTX: docs/DOMAIN.md section 1 (only ROIAlign_TRT is built in; no plugin library).

This module imports nothing heavy and nothing of ours but trtdeploy.errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trtdeploy.errors import InputError

Dim = int | str | None  # a fixed size, a symbolic name, or unknown
ShapeFn = Callable[[dict[str, Any], Sequence[Sequence[Dim] | None]], list[list[Dim]]]

REQUIRED = None  # an attribute default: the creator has none, the node must carry it


@dataclass(frozen=True)
class Attr:
    name: str
    kind: str  # "f" float, "i" int, "ints", "floats"
    default: Any = REQUIRED


@dataclass(frozen=True)
class PluginOutput:
    """One output. ``declared`` is the dtype TensorRT reports for the tensor; ``written`` is the
    dtype of the bytes the kernel stores. "input" means the dtype of input 0 (float32 for us)."""

    name: str
    declared: str
    written: str

    def declared_dtype(self, input_dtype: str = "float32") -> str:
        return input_dtype if self.declared == "input" else self.declared

    def bytes_dtype(self, input_dtype: str = "float32") -> str:
        return input_dtype if self.written == "input" else self.written


@dataclass(frozen=True)
class Plugin:
    op_type: str
    version: str  # plugin_version of the creator
    attrs: tuple[Attr, ...]
    outputs: tuple[PluginOutput, ...]
    source: str  # where the facts were read
    shapes: ShapeFn | None = None  # None: output shapes are not modelled (left unknown)
    trt10: bool = True  # shipped in libnvinfer_plugin 10.x
    trt11: bool = False  # shipped in TensorRT 11.x
    rtx: bool = False  # built into TensorRT-RTX
    note: str = ""
    aliases: tuple[str, ...] = field(default=())

    def attribute_table(self) -> dict[str, tuple[str, Any]]:
        """name -> (kind, default); default None when the attribute is required."""
        return {a.name: (a.kind, a.default) for a in self.attrs}

    def resolved_attrs(self, given: dict[str, Any], node_name: str = "") -> dict[str, Any]:
        """``given`` completed with the defaults; raises InputError for a missing required one."""
        out = {}
        for a in self.attrs:
            value = given.get(a.name, a.default)
            if value is None:
                raise InputError(f"{self.op_type} node {node_name!r} lacks the required attribute {a.name!r}")
            out[a.name] = value
        return out

    def output_shapes(self, attrs: dict[str, Any], input_shapes: Sequence[Sequence[Dim] | None]) -> list[list[Dim]] | None:
        """Output shapes for these attributes and input shapes (None when not modelled or an
        input shape is unknown)."""
        if self.shapes is None or any(shape is None for shape in input_shapes[:1]):
            return None
        return self.shapes(attrs, input_shapes)

    def shipped_by(self, backend: str, major: int) -> bool:
        """Does ``backend`` ("tensorrt" at ``major`` or "tensorrt_rtx") ship this plugin?"""
        if backend == "tensorrt_rtx":
            return self.rtx
        return self.trt10 if major <= 10 else self.trt11


_REGISTRY: dict[str, Plugin] = {}


def register(plugin: Plugin) -> Plugin:
    if plugin.op_type in _REGISTRY:
        raise ValueError(f"plugin {plugin.op_type} registered twice")
    _REGISTRY[plugin.op_type] = plugin
    return plugin


def get(op_type: str) -> Plugin | None:
    return _REGISTRY.get(op_type)


def all_plugins() -> tuple[Plugin, ...]:
    return tuple(_REGISTRY.values())


def op_types() -> frozenset[str]:
    """Registered op types (which of them have a CPU reference: trtdeploy.plugin_refs)."""
    return frozenset(_REGISTRY)


def removed_in(backend: str, major: int) -> frozenset[str]:
    """Registered plugins ``backend`` at ``major`` does not ship."""
    return frozenset(p.op_type for p in _REGISTRY.values() if not p.shipped_by(backend, major))


def bytes_dtype(op_type: str, index: int, declared: str, only_if_declared: bool = False) -> str:
    """The dtype of the bytes in output ``index`` of a ``op_type`` node declared ``declared``.

    With ``only_if_declared`` (the producer is assumed, not known) the written dtype is given
    only when ``declared`` is the plugin's declared dtype; otherwise ``declared`` is returned."""
    plugin = _REGISTRY.get(op_type)
    if plugin is None or not 0 <= index < len(plugin.outputs):
        return declared
    spec = plugin.outputs[index]
    if only_if_declared and spec.declared_dtype(declared) != declared:
        return declared
    return spec.bytes_dtype(declared)


def plugin_outputs_of(model: Any) -> dict[str, tuple[str, int]]:
    """Tensor name -> (plugin op type, output index) for every registered plugin node's output
    in an onnx.ModelProto (read duck-typed: this module does not import onnx)."""
    found = {}
    for node in model.graph.node:
        if node.op_type in _REGISTRY:
            for index, name in enumerate(node.output):
                if name:
                    found[name] = (node.op_type, index)
    return found


def is_plugin_node(op_type: str, domain: str) -> bool:
    """A registered plugin node: default domain (TensorRT's parser looks plugins up by op type)
    or the domain ``check_graph`` moves it to for the checker."""
    return op_type in _REGISTRY and domain in ("", "ai.onnx", CHECK_DOMAIN)


CHECK_DOMAIN = "trt.plugins"


# ---- shape rules (each cites the getOutputDimensions / getOutputShapes it restates) ----


def _batch(shapes: Sequence[Sequence[Dim] | None]) -> Dim:
    first = shapes[0]
    return first[0] if first else None


def _detections_shapes(count_attr: str) -> ShapeFn:
    """[B,1], [B,K,4], [B,K], [B,K] with K = attrs[count_attr]."""

    def shapes(attrs: dict[str, Any], inputs: Sequence[Sequence[Dim] | None]) -> list[list[Dim]]:
        b, k = _batch(inputs), int(attrs[count_attr])
        return [[b, 1], [b, k, 4], [b, k], [b, k]]

    return shapes


def _nms_trt_shapes(attrs: dict[str, Any], inputs: Sequence[Sequence[Dim] | None]) -> list[list[Dim]]:
    # release/10.16 plugin/nmsPlugin/nmsPlugin.cpp l.157-204 (DetectionOutputDynamic::getOutputDimensions):
    # (N, 1, keepTopK, 7) and (N, 1, 1, 1).
    b = _batch(inputs)
    return [[b, 1, int(attrs["keepTopK"]), 7], [b, 1, 1, 1]]


def _crop_and_resize_shapes(attrs: dict[str, Any], inputs: Sequence[Sequence[Dim] | None]) -> list[list[Dim]]:
    # release/10.16 plugin/cropAndResizePlugin/cropAndResizePlugin.cpp l.78-86: feature [N,C,H,W],
    # rois [N,R,4] -> [N, R, C, crop_height, crop_width].
    feature, rois = inputs[0], inputs[1] if len(inputs) > 1 else None
    r = rois[1] if rois and len(rois) > 1 else None
    c = feature[1] if feature and len(feature) > 1 else None
    return [[_batch(inputs), r, c, int(attrs["crop_height"]), int(attrs["crop_width"])]]


def _roi_align_shapes(attrs: dict[str, Any], inputs: Sequence[Sequence[Dim] | None]) -> list[list[Dim]]:
    # release/10.16 plugin/roiAlignPlugin/roiAlignPlugin.cpp l.259-279: X [N,C,H,W], rois [R,4],
    # batch indices [R] -> [R, C, output_height, output_width].
    rois = inputs[1] if len(inputs) > 1 else None
    c = inputs[0][1] if inputs[0] and len(inputs[0]) > 1 else None
    return [[rois[0] if rois else None, c, int(attrs["output_height"]), int(attrs["output_width"])]]


def _resize_nearest_shapes(attrs: dict[str, Any], inputs: Sequence[Sequence[Dim] | None]) -> list[list[Dim]]:
    # release/10.16 plugin/resizeNearestPlugin/resizeNearestPlugin.cpp l.109-124: the last two
    # dims are int(d * scale), the others kept.
    shape = list(inputs[0] or [])
    scale = float(attrs["scale"])
    for i in range(max(len(shape) - 2, 0), len(shape)):
        dim = shape[i]
        shape[i] = int(dim * scale) if isinstance(dim, int) else None
    return [shape]


def _batch_tile_shapes(attrs: dict[str, Any], inputs: Sequence[Sequence[Dim] | None]) -> list[list[Dim]]:
    # release/10.16 plugin/batchTilePlugin/batchTilePlugin.cpp l.60-69, l.109-115: input 1
    # [1, d1, d2, d3] copied once per image of input 0's batch.
    tile = inputs[1] if len(inputs) > 1 else None
    rest: list[Dim] = list(tile[1:]) if tile and len(tile) == 4 else [None, None, None]
    return [[_batch(inputs), *rest]]


def _proposal_dynamic_shapes(attrs: dict[str, Any], inputs: Sequence[Sequence[Dim] | None]) -> list[list[Dim]]:
    # release/10.16 plugin/proposalPlugin/proposalPlugin.cpp l.264-279: (N, post_nms_top_n, 4, 1).
    return [[_batch(inputs), int(attrs["post_nms_top_n"]), 4, 1]]


# ---- the registry ----------------------------------------------------------------------


def _defaults(kind: str, **defaults: Any) -> tuple[Attr, ...]:
    """Attributes of one kind with the creator's defaults, in the creator's order."""
    return tuple(Attr(name, kind, value) for name, value in defaults.items())


def _required(kind: str, names: str) -> tuple[Attr, ...]:
    """Attributes of one kind without a default, in the creator's order."""
    return tuple(Attr(name, kind) for name in names.split())


_DETECTION_OUTPUTS_EFFICIENT = (
    PluginOutput("num_detections", "int32", "int32"),
    PluginOutput("detection_boxes", "input", "input"),
    PluginOutput("detection_scores", "input", "input"),
    PluginOutput("detection_classes", "int32", "int32"),
)
# EfficientNMS_TRT: release/10.16 plugin/efficientNMSPlugin/efficientNMSPlugin.cpp l.135-151
# (outputs 0 and 3 kINT32, 1 and 2 the input type) and efficientNMSInference.cu l.119-121
# (WriteNMSResult stores int* numDetectionsOutput, T* scores, int* classes, BoxCorner<T>* boxes).
register(
    Plugin(
        op_type="EfficientNMS_TRT",
        version="1",
        attrs=(
            *_defaults("f", score_threshold=0.5, iou_threshold=0.5),
            *_defaults("i", max_output_boxes=100, background_class=-1, score_activation=0),
            *_defaults("i", class_agnostic=0, box_coding=0),
        ),
        outputs=_DETECTION_OUTPUTS_EFFICIENT,
        shapes=_detections_shapes("max_output_boxes"),
        trt11=True,  # still in release/11.0 and 11.1 plugin/efficientNMSPlugin (deprecated since 10.12)
        source="NVIDIA/TensorRT release/10.16 plugin/efficientNMSPlugin/efficientNMSPlugin.cpp l.31-32, l.419-425",
        note="deprecated since TensorRT 10.12 (release/11.0 plugin/efficientNMSPlugin/README.md l.21)",
    )
)
register(
    Plugin(
        op_type="EfficientNMS_ONNX_TRT",
        version="1",
        attrs=(
            *_defaults("f", score_threshold=0.0, iou_threshold=0.0),
            *_defaults("i", max_output_boxes_per_class=0, center_point_box=0),
        ),
        # l.138-142: with ONNX indices every output is kINT32 (selected_indices [K,3])
        outputs=(PluginOutput("selected_indices", "int32", "int32"),),
        source="NVIDIA/TensorRT release/10.16 plugin/efficientNMSPlugin/efficientNMSPlugin.cpp l.33-34, l.540-543",
        # release/11.0 plugin/efficientNMSPlugin/README.md l.21 says "removed in TensorRT 10.16", yet
        # release/10.16 plugin/api/inferPlugin.cpp l.200 still registers its creator: 10.x has it.
        note="absent from release/11.0 (use INMSLayer)",
    )
)

# BatchedNMS_TRT / BatchedNMSDynamic_TRT: release/10.16 plugin/batchedNMSPlugin/batchedNMSPlugin.cpp
# l.567-585 (output 0 kINT32, the others the input type: classes are float) and
# gatherNMSOutputs.cu l.51-54 (int* numDetections, T_BBOX* boxes, scores, classes).
_BATCHED_ATTRS = (
    *_required("i", "shareLocation backgroundLabelId numClasses topK keepTopK"),
    *_required("f", "scoreThreshold iouThreshold"),
    Attr("isNormalized", "i", 1),
    Attr("clipBoxes", "i", 1),
    Attr("scoreBits", "i", 16),
    Attr("caffeSemantics", "i", 1),
)
_BATCHED_OUTPUTS = (
    PluginOutput("num_detections", "int32", "int32"),
    PluginOutput("nmsed_boxes", "input", "input"),
    PluginOutput("nmsed_scores", "input", "input"),
    PluginOutput("nmsed_classes", "input", "input"),
)
for _name in ("BatchedNMS_TRT", "BatchedNMSDynamic_TRT"):
    register(
        Plugin(
            op_type=_name,
            version="1",
            attrs=_BATCHED_ATTRS,
            outputs=_BATCHED_OUTPUTS,
            shapes=_detections_shapes("keepTopK"),
            source="NVIDIA/TensorRT release/10.16 plugin/batchedNMSPlugin/batchedNMSPlugin.cpp l.34-35, l.631-641",
            note="absent from release/11.0 plugin/",
        )
    )

# NMS_TRT / NMSDynamic_TRT (TAO SSD, DSSD, RetinaNet, FasterRCNN): output 1, the keep count, is
# DECLARED kFLOAT (release/10.16 plugin/nmsPlugin/nmsPlugin.cpp l.440-453: "use kFLOAT instead as
# they have same sizeof(type)") but WRITTEN as int32 (plugin/common/kernels/gatherTopDetections.cu
# l.51, ``int* keepCount``). Readers of the bytes must read int32.
_NMS_OUTPUTS = (
    PluginOutput("detections", "input", "input"),
    PluginOutput("keep_count", "float32", "int32"),
)
_NMS_ATTRS = (
    *_required("i", "shareLocation varianceEncodedInTarget backgroundLabelId numClasses topK keepTopK"),
    *_required("f", "confidenceThreshold nmsThreshold"),
    Attr("inputOrder", "ints", (0, 2, 1)),  # createPlugin l.640-642
    *_required("i", "confSigmoid isNormalized"),
    Attr("codeType", "i", 3),  # CodeTypeSSD::TF_CENTER, createPlugin l.639
    Attr("scoreBits", "i", 16),  # l.643-644
    Attr("isBatchAgnostic", "i", 1),
)
for _name in ("NMS_TRT", "NMSDynamic_TRT"):
    register(
        Plugin(
            op_type=_name,
            version="1",
            attrs=_NMS_ATTRS,
            outputs=_NMS_OUTPUTS,
            shapes=_nms_trt_shapes,
            source="NVIDIA/TensorRT release/10.16 plugin/nmsPlugin/nmsPlugin.cpp l.28-29, l.583-596",
            note="deprecated since TensorRT 9.0 (createPlugin warning l.634); absent from release/11.0",
        )
    )

# CropAndResize v1 (legacy, implicit batch) and CropAndResizeDynamic v1 live in
# cropAndResizePluginLegacy.cpp (release/10.16 l.31-34), gone in release/11.0; CropAndResizeDynamic
# v2 (cropAndResizePlugin.cpp l.30-31) stays in 11.x. The registry keys by op type: the v2 facts
# are CropAndResizeDynamic's (plugin_version "2" selects it; "1" exists on 10.x only).
_CROP_ATTRS = (Attr("crop_width", "i"), Attr("crop_height", "i"))
register(
    Plugin(
        op_type="CropAndResize",
        version="1",
        attrs=_CROP_ATTRS,
        outputs=(PluginOutput("crops", "input", "input"),),
        source="NVIDIA/TensorRT release/10.16 plugin/cropAndResizePlugin/cropAndResizePluginLegacy.cpp l.31-33, l.504-505",
        note="no CPU reference yet; implicit-batch plugin (output shapes not modelled); removed in TensorRT 11",
    )
)
register(
    Plugin(
        op_type="CropAndResizeDynamic",
        version="2",
        attrs=_CROP_ATTRS,
        outputs=(PluginOutput("crops", "input", "input"),),
        shapes=_crop_and_resize_shapes,
        trt11=True,
        source="NVIDIA/TensorRT release/10.16 plugin/cropAndResizePlugin/cropAndResizePlugin.cpp l.30-31, l.168-169",
        note="version 1 (legacy) removed in TensorRT 11, version 2 kept",
    )
)
# ProposalDynamic and Proposal share one creator base (proposalPlugin.cpp l.637-651: the same
# nine fields, none with a default) and one kernel; Proposal is the implicit-batch form (inputs
# without the batch dim, output (post_nms_top_n, 4, 1): l.243-262), deprecated since 9.0 (l.682).
_PROPOSAL_ATTRS = (
    *_required("i", "input_height input_width rpn_stride"),
    *_required("f", "roi_min_size nms_iou_threshold"),
    *_required("i", "pre_nms_top_n post_nms_top_n"),
    *_required("floats", "anchor_sizes anchor_ratios"),
)
_PROPOSAL_KINDS: tuple[tuple[str, ShapeFn | None, str], ...] = (
    ("ProposalDynamic", _proposal_dynamic_shapes, "absent from release/11.0"),
    ("Proposal", None, "implicit-batch plugin (output shapes not modelled); deprecated since TensorRT 9.0; "
     "absent from release/11.0"),
)  # fmt: skip
for _name, _shapes, _note in _PROPOSAL_KINDS:
    register(
        Plugin(
            op_type=_name,
            version="1",
            attrs=_PROPOSAL_ATTRS,
            outputs=(PluginOutput("rois", "float32", "float32"),),
            shapes=_shapes,
            source="NVIDIA/TensorRT release/10.16 plugin/proposalPlugin/proposalPlugin.cpp l.37-38, l.640-648",
            note=_note,
        )
    )
register(
    Plugin(
        op_type="BatchTilePlugin_TRT",
        version="1",
        attrs=(),
        # getOutputDataType l.87-100: always kFLOAT
        outputs=(PluginOutput("tiled", "float32", "float32"),),
        shapes=_batch_tile_shapes,
        source="NVIDIA/TensorRT release/10.16 plugin/batchTilePlugin/batchTilePlugin.cpp l.31-32",
        note="implicit-batch plugin (TAO YOLO UFF exports); absent from release/11.0",
    )
)
register(
    Plugin(
        op_type="ResizeNearest_TRT",
        version="1",
        attrs=(Attr("scale", "f"),),
        outputs=(PluginOutput("resized", "input", "input"),),
        shapes=_resize_nearest_shapes,
        trt11=True,  # release/11.0 plugin/README.md l.41 (deprecated)
        source="NVIDIA/TensorRT release/10.16 plugin/resizeNearestPlugin/resizeNearestPlugin.cpp l.33-34, l.40",
        note="deprecated",
    )
)
register(
    Plugin(
        op_type="ROIAlign_TRT",
        version="2",
        attrs=(
            # createPlugin defaults, roiAlignPlugin.cpp l.73-78 (aligned 1 = half_pixel)
            *_defaults("i", coordinate_transformation_mode=1, mode=1, output_height=1, output_width=1),
            *_defaults("i", sampling_ratio=0),
            *_defaults("f", spatial_scale=1.0),
        ),
        outputs=(PluginOutput("pooled", "input", "input"),),
        shapes=_roi_align_shapes,
        trt11=True,
        rtx=True,  # docs/DOMAIN.md s.1: the one general plugin TensorRT-RTX builds in
        source="NVIDIA/TensorRT release/10.16 plugin/roiAlignPlugin/roiAlignPlugin.cpp l.29-30, l.38-43",
        note="no CPU reference yet (ONNX Runtime's RoiAlign is the same op); version 1 legacy deprecated",
    )
)
register(
    Plugin(
        op_type="MultilevelCropAndResize_TRT",
        version="1",
        attrs=(Attr("pooled_size", "i"), Attr("image_size", "ints")),
        outputs=(PluginOutput("crops", "input", "input"),),
        trt11=True,  # release/11.0 plugin/README.md l.28 (deprecated)
        source="NVIDIA/TensorRT release/10.16 plugin/multilevelCropAndResizePlugin/multilevelCropAndResizePlugin.cpp l.32-33, l.39-40",
        note="TAO MaskRCNN; no CPU reference yet; implicit-batch plugin (output shapes not modelled)",
    )
)
register(
    Plugin(
        op_type="MultilevelProposeROI_TRT",
        version="1",
        attrs=(
            *_required("i", "prenms_topk keep_topk"),
            *_required("f", "fg_threshold iou_threshold"),
            Attr("image_size", "ints"),
        ),
        outputs=(PluginOutput("rois", "input", "input"),),
        trt11=True,  # release/11.0 plugin/README.md l.29 (deprecated)
        source="NVIDIA/TensorRT release/10.16 plugin/multilevelProposeROI/multilevelProposeROIPlugin.cpp l.35-36, l.42-46",
        note="TAO MaskRCNN; no CPU reference yet; implicit-batch plugin (output shapes not modelled)",
    )
)

# Other plugins gone from TensorRT 11.0 that a detector graph can carry (their directories are
# absent from release/11.0 plugin/; names from release/10.16 plugin/<dir>/*.cpp). Only their
# names are modelled, so TensorRT 11 refuses them before building. (The Split plugin is not
# listed: its op name is ONNX's Split, which TensorRT's parser builds natively; singleStepLSTM
# is already absent from release/10.16 plugin/.)
for _name, _dir in (
    ("Clip_TRT", "clipPlugin"),
    ("CoordConvAC", "coordConvACPlugin"),
    ("CustomGeluPluginDynamic", "geluPlugin"),  # geluPlugin.cpp l.37 (not "GELU")
    ("LReLU_TRT", "leakyReluPlugin"),
    ("Normalize_TRT", "normalizePlugin"),
    ("SpecialSlice_TRT", "specialSlicePlugin"),
):
    register(
        Plugin(
            op_type=_name,
            version="1",
            attrs=(),
            outputs=(),
            source=f"NVIDIA/TensorRT release/10.16 plugin/{_dir}",
            note="only the name is modelled; absent from release/11.0",
        )
    )
