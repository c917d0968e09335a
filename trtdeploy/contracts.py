"""Output contracts: what a model's output tensors hold, as registered objects.

One ``OutputContract`` per shape of output we emit or read: the tensors (role, default name,
dtype, symbolic shape, in output order), the box order and units, the class id base, the NMS
heads that produce it, the DeepStream parser variants (keys of
``trtdeploy.deepstream.parsers.VARIANTS``) that read it, and a reader that turns the tensors
into our ``Detections``. Every module that used to compare layout strings asks this registry.

Deploy cards (schema 1) store a contract as ``output.layout`` (+ ``output.ds_parser`` for the
DeepStream-shaped ones); ``contract_for_output`` maps those two fields to the contract, so
every card ever written keeps loading. Symbolic dims: ``B`` batch, ``K`` max detections,
``A`` boxes before NMS, ``C`` classes, ``M`` mask height/width.

Nothing here imports TensorFlow, TensorRT or onnx: the CLI builds its help texts from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trtdeploy.errors import InputError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from trtdeploy.deploy_card import DeployCard
    from trtdeploy.detections import Detections

TFOD_NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
# The two tensors NvDsInferParseCustomMrcnnTLTV2 looks up by name among FLOAT layers
# (NVIDIA/DeepStream@DeepStream-9.0:src/utils/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp
# L654-L655; the same in deepstream_tao_apps' copy); facts in trtdeploy.deepstream.parsers (mrcnn).
MRCNN_NAMES = ("generate_detections", "mask_fcn_logits/BiasAdd")
BATCHED_NAMES = ("num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes")
RAW_NAMES = ("boxes", "scores")
MASK_NAME = "detection_masks"


@dataclass(frozen=True)
class TensorSpec:
    role: str  # count | boxes | scores | classes | masks | rows | mask_logits
    name: str  # default name (a card may name its tensors otherwise, in the same order)
    dtype: str  # float32 | int32
    dims: tuple[str | int, ...]  # symbolic shape: B, K, A, C, M or a number


@dataclass(frozen=True)
class OutputContract:
    key: str
    layout: str  # deploy-card ``output.layout`` that stores it (schema 1)
    summary: str  # one phrase for --help, errors and the README
    tensors: tuple[TensorSpec, ...]
    box_format: str  # y1x1y2x2 | x1y1x2y2 | "" (no boxes we read)
    box_units: str  # normalized | pixels
    heads: tuple[str, ...]  # NMS heads (trtdeploy.nms) that produce it; () = the family's own graph
    # "nms" (count, boxes, scores, classes [, masks]), "raw" (NMS applied on read), "mask_rows"
    # (Mask R-CNN rows + per-class mask logits, detections.from_mask_rows), "" (none)
    reader: str
    ds_parser: str = ""  # the DeepStream parser variant the tensors are shaped for ("" = none)
    ds_readers: tuple[str, ...] = ()  # parser variants that read it unchanged
    found_by: str = "name"  # how its DeepStream parser finds the tensors: name | position
    class_id_base: int = 0  # class ids index labels from here
    box_formats: tuple[str, ...] = ()  # other box orders a card may record (default: box_format only)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tensors)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The NMS heads that produce it (the name DsOutputs used)."""
        return self.heads

    def _dtype(self, role: str) -> str:
        return next((t.dtype for t in self.tensors if t.role == role), "")

    @property
    def count_dtype(self) -> str:
        return self._dtype("count") or "int32"

    @property
    def class_dtype(self) -> str:
        # The raw contracts have no class tensor: the class is the argmax of the float scores.
        return self._dtype("classes") or "float32"

    @property
    def per_class_boxes(self) -> bool:
        return any(t.role == "boxes" and len(t.dims) == 4 for t in self.tensors)

    @property
    def has_nms(self) -> bool:
        return self.reader == "nms"

    @property
    def has_masks(self) -> bool:
        """Instance masks among the tensors (TFOD detection_masks or per-class mask logits)."""
        return any(t.role in ("masks", "mask_logits") for t in self.tensors)

    def accepts_box_format(self, box_format: str) -> bool:
        return box_format == self.box_format or box_format in self.box_formats

    def describe(self) -> str:
        """One line: tensors, dtypes, box order and units (for --help and error messages)."""
        if not self.tensors:
            return self.summary
        if not self.box_format:
            return f"{', '.join(self.names)}: {self.summary}"
        units = "pixel" if self.box_units == "pixels" else "normalised"
        order = ",".join(self.box_format[i : i + 2] for i in range(0, 8, 2))
        lookup = f" (by {self.found_by})" if self.ds_parser else ""
        if self.has_nms:
            return (
                f"{', '.join(self.names)}{lookup}; count {self.count_dtype}, {units} {order} boxes, "
                f"{self.class_dtype} classes"
            )
        return f"{', '.join(self.names)}; {units} {order} boxes, {self.summary}"

    def shapes(self, batch: Any, k: int, anchors: int, classes: int, mask: int = 0) -> list[list[Any]]:
        """The tensors' shapes with the symbolic dims filled in."""
        values = {"B": batch, "K": k, "A": anchors, "C": classes, "M": mask}
        return [[values.get(d, d) if isinstance(d, str) else d for d in t.dims] for t in self.tensors]

    def read(self, ordered: Sequence[np.ndarray], card: DeployCard) -> list[Detections]:
        """The tensors in output order -> one Detections per image (normalised y1,x1,y2,x2,
        classes 0-based into the card's labels)."""
        from trtdeploy import detections

        if self.reader == "nms":
            return detections.from_nms_outputs(list(ordered), card)
        if self.reader == "raw":
            return detections.from_raw_outputs(list(ordered), card)
        if self.reader == "mask_rows":
            return detections.from_mask_rows(list(ordered), card)
        raise InputError(
            f"output contract {self.key!r} ({self.summary}) has no reader to detections; "
            "re-run create-onnx with --nms efficient or onnx"
        )


def _nms_tensors(names: Sequence[str], count: str, classes: str) -> tuple[TensorSpec, ...]:
    return (
        TensorSpec("count", names[0], count, ("B", 1)),
        TensorSpec("boxes", names[1], "float32", ("B", "K", 4)),
        TensorSpec("scores", names[2], "float32", ("B", "K")),
        TensorSpec("classes", names[3], classes, ("B", "K")),
    )


def _ds(key: str, count: str, units: str, classes: str, found_by: str) -> OutputContract:
    """A DeepStream-shaped EfficientNMS contract: the tfod tensors retyped and rescaled for one
    parser variant (the facts of each are cited where it is registered)."""
    return OutputContract(
        key=f"ds/{key}",
        layout="deepstream",
        summary=f"shaped for the DeepStream parser variant {key}",
        tensors=_nms_tensors(TFOD_NAMES, count, classes),
        box_format="y1x1y2x2",
        box_units=units,
        heads=("efficient", "onnx"),
        reader="nms",
        ds_parser=key,
        ds_readers=(key,),
        found_by=found_by,
    )


CONTRACTS: dict[str, OutputContract] = {}


def register(contract: OutputContract) -> OutputContract:
    """Add a contract; a second one with the same key or the same card fields is a bug."""
    if contract.key in CONTRACTS:
        raise ValueError(f"output contract {contract.key!r} is registered twice")
    if any((c.layout, c.ds_parser) == (contract.layout, contract.ds_parser) for c in CONTRACTS.values()):
        raise ValueError(f"two output contracts would be stored as layout {contract.layout!r}")
    CONTRACTS[contract.key] = contract
    return contract


register(OutputContract(
    key="tfod",
    layout="tfod",
    summary="TF Object Detection API outputs after NMS",
    tensors=_nms_tensors(TFOD_NAMES, "int32", "int32"),
    box_format="y1x1y2x2",
    box_units="normalized",
    heads=("efficient", "onnx"),
    reader="nms",
))
# DeepStream SDK nvdsinfer_custombboxparser.cpp, NvDsInferParseCustomTfSSD
# (hiennguyen9874/deepstream-sources branch 6.3, lines 214-278; same code in 5.0-6.2): finds
# the layers BY NAME and only if their dataType is FLOAT (l. 221), num_detections optional and
# read as float (l. 240), classes read as float and used directly as the label index (l. 249-253),
# boxes normalised y1,x1,y2,x2 scaled by the network size (l. 254-260).
register(_ds("sdk-tfssd", "float32", "normalized", "float32", "name"))
# Same file, NvDsInferParseCustomEfficientDetTAO (branch 6.3, lines 607-672; 6.1 l. 530, 6.2 l. 598):
# exactly 4 outputs BY POSITION (l. 613), count int32 (l. 620), classes float (l. 627),
# left = box[1], top = box[0] in PIXELS (l. 658-661), asserts the largest box value >= 2 (l. 640).
register(_ds("sdk-efficientdet", "int32", "pixels", "float32", "position"))
# NVIDIA-AI-IOT/deepstream_tao_apps post_processor/nvdsinfer_custombboxparser_tao.cpp,
# NvDsInferParseCustomEfficientDetTAO (master lines 469-531, same since release/tao4.0_ds6.3ga
# l. 334): exactly 4 outputs (l. 473) found BY NAME (l. 486-497), count int32, classes int32
# (l. 495), `break` at a class >= num-detected-classes (l. 507), pixel y1,x1,y2,x2 (l. 517-520).
register(_ds("tao-efficientdet", "int32", "pixels", "int32", "name"))
# deepstream_tao_apps release/tao3.0_ds6.2ga (and tao3.0_ds6.1.1ga), same file,
# NvDsInferParseCustomEfficientDetTAO l. 325-396: by position with float classes (l. 344), as the SDK's.
register(_ds("tao-efficientdet-6.2", "int32", "pixels", "float32", "position"))
# deepstream_tao_apps release/tao4.0_ds6.2ga, l. 334-381: by position but int32 classes (l. 349).
register(_ds("tao-efficientdet-6.2-tao4", "int32", "pixels", "int32", "position"))
def _batched(key: str, box_format: str, summary: str, ds_parser: str = "") -> OutputContract:
    """BatchedNMS_TRT's outputs (float32 classes) in one box order."""
    return OutputContract(
        key=key, layout="batched", summary=summary, tensors=_nms_tensors(BATCHED_NAMES, "int32", "float32"),
        box_format=box_format, box_units="normalized", heads=("batched",), reader="nms", ds_parser=ds_parser,
        ds_readers=(ds_parser,) if ds_parser else (), found_by="position" if ds_parser else "name",
    )


def _raw(key: str, layout: str, summary: str, box_dims: tuple[str | int, ...]) -> OutputContract:
    """No NMS: decoded boxes and activated class scores [B,A,C], normalised y1,x1,y2,x2."""
    return OutputContract(
        key=key, layout=layout, summary=summary,
        tensors=(
            TensorSpec("boxes", RAW_NAMES[0], "float32", box_dims),
            TensorSpec("scores", RAW_NAMES[1], "float32", ("B", "A", "C")),
        ),
        box_format="y1x1y2x2", box_units="normalized", heads=("none",), reader="raw",
    )


register(_batched("batched", "y1x1y2x2", "BatchedNMS_TRT outputs (float32 classes)"))
# DeepStream SDK nvdsinfer_custombboxparser.cpp, NvDsInferParseCustomBatchedNMSTLT (branch 6.3,
# lines 467-530; 6.0 l. 384): exactly 4 outputs BY POSITION (l. 473), count int32, boxes, scores
# and classes float (l. 484-487), boxes normalised x1,y1,x2,y2: left = box[0] * width,
# top = box[1] * height (l. 518-523).
register(_batched("ds/batchednms", "x1y1x2y2", "shaped for the DeepStream parser variant batchednms", "batchednms"))
register(_raw("raw", "raw", "no NMS: decoded boxes [B,A,4] and class scores [B,A,C] (DeepStream clusters them)",
              ("B", "A", 4)))
# Two-stage detectors (Faster R-CNN's second stage) regress one box per class: boxes [B,A,C,4].
# EfficientNMS_TRT takes them as is (NVIDIA/TensorRT main, plugin/efficientNMSPlugin/
# efficientNMSPlugin.cpp l. 324-334: boxes 3-D, or 4-D with dim 2 == numClasses or 1), as does
# BatchedNMSDynamic_TRT with shareLocation 0 (release/10.13, plugin/batchedNMSPlugin/
# batchedNMSPlugin.cpp l. 394-397: dim 2 == shareLocation ? 1 : numClasses).
register(_raw("raw-per-class", "raw_per_class", "no NMS: per-class boxes [B,A,C,4] and class scores [B,A,C]",
              ("B", "A", "C", 4)))
# TFOD's Mask R-CNN outputs: detection_masks [B,K,mask_h,mask_w] are the detected class's mask in
# the box's frame after a sigmoid (tensorflow/models research/object_detection/meta_architectures/
# faster_rcnn_meta_arch.py, FasterRCNNMetaArch._postprocess_box_classifier... postprocess: the
# per-class mask predictions gathered at detection_classes, then tf.sigmoid), beside the four
# detection tensors. trtdeploy.masks.add_tfod_masks builds it from per-class mask logits.
register(OutputContract(
    key="tfod-masks",
    layout="tfod_masks",
    summary="the tfod outputs plus instance masks [B,K,M,M] (float32 in [0,1], per detection box)",
    tensors=_nms_tensors(TFOD_NAMES, "int32", "int32") + (TensorSpec("masks", MASK_NAME, "float32", ("B", "K", "M", "M")),),
    box_format="y1x1y2x2",
    box_units="normalized",
    heads=(),
    reader="nms",
))
# What NvDsInferParseCustomMrcnnTLTV2 reads (NVIDIA/DeepStream@DeepStream-9.0:
# src/utils/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp L639-L713, the same body in
# src/apps/tao_apps/post_processor/nvdsinfer_custombboxparser_tao.cpp L303-L377 and SDK 6.0-6.3):
# generate_detections as rows of 6 floats y1,x1,y2,x2 (network PIXELS: clipped to width-1 /
# height-1, never scaled), class_id, score (struct MrcnnRawDetection, L109-L111); the row count is
# the mask tensor's d[0] (L669, no count tensor: padding rows need score 0 and an empty box); the
# mask tensor is [N, C, h, w] per image (4 dims required, L663-L667) and the mask of row i is the
# block i * num-detected-classes + class_id (L704-L706), copied as it is: no sigmoid. nvinfer hands
# it to the OSD with segmentation-threshold as the binarisation threshold (gst-nvinfer/
# gstnvinfer_meta_utils.cpp L206-L214, includes/nvll_osd_struct.h L177-L183), a value that must be
# >= 0 (gstnvinfer_property_parser.cpp L1207-L1217): so the tensor holds LOGITS, as the name says
# and as TAO's MaskRCNN exports do (NVIDIA/tao_tensorflow1_backend@main: nvidia_tao_tf1/cv/mask_rcnn/
# export/exporter.py L249-L250 and L306 cut at mask_fcn_logits/BiasAdd, the 1x1 conv of
# models/heads.py L250-L260, while the sigmoid 'mask_sigmoid' comes after it, models/mask_rcnn_model.py
# L473-L476), and segmentation-threshold=0 binarises at probability 0.5.
# No parser variant key is stored on the card (ds_parser ""), so the --ds-parser choices of the
# SSD heads stay as they are; the reader is named in ds_readers.
register(OutputContract(
    key="ds/mrcnn",
    layout="deepstream_masks",
    summary="rows [B,K,6] (y1,x1,y2,x2, class, score) + per-class mask logits [B,K,C,M,M] for "
    "NvDsInferParseCustomMrcnnTLTV2",
    tensors=(
        TensorSpec("rows", MRCNN_NAMES[0], "float32", ("B", "K", 6)),
        TensorSpec("mask_logits", MRCNN_NAMES[1], "float32", ("B", "K", "C", "M", "M")),
    ),
    box_format="y1x1y2x2",
    box_units="pixels",
    heads=(),
    reader="mask_rows",
    ds_readers=("mrcnn",),
    found_by="name",
))
# NMS_TRT (NVIDIA/TensorRT release/10.13, plugin/nmsPlugin/nmsPlugin.cpp): outputs [N,1,keepTopK,7]
# and [N,1,1,1] (l. 142-153, 188-200); the keep count is DECLARED float32 ("use kFLOAT instead as
# they have same sizeof(type)", l. 440-453) but written as int32 (plugin/common/kernels/
# gatherTopDetections.cu l. 52: int* keepCount), which is how NvDsInferParseCustomNMSTLT reads it.
register(OutputContract(
    key="nms_trt",
    layout="nms_trt",
    summary="NMS_TRT outputs: rows [B,1,K,7] (image, label, confidence, x1, y1, x2, y2) + keep count",
    tensors=(
        TensorSpec("rows", "NMS", "float32", ("B", 1, "K", 7)),
        TensorSpec("count", "NMS_1", "float32", ("B", 1, 1, 1)),
    ),
    box_format="x1y1x2y2",
    box_units="normalized",
    heads=(),
    reader="",
    ds_readers=("nmstlt", "tao-nmstlt"),
    found_by="position",
))
register(OutputContract(
    key="other",
    layout="other",
    summary="a model's own outputs, read by its own DeepStream parser",
    tensors=(),
    box_format="",
    box_units="normalized",
    heads=(),
    reader="",
    box_formats=("y1x1y2x2", "x1y1x2y2", "cxcywh"),
))

DEFAULT_CONTRACT = "tfod"
# The DeepStream parser variant of a 'deepstream' card that names none: what
# --output-layout deepstream made before variants existed.
LEGACY_DS_PARSER = "sdk-efficientdet"


def contract(key: str) -> OutputContract:
    """The registered contract ``key``; UsageError naming the choices."""
    try:
        return CONTRACTS[key]
    except KeyError:
        raise UsageError(f"unknown output contract {key!r}; choose one of {', '.join(CONTRACTS)}") from None


def layouts() -> tuple[str, ...]:
    """Every deploy-card ``output.layout`` value a contract is stored as."""
    return tuple(dict.fromkeys(c.layout for c in CONTRACTS.values()))


def contract_for_output(layout: str, ds_parser: str = "", box_format: str = "") -> OutputContract:
    """The contract a deploy card's ``output.layout`` (+ ``output.ds_parser``, ``box_format``)
    stores.

    A ``deepstream`` card without ``ds_parser`` was written before parser variants existed and
    is sdk-efficientdet. A card that names no variant but whose boxes are in the order of the
    layout's parser-shaped contract is that contract (TAO's BatchedNMS exports: x1,y1,x2,y2,
    what batchednms reads). A ``ds_parser`` on a layout whose contracts take none is ignored,
    as the card readers always did."""
    if layout == "deepstream" and not ds_parser:
        ds_parser = LEGACY_DS_PARSER
    same = [c for c in CONTRACTS.values() if c.layout == layout]
    if not same:
        raise InputError(f"unknown output layout {layout!r}; known: {', '.join(layouts())}")
    if not ds_parser and box_format:
        fitting = [c for c in same if c.box_format == box_format]
        if fitting and not any(not c.ds_parser for c in fitting):
            return fitting[0]
    for c in same:
        if c.ds_parser == ds_parser:
            return c
    for c in same:
        if not c.ds_parser:
            return c
    choices = ", ".join(sorted(c.ds_parser for c in same))
    raise InputError(f"output layout {layout!r} has no parser variant {ds_parser!r}; known: {choices}")


def ds_contracts() -> dict[str, OutputContract]:
    """DeepStream parser variant key -> the contract create-onnx shapes for it."""
    return {c.ds_parser: c for c in CONTRACTS.values() if c.ds_parser}


def for_head(head: str) -> list[OutputContract]:
    """The contracts an NMS head can produce, default first."""
    return [c for c in CONTRACTS.values() if head in c.heads]


def ds_variants_for(head: str) -> list[str]:
    """The DeepStream parser variants an NMS head can shape its outputs for."""
    return [c.ds_parser for c in for_head(head) if c.ds_parser]
