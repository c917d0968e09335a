"""A byte-level emulation of each DeepStream bounding-box parser variant.

Given one image's output buffers exactly as TensorRT hands them to nvinfer (the bytes of the
dtype the engine declares, in engine output order), :func:`parse` reinterprets the bytes with
the C type each parser casts them to (``np.frombuffer``: a float32 1.0 read as int32 is
1065353216) and applies the parser's rules in source order, in float32 arithmetic, returning the
objects the parser would append to its ``objectList``. Where the C code would return false,
abort on an ``assert``, dereference a null pointer, read past a buffer or hit an undefined
float-to-integer conversion, :class:`ParserFailure` is raised with that ``kind``.

The rules are written from the source facts recorded in :mod:`trtdeploy.deepstream.parsers`
(each function below cites its lines). This is our own code: nothing is copied from the parsers.

What the emulation does NOT do (nvinfer does it after the parser, see
nvdsinfer_context_impl_output_parsing.cpp on SDK 6.3, lines 155-169 and 658-727): drop objects
whose class id >= num-detected-classes or whose confidence is below the class's pre-cluster
threshold, and cluster. The objects are :class:`~trtdeploy.deepstream.clustering.NvObject`
(the C structs' one model); ``class_id`` is the C ``unsigned int`` value, so a negative
class id read by a parser shows as 4294967295 and so on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from trtdeploy.deepstream.clustering import NvObject
from trtdeploy.deepstream.parsers import VARIANTS, ParserVariant, variant
from trtdeploy.errors import TrtDeployError, UsageError
from trtdeploy.log import get_logger

log = get_logger("deepstream")

# Neither DeepStream's nor deepstream_tao_apps' Makefile defines NDEBUG, so assert() is live:
# hiennguyen9874/deepstream-sources@6.3:sources/libs/nvdsinfer_customparser/Makefile#L25-L27,
# NVIDIA-AI-IOT/deepstream_tao_apps@master:post_processor/Makefile#L33-L59.
ASSERTS_ENABLED = True

_F32 = np.float32
_U32 = 2**32


@dataclass(frozen=True)
class RawOutput:
    """One output buffer of one image: name, engine dtype, per-image dims, raw bytes."""

    name: str
    dtype: str  # numpy/ONNX dtype name the engine declares: float32, int32, float16, int64 ...
    dims: tuple[int, ...]  # nvinfer's inferDims: the shape without the batch dim
    data: bytes


class ParserFailure(TrtDeployError):
    """The parser would fail on these buffers; ``kind`` says how.

    return_false: the parser returns false (nvinfer logs "Failed to parse bboxes using custom
    parse function" and the frame fails); assert: an assert() aborts the process; crash: a null
    pointer is read; out_of_bounds: it reads past a buffer; undefined: an undefined C conversion.
    """

    def __init__(self, variant_key: str, kind: str, message: str) -> None:
        self.variant_key = variant_key
        self.kind = kind
        super().__init__(f"{variant_key}: {message}")


# --------------------------------------------------------------------------------------------
# Buffers and C semantics


class _Buf:
    """A buffer seen through a C pointer of one type; reading past its bytes is an error."""

    def __init__(self, key: str, out: RawOutput, c_type: str) -> None:
        self.key, self.out, self.c_type = key, out, c_type
        n = len(out.data) // 4
        self.values = np.frombuffer(out.data, dtype="<f4" if c_type == "float32" else "<i4", count=n)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> Any:
        if i < 0 or i >= len(self.values):
            raise ParserFailure(
                self.key,
                "out_of_bounds",
                f"reads {self.c_type} element {i} of {self.out.name!r}, whose buffer holds "
                f"{len(self.out.data)} bytes ({len(self.values)} elements of 4 bytes): memory past the buffer",
            )
        value = self.values[i]
        return _F32(value) if self.c_type == "float32" else int(value)

    def block(self, start: int, count: int) -> np.ndarray:
        if start < 0 or start + count > len(self.values):
            raise ParserFailure(
                self.key,
                "out_of_bounds",
                f"copies {self.c_type} elements {start}..{start + count - 1} of {self.out.name!r}, "
                f"which holds {len(self.values)}: memory past the buffer",
            )
        return np.array(self.values[start : start + count])


class _NullBuf:
    """A pointer left at nullptr because no layer of that name was found."""

    def __init__(self, key: str, name: str) -> None:
        self.key, self.name = key, name

    def __getitem__(self, i: int) -> Any:
        raise ParserFailure(
            self.key, "crash", f"no output is named {self.name!r}: the parser reads through a null pointer (segfault)"
        )


def _clip(a: np.float32, lo: np.float32, hi: np.float32) -> np.float32:
    """The parsers' CLIP(a,min,max) = MAX(MIN(a,max),min) macro, comparison by comparison."""
    m = a if a < hi else hi  # NaN < hi is false: NaN becomes hi
    return m if m > lo else lo


# How an undefined float-to-integer conversion (NaN, or out of the target's range) is treated:
# "raise" (default), or what the instructions GCC emits give on "x86_64" (cvttss2si: (int) gives
# INT_MIN; (unsigned) converts through int64 and keeps the low 32 bits, NaN giving 0) or
# "aarch64" (Jetson; fcvtzs/fcvtzu saturate, NaN gives 0).
UNDEFINED_MODES = ("raise", "x86_64", "aarch64")
_UNDEFINED: ContextVar[str] = ContextVar("undefined_conversions", default="raise")


def _trunc(key: str, x: np.float32, lo: int, hi: int, what: str, ctype: str) -> int:
    v = float(x)
    t = None if math.isnan(v) or math.isinf(v) else math.trunc(v)
    if t is not None and lo <= t <= hi:
        return t
    mode = _UNDEFINED.get()
    if mode == "x86_64":
        if ctype == "int":
            return -(2**31)
        if t is not None and -(2**63) <= t < 2**63:  # through int64, low 32 bits kept
            return t % _U32
        return 0
    if mode == "aarch64":  # saturate to the target's range
        return 0 if math.isnan(v) else (lo if v < lo else hi)
    raise ParserFailure(key, "undefined", f"converts {what}={v} to {ctype}: undefined behaviour in C")


def _to_int(key: str, x: np.float32, what: str) -> int:
    """``(int) x`` for a float x."""
    return _trunc(key, x, -(2**31), 2**31 - 1, what, "int")


def _to_uint(key: str, x: np.float32, what: str) -> int:
    """``(unsigned int) x`` for a float x (a value in (-1, 0) truncates to 0, defined)."""
    return _trunc(key, x, 0, _U32 - 1, what, "unsigned int")


def _as_uint(i: int) -> int:
    """int -> unsigned int (modulo 2**32), as when storing into NvDsInfer*Info.classId."""
    return i % _U32


def _fail(key: str, message: str) -> ParserFailure:
    return ParserFailure(key, "return_false", message)


def _assert(key: str, ok: bool, what: str) -> None:
    if ASSERTS_ENABLED and not ok:
        raise ParserFailure(key, "assert", f"assert({what}) fails: DeepStream aborts")


def _find_float_layer(outputs: Sequence[RawOutput], name: str) -> RawOutput | None:
    """The layerFinder lambda: first layer of that name whose dataType is FLOAT."""
    for out in outputs:
        if out.dtype == "float32" and out.name == name:
            return out
    return None


def _obj(class_id: int, left: Any, top: Any, width: Any, height: Any, conf: Any, mask: Any = None) -> NvObject:
    return NvObject(_as_uint(class_id), float(left), float(top), float(width), float(height), float(conf), mask)


@dataclass(frozen=True)
class _Net:
    w: np.float32  # networkInfo.width as a float operand
    h: np.float32
    w1: np.float32  # networkInfo.width - 1
    h1: np.float32


# --------------------------------------------------------------------------------------------
# The parsers. Each follows its source in order; citations are to the branch named.


def _tfssd(key: str, outs: Sequence[RawOutput], net: _Net, num_classes: int, thr: list[float]) -> list[NvObject]:
    # hiennguyen9874/deepstream-sources@6.3:...nvdsinfer_custombboxparser.cpp#L214-L278
    num_layer = _find_float_layer(outs, "num_detections")  # L228
    score_layer = _find_float_layer(outs, "detection_scores")
    class_layer = _find_float_layer(outs, "detection_classes")
    box_layer = _find_float_layer(outs, "detection_boxes")
    if score_layer is None or class_layer is None or box_layer is None:  # L232-L236
        missing = [
            n
            for n, lay in (
                ("detection_scores", score_layer),
                ("detection_classes", class_layer),
                ("detection_boxes", box_layer),
            )
            if lay is None
        ]
        raise _fail(
            key, f"no float32 output named {', '.join(missing)}: 'some layers missing or unsupported data types'"
        )
    k = class_layer.dims[0] if class_layer.dims else 0  # L238: inferDims.d[0]
    n = k
    if num_layer is not None:  # L239-L241: (int) of the float count, stored unsigned
        n = _as_uint(_to_int(key, _Buf(key, num_layer, "float32")[0], "num_detections[0]"))
    n = min(n, k)  # L242-L245
    scores, classes, boxes = (_Buf(key, lay, "float32") for lay in (score_layer, class_layer, box_layer))
    objects = []
    for i in range(n):  # L246
        conf = scores[i]
        cls = _to_uint(key, classes[i], f"detection_classes[{i}]")  # L249 res.classId = float
        if cls >= len(thr) or conf < thr[cls]:  # L250-L253 (NaN conf passes)
            continue
        x1 = boxes[i * 4 + 1] * net.w  # L254-L260: y1, x1, y2, x2 normalised
        y1 = boxes[i * 4 + 0] * net.h
        x2 = boxes[i * 4 + 3] * net.w
        y2 = boxes[i * 4 + 2] * net.h
        x1, x2 = _clip(x1, _F32(0), net.w1), _clip(x2, _F32(0), net.w1)  # L261-L264
        y1, y2 = _clip(y1, _F32(0), net.h1), _clip(y2, _F32(0), net.h1)
        if x2 <= x1 or y2 <= y1:  # L265-L267
            continue
        width, height = x2 - x1, y2 - y1  # L268-L271
        if width != 0 and height != 0:  # L272
            objects.append(_obj(cls, x1, y1, width, height, conf))
    return objects


def _efficientdet(
    key: str,
    outs: Sequence[RawOutput],
    net: _Net,
    num_classes: int,
    thr: list[float],
    *,
    by_name: bool,
    class_type: str,
    normalised_assert: bool,
    class_rule: str,  # "assert_unsigned" | "assert_int" | "break"
) -> list[NvObject]:
    # SDK 6.1-6.3 (6.3 L607-L672), tao3.0_ds6.2ga (L325-L396), tao4.0_ds6.2ga (L334-L381),
    # tao4.0_ds6.3ga ... master (master L469-L531).
    if len(outs) != 4:
        raise _fail(key, f"'Expected 4 output buffers, detected in the network :{len(outs)}'")
    types = {
        "num_detections": "int32",
        "detection_boxes": "float32",
        "detection_scores": "float32",
        "detection_classes": class_type,
    }
    if by_name:  # master L481-L497: strcmp over the four layers, a later duplicate wins
        found: dict[str, Any] = {n: _NullBuf(key, n) for n in types}
        for out in outs:
            if out.name in types:
                found[out.name] = _Buf(key, out, types[out.name])
        count, boxes, scores, classes = (found[n] for n in types)
    else:  # 6.3 L620-L627 / tao4.0_ds6.2ga L346-L349
        count, boxes, scores, classes = (_Buf(key, out, t) for out, t in zip(outs, types.values(), strict=True))
    threshold = _F32(thr[0])  # perClassThreshold[0]
    if normalised_assert:  # 6.3 L631-L640: max over inferDims.numElements of output 1
        n_elems = int(np.prod(outs[1].dims)) if outs[1].dims else 1
        values = boxes.block(0, n_elems)
        finite = values[~np.isnan(values)]
        max_box = max(_F32(0), _F32(finite.max())) if finite.size else _F32(0)
    objects: list[NvObject] = []
    n = count[0]
    if n <= 0:
        return objects
    if normalised_assert:
        _assert(key, not (max_box < 2.0), f"!(max_bbox < 2.0) with max_bbox={float(max_box)}: normalised boxes")
    for i in range(n):
        if scores[i] < threshold:
            continue
        c = classes[i]
        if class_rule == "break":  # master L507-L508
            if c >= num_classes:
                break
            cls = c
        elif class_rule == "assert_unsigned":  # 6.3 L644
            as_u = _to_uint(key, c, f"classes[{i}]")
            _assert(key, as_u < num_classes, f"(unsigned) classes[{i}]={float(c)} < {num_classes}")
            cls = _to_int(key, c, f"classes[{i}]")
        else:  # assert_int, tao3.0_ds6.2ga L367 / tao4.0_ds6.2ga L358
            cls = c if class_type == "int32" else _to_int(key, c, f"classes[{i}]")
            _assert(key, cls < num_classes, f"(int) classes[{i}]={cls} < {num_classes}")
        b0, b1, b2, b3 = boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]
        if b2 < b0 or b3 < b1:
            continue
        left, top = b1, b0  # pixels y1, x1, y2, x2
        width, height = b3 - left, b2 - top
        left, top = _clip(left, _F32(0), net.w1), _clip(top, _F32(0), net.h1)
        width, height = _clip(width, _F32(0), net.w1), _clip(height, _F32(0), net.h1)
        objects.append(_obj(cls, left, top, width, height, scores[i]))
    return objects


def _batchednms(
    key: str, outs: Sequence[RawOutput], net: _Net, num_classes: int, thr: list[float]
) -> list[NvObject]:
    # hiennguyen9874/deepstream-sources@6.3:...nvdsinfer_custombboxparser.cpp#L467-L530
    if len(outs) != 4:  # L473-L478
        raise _fail(key, f"'Expected 4 output buffers, detected in the network :{len(outs)}'")
    count, boxes, scores, classes = (
        _Buf(key, out, t) for out, t in zip(outs, ("int32", "float32", "float32", "float32"), strict=True)
    )
    threshold = _F32(thr[0])  # L489
    keep_top_k = 200  # L491
    objects: list[NvObject] = []
    i = 0
    while i < count[0] and len(objects) <= keep_top_k:  # L498
        try:
            if scores[i] < threshold:  # L499-L500
                continue
            if _to_uint(key, classes[i], f"classes[{i}]") >= num_classes:  # L508-L509
                continue
            b0, b1, b2, b3 = boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]
            if b2 < b0 or b3 < b1:  # L510-L511
                continue
            cls = _to_int(key, classes[i], f"classes[{i}]")  # L514
            left = _clip(b0 * net.w, _F32(0), net.w1)  # L518-L523: normalised x1, y1, x2, y2
            top = _clip(b1 * net.h, _F32(0), net.h1)
            width = _clip(b2 * net.w, _F32(0), net.w1) - left
            height = _clip(b3 * net.h, _F32(0), net.h1) - top
            if height < 0 or width < 0:  # L525-L526
                continue
            objects.append(_obj(cls, left, top, width, height, scores[i]))
        finally:
            i += 1
    return objects


def _nmstlt(
    key: str, outs: Sequence[RawOutput], net: _Net, num_classes: int, thr: list[float], *, unsigned_assert: bool
) -> list[NvObject]:
    # SDK 6.3 L355-L403 (unsigned assert); deepstream_tao_apps master L127-L175 (int assert)
    if len(outs) != 2:
        raise _fail(key, f"'Expected 2 output buffers, detected in the network :{len(outs)}'")
    rows, count = _Buf(key, outs[0], "float32"), _Buf(key, outs[1], "int32")
    threshold = _F32(thr[0])
    objects: list[NvObject] = []
    for i in range(count[0]):
        det = [rows[i * 7 + j] for j in range(3)]  # image_id, label, confidence
        if det[2] < threshold:
            continue
        if unsigned_assert:
            label = _to_uint(key, det[1], f"row {i} label")
            _assert(key, label < num_classes, f"(unsigned) label={float(det[1])} < {num_classes}")
        else:
            _assert(
                key,
                _to_int(key, det[1], f"row {i} label") < num_classes,
                f"(int) label={float(det[1])} < {num_classes}",
            )
        cls = _to_int(key, det[1], f"row {i} label")
        x1, y1, x2, y2 = (rows[i * 7 + j] for j in range(3, 7))
        left = _clip(x1 * net.w, _F32(0), net.w1)
        top = _clip(y1 * net.h, _F32(0), net.h1)
        width = _clip((x2 - x1) * net.w, _F32(0), net.w1)
        height = _clip((y2 - y1) * net.h, _F32(0), net.h1)
        objects.append(_obj(cls, left, top, width, height, det[2]))
    return objects


def _mrcnn(key: str, outs: Sequence[RawOutput], net: _Net, num_classes: int, thr: list[float]) -> list[NvObject]:
    # hiennguyen9874/deepstream-sources@6.3:...nvdsinfer_custombboxparser.cpp#L532-L605; the same
    # body in NVIDIA/DeepStream@DeepStream-9.0 (SDK L639-L713, tao_apps copy L303-L377): the 9.0
    # lines are 107 (SDK) further on (layerFinder L643-L661, dims L663-L677, loop L683-L709)
    det_layer = _find_float_layer(outs, "generate_detections")  # L547-L548
    mask_layer = _find_float_layer(outs, "mask_fcn_logits/BiasAdd")
    if det_layer is None or mask_layer is None:  # L550-L554
        raise _fail(key, "no float32 'generate_detections' and 'mask_fcn_logits/BiasAdd': 'some layers missing'")
    if len(mask_layer.dims) != 4:  # L556-L560
        raise _fail(key, f"mask output has {len(mask_layer.dims)} dims, the parser expects 4")
    n_rows, mask_classes, mh, mw = mask_layer.dims  # L562-L570
    if mask_classes != num_classes:
        log.warning("%s: mask output has %d classes, num-detected-classes is %d", key, mask_classes, num_classes)
    dets, masks = _Buf(key, det_layer, "float32"), _Buf(key, mask_layer, "float32")
    threshold = _F32(thr[0])
    objects: list[NvObject] = []
    for i in range(n_rows):  # L576
        y1, x1, y2, x2, class_value, score = (dets[i * 6 + j] for j in range(6))  # struct of 6 floats, L38-L40
        if score < threshold:  # L579-L580
            continue
        left, top = _clip(x1, _F32(0), net.w1), _clip(y1, _F32(0), net.h1)  # L583-L586
        width = _clip(x2, _F32(0), net.w1) - x1
        height = _clip(y2, _F32(0), net.h1) - y1
        if width <= 0 or height <= 0:  # L587-L588
            continue
        cls = _to_int(key, class_value, f"generate_detections[{i}].class_id")  # L589
        # L597-L599 (9.0 L704-L706): the row index uses num-detected-classes, not the mask's class
        # dim; the block is copied as it is (no sigmoid: the values are the model's, logits for ds/mrcnn)
        mask = masks.block((i * num_classes + cls) * mh * mw, mh * mw).reshape(mh, mw)
        objects.append(_obj(cls, left, top, width, height, score, mask=mask))
    return objects


def _detectnet(
    key: str, outs: Sequence[RawOutput], net: _Net, num_classes: int, thr: list[float]
) -> list[NvObject]:
    # hiennguyen9874/deepstream-sources@6.3:sources/libs/nvdsinfer/
    # nvdsinfer_context_impl_output_parsing.cpp#L33-L149 (DetectPostprocessor::parseBoundingBox)
    cov_out = bbox_out = None
    for out in outs:  # L41-L48: the last match wins
        if "bbox" in out.name:
            bbox_out = out
        if "cov" in out.name:
            cov_out = out
    if cov_out is None:
        raise _fail(key, "'Could not find output coverage layer for parsing objects' (no output name contains 'cov')")
    if bbox_out is None:
        raise _fail(key, "'Could not find output bbox layer for parsing objects' (no output name contains 'bbox')")
    for out in (cov_out, bbox_out):
        if len(out.dims) < 3:
            raise ParserFailure(key, "undefined", f"{out.name!r} has dims {out.dims}; the decoding reads them as C,H,W")
    cov, bbox = _Buf(key, cov_out, "float32"), _Buf(key, bbox_out, "float32")  # L59-L60, no dtype check
    cc, ch, cw = cov_out.dims[:3]  # L65-L66 getDimsCHWFromDims
    _, bh, bw = bbox_out.dims[:3]
    grid = cw * ch  # L72
    width_i, height_i = int(net.w), int(net.h)
    stride_x = (width_i + bw - 1) // bw  # L73-L74 DIVIDE_AND_ROUND_UP
    stride_y = (height_i + bh - 1) // bh
    norm = _F32(35.0)  # L69
    centres_x = [_F32(i * stride_x + 0.5) / norm for i in range(cw)]  # L76-L83
    centres_y = [_F32(i * stride_y + 0.5) / norm for i in range(ch)]
    objects: list[NvObject] = []
    for c in range(min(cc, num_classes)):  # L85-L86
        x1_at = c * 4 * bh * bw  # L89-L94: sizeof(float) * H * W floats per class
        y1_at, x2_at, y2_at = x1_at + grid, x1_at + 2 * grid, x1_at + 3 * grid
        for h in range(ch):
            for w in range(cw):
                i = w + h * cw
                conf = cov[c * grid + i]
                if conf < thr[c]:  # L103-L104
                    continue
                x1 = (bbox[x1_at + i] - centres_x[w]) * -norm  # L109-L117
                y1 = (bbox[y1_at + i] - centres_y[h]) * -norm
                x2 = (bbox[x2_at + i] + centres_x[w]) * norm
                y2 = (bbox[y2_at + i] + centres_y[h]) * norm
                x1, x2 = (net.w1 if v >= net.w else v for v in (x1, x2))  # L120-L127
                y1, y2 = (net.h1 if v >= net.h else v for v in (y1, y2))
                x1, x2, y1, y2 = (_F32(0) if v < 0 else v for v in (x1, x2, y1, y2))  # L129-L136
                if (x2 - x1) < 0 or (y2 - y1) < 0:  # L139-L140
                    continue
                objects.append(_obj(c, x1, y1, x2 - x1, y2 - y1, conf))
    return objects


_Impl = Callable[[str, Sequence[RawOutput], _Net, int, list[float]], list[NvObject]]


def _effdet(**kw: Any) -> _Impl:
    return lambda key, outs, net, n, thr: _efficientdet(key, outs, net, n, thr, **kw)


_IMPLS: dict[str, _Impl] = {
    "sdk-tfssd": _tfssd,
    "sdk-efficientdet": _effdet(
        by_name=False, class_type="float32", normalised_assert=True, class_rule="assert_unsigned"
    ),
    "tao-efficientdet": _effdet(by_name=True, class_type="int32", normalised_assert=False, class_rule="break"),
    "tao-efficientdet-6.2": _effdet(
        by_name=False, class_type="float32", normalised_assert=True, class_rule="assert_int"
    ),
    "tao-efficientdet-6.2-tao4": _effdet(
        by_name=False, class_type="int32", normalised_assert=False, class_rule="assert_int"
    ),
    "batchednms": _batchednms,
    "nmstlt": lambda key, outs, net, n, thr: _nmstlt(key, outs, net, n, thr, unsigned_assert=True),
    "tao-nmstlt": lambda key, outs, net, n, thr: _nmstlt(key, outs, net, n, thr, unsigned_assert=False),
    "mrcnn": _mrcnn,
    "detectnet-builtin": _detectnet,
}
assert set(_IMPLS) == set(VARIANTS), "every parser variant needs an emulation"


def parse(
    variant_key: str,
    outputs: list[RawOutput],
    network_width: int,
    network_height: int,
    num_classes: int,
    pre_cluster_thresholds: list[float],
    undefined: str = "raise",
) -> list[NvObject]:
    """The objects parser ``variant_key`` returns for one image's raw output buffers.

    ``outputs`` in engine output order (nvinfer passes its output layers in binding order);
    ``num_classes`` is num-detected-classes and ``pre_cluster_thresholds`` nvinfer's
    perClassPreclusterThreshold (one value per class). Raises ParserFailure where the C code
    would fail, UsageError for arguments nvinfer could not have passed. ``undefined`` (one of
    UNDEFINED_MODES) says what an undefined float-to-integer conversion does: raise
    ParserFailure(kind="undefined"), or give what x86_64 or aarch64 (Jetson) hardware gives.
    """
    v: ParserVariant = variant(variant_key)
    if undefined not in UNDEFINED_MODES:
        raise UsageError(f"undefined={undefined!r}: choose one of {', '.join(UNDEFINED_MODES)}")
    if network_width <= 0 or network_height <= 0:
        raise UsageError(f"network size must be positive, got {network_width}x{network_height}")
    if len(pre_cluster_thresholds) != num_classes:
        raise UsageError(
            f"nvinfer passes one pre-cluster threshold per class: got {len(pre_cluster_thresholds)} "
            f"for num-detected-classes={num_classes}"
        )
    if num_classes <= 0 and v.threshold.endswith("[0] for every class"):
        raise ParserFailure(
            variant_key, "out_of_bounds", "reads perClassThreshold[0] of an empty vector (num-detected-classes=0)"
        )
    net = _Net(_F32(network_width), _F32(network_height), _F32(network_width - 1), _F32(network_height - 1))
    thresholds: list[Any] = [_F32(t) for t in pre_cluster_thresholds]  # float32 operands, as in C
    token = _UNDEFINED.set(undefined)
    try:
        with np.errstate(all="ignore"):
            return _IMPLS[variant_key](variant_key, outputs, net, num_classes, thresholds)
    finally:
        _UNDEFINED.reset(token)


# --------------------------------------------------------------------------------------------
# From ONNX Runtime (or any numpy) outputs to the buffers nvinfer would hand over


def raw_outputs_from_arrays(
    named_arrays: Sequence[tuple[str, np.ndarray]],
    batch_index: int = 0,
    engine_dtypes: Mapping[str, str] | None = None,
    producers: Mapping[str, tuple[str, int]] | None = None,
) -> list[RawOutput]:
    """One image's RawOutputs from batched arrays ``[(name, array [B, ...]), ...]``.

    Keep the model's output order (TensorRT keeps the ONNX graph's output order for its
    bindings, and nvinfer passes them in that order). ``engine_dtypes`` maps a name to the dtype
    the engine declares when it differs from the array's (the bytes are then that dtype's); by
    default the array's own dtype is used, as ONNX Runtime and TensorRT agree for float32/int32.
    ``producers`` (name -> (plugin op type, output index), ``plugins.plugin_outputs_of``) marks
    plugin outputs: their bytes are the dtype the plugin's kernel writes, whatever is declared
    (NMS_TRT's keep count: declared float32, int32 bytes).
    """
    from trtdeploy import plugins

    result = []
    for name, array in named_arrays:
        arr = np.asarray(array)
        if arr.ndim == 0 or not 0 <= batch_index < arr.shape[0]:
            raise UsageError(f"output {name!r} has shape {arr.shape}: no batch element {batch_index}")
        one = arr[batch_index]
        dtype = (engine_dtypes or {}).get(name, str(one.dtype))
        source = (producers or {}).get(name)
        written = dtype if source is None else plugins.bytes_dtype(source[0], source[1], dtype)
        one = np.ascontiguousarray(one.astype(np.dtype(written).newbyteorder("<"), copy=False))
        result.append(RawOutput(name, str(np.dtype(dtype)), tuple(int(d) for d in one.shape), one.tobytes()))
    return result


def raw_outputs_from_session(session: Any, feeds: Mapping[str, np.ndarray], batch_index: int = 0) -> list[RawOutput]:
    """Run an onnxruntime.InferenceSession and return one image's outputs in the model's order."""
    names = [o.name for o in session.get_outputs()]
    arrays = session.run(names, dict(feeds))
    return raw_outputs_from_arrays(list(zip(names, arrays, strict=True)), batch_index)
