"""What each DeepStream bounding-box parser reads, as data taken from the parsers' source.

A DeepStream parser reads nvinfer's output buffers as raw memory: it finds each buffer by
position or by name, casts it to a fixed C type and applies its rules in order. A tensor of
another dtype is not an error there, it is garbage (a float32 1.0 read as int32 is 1065353216).
This module records, per parser *variant* (one function as shipped by one library over a range
of releases), everything a model must match, with the source line of each fact. The byte-level
emulation of the same rules is :mod:`trtdeploy.deepstream.parser_emulation`.

Sources read (2026-12), with ``git show BRANCH:path`` on full clones:

* ``SDK`` = hiennguyen9874/deepstream-sources (community mirror of the DeepStream SDK sources, one
  branch per release 5.0, 6.0, 6.0.1, 6.1, 6.1.1, 6.2, 6.3),
  ``sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp`` (built into
  ``/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so``) and
  ``sources/libs/nvdsinfer/nvdsinfer_context_impl_output_parsing.cpp`` (nvinfer's own DetectNet
  decoding).
* ``DS`` = NVIDIA/DeepStream, NVIDIA's own public repository of the DeepStream 9.0 sources,
  branch ``DeepStream-9.0`` (and ``main``, 2026-07, which holds the same parser files):
  ``src/utils/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp`` (the SDK library),
  ``src/apps/tao_apps/post_processor/nvdsinfer_custombboxparser_tao.cpp`` (deepstream_tao_apps'
  parser as shipped with 9.0) and ``src/utils/nvdsinfer/nvdsinfer_context_impl_output_parsing.cpp``.
  Its history starts with 9.0 (May 2026): no public source of the 7.x/8.x SDK library exists, so
  a variant "covering" 6.3 and 9.0 is identical at both ends and unknown in between.
* ``TAO`` = NVIDIA-AI-IOT/deepstream_tao_apps ``post_processor/nvdsinfer_custombboxparser_tao.cpp``
  (``libnvds_infercustomparser_tao.so``) on release/tao3.0_ds6.1.1ga ... release/tao_ds8.0ga and
  master (2025-09-15, same blob as tao_ds8.0ga).

Function bodies were compared across all those branches, ignoring whitespace and comments; a
variant covers the branches where its body is the same. The 9.0 copies differ from 6.3 / tao_apps
master in one way only: 9.0 added ``rotation_angle`` to ``NvDsInferObjectDetectionInfo``
(``includes/nvdsinfer.h`` L168-L170), and the SDK parsers now value-initialise the object
(``res{}``, ``object{}``) while the tao_apps copy sets ``rotation_angle = 0.0f``; every field the
older code set is set the same way, so the reads and rules are unchanged. Citations give the
branch and the line range in that branch's file; ``ParserVariant.same_in`` cites the same body in
the other sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial

SDK_REPO = "hiennguyen9874/deepstream-sources"
SDK_PARSER_FILE = "sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp"
SDK_NVINFER_FILE = "sources/libs/nvdsinfer/nvdsinfer_context_impl_output_parsing.cpp"
TAO_REPO = "NVIDIA-AI-IOT/deepstream_tao_apps"
TAO_PARSER_FILE = "post_processor/nvdsinfer_custombboxparser_tao.cpp"
DS_REPO = "NVIDIA/DeepStream"
DS_BRANCH = "DeepStream-9.0"
DS_PARSER_FILE = "src/utils/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp"
DS_TAO_PARSER_FILE = "src/apps/tao_apps/post_processor/nvdsinfer_custombboxparser_tao.cpp"
DS_NVINFER_FILE = "src/utils/nvdsinfer/nvdsinfer_context_impl_output_parsing.cpp"
DS_HEADER_FILE = "includes/nvdsinfer.h"

SDK_CUSTOM_LIB = "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so"
# What deepstream_tao_apps' own configs write (configs/nvinfer/<model>/*.txt on
# release/tao5.3_ds7.0ga, e.g. efficientdet_tao, retail_object_detection_tao): a path relative to
# the config inside a deepstream_tao_apps checkout, where `make -C post_processor` builds the .so.
# DeepStream 9.0's copy of tao_apps writes the same (NVIDIA/DeepStream@DeepStream-9.0:
# src/apps/tao_apps/configs/nvinfer/peoplenet_transformer_tao/pgie_peoplenet_transformer_tao_config.txt#L36).
TAO_CUSTOM_LIB = "../../../post_processor/libnvds_infercustomparser_tao.so"
TAO_CUSTOM_LIB_NAME = "libnvds_infercustomparser_tao.so"
DEFAULT_CUSTOM_LIB = SDK_CUSTOM_LIB  # kept for generate.py / __init__.py


@dataclass(frozen=True)
class Citation:
    """Where a fact was read: repository, branch, file and 1-based inclusive line range."""

    repo: str
    branch: str
    path: str
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.repo}@{self.branch}:{self.path}#L{self.first}-L{self.last}"


def _sdk(branch: str, first: int, last: int, path: str = SDK_PARSER_FILE) -> Citation:
    return Citation(SDK_REPO, branch, path, first, last)


def _tao(branch: str, first: int, last: int) -> Citation:
    return Citation(TAO_REPO, branch, TAO_PARSER_FILE, first, last)


def _ds(first: int, last: int, path: str = DS_PARSER_FILE) -> Citation:
    return Citation(DS_REPO, DS_BRANCH, path, first, last)


@dataclass(frozen=True)
class Fact:
    """One rule of a parser, in words, with its source line."""

    text: str
    cite: Citation


@dataclass(frozen=True)
class TensorRead:
    """One output buffer as a parser reads it.

    ``name`` is set when the parser looks the layer up by name, ``position`` when it takes
    ``outputLayersInfo[position]``. ``c_type`` is the C type the buffer is cast to (what the
    bytes must be). ``requires_float_layer``: the lookup only matches a layer whose declared
    dataType is FLOAT, so a tensor of another dtype counts as missing instead of being misread.
    """

    role: str  # count | boxes | scores | classes | nms_rows | detections | masks | coverage | bbox
    c_type: str  # float32 | int32 (the cast in the C code)
    dims: str  # which dims the parser uses, per image (nvinfer's inferDims have no batch dim)
    if_missing: str  # what the C code does when the layer is absent
    cite: Citation
    name: str | None = None
    position: int | None = None
    name_contains: str | None = None  # nvinfer's DetectNet decoding matches a substring
    requires_float_layer: bool = False
    optional: bool = False
    # The plugin output (op type, output index) the parser was written for. Such a tensor's
    # bytes are what the plugin's kernel writes, which may differ from the dtype TensorRT
    # declares for it (trtdeploy.plugins: NMS_TRT's keep count is declared float32, written int32).
    plugin_output: tuple[str, int] | None = None


@dataclass(frozen=True)
class ParserVariant:
    """One parser function as one library ships it over a range of releases."""

    key: str
    func: str
    ships_in: tuple[str, ...]  # "sdk", "tao_apps", "nvinfer" (built into gst-nvinfer)
    releases: str  # the releases whose source was read and found identical
    branches: tuple[str, ...]  # branches read (repo-qualified: "sdk:6.3", "tao:master")
    custom_lib_path: str | None  # None: nvinfer's built-in decoding, no custom-lib-path
    lookup: str  # "position" | "name" | "name_contains"
    num_outputs: int | None  # exact output count required (None: any count)
    tensors: tuple[TensorRead, ...]
    box_order: str  # y1x1y2x2 | x1y1x2y2 | nms_rows (image,label,conf,x1,y1,x2,y2) | detectnet_grid
    box_units: str  # normalized | pixels | detectnet (grid offsets * 35)
    box_scale: str  # how box values become pixels
    class_over_limit: str  # continue | break | assert | not_read
    threshold: str  # which pre-cluster threshold applies
    count_rule: str
    clips: str
    facts: tuple[Fact, ...]
    cite: Citation  # the whole function
    class_id_base: int = 0  # the class value is used as this-based index into labels and thresholds
    nms_inside: bool = True  # the model already suppressed duplicates: cluster-mode 4
    max_objects: int | None = None
    instance_mask: bool = False
    notes: str = ""
    deploy_layouts: tuple[str, ...] = field(default=())  # deploy-card output layouts it can read
    # The same body (same reads and rules) in other sources than ``cite``: whole-function ranges.
    same_in: tuple[Citation, ...] = field(default=())

    @property
    def where(self) -> str:
        return f"{self.func} ({self.releases})"

    @property
    def deepstream_releases(self) -> tuple[str, ...]:
        """The DeepStream releases whose source of this variant was read, from ``branches``.

        An SDK branch is its release; a deepstream_tao_apps branch ``release/..._dsX.Yga`` is the
        tao_apps release made for DeepStream X.Y (two tao_apps branches exist for 6.2, with
        different EfficientDetTAO bodies); ``ds:DeepStream-9.0`` is 9.0. Development branches
        (tao ``master``, ds ``main``) name no release. 7.x-8.x SDK sources are not public, so an
        SDK variant never lists them.
        """
        found: list[str] = []
        for b in self.branches:
            where, _, name = b.partition(":")
            if where == "sdk":
                release = name
            elif where == "ds" and name.startswith("DeepStream-"):
                release = name[len("DeepStream-") :]
            elif where == "tao" and (m := re.search(r"_ds(\d+(?:\.\d+)+)ga$", name)):
                release = m.group(1)
            else:
                continue
            if release not in found:
                found.append(release)
        return tuple(found)

    def covers(self, release: str) -> bool:
        """True when this variant's body was read in DeepStream ``release`` (e.g. "9.0")."""
        return release in self.deepstream_releases


# ---------------------------------------------------------------------------------------------
# The one change in the DeepStream 9.0 copies of the parsers we model: NvDsInferObjectDetectionInfo
# gained a float rotation_angle (NVIDIA/DeepStream@DeepStream-9.0:includes/nvdsinfer.h#L168-L170;
# 6.3's struct ends at detectionConfidence, hiennguyen9874/deepstream-sources@6.3:
# sources/includes/nvdsinfer.h#L135-L151), which the parsers set to 0. nvinfer 9.0 copies it to
# the OSD rectangle (src/gst-plugins/gst-nvinfer/gstnvinfer_meta_utils.cpp#L67, #L162); 0 is an
# axis-aligned box, as before.
ROTATION_ANGLE_FIELD = _ds(168, 170, DS_HEADER_FILE)
_ROT = f"rotation_angle (new in 9.0, {DS_HEADER_FILE} L{ROTATION_ANGLE_FIELD.first}-L{ROTATION_ANGLE_FIELD.last})"

# The branches the fact tables below cite most (the SDK 6.3 files, deepstream_tao_apps master and
# its two DeepStream 6.2 releases) and the sources a table line may name instead of its table's.
_TM = "master"
_T62 = "release/tao3.0_ds6.2ga"
_T40 = "release/tao4.0_ds6.2ga"
_GST = "src/gst-plugins/gst-nvinfer/"
_SOURCES: dict[str, Callable[[int, int], Citation]] = {
    "sdk": partial(_sdk, "6.3"),
    "sdk-nvinfer": partial(_sdk, "6.3", path=SDK_NVINFER_FILE),
    "tao": partial(_tao, _TM),
    "tao3.0-6.2": partial(_tao, _T62),
    "tao4.0-6.2": partial(_tao, _T40),
    "ds": _ds,
    "ds-tao": partial(_ds, path=DS_TAO_PARSER_FILE),
    "ds-nvinfer": partial(_ds, path=DS_NVINFER_FILE),
    "ds-gstnvinfer": partial(_ds, path=_GST + "gstnvinfer.cpp"),
    "ds-meta": partial(_ds, path=_GST + "gstnvinfer_meta_utils.cpp"),
    "ds-props": partial(_ds, path=_GST + "gstnvinfer_property_parser.cpp"),
    "ds-osd": partial(_ds, path="includes/nvll_osd_struct.h"),
}
_FACT_LINE = re.compile(r"(?:(?P<source>\S+) )?L(?P<first>\d+)(?:-L(?P<last>\d+))? (?P<text>.+)")


def _facts(source: str, table: str) -> tuple[Fact, ...]:
    """A fact table as text, one fact a line: ``[SOURCE ]L<first>[-L<last>] <rule>``, the lines
    cited in ``source`` (a key of _SOURCES) unless the line names another; ``$ROT`` stands for
    the rotation_angle note. One line a fact keeps the tables from repeating in shape."""
    facts = []
    for line in table.splitlines():
        if not line.strip():
            continue
        match = _FACT_LINE.fullmatch(line.strip())
        if match is None:
            raise ValueError(f"not a fact line (SOURCE L<first>-L<last> rule): {line!r}")
        first = int(match["first"])
        cite = _SOURCES[match["source"] or source](first, int(match["last"] or first))
        facts.append(Fact(match["text"].replace("$ROT", _ROT), cite))
    return tuple(facts)

# NvDsInferParseCustomTfSSD, SDK library. Body identical on SDK branches 5.0, 6.0, 6.0.1, 6.1,
# 6.1.1, 6.2, 6.3 (6.3: lines 214-278; 6.2: 205-269) and, but for `res{}`, 9.0 (L315-L382).
# Not in deepstream_tao_apps.
_TFSSD = "6.3"
_TFSSD_FACTS = _facts("sdk", """
    L219-L226 looks layers up by name and only among layers whose dataType is FLOAT
    L228-L231 names: num_detections (optional), detection_scores, detection_classes, detection_boxes
    L232-L236 scores, classes or boxes not found (or not FLOAT): prints an error and returns false
    L238-L245 row count = detection_classes inferDims.d[0]; a FLOAT num_detections overrides it with (int)buf[0], capped at d[0]
    L248-L249 classId = (unsigned) detection_classes[i] (float); score = detection_scores[i]
    L250-L253 continue when classId >= number of thresholds (num-detected-classes) or score < perClassPreclusterThreshold[classId]
    L254-L260 boxes [y1,x1,y2,x2] normalised, multiplied by network width/height
    L261-L264 each corner clipped to [0, width-1] / [0, height-1]
    L265-L267 continue when x2 <= x1 or y2 <= y1 after clipping (zero padding rows are dropped here)
    L268-L274 left=x1, top=y1, width=x2-x1, height=y2-y1; pushed when width and height are non-zero
    ds L351 9.0: `res{}` value-initialises the object, so $ROT is 0 (axis-aligned); the only change from 6.3
""")

# NvDsInferParseCustomEfficientDetTAO, SDK library: identical on SDK 6.1, 6.1.1, 6.2, 6.3
# (6.3: lines 607-672) and, but for `object{}`, 9.0 (L715-L784); absent from 5.0, 6.0, 6.0.1.
_EDS = "6.3"
_SDK_EFFDET_FACTS = _facts("sdk", """
    L613-L618 returns false unless exactly 4 output layers
    L620-L627 by position: [0] count int*, [1] boxes float*, [2] scores float*, [3] classes float*
    L629 threshold = perClassThreshold[0] (class 0's pre-cluster threshold) for every class
    L631-L637 max over all boxes elements (inferDims.numElements of output 1)
    L639-L640 when count > 0: assert(!(max_box < 2.0)) - normalised boxes abort the process
    L641-L643 loop i < count[0]; continue when score < threshold
    L644 assert((unsigned) classes[i] < num-detected-classes)
    L651-L652 continue when box[2] < box[0] or box[3] < box[1]
    L654-L661 classId = (int) classes[i]; left=box[1], top=box[0], width=box[3]-left, height=box[2]-top (pixels y1,x1,y2,x2)
    L663-L666 left/width clipped to [0, width-1], top/height to [0, height-1] (width from the unclipped left)
    ds L765 9.0: `object{}` value-initialises the object, so $ROT is 0; the only change from 6.3
""")

# deepstream_tao_apps NvDsInferParseCustomEfficientDetTAO, release/tao4.0_ds6.3ga and later:
# identical on tao4.0_ds6.3ga, tao5.1_ds6.4ga, tao5.3_ds7.0ga (lines 334-396), tao_ds7.1ga
# (421-483), tao_ds8.0ga and master (469-531), and DeepStream 9.0's copy but for one line
# (L466-L530). Cited on master.
_TAO_EFFDET_FACTS = _facts("tao", """
    L473-L479 returns false unless exactly 4 output layers
    L481-L497 by name (strcmp over the 4 layers, a later duplicate wins): num_detections int*, detection_boxes float*, detection_scores float*, detection_classes int*
    L481-L497 a name not found leaves a null pointer that is dereferenced when first read (crash)
    L499-L500 threshold = perClassThreshold[0] (class 0's pre-cluster threshold) for every class
    L502-L505 when count > 0, loop i < count[0]; continue when score < threshold
    L506-L508 break (stop reading all further rows) at the first classes[i] >= num-detected-classes
    L510-L511 continue when box[2] < box[0] or box[3] < box[1]
    L513-L520 left=box[1], top=box[0], width=box[3]-left, height=box[2]-top (pixels y1,x1,y2,x2)
    L522-L525 left/width clipped to [0, width-1], top/height to [0, height-1] (width from the unclipped left)
    ds-tao L512 DeepStream 9.0's tao_apps copy: sets `object.rotation_angle = 0.0f;`, the only change from master
""")

# deepstream_tao_apps release/tao3.0_ds6.2ga (and tao3.0_ds6.1.1ga, same body): lines 325-396.
_TAO62_EFFDET_FACTS = _facts("tao3.0-6.2", """
    L329-L335 returns false unless exactly 4 output layers
    L337-L344 by position: [0] count int*, [1] boxes float*, [2] scores float*, [3] classes float*
    L346-L347 threshold = perClassThreshold[0] for every class
    L349-L357 max over all boxes elements; normalized = max < 2.0
    L360-L362 when count > 0: assert(normalized == 0) - normalised boxes abort the process
    L363-L366 continue when score < threshold
    L367 assert((int) classes[i] < num-detected-classes) (signed: a negative class passes)
    L374-L375 continue when box[2] < box[0] or box[3] < box[1]
    L377-L390 left=box[1], top=box[0], width=box[3]-left, height=box[2]-top, clipped
""")

# deepstream_tao_apps release/tao4.0_ds6.2ga: lines 334-381 (int classes, still by position).
_TAO40_EFFDET_FACTS = _facts("tao4.0-6.2", """
    L338-L344 returns false unless exactly 4 output layers
    L346-L349 by position: [0] count int*, [1] boxes float*, [2] scores float*, [3] classes int*
    L351-L352 threshold = perClassThreshold[0] for every class; no normalised-box check
    L354-L357 when count > 0, loop i < count[0]; continue when score < threshold
    L358 assert((int) classes[i] < num-detected-classes)
    L360-L361 continue when box[2] < box[0] or box[3] < box[1]
    L363-L375 left=box[1], top=box[0], width=box[3]-left, height=box[2]-top, clipped
""")

# NvDsInferParseCustomBatchedNMSTLT: SDK 6.0-6.3 (6.3: lines 467-530) and deepstream_tao_apps
# tao3.0_ds6.1.1ga ... master (master: 241-302) read the same way (the TAO copy differs only
# in a debug print's text); so do both DeepStream 9.0 copies (SDK L574-L636, tao_apps L237-L300).
_BATCHED_FACTS = _facts("sdk", """
    L473-L478 returns false unless exactly 4 output layers
    L484-L487 by position: [0] keep count int*, [1] boxes float*, [2] scores float*, [3] classes float*
    L489 threshold = perClassThreshold[0] for every class
    L491-L498 loop while i < count[0] and fewer than 202 objects were pushed (objectList.size() <= 200)
    L499-L500 continue when score < threshold
    L508-L509 continue when (unsigned) classes[i] >= num-detected-classes
    L510-L511 continue when box[2] < box[0] or box[3] < box[1] (boxes x1,y1,x2,y2)
    L513-L523 boxes normalised: x*width, y*height, each clipped to [0, size-1]; width = x2' - left
    L525-L526 continue when the clipped width or height is negative
    tao L241-L302 TAO copy: same reads and rules
    ds L621 9.0 SDK: `object{}` value-initialises the object ($ROT is 0); the only change from 6.3
    ds-tao L287 9.0 tao_apps copy: sets `object.rotation_angle = 0.0f;`, the only change from master
""")

# NvDsInferParseCustomNMSTLT: SDK 6.0-6.3 (6.3: lines 355-403); TAO tao3.0_ds6.1.1ga ... master
# (master: 127-175). The two differ only in the assert's cast. DeepStream 9.0: SDK L461-L509,
# tao_apps copy L121-L171, each with the one rotation_angle change.
_NMSTLT_FACTS = _facts("sdk", """
    L360-L365 returns false unless exactly 2 output layers
    L369-L370 by position: [0] rows of 7 floats, [1] keep count int*
    L371 threshold = perClassThreshold[0] for every class
    L375-L381 row [image_id, label, confidence, xmin, ymin, xmax, ymax]; continue when confidence < threshold
    L382 SDK: assert((unsigned) label < num-detected-classes)
    L389-L397 left = clip(xmin*width), top = clip(ymin*height), width = clip((xmax-xmin)*width), height likewise; no degenerate-box check
    tao L143-L154 TAO: assert((int) label < num-detected-classes) (signed: a negative label passes)
""")
_NMSTLT_90_SDK = Fact(
    "9.0 SDK: `object{}` value-initialises the object (" + _ROT + " is 0); the only change from 6.3", _ds(495, 495)
)
_NMSTLT_90_TAO = Fact(
    "9.0 tao_apps copy: sets `object.rotation_angle = 0.0f;`, the only change from master",
    _ds(159, 159, DS_TAO_PARSER_FILE),
)

# NvDsInferParseCustomMrcnnTLTV2: SDK 6.0-6.3 (6.3: lines 532-605); TAO tao3.0_ds6.1.1ga ...
# master (master: 305-379); same reads and rules. DeepStream 9.0: the same body token for token
# in both copies (SDK L639-L713, tao_apps L303-L377, re-read 2026-12 for issue 14); it fills
# NvDsInferInstanceMaskInfo, which has no rotation_angle.
_MRCNN_FACTS = _facts("sdk", """
    L538-L548 looks layers up by name among FLOAT layers: generate_detections, mask_fcn_logits/BiasAdd
    L550-L554 either missing (or not FLOAT): returns false
    L556-L560 returns false unless the mask layer has 4 dims [N, C, h, w]
    L562-L570 rows = mask d[0]; a class count != mask d[1] only warns
    L38-L40 detection rows of 6 floats: y1, x1, y2, x2 (pixels), class_id, score
    L576-L580 continue when score < perClassPreclusterThreshold[0]
    L582-L588 left/top clipped; width = clip(x2) - x1 (unclipped x1); continue when width or height <= 0
    L589-L599 classId = (int) class_id; mask = mask buffer at row i*num-detected-classes + classId (not mask d[1])
    ds L638-L713 9.0: the same body in the SDK library and the tao_apps copy (struct MrcnnRawDetection unchanged, L109-L111)
    ds L643-L661 9.0: names generate_detections and mask_fcn_logits/BiasAdd, FLOAT layers only
    ds L690-L695 9.0: the box values are clipped to width-1 / height-1, never scaled: network pixels
    ds L699-L706 9.0: the mask block is memcpy'd as it is (mask_width x mask_height floats, d[3] x d[2]): no sigmoid, so the values are whatever the model emits (logits, as the layer name says)
""")
# Not modelled as a variant: NvDsInferParseCustomMrcnnTLT, in the 9.0 SDK library only (not the
# tao_apps copy), NVIDIA/DeepStream@DeepStream-9.0:src/utils/nvdsinfer_customparser/
# nvdsinfer_custombboxparser.cpp L385-L459, is the same body but looks the mask layer up as
# mask_head/mask_fcn_logits/BiasAdd (older TAO exports).

# What nvinfer and the OSD do with the parser's objects (DeepStream 9.0 sources). Instance masks
# are attached only with output-instance-mask=1, thresholded by the OSD at segmentation-threshold.
MRCNN_NVINFER_FACTS = _facts("ds-nvinfer", """
    L584-L594 InstanceSegmentPostprocessor: after the parser, objects with classId >= num-detected-classes or confidence < perClassPreclusterThreshold[classId] are dropped
    L600-L610 then per class the topK highest (topk < 0: all) are kept; no clustering
    L702-L712 any cluster-mode but 4 (NONE) fails the frame: 'Invalid cluster mode for instance mask detection'
    ds-gstnvinfer L1034-L1041 output-instance-mask=1 with cluster-mode != 4 fails at start
    ds-meta L206-L214 with output-instance-mask the mask is copied into obj_meta->mask_params with threshold = segmentation-threshold, width/height = the parser's mask_width/mask_height
    ds-osd L177-L183 NvOSD_MaskParams.threshold is the 'Threshold for binarization' of the mask over its box
    ds-props L1207-L1217 segmentation-threshold is a double and a negative value refuses the config (default 0)
    ds-props L382-L386 output-instance-mask is read as a GKeyFile boolean
""")


@dataclass(frozen=True)
class InstanceMaskLayout:
    """The tensors an instance-mask parser reads, as data (each field from ``cite``)."""

    rows_name: str
    masks_name: str
    row_fields: tuple[str, ...]  # the floats of one row, in order
    box_units: str  # pixels: network input pixels
    mask_dims: str  # per-image dims of the mask tensor
    mask_index: str  # which block of the mask tensor belongs to row i
    mask_values: str  # what the parser does to the values
    class_id_base: int  # class_id indexes labels and the mask blocks from here
    threshold: str
    segmentation_threshold_for_logits: float  # the segmentation-threshold that is probability 0.5
    cite: Citation


MRCNN_LAYOUT = InstanceMaskLayout(
    rows_name="generate_detections",
    masks_name="mask_fcn_logits/BiasAdd",
    row_fields=("y1", "x1", "y2", "x2", "class_id", "score"),
    box_units="pixels",
    mask_dims="[N, C, mask_h, mask_w] with C = num-detected-classes",
    mask_index="i * num-detected-classes + class_id",
    mask_values="copied unchanged (no sigmoid); binarised by the OSD at segmentation-threshold",
    class_id_base=0,
    threshold="perClassPreclusterThreshold[0] in the parser, then [classId] in nvinfer",
    segmentation_threshold_for_logits=0.0,  # sigmoid(x) > 0.5 <=> x > 0
    cite=_ds(639, 713),
)

# nvinfer's own DetectNet_v2 decoding (no parse-bbox-func-name): DetectPostprocessor::
# parseBoundingBox, identical on SDK 6.0-6.3 (6.3: lines 33-149) and 9.0 (L40-L179; the same
# tokens, reformatted).
_DN = "6.3"
_DETECTNET_FACTS = _facts("sdk-nvinfer", """
    L41-L48 bbox layer = the last output whose name contains 'bbox', coverage = the last containing 'cov'
    L50-L57 either missing: error and return false
    L59-L66 both read as float* without a dtype check; dims read as C,H,W
    L68-L83 grid centres (i*stride + 0.5)/35 with stride = ceil(network size / bbox grid size)
    L85-L94 classes parsed = min(coverage C, num-detected-classes); class c's 4 planes start at c*4*H*W
    L101-L104 continue when coverage < perClassPreclusterThreshold[c]
    L109-L117 x1 = (centre - o0)*35, y1 = (centre - o1)*35, x2 = (o2 + centre)*35, y2 = (o3 + centre)*35
    L119-L140 values >= size become size-1, values < 0 become 0; continue when x2-x1 or y2-y1 < 0
    ds-nvinfer L172-L174 9.0: the same body; objects are pushed as {classIndex, left, top, width, height, confidence}, so the new rotation_angle is zero-initialised
""")

# Branches with the same function body (compared whitespace-insensitively).
_SDK_60_63 = ("sdk:6.0", "sdk:6.0.1", "sdk:6.1", "sdk:6.1.1", "sdk:6.2", "sdk:6.3")
_TAO_ALL = tuple(
    f"tao:{b}"
    for b in (
        "release/tao3.0_ds6.1.1ga",
        "release/tao3.0_ds6.2ga",
        "release/tao4.0_ds6.2ga",
        "release/tao4.0_ds6.3ga",
        "release/tao5.1_ds6.4ga",
        "release/tao5.3_ds7.0ga",
        "release/tao_ds7.1ga",
        "release/tao_ds8.0ga",
        "master",
    )
)

# NVIDIA/DeepStream: the 9.0 release branch and main (2026-07), whose parser files are the same blobs.
_DS_90 = ("ds:DeepStream-9.0", "ds:main")

_CLIP_WH = (
    "each value clipped to [0, network width-1] / [0, network height-1] (CLIP macro: NaN becomes the upper bound)"
)


def _float_layer(
    role: str, dims: str, if_missing: str, cite: Citation, name: str, optional: bool = False
) -> TensorRead:
    """A float32 buffer found by name among the layers whose declared dataType is FLOAT."""
    return TensorRead(role, "float32", dims, if_missing, cite, name=name, requires_float_layer=True, optional=optional)


def _four_by_position(
    count: Citation,
    boxes: Citation,
    scores: Citation,
    classes: Citation,
    *,
    classes_type: str = "float32",
    boxes_dims: str = "[K,4]",
) -> tuple[TensorRead, ...]:
    """outputLayersInfo[0..3] read as count int*, boxes float*, scores float*, classes (float* or int*)."""
    return (
        TensorRead("count", "int32", "[0]", "return false (needs 4 outputs)", count, position=0),
        TensorRead("boxes", "float32", boxes_dims, "return false", boxes, position=1),
        TensorRead("scores", "float32", "[K]", "return false", scores, position=2),
        TensorRead("classes", classes_type, "[K]", "return false", classes, position=3),
    )


def _nms_rows_and_count(rows: Citation, count: Citation) -> tuple[TensorRead, ...]:
    """outputLayersInfo[0] rows of 7 floats, [1] NMS_TRT's keep count read as int*."""
    return (
        TensorRead("nms_rows", "float32", "[1,K,7]", "return false (needs 2 outputs)", rows, position=0),
        TensorRead("count", "int32", "[0]", "return false", count, position=1, plugin_output=("NMS_TRT", 1)),
    )


_SCALED_TO_NETWORK = "multiplied by network width (x) and height (y)"
_THRESHOLD_0 = "perClassPreclusterThreshold[0] for every class"

_SDK_TFSSD = ParserVariant(
    key="sdk-tfssd",
    func="NvDsInferParseCustomTfSSD",
    ships_in=("sdk",),
    releases="DeepStream SDK library 5.0-6.3 and 9.0; 7.x/8.x source not public",
    branches=("sdk:5.0", "sdk:6.0", "sdk:6.0.1", "sdk:6.1", "sdk:6.1.1", "sdk:6.2", "sdk:6.3", *_DS_90),
    custom_lib_path=SDK_CUSTOM_LIB,
    lookup="name",
    num_outputs=None,
    tensors=(
        _float_layer(
            "count",
            "buf[0]",
            "ignored: all d[0] rows are read",
            _sdk(_TFSSD, 228, 241),
            "num_detections",
            optional=True,
        ),
        _float_layer("scores", "[K]", "return false", _sdk(_TFSSD, 229, 236), "detection_scores"),
        _float_layer("classes", "d[0] = K rows", "return false", _sdk(_TFSSD, 230, 238), "detection_classes"),
        _float_layer("boxes", "[K,4]", "return false", _sdk(_TFSSD, 231, 236), "detection_boxes"),
    ),
    box_order="y1x1y2x2", box_units="normalized", box_scale=_SCALED_TO_NETWORK,
    class_over_limit="continue",
    threshold="perClassPreclusterThreshold[classId] (per class)",
    count_rule="(int) of a FLOAT num_detections[0], capped at K; without it all K rows",
    clips=_CLIP_WH + "; boxes with x2<=x1 or y2<=y1 after clipping are skipped",
    facts=_TFSSD_FACTS,
    cite=_sdk(_TFSSD, 214, 278),
    same_in=(_ds(315, 382),),
    deploy_layouts=("tfod_float",),
)

_SDK_EFFICIENTDET = ParserVariant(
    key="sdk-efficientdet",
    func="NvDsInferParseCustomEfficientDetTAO",
    ships_in=("sdk",),
    releases="DeepStream SDK library 6.1-6.3 and 9.0; absent from 5.0-6.0.1; 7.x/8.x source not public",
    branches=("sdk:6.1", "sdk:6.1.1", "sdk:6.2", "sdk:6.3", *_DS_90),
    custom_lib_path=SDK_CUSTOM_LIB,
    lookup="position",
    num_outputs=4,
    tensors=_four_by_position(
        _sdk(_EDS, 620, 620),
        _sdk(_EDS, 622, 624),
        _sdk(_EDS, 626, 626),
        _sdk(_EDS, 627, 627),
        boxes_dims="[K,4], all numElements scanned",
    ),
    box_order="y1x1y2x2", box_units="pixels", box_scale="none (network pixels)",
    class_over_limit="assert",
    threshold=_THRESHOLD_0,
    count_rule="int32 count[0]; rows past the buffer are read as memory beyond it",
    clips="left/width to [0, width-1], top/height to [0, height-1]; asserts the largest box value >= 2",
    facts=_SDK_EFFDET_FACTS,
    cite=_sdk(_EDS, 607, 672),
    same_in=(_ds(715, 784),),
    deploy_layouts=("deepstream",),
)

# The deepstream_tao_apps copies of NvDsInferParseCustomEfficientDetTAO, each stated as what it
# changes from the one before it (oldest first; the facts and citations are each copy's own).
_TAO62_EFFICIENTDET = replace(
    _SDK_EFFICIENTDET,
    key="tao-efficientdet-6.2",
    ships_in=("tao_apps",),
    releases="deepstream_tao_apps release/tao3.0_ds6.1.1ga and release/tao3.0_ds6.2ga",
    branches=("tao:release/tao3.0_ds6.1.1ga", "tao:release/tao3.0_ds6.2ga"),
    custom_lib_path=TAO_CUSTOM_LIB,
    tensors=_four_by_position(
        _tao(_T62, 337, 337),
        _tao(_T62, 339, 341),
        _tao(_T62, 343, 343),
        _tao(_T62, 344, 344),
        boxes_dims="[K,4], all numElements scanned",
    ),
    count_rule="int32 count[0]",
    facts=_TAO62_EFFDET_FACTS,
    cite=_tao(_T62, 325, 396),
    same_in=(),
    notes="reads like sdk-efficientdet except that its class assert casts to int (a negative class passes)",
)
_TAO40_EFFICIENTDET = replace(
    _TAO62_EFFICIENTDET,
    key="tao-efficientdet-6.2-tao4",
    releases="deepstream_tao_apps release/tao4.0_ds6.2ga",
    branches=("tao:release/tao4.0_ds6.2ga",),
    tensors=_four_by_position(
        _tao(_T40, 346, 346), _tao(_T40, 347, 347), _tao(_T40, 348, 348), _tao(_T40, 349, 349), classes_type="int32"
    ),
    clips="left/width to [0, width-1], top/height to [0, height-1]",
    facts=_TAO40_EFFDET_FACTS,
    cite=_tao(_T40, 334, 381),
    notes="the proposed key list had no variant for this branch: it reads int32 classes by position, "
    "unlike both tao3.0_ds6.2ga (float32 by position) and tao4.0_ds6.3ga+ (int32 by name)",
)
_TAO_EFFICIENTDET = replace(
    _TAO40_EFFICIENTDET,
    key="tao-efficientdet",
    releases="deepstream_tao_apps >= tao4.0_ds6.3ga, and its copy in DeepStream 9.0",
    branches=(
        "tao:release/tao4.0_ds6.3ga",
        "tao:release/tao5.1_ds6.4ga",
        "tao:release/tao5.3_ds7.0ga",
        "tao:release/tao_ds7.1ga",
        "tao:release/tao_ds8.0ga",
        "tao:master",
        *_DS_90,
    ),
    lookup="name",
    tensors=(
        TensorRead("count", "int32", "[0]", "crash (null pointer read)", _tao(_TM, 488, 489), name="num_detections"),
        TensorRead("boxes", "float32", "[K,4]", "crash when first read", _tao(_TM, 490, 491), name="detection_boxes"),
        TensorRead("scores", "float32", "[K]", "crash when first read", _tao(_TM, 492, 493), name="detection_scores"),
        TensorRead("classes", "int32", "[K]", "crash when first read", _tao(_TM, 494, 495), name="detection_classes"),
    ),
    class_over_limit="break",
    count_rule="int32 count[0]; rows past the buffer are read as memory beyond it",
    facts=_TAO_EFFDET_FACTS,
    cite=_tao(_TM, 469, 531),
    same_in=(_ds(466, 530, DS_TAO_PARSER_FILE),),
    notes="the branches for DeepStream 6.3, 6.4, 7.0, 7.1 and 8.0, master (2025-09), and the copy "
    "under src/apps/tao_apps in NVIDIA/DeepStream 9.0",
)

_BATCHEDNMS = ParserVariant(
    key="batchednms",
    func="NvDsInferParseCustomBatchedNMSTLT",
    ships_in=("sdk", "tao_apps"),
    releases="DeepStream SDK library 6.0-6.3 and 9.0 and deepstream_tao_apps tao3.0_ds6.1.1ga ... "
    "tao_ds8.0ga/master and its 9.0 copy",
    branches=_SDK_60_63 + _TAO_ALL + _DS_90,
    custom_lib_path=SDK_CUSTOM_LIB,
    lookup="position",
    num_outputs=4,
    tensors=_four_by_position(
        _sdk("6.3", 484, 484), _sdk("6.3", 485, 485), _sdk("6.3", 486, 486), _sdk("6.3", 487, 487)
    ),
    box_order="x1y1x2y2", box_units="normalized", box_scale=_SCALED_TO_NETWORK,
    class_over_limit="continue",
    threshold=_THRESHOLD_0,
    count_rule="int32 count[0]; stops after 201 objects",
    clips=_CLIP_WH + "; boxes with x2<x1 or y2<y1 (before scaling) or a negative clipped size are skipped",
    max_objects=201,
    facts=_BATCHED_FACTS,
    cite=_sdk("6.3", 467, 530),
    same_in=(_ds(574, 636), _ds(237, 300, DS_TAO_PARSER_FILE)),
    notes="same contract in both libraries; custom_lib_path may also be the deepstream_tao_apps library",
    deploy_layouts=("batched",),
)

_NMSTLT = ParserVariant(
    key="nmstlt",
    func="NvDsInferParseCustomNMSTLT",
    ships_in=("sdk",),
    releases="DeepStream SDK library 6.0-6.3 and 9.0",
    branches=_SDK_60_63 + _DS_90,
    custom_lib_path=SDK_CUSTOM_LIB,
    lookup="position",
    num_outputs=2,
    tensors=_nms_rows_and_count(_sdk("6.3", 369, 369), _sdk("6.3", 370, 370)),
    box_order="nms_rows", box_units="normalized", box_scale=_SCALED_TO_NETWORK,
    class_over_limit="assert",
    threshold=_THRESHOLD_0,
    count_rule="int32 count[0]",
    clips="left/top/width/height each clipped to [0, size-1]; no degenerate-box check",
    facts=(*_NMSTLT_FACTS, _NMSTLT_90_SDK),
    cite=_sdk("6.3", 355, 403),
    same_in=(_ds(461, 509),),
    deploy_layouts=("nms_trt",),
)
# deepstream_tao_apps' copy: what it changes from the SDK's
_TAO_NMSTLT = replace(
    _NMSTLT,
    key="tao-nmstlt",
    ships_in=("tao_apps",),
    releases="deepstream_tao_apps tao3.0_ds6.1.1ga ... tao_ds8.0ga/master and its 9.0 copy",
    branches=_TAO_ALL + _DS_90,
    custom_lib_path=TAO_CUSTOM_LIB,
    tensors=_nms_rows_and_count(_tao(_TM, 141, 141), _tao(_TM, 142, 142)),
    facts=(*_NMSTLT_FACTS, _NMSTLT_90_TAO),
    cite=_tao(_TM, 127, 175),
    same_in=(_ds(121, 171, DS_TAO_PARSER_FILE),),
    notes="differs from nmstlt only in the assert's cast: (int) here, so a negative label passes",
)

_MRCNN = ParserVariant(
    key="mrcnn",
    func="NvDsInferParseCustomMrcnnTLTV2",
    ships_in=("sdk", "tao_apps"),
    releases="DeepStream SDK library 6.0-6.3 and 9.0 and deepstream_tao_apps tao3.0_ds6.1.1ga ... master "
    "and its 9.0 copy",
    branches=_SDK_60_63 + _TAO_ALL + _DS_90,
    custom_lib_path=SDK_CUSTOM_LIB,
    lookup="name",
    num_outputs=None,
    tensors=(
        _float_layer(
            "detections",
            "[N,6] rows y1,x1,y2,x2,class,score",
            "return false",
            _sdk("6.3", 547, 554),
            "generate_detections",
        ),
        _float_layer(
            "masks", "[N,C,h,w], 4 dims required", "return false", _sdk("6.3", 548, 560), "mask_fcn_logits/BiasAdd"
        ),
    ),
    box_order="y1x1y2x2", box_units="pixels", box_scale="none (network pixels)",
    class_over_limit="not_read",
    threshold=_THRESHOLD_0,
    count_rule="all N = mask d[0] rows",
    clips="left/top clipped; width = clip(x2) - x1; rows with width or height <= 0 skipped",
    facts=_MRCNN_FACTS,
    cite=_sdk("6.3", 532, 605),
    same_in=(_ds(638, 713), _ds(302, 377, DS_TAO_PARSER_FILE)),
    instance_mask=True,
    notes="class ids are not checked by the parser; nvinfer drops class >= num-detected-classes afterwards; "
    "num-detected-classes must equal the mask tensor's d[1] or row i's mask is read from another block",
    deploy_layouts=("other", "deepstream_masks"),
)

_DETECTNET_BUILTIN = ParserVariant(
    key="detectnet-builtin",
    func="DetectPostprocessor::parseBoundingBox",
    ships_in=("nvinfer",),
    releases="nvinfer's built-in DetectNet_v2 decoding, DeepStream 6.0-6.3 and 9.0",
    branches=_SDK_60_63 + _DS_90,
    custom_lib_path=None,
    lookup="name_contains",
    num_outputs=None,
    tensors=(
        TensorRead(
            "coverage", "float32", "[C,H,W]", "return false", _sdk(_DN, 41, 53, SDK_NVINFER_FILE), name_contains="cov"
        ),
        TensorRead(
            "bbox", "float32", "[4C,H,W]", "return false", _sdk(_DN, 41, 57, SDK_NVINFER_FILE), name_contains="bbox"
        ),
    ),
    box_order="detectnet_grid", box_units="detectnet", box_scale="grid centre offsets times 35 (bboxNorm)",
    class_over_limit="not_read",
    threshold="perClassPreclusterThreshold[c] (per class)",
    count_rule="every grid cell of every class < min(C, num-detected-classes)",
    clips="values >= size become size-1, < 0 become 0 (NaN passes through)",
    nms_inside=False,
    facts=_DETECTNET_FACTS,
    cite=_sdk(_DN, 33, 149, SDK_NVINFER_FILE),
    same_in=(_ds(40, 179, DS_NVINFER_FILE),),
    deploy_layouts=("detectnet",),
)

VARIANTS: dict[str, ParserVariant] = {
    v.key: v
    for v in (
        _SDK_TFSSD,
        _SDK_EFFICIENTDET,
        _TAO_EFFICIENTDET,
        _TAO62_EFFICIENTDET,
        _TAO40_EFFICIENTDET,
        _BATCHEDNMS,
        _NMSTLT,
        _TAO_NMSTLT,
        _MRCNN,
        _DETECTNET_BUILTIN,
    )
}

# Reads the same way in every release whose source is public (SDK 5.0-6.3 and 9.0) and stays in
# the SDK's own library, which every DeepStream install has; see docs/deepstream-parsers.md.
DEFAULT_DS_PARSER = "sdk-tfssd"

_DTYPE_ALIASES = {"float": "float32", "fp32": "float32", "half": "float16", "fp16": "float16", "int": "int32"}


# Values per row a parser steps over in a buffer with this role (box[4*i+j], det[7*i+j], ...).
ROW_LENGTH = {"boxes": 4, "nms_rows": 7, "detections": 6}


def _norm_dtype(dtype: str) -> str:
    d = str(dtype).lower().replace("tensor(", "").rstrip(")")
    return _DTYPE_ALIASES.get(d, d)


def variant(key: str) -> ParserVariant:
    """The variant for ``key``; raise UsageError naming the known keys otherwise."""
    from trtdeploy.errors import UsageError

    try:
        return VARIANTS[key]
    except KeyError:
        raise UsageError(f"unknown DeepStream parser variant {key!r}; known: {', '.join(VARIANTS)}") from None


def variants_for_func(func: str) -> list[ParserVariant]:
    """Every variant that defines a function of this name (same name, different libraries)."""
    return [v for v in VARIANTS.values() if v.func == func]


def variants_for_config(func: str, custom_lib_path: str | None) -> list[ParserVariant]:
    """The variants a config's parse-bbox(-instance-mask)-func-name + custom-lib-path can mean.

    The library is recognised by its file name: the SDK's ``libnvds_infercustomparser.so`` or
    deepstream_tao_apps' ``libnvds_infercustomparser_tao.so`` (which of its releases was built
    is not visible in a config, so every tao_apps variant of that function is returned). No
    function name means nvinfer's own DetectNet decoding. Any other library is a user's own
    parser: empty list, nothing known.
    """
    if not func:
        return [VARIANTS["detectnet-builtin"]]
    lib = (custom_lib_path or "").replace("\\", "/").rsplit("/", 1)[-1]
    where = {SDK_CUSTOM_LIB.rsplit("/", 1)[-1]: "sdk", TAO_CUSTOM_LIB_NAME: "tao_apps"}.get(lib)
    return [v for v in variants_for_func(func) if where in v.ships_in]


def _bytes_dtype(t: TensorRead, name: str, dtype: str, producers: Mapping[str, tuple[str, int]] | None) -> str:
    """The dtype of the bytes behind an output declared ``dtype`` (differs for plugin outputs)."""
    from trtdeploy import plugins

    if producers is not None:
        source = producers.get(name)
        return dtype if source is None else plugins.bytes_dtype(source[0], source[1], dtype)
    if t.plugin_output is None:
        return dtype
    return plugins.bytes_dtype(*t.plugin_output, dtype, only_if_declared=True)


def misreads(
    variant_key: str,
    outputs: list[tuple[str, str, tuple]] | list,
    producers: Mapping[str, tuple[str, int]] | None = None,
) -> list[str]:
    """One message per model output the parser would misread, miss or crash on.

    ``outputs`` is the model's ordered output list of ``(name, onnx dtype string, shape)``
    (shape with or without the batch dim; symbolic dims allowed). An empty list means every
    tensor the variant reads is present with the C type it is read as. Units (box order,
    normalised or pixels, class id base) cannot be seen in dtypes: match the variant's
    ``box_order``/``box_units``/``class_id_base`` fields.

    A plugin output is judged by the dtype of the bytes its kernel writes, not the declared
    one (trtdeploy.plugins). ``producers`` (output name -> (plugin op type, output index), see
    ``plugins.plugin_outputs_of``) says which outputs come from a plugin; without it, a tensor
    the parser was written for a plugin output (``TensorRead.plugin_output``) is taken to be
    that output when its dtype is the plugin's declared one.
    """
    v = variant(variant_key)
    outs = [(str(o[0]), _norm_dtype(o[1]), tuple(o[2]) if len(o) > 2 and o[2] is not None else ()) for o in outputs]
    problems: list[str] = []
    if v.num_outputs is not None and len(outs) != v.num_outputs:
        problems.append(
            f"the model has {len(outs)} outputs ({', '.join(n for n, _, _ in outs) or 'none'}) but "
            f"{v.where} returns false unless there are exactly {v.num_outputs}"
        )
        if v.lookup == "position":
            return problems
    for t in v.tensors:
        if t.position is not None:
            if t.position >= len(outs):
                continue  # already reported by the count check
            name, dtype, shape = outs[t.position]
            if _bytes_dtype(t, name, dtype, producers) != t.c_type:
                problems.append(
                    f"{name} (output {t.position}, read as the {t.role}) is {dtype} but {v.where} reads it as {t.c_type}"
                )
            problems += _row_problems(v, t, name, shape)
            continue
        if t.name_contains is not None:
            matches = [o for o in outs if t.name_contains in o[0]]
            if not matches:
                problems.append(f"no output name contains {t.name_contains!r}: {v.where} returns false")
                continue
            name, dtype, _ = matches[-1]  # the last match wins
            if dtype != t.c_type:
                problems.append(f"{name} is {dtype} but {v.where} reads it as {t.c_type}")
            continue
        matches = [o for o in outs if o[0] == t.name]
        if t.requires_float_layer:
            # Only a float32 layer of that name is found. An optional one (TfSSD's num_detections)
            # of another dtype is skipped, not misread: the parser then reads all K rows.
            floats = [o for o in matches if o[1] == "float32"]
            if floats:
                problems += _row_problems(v, t, floats[0][0], floats[0][2])
                continue
            if t.optional:
                continue
            have = f"is {matches[0][1]}" if matches else "is missing"
            problems.append(
                f"{t.name} {have} but {v.where} only finds a float32 layer of that name and returns false without it"
            )
            continue
        if not matches:
            problems.append(f"{t.name} is missing but {v.where} reads it by name ({t.if_missing})")
            continue
        name, dtype, shape = matches[-1]
        if _bytes_dtype(t, name, dtype, producers) != t.c_type:
            problems.append(f"{name} is {dtype} but {v.where} reads it as {t.c_type}")
        problems += _row_problems(v, t, name, shape)
    return problems


def mask_layout_problems(
    variant_key: str, outputs: list[tuple[str, str, tuple]] | list, num_detected_classes: int | None, source: str = ""
) -> list[str]:
    """Why an instance-mask parser would fail on, or pick the wrong mask from, these outputs.

    ``outputs`` as for :func:`misreads`, each shape WITH its batch dim (ONNX and engine shapes
    are). NvDsInferParseCustomMrcnnTLTV2 returns false unless the mask tensor has 4 dims per
    image, reads row i's mask at block i * num-detected-classes + class_id (MRCNN_LAYOUT), and
    loops over mask d[0] rows of generate_detections: a class count other than the mask's d[1]
    reads another detection's (or class's) mask, and fewer rows than d[0] reads past the rows.
    """
    v = variant(variant_key)
    if not v.instance_mask or v.key != "mrcnn":
        return []
    where = f" in {source}" if source else ""
    shapes = {str(o[0]): tuple(o[2]) if len(o) > 2 and o[2] is not None else () for o in outputs}
    masks, rows = shapes.get(MRCNN_LAYOUT.masks_name), shapes.get(MRCNN_LAYOUT.rows_name)
    if not masks:
        return []  # missing: misreads() says so
    if len(masks) != 5:
        return [
            f"{MRCNN_LAYOUT.masks_name}{where} has shape {list(masks)}: {v.where} returns false unless it has "
            "4 dims per image [detections, classes, mask_h, mask_w]"
        ]
    problems = []
    classes = masks[2]
    if num_detected_classes is not None and isinstance(classes, int) and classes > 0 and classes != num_detected_classes:
        problems.append(
            f"{MRCNN_LAYOUT.masks_name}{where} holds {classes} class masks per detection but num-detected-classes="
            f"{num_detected_classes}: {v.where} takes row i's mask at block i*{num_detected_classes}+class_id, "
            f"another detection's mask; set num-detected-classes={classes}"
        )
    if rows and len(rows) == 3 and all(isinstance(d, int) and d > 0 for d in (rows[1], masks[1])) and rows[1] < masks[1]:
        problems.append(
            f"{MRCNN_LAYOUT.rows_name}{where} has {rows[1]} rows but the mask tensor {masks[1]}: {v.where} reads "
            f"{masks[1]} rows (memory past the buffer)"
        )
    return problems


def _row_problems(v: ParserVariant, t: TensorRead, name: str, shape: tuple) -> list[str]:
    need = ROW_LENGTH.get(t.role)
    last = shape[-1] if shape else None
    if need is None or not isinstance(last, int) or last in (need, -1):
        return []
    return [f"{name} has shape {list(shape)} but {v.where} reads its {t.role} as rows of {need} values"]


# ---------------------------------------------------------------------------------------------
# Compatibility layer for generate.py / validate.py until they switch to VARIANTS.


@dataclass(frozen=True)
class ParserContract:
    func: str
    instance_mask: bool  # set with parse-bbox-instance-mask-func-name instead of parse-bbox-func-name
    layouts: tuple[str, ...]  # deploy-card output layouts it can read
    box_format: str | None  # required deploy-card box_format (None: not checked)
    box_units: str | None
    class_dtype: str | None
    num_outputs: int | None
    output_names: tuple[str, ...] = ()  # names it looks up (empty: reads by position)
    nms_inside: bool = True  # the model already suppressed duplicates: cluster-mode 4
    note: str = ""


def _contract(
    key: str, box_format: str | None, class_dtype: str | None, note: str = "", units: bool = True
) -> ParserContract:
    v = VARIANTS[key]
    names = tuple(t.name for t in v.tensors if t.name and not t.optional)
    return ParserContract(
        v.func,
        v.instance_mask,
        v.deploy_layouts,
        box_format,
        v.box_units if units else None,
        class_dtype,
        v.num_outputs if v.num_outputs is not None else (len(v.tensors) if v.instance_mask else None),
        names,
        v.nms_inside,
        note,
    )


# Keyed by function name. NvDsInferParseCustomEfficientDetTAO reads float32 classes by position
# in the SDK library and int32 classes by name in deepstream_tao_apps >= tao4.0_ds6.3ga: the
# function name alone does not say which, so its class dtype stays unchecked here; use
# misreads() with a variant key. NvDsInferParseCustomEfficientNMS is in no SDK release (5.0-6.3,
# 9.0) nor any deepstream_tao_apps branch or its 9.0 copy, so it is not offered.
PARSERS: dict[str, ParserContract] = {
    "NvDsInferParseCustomNMSTLT": _contract("nmstlt", "x1y1x2y2", "float32"),
    "NvDsInferParseCustomBatchedNMSTLT": _contract("batchednms", "x1y1x2y2", "float32"),
    "NvDsInferParseCustomEfficientDetTAO": _contract(
        "tao-efficientdet",
        "y1x1y2x2",
        None,
        note="the SDK library reads classes as float32 by position, deepstream_tao_apps >= tao4.0_ds6.3ga as int32 by name",
    ),
    "NvDsInferParseCustomTfSSD": _contract("sdk-tfssd", "y1x1y2x2", "float32"),
    "NvDsInferParseCustomMrcnnTLTV2": _contract("mrcnn", None, None, units=False),
}


def contract_problems(func: str, layout: str, box_format: str, box_units: str, class_dtype: str) -> list[str]:
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
    if contract.layouts and layout not in contract.layouts:
        problems.append(f"{func} reads {'/'.join(contract.layouts)} outputs but the deploy card's layout is {layout!r}")
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
            "; re-run create-onnx --output-layout deepstream with a matching box format, or pick another parser"
        )
    return problems
