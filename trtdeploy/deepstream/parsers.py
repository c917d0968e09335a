"""What each DeepStream bounding-box parser reads, checked against its source.

The parsers read output buffers by position or by name with a fixed element type, so an
engine whose outputs differ in order, box format, units or dtype gives wrong boxes or aborts
with no useful message. Sources read (2026-11):

* DS = DeepStream's own ``sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp``
  (built into ``/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so``).
* TAO = NVIDIA-AI-IOT/deepstream_tao_apps ``post_processor/nvdsinfer_custombboxparser_tao.cpp``
  (``libnvds_infercustomparser_tao.so``), commit db299bcf.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CUSTOM_LIB = "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so"


@dataclass(frozen=True)
class ParserContract:
    func: str
    instance_mask: (
        bool  # set with parse-bbox-instance-mask-func-name instead of parse-bbox-func-name
    )
    layouts: tuple[str, ...]  # deploy-card output layouts it can read
    box_format: str | None  # required deploy-card box_format (None: not checked)
    box_units: str | None
    class_dtype: str | None
    num_outputs: int | None
    output_names: tuple[str, ...] = ()  # names it looks up (empty: reads by position)
    nms_inside: bool = True  # the model already suppressed duplicates: cluster-mode 4
    note: str = ""


PARSERS: dict[str, ParserContract] = {
    # DS and TAO: 2 outputs by position: [B,1,K,7] rows (image, label, conf, x1,y1,x2,y2
    # normalised) then keep count (int32). Asserts label < num-detected-classes.
    "NvDsInferParseCustomNMSTLT": ParserContract(
        "NvDsInferParseCustomNMSTLT", False, ("nms_trt",), "x1y1x2y2", "normalized", "float32", 2
    ),
    # DS and TAO: 4 outputs by position: keep count int32, boxes normalised x1,y1,x2,y2,
    # scores, classes read as float32; skips class >= num-detected-classes.
    "NvDsInferParseCustomBatchedNMSTLT": ParserContract(
        "NvDsInferParseCustomBatchedNMSTLT",
        False,
        ("batched",),
        "x1y1x2y2",
        "normalized",
        "float32",
        4,
    ),
    # DS: 4 outputs by POSITION (count int32, boxes, scores, classes as float32); boxes read as
    # PIXEL y1,x1,y2,x2 (left = box[1], top = box[0]); asserts the largest box value >= 2, so
    # normalised boxes abort it. TAO's copy finds the same four by NAME (num_detections,
    # detection_boxes, detection_scores, detection_classes) and reads classes as int32.
    "NvDsInferParseCustomEfficientDetTAO": ParserContract(
        "NvDsInferParseCustomEfficientDetTAO",
        False,
        ("deepstream",),
        "y1x1y2x2",
        "pixels",
        None,  # float32 in DeepStream's library, int32 in deepstream_tao_apps': not checkable here
        4,
        ("num_detections", "detection_boxes", "detection_scores", "detection_classes"),
        note="DeepStream's library reads classes as float32, deepstream_tao_apps' copy as int32",
    ),
    # DS only: 4 outputs by position, count int32, boxes PIXEL x1,y1,x2,y2, classes uint32.
    "NvDsInferParseCustomEfficientNMS": ParserContract(
        "NvDsInferParseCustomEfficientNMS", False, ("deepstream",), "x1y1x2y2", "pixels", "int32", 4
    ),
    # DS: finds FLOAT layers by name; boxes normalised y1,x1,y2,x2; class value used directly
    # as the label index; num_detections optional (float).
    "NvDsInferParseCustomTfSSD": ParserContract(
        "NvDsInferParseCustomTfSSD",
        False,
        ("tfod_float",),
        "y1x1y2x2",
        "normalized",
        "float32",
        None,
        ("detection_boxes", "detection_scores", "detection_classes"),
    ),
    # DS and TAO: finds FLOAT layers "generate_detections" ([K,6] y1,x1,y2,x2 pixels, class,
    # score) and "mask_fcn_logits/BiasAdd" ([K,C,h,w]); DeepStream must not cluster.
    "NvDsInferParseCustomMrcnnTLTV2": ParserContract(
        "NvDsInferParseCustomMrcnnTLTV2",
        True,
        ("other",),
        None,
        None,
        None,
        2,
        ("generate_detections", "mask_fcn_logits/BiasAdd"),
    ),
}

# The parser that reads each deploy-card output layout.
PARSER_FOR_LAYOUT = {
    "nms_trt": "NvDsInferParseCustomNMSTLT",
    "batched": "NvDsInferParseCustomBatchedNMSTLT",
}


def parser_for_deepstream_layout(box_format: str, class_dtype: str) -> str | None:
    """Which stock parser reads a pixel-box EfficientNMS-shaped output, if any."""
    for name in ("NvDsInferParseCustomEfficientDetTAO", "NvDsInferParseCustomEfficientNMS"):
        contract = PARSERS[name]
        if contract.box_format == box_format and contract.class_dtype in (None, class_dtype):
            return name
    return None


def contract_problems(
    func: str, layout: str, box_format: str, box_units: str, class_dtype: str
) -> list[str]:
    """Why ``func`` cannot read outputs described by a deploy card (empty list: it can)."""
    contract = PARSERS.get(func)
    if contract is None:
        return []  # a user's own parser: we cannot know its contract
    if layout == "tfod":
        return [
            (
                f"{func} cannot read the deploy card's 'tfod' outputs (normalised y1,x1,y2,x2 boxes, "
                "int32 classes); re-run create-onnx with --output-layout deepstream"
            )
        ]
    problems = []
    if (
        contract.layouts
        and layout not in contract.layouts
        and not (layout == "deepstream" and "deepstream" in contract.layouts)
    ):
        problems.append(
            f"{func} reads {'/'.join(contract.layouts)} outputs but the deploy card's layout is {layout!r}"
        )
        return problems
    for what, need, have in (
        ("boxes", contract.box_format, box_format),
        ("box units", contract.box_units, box_units),
        ("class dtype", contract.class_dtype, class_dtype),
    ):
        if need is not None and need != have:
            problems.append(f"{func} reads {what} as {need} but the model gives {have}")
    if problems and layout == "deepstream":
        problems[-1] += (
            "; re-run create-onnx --output-layout deepstream with a matching box format, or pick the other parser"
        )
    return problems
