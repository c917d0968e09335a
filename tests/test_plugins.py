"""The plugin registry (issue 12 item 3): one list of TensorRT plugins, read by the graph checker,
the backend capabilities, the preflight refusals, the ONNX Runtime references and the DeepStream
parser checks. Expected facts are restated from NVIDIA/TensorRT's source (cited per test), not
taken from the registry."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtdeploy import plugins
from trtdeploy.errors import GraphError, UnsupportedModelError
from trtdeploy.graph_passes import check_graph

# (op type, plugin_version) from the creators' getPluginVersion, NVIDIA/TensorRT release/10.16:
# efficientNMSPlugin.cpp l.31-32, batchedNMSPlugin.cpp l.34-35, nmsPlugin.cpp l.28-29,
# cropAndResizePluginLegacy.cpp l.31-33, cropAndResizePlugin.cpp l.30-31, proposalPlugin.cpp l.37-38,
# batchTilePlugin.cpp l.31-32, resizeNearestPlugin.cpp l.33-34, roiAlignPlugin.cpp l.29-30,
# multilevelCropAndResizePlugin.cpp l.32-33, multilevelProposeROIPlugin.cpp l.35-36.
VERSIONS = {
    "EfficientNMS_TRT": "1",
    "BatchedNMS_TRT": "1",
    "BatchedNMSDynamic_TRT": "1",
    "NMS_TRT": "1",
    "NMSDynamic_TRT": "1",
    "CropAndResize": "1",
    "CropAndResizeDynamic": "2",
    "ProposalDynamic": "1",
    "BatchTilePlugin_TRT": "1",
    "ResizeNearest_TRT": "1",
    "ROIAlign_TRT": "2",
    "MultilevelCropAndResize_TRT": "1",
    "MultilevelProposeROI_TRT": "1",
}
# Directories present on release/11.0 and release/11.1 plugin/: efficientNMSPlugin,
# cropAndResizePlugin (only cropAndResizePlugin.cpp, v2), resizeNearestPlugin, roiAlignPlugin,
# multilevelCropAndResizePlugin, multilevelProposeROI; absent: batchedNMSPlugin, nmsPlugin,
# proposalPlugin, batchTilePlugin, cropAndResizePluginLegacy.cpp.
IN_TRT11 = {
    "EfficientNMS_TRT",
    "CropAndResizeDynamic",
    "ResizeNearest_TRT",
    "ROIAlign_TRT",
    "MultilevelCropAndResize_TRT",
    "MultilevelProposeROI_TRT",
}


def test_the_plugins_the_next_issues_need_are_registered_with_their_versions():
    for op_type, version in VERSIONS.items():
        plugin = plugins.get(op_type)
        assert plugin is not None, op_type
        assert plugin.version == version, op_type
        assert plugin.source.startswith("NVIDIA/TensorRT release/10.16 plugin/"), op_type


def test_which_backends_ship_each_plugin():
    for op_type in VERSIONS:
        plugin = plugins.get(op_type)
        assert plugin.shipped_by("tensorrt", 10), op_type
        assert plugin.shipped_by("tensorrt", 11) == (op_type in IN_TRT11), op_type
        # docs/DOMAIN.md s.1: TensorRT-RTX builds in ROIAlign_TRT only
        assert plugin.shipped_by("tensorrt_rtx", 1) == (op_type == "ROIAlign_TRT"), op_type


def test_a_plugin_without_a_cpu_reference_says_so_and_one_with_a_reference_does_not():
    from trtdeploy import plugin_refs

    referenced = plugin_refs.referenced_plugins()
    assert {"EfficientNMS_TRT", "BatchedNMS_TRT", "BatchedNMSDynamic_TRT"} <= referenced
    for op_type in VERSIONS:
        assert ("no CPU reference" in plugins.get(op_type).note) == (op_type not in referenced), op_type


def test_each_reference_writes_the_dtypes_the_plugin_kernel_writes():
    """The ONNX Runtime stand-in must produce the bytes the plugin's kernel stores (e.g. int32
    for NMS_TRT's keep count although TensorRT declares it float): a reader is checked against
    what it would really get."""
    from trtdeploy import plugin_refs

    for impl in plugin_refs.implementations():
        plugin = plugins.get(impl.plugin)
        assert list(impl.outputs) == [o.bytes_dtype() for o in plugin.outputs], impl.custom_op


def test_declared_and_written_output_dtypes():
    """getOutputDataType vs the kernels' pointer types, NVIDIA/TensorRT release/10.16:
    NMS_TRT: nmsPlugin.cpp l.440-453 declares output 1 kFLOAT; gatherTopDetections.cu l.51
    writes it through ``int* keepCount``. BatchedNMS: batchedNMSPlugin.cpp l.567-585 (0 kINT32,
    others the input type); gatherNMSOutputs.cu l.51-54 (int*, T_BBOX*, T_BBOX*, T_BBOX*).
    EfficientNMS: efficientNMSPlugin.cpp l.145-150 (0 and 3 kINT32); efficientNMSInference.cu
    l.119-120 (int* numDetections, T* scores, int* classes, BoxCorner<T>* boxes)."""

    def dtypes(op_type):
        outs = plugins.get(op_type).outputs
        return [o.declared_dtype() for o in outs], [o.bytes_dtype() for o in outs]

    for op in ("NMS_TRT", "NMSDynamic_TRT"):
        assert dtypes(op) == (["float32", "float32"], ["float32", "int32"])
    for op in ("BatchedNMS_TRT", "BatchedNMSDynamic_TRT"):
        assert dtypes(op) == (["int32", "float32", "float32", "float32"],) * 2
    assert dtypes("EfficientNMS_TRT") == (["int32", "float32", "float32", "int32"],) * 2


def test_every_module_reads_the_one_list():
    from trtdeploy.engine import capabilities
    from trtdeploy.graph_passes import PLUGIN_OPS
    from trtdeploy.nms import ort_session

    assert PLUGIN_OPS == plugins.op_types()
    assert capabilities.PLUGINS_REMOVED_IN_11 == plugins.removed_in("tensorrt", 11)
    assert capabilities.RTX_BUILTIN_PLUGINS == {"ROIAlign_TRT"}
    from trtdeploy import plugin_refs

    assert plugin_refs.referenced_plugins() <= plugins.op_types()
    assert ort_session.plugin_refs is plugin_refs
    caps11 = capabilities.capabilities_for("tensorrt", "11.1.0")
    assert caps11.unavailable_plugin("NMSDynamic_TRT") and not caps11.unavailable_plugin("EfficientNMS_TRT")


# ---- check_graph runs shape inference through plugin nodes ------------------------------


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _efficient_then_add(k_rows: int) -> onnx.ModelProto:
    """boxes -> EfficientNMS_TRT (max_output_boxes 5) -> detection_boxes + a [1,k_rows,4] constant."""
    nms = helper.make_node(
        "EfficientNMS_TRT",
        ["boxes", "scores"],
        ["num", "det_boxes", "det_scores", "det_classes"],
        max_output_boxes=5,
        plugin_version="1",
    )
    add = helper.make_node("Add", ["det_boxes", "offset"], ["moved"])
    offset = numpy_helper.from_array(np.zeros((1, k_rows, 4), np.float32), "offset")
    return _model(
        [nms, add],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 10, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 10, 3]),
        ],
        [
            helper.make_tensor_value_info("num", TensorProto.INT32, [1, 1]),
            helper.make_tensor_value_info("moved", TensorProto.FLOAT, [1, 5, 4]),
        ],
        [offset],
    )


def test_check_graph_infers_shapes_through_a_plugin():
    model = _efficient_then_add(5)
    assert check_graph(model, after="p", family="toy") is model  # returned as given
    # [1,5,4] + [1,6,4] cannot broadcast: found only because the plugin's output shape is known
    with pytest.raises(GraphError, match="toy: graph invalid after pass 'p'.*Add"):
        check_graph(_efficient_then_add(6), after="p", family="toy")


def test_check_graph_uses_the_declared_dtype_of_a_plugin_output():
    """NMS_TRT's keep count is declared float32: an int32 consumer of it is an ONNX type error."""
    required = dict(shareLocation=1, varianceEncodedInTarget=0, backgroundLabelId=0, numClasses=3, topK=30,
                    confidenceThreshold=0.01, nmsThreshold=0.5, confSigmoid=1, isNormalized=1)
    nms = helper.make_node("NMSDynamic_TRT", ["loc", "conf", "prior"], ["rows", "keep"], keepTopK=20, **required)
    bad = helper.make_node("Add", ["keep", "one"], ["keep_plus"])
    one = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.int32), "one")
    model = _model(
        [nms, bad],
        [
            helper.make_tensor_value_info("loc", TensorProto.FLOAT, ["N", 40, 1, 1]),
            helper.make_tensor_value_info("conf", TensorProto.FLOAT, ["N", 30, 1, 1]),
            helper.make_tensor_value_info("prior", TensorProto.FLOAT, [1, 2, 40, 1]),
        ],
        [
            helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["N", 1, 20, 7]),
            helper.make_tensor_value_info("keep_plus", TensorProto.INT32, ["N", 1, 1, 1]),
        ],
        [one],
    )
    with pytest.raises(GraphError, match="Add"):
        check_graph(model, after="tao", family="TAO SSD")


def test_heads_built_by_trtdeploy_pass_the_check():
    import onnx_graphsurgeon as gs

    from trtdeploy.deploy_card import NmsParams
    from trtdeploy.nms import add_nms_head

    for kind, layout in (("efficient", "tfod"), ("batched", "batched"), ("onnx", "tfod")):
        graph = gs.Graph(opset=17)
        boxes = gs.Variable("in_boxes", np.float32, ["batch", 20, 4])
        scores = gs.Variable("in_scores", np.float32, ["batch", 20, 3])
        graph.inputs = [boxes, scores]
        add_nms_head(graph, boxes, scores, kind, NmsParams(max_detections=8), layout, (300, 300))
        model = gs.export_onnx(graph.cleanup().toposort())
        check_graph(model, after="nms_head", family="toy")


# ---- ONNX Runtime: a plugin without a CPU reference is named -----------------------------


def test_onnx_runtime_refuses_a_plugin_without_reference_by_name():
    from trtdeploy.nms.ort_session import make_session

    # Normalize_TRT: only its name is modelled (ResizeNearest_TRT, used here before, has a reference now)
    node = helper.make_node("Normalize_TRT", ["x"], ["y"])
    model = _model(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])],
    )
    with pytest.raises(UnsupportedModelError, match="Normalize_TRT, which have no CPU reference"):
        make_session(model)


# ---- DeepStream parsers read NMS_TRT's keep count as the int32 it is -----------------------


def test_nms_trt_keep_count_declared_float32_is_read_right_by_nmstlt():
    """The keep count of an NMS_TRT engine is declared float32 (nmsPlugin.cpp l.440-453) and holds
    int32 bytes (gatherTopDetections.cu l.51). NvDsInferParseCustomNMSTLT casts it to int*
    (DeepStream SDK 6.3 nvdsinfer_custombboxparser.cpp l.370; deepstream_tao_apps master
    post_processor/nvdsinfer_custombboxparser_tao.cpp l.142): read right, not a misread."""
    from trtdeploy.deepstream.parser_emulation import parse, raw_outputs_from_arrays
    from trtdeploy.deepstream.parsers import misreads

    engine_outputs = [("NMS", "float32", (1, 1, 20, 7)), ("NMS_1", "float32", (1, 1, 1, 1))]
    assert misreads("nmstlt", engine_outputs) == []
    assert misreads("nmstlt", engine_outputs, producers={"NMS_1": ("NMS_TRT", 1)}) == []
    # the same float32 tensor from an ordinary op (a Cast, say) is misread
    (msg,) = misreads("nmstlt", engine_outputs, producers={})
    assert "NMS_1" in msg and "int32" in msg
    assert misreads("nmstlt", [engine_outputs[0], ("NMS_1", "int64", (1, 1, 1, 1))]) != []

    rows = np.zeros((1, 1, 20, 7), np.float32)
    rows[0, 0, 0] = [0, 1, 0.9, 0.1, 0.2, 0.5, 0.6]
    rows[0, 0, 1] = [0, 2, 0.8, 0.3, 0.3, 0.4, 0.4]
    keep = np.full((1, 1, 1, 1), 2, np.int32)
    raw = raw_outputs_from_arrays(
        [("NMS", rows), ("NMS_1", keep)],
        engine_dtypes={"NMS_1": "float32"},
        producers={"NMS_1": ("NMS_TRT", 1)},
    )
    assert raw[1].dtype == "float32" and np.frombuffer(raw[1].data, "<i4")[0] == 2
    objects = parse("nmstlt", raw, 100, 100, 3, [0.5] * 3)
    assert [o.class_id for o in objects] == [1, 2]


def test_plugin_outputs_of_a_model():
    model = _efficient_then_add(5)
    assert plugins.plugin_outputs_of(model) == {
        "num": ("EfficientNMS_TRT", 0),
        "det_boxes": ("EfficientNMS_TRT", 1),
        "det_scores": ("EfficientNMS_TRT", 2),
        "det_classes": ("EfficientNMS_TRT", 3),
    }


def test_output_shape_rules_restated_from_the_source():
    """getOutputDimensions / getOutputShapes, NVIDIA/TensorRT release/10.16: cropAndResizePlugin.cpp
    l.78-86 [N,R,C,crop_h,crop_w]; roiAlignPlugin.cpp l.259-279 [R,C,out_h,out_w];
    resizeNearestPlugin.cpp l.109-124 (last two dims * scale); proposalPlugin.cpp l.264-279
    [N,post_nms_top_n,4,1]; nmsPlugin.cpp l.188-204 [N,1,keepTopK,7] and [N,1,1,1]."""

    def shapes(op, attrs, *inputs):
        plugin = plugins.get(op)
        return plugin.output_shapes(plugin.resolved_attrs(attrs) if op != "NMS_TRT" else attrs, list(inputs))

    assert shapes("CropAndResizeDynamic", {"crop_width": 7, "crop_height": 5}, ["N", 64, 32, 32], ["N", 100, 4]) == [
        ["N", 100, 64, 5, 7]
    ]
    assert shapes("ROIAlign_TRT", {"output_height": 14, "output_width": 14}, [1, 256, 50, 50], [300, 4], [300]) == [
        [300, 256, 14, 14]
    ]
    assert shapes("ResizeNearest_TRT", {"scale": 2.0}, [1, 256, 25, 38]) == [[1, 256, 50, 76]]
    assert shapes("NMS_TRT", {"keepTopK": 200}, ["B", 8, 1, 1]) == [["B", 1, 200, 7], ["B", 1, 1, 1]]
    proposal = {k: 1 for k in ("input_height", "input_width", "rpn_stride", "pre_nms_top_n")}
    proposal |= {"roi_min_size": 1.0, "nms_iou_threshold": 0.7, "post_nms_top_n": 300}
    proposal |= {"anchor_sizes": [1.0], "anchor_ratios": [1.0]}
    assert shapes("ProposalDynamic", proposal, [2, 18, 10, 10], [2, 36, 10, 10]) == [[2, 300, 4, 1]]
    # batchTilePlugin.cpp l.60-69, l.109-115: input 1 [1, d1, d2, d3] copied per image of input 0
    assert shapes("BatchTilePlugin_TRT", {}, ["N", 3, 8, 8], [1, 5, 4, 2]) == [["N", 5, 4, 2]]
