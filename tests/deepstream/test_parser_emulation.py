"""The byte-level parser emulation against expectations written by hand from each parser's source.

Sources (full clones, ``git show BRANCH:path``):
  SDK = hiennguyen9874/deepstream-sources, sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp
  NVI = hiennguyen9874/deepstream-sources, sources/libs/nvdsinfer/nvdsinfer_context_impl_output_parsing.cpp
  TAO = NVIDIA-AI-IOT/deepstream_tao_apps, post_processor/nvdsinfer_custombboxparser_tao.cpp
Every expected number below was worked out from the cited lines, not produced by the emulation.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trtdeploy.deepstream.clustering import NvObject
from trtdeploy.deepstream.parser_emulation import (
    ParserFailure,
    RawOutput,
    parse,
    raw_outputs_from_arrays,
    raw_outputs_from_session,
)
from trtdeploy.deepstream.parsers import misreads
from trtdeploy.errors import UsageError


def _raw(name: str, array: np.ndarray) -> RawOutput:
    a = np.ascontiguousarray(array)
    return RawOutput(name, str(a.dtype), tuple(a.shape), a.tobytes())


def _effdet_outputs(classes: np.ndarray, boxes=None, scores=None, count=None) -> list[RawOutput]:
    """EfficientNMS-shaped per-image buffers: pixel boxes y1,x1,y2,x2."""
    boxes = np.array([[10, 20, 100, 200], [5, 5, 50, 60]], np.float32) if boxes is None else boxes
    scores = np.array([0.9, 0.8], np.float32) if scores is None else scores
    count = np.array([len(scores)], np.int32) if count is None else count
    return [
        _raw("num_detections", count),
        _raw("detection_boxes", boxes),
        _raw("detection_scores", scores),
        _raw("detection_classes", classes),
    ]


def _box(obj: NvObject) -> tuple:
    return (obj.class_id, obj.left, obj.top, obj.width, obj.height)


def _approx(values: tuple, rel: float = 1e-6) -> object:
    return pytest.approx(values, rel=rel, abs=1e-4)


# ---------------------------------------------------------------------------------------------
# reinterpretation: the C cast decides, not the dtype the engine declares


def test_float_one_read_as_int32_is_1065353216() -> None:
    # struct gives the IEEE-754 bits of 1.0f independently of numpy.
    assert struct.unpack("<i", struct.pack("<f", 1.0))[0] == 1065353216
    # TAO master L494-L495 casts detection_classes to int*; L507-L508 break at class >= num classes.
    one = RawOutput("detection_classes", "float32", (1,), struct.pack("<f", 1.0))
    outs = _effdet_outputs(
        np.zeros(1, np.float32), boxes=np.array([[10, 20, 100, 200]], np.float32), scores=np.array([0.9], np.float32)
    )
    outs[3] = one
    assert parse("tao-efficientdet", outs, 300, 300, 3, [0.5] * 3) == []


def test_tao_efficientdet_reads_int32_classes_by_name_in_any_order() -> None:
    # TAO master L486-L497 (by name), L513-L520: left=box[1], top=box[0], width=box[3]-left,
    # height=box[2]-top; L522-L525 clip to [0, 299].
    outs = _effdet_outputs(np.array([2, 0], np.int32))
    expected = [(2, 20.0, 10.0, 180.0, 90.0), (0, 5.0, 5.0, 55.0, 45.0)]
    got = parse("tao-efficientdet", outs, 300, 300, 3, [0.5] * 3)
    assert [_box(o) for o in got] == expected
    assert [o.confidence for o in got] == pytest.approx([0.9, 0.8])
    shuffled = [outs[2], outs[0], outs[3], outs[1]]
    assert [_box(o) for o in parse("tao-efficientdet", shuffled, 300, 300, 3, [0.5] * 3)] == expected


def test_float_classes_into_tao_parser_lose_everything_after_the_first_nonzero_class() -> None:
    # float 0.0 has bits 0 (class 0); float 2.0 has bits 0x40000000 = 1073741824 >= 3 -> break
    # (TAO master L507-L508), so the second row and everything after it is gone.
    outs = _effdet_outputs(np.array([0.0, 2.0], np.float32))
    got = parse("tao-efficientdet", outs, 300, 300, 3, [0.5] * 3)
    assert [_box(o) for o in got] == [(0, 20.0, 10.0, 180.0, 90.0)]


def test_int32_classes_into_sdk_efficientdet_become_class_zero() -> None:
    # SDK 6.3 L627 reads classes as float*: int32 2 is the denormal 2.8e-45, (unsigned) -> 0 (L644, L655).
    outs = _effdet_outputs(np.array([2, 0], np.int32))
    got = parse("sdk-efficientdet", outs, 300, 300, 3, [0.5] * 3)
    assert [o.class_id for o in got] == [0, 0]


def test_tao_efficientdet_tao4_62_reads_int32_by_position() -> None:
    # TAO release/tao4.0_ds6.2ga L346-L349: by position, classes int*; names are ignored.
    outs = _effdet_outputs(np.array([2, 0], np.int32))
    renamed = [RawOutput(f"out{i}", o.dtype, o.dims, o.data) for i, o in enumerate(outs)]
    got = parse("tao-efficientdet-6.2-tao4", renamed, 300, 300, 3, [0.5] * 3)
    assert [_box(o) for o in got] == [(2, 20.0, 10.0, 180.0, 90.0), (0, 5.0, 5.0, 55.0, 45.0)]
    with pytest.raises(ParserFailure) as err:  # tao-efficientdet finds none of its names: null read
        parse("tao-efficientdet", renamed, 300, 300, 3, [0.5] * 3)
    assert err.value.kind == "crash"


# ---------------------------------------------------------------------------------------------
# class id over the limit: break, continue or assert


def test_class_over_limit_break_vs_continue_vs_assert() -> None:
    # row 0 has class 5 (>= 3 classes), row 1 is a valid class 1.
    # TAO master L507-L508: break -> nothing.
    tao = _effdet_outputs(np.array([5, 1], np.int32))
    assert parse("tao-efficientdet", tao, 300, 300, 3, [0.5] * 3) == []
    # SDK 6.3 L508-L509: continue -> row 1 only; boxes normalised x1,y1,x2,y2 times 300x200
    # (L518-L523): left 0.1*300=30, top 0.2*200=40, width 0.5*300-30=120, height 0.6*200-40=80.
    batched = [
        _raw("n", np.array([2], np.int32)),
        _raw("b", np.array([[0.1, 0.2, 0.5, 0.6], [0.1, 0.2, 0.5, 0.6]], np.float32)),
        _raw("s", np.array([0.9, 0.8], np.float32)),
        _raw("c", np.array([5.0, 1.0], np.float32)),
    ]
    got = parse("batchednms", batched, 300, 200, 3, [0.5] * 3)
    assert [_box(o) for o in got] == [_approx((1, 30.0, 40.0, 120.0, 80.0))]
    # SDK 6.3 L250-L253: continue when classId >= thresholds; boxes y1,x1,y2,x2 (L254-L260).
    tfssd = [
        _raw("detection_boxes", np.array([[0.2, 0.1, 0.6, 0.5]] * 2, np.float32)),
        _raw("detection_scores", np.array([0.9, 0.8], np.float32)),
        _raw("detection_classes", np.array([5.0, 1.0], np.float32)),
    ]
    got = parse("sdk-tfssd", tfssd, 300, 200, 3, [0.5] * 3)
    assert [_box(o) for o in got] == [_approx((1, 30.0, 40.0, 120.0, 80.0))]
    # SDK 6.3 L644: assert((unsigned) class < num classes) aborts.
    with pytest.raises(ParserFailure) as err:
        parse("sdk-efficientdet", _effdet_outputs(np.array([5.0, 1.0], np.float32)), 300, 300, 3, [0.5] * 3)
    assert err.value.kind == "assert"


def test_tfssd_applies_each_class_threshold() -> None:
    # SDK 6.3 L250-L251 uses perClassPreclusterThreshold[classId]; the TAO EfficientDet parser
    # uses perClassThreshold[0] for all (master L500, L505).
    tfssd = [
        _raw("detection_boxes", np.array([[0.2, 0.1, 0.6, 0.5]] * 2, np.float32)),
        _raw("detection_scores", np.array([0.6, 0.6], np.float32)),
        _raw("detection_classes", np.array([0.0, 1.0], np.float32)),
    ]
    assert [o.class_id for o in parse("sdk-tfssd", tfssd, 300, 200, 2, [0.5, 0.7])] == [0]
    tao = _effdet_outputs(np.array([0, 1], np.int32), scores=np.array([0.6, 0.6], np.float32))
    assert [o.class_id for o in parse("tao-efficientdet", tao, 300, 300, 2, [0.5, 0.7])] == [0, 1]


def test_nmstlt_rows_and_label_asserts() -> None:
    # SDK 6.3 L369-L397: rows [image, label, conf, xmin, ymin, xmax, ymax]; left=xmin*W,
    # width=(xmax-xmin)*W, each clipped; row 1 is under the threshold (L380-L381).
    rows = np.array([[[0, 1, 0.9, 0.1, 0.2, 0.5, 0.6], [0, 2, 0.3, 0.0, 0.0, 1.0, 1.0]]], np.float32)
    outs = [_raw("NMS", rows), _raw("NMS_1", np.array([2], np.int32))]
    got = parse("nmstlt", outs, 300, 200, 3, [0.5] * 3)
    assert [_box(o) for o in got] == [_approx((1, 30.0, 40.0, 120.0, 80.0), rel=1e-5)]
    assert parse("tao-nmstlt", outs, 300, 200, 3, [0.5] * 3) == got
    over = [
        _raw("NMS", np.array([[[0, 3, 0.9, 0.1, 0.2, 0.5, 0.6]]], np.float32)),
        _raw("NMS_1", np.array([1], np.int32)),
    ]
    for key in ("nmstlt", "tao-nmstlt"):  # SDK 6.3 L382, TAO master L154
        with pytest.raises(ParserFailure) as err:
            parse(key, over, 300, 200, 3, [0.5] * 3)
        assert err.value.kind == "assert"
    negative = [
        _raw("NMS", np.array([[[0, -1, 0.9, 0.1, 0.2, 0.5, 0.6]]], np.float32)),
        _raw("NMS_1", np.array([1], np.int32)),
    ]
    # TAO master L154 asserts with (int): -1 < 3 passes, classId (unsigned) = 2**32 - 1 (L162).
    assert [o.class_id for o in parse("tao-nmstlt", negative, 300, 200, 3, [0.5] * 3)] == [2**32 - 1]
    # SDK 6.3 L382 casts -1.0f to unsigned: undefined in C.
    with pytest.raises(ParserFailure) as err:
        parse("nmstlt", negative, 300, 200, 3, [0.5] * 3)
    assert err.value.kind == "undefined"


# ---------------------------------------------------------------------------------------------
# units: normalised boxes into a pixel parser and the reverse


def test_normalised_boxes_into_pixel_parsers() -> None:
    norm = np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)
    outs = _effdet_outputs(np.array([0.0], np.float32), boxes=norm, scores=np.array([0.9], np.float32))
    # SDK 6.3 L631-L640: max box value 0.6 < 2.0 -> assert aborts.
    with pytest.raises(ParserFailure) as err:
        parse("sdk-efficientdet", outs, 300, 300, 3, [0.5] * 3)
    assert err.value.kind == "assert"
    # TAO release/tao3.0_ds6.2ga L357-L362: the same check.
    with pytest.raises(ParserFailure):
        parse("tao-efficientdet-6.2", outs, 300, 300, 3, [0.5] * 3)
    # The assert sits inside `if count > 0` (SDK 6.3 L639): no detections, no abort.
    empty = _effdet_outputs(
        np.array([0.0], np.float32), boxes=norm, scores=np.array([0.9], np.float32), count=np.array([0], np.int32)
    )
    assert parse("sdk-efficientdet", empty, 300, 300, 3, [0.5] * 3) == []
    # TAO master has no check: a sub-pixel box left=0.2, top=0.1, width=0.6-0.2, height=0.5-0.1.
    outs_int = _effdet_outputs(np.array([0], np.int32), boxes=norm, scores=np.array([0.9], np.float32))
    got = parse("tao-efficientdet", outs_int, 300, 300, 3, [0.5] * 3)
    assert [_box(o) for o in got] == [_approx((0, 0.2, 0.1, 0.4, 0.4))]


def test_pixel_boxes_into_tfssd_give_nothing() -> None:
    # SDK 6.3 L254-L267: 20 px * 300 = 6000 and 200*300 both clip to 299, x2 <= x1 -> continue.
    outs = [
        _raw("detection_boxes", np.array([[10, 20, 100, 200]], np.float32)),
        _raw("detection_scores", np.array([0.9], np.float32)),
        _raw("detection_classes", np.array([1.0], np.float32)),
    ]
    assert parse("sdk-tfssd", outs, 300, 300, 3, [0.5] * 3) == []


def test_tfssd_clips_and_drops_zero_padding() -> None:
    # SDK 6.3 L261-L267: x2 1.2*100=120 clips to 99; the all-zero padding row gives x2 <= x1 and
    # is dropped even with threshold 0 (score 0 >= 0 passes L250-L253).
    outs = [
        _raw("detection_boxes", np.array([[0.5, 0.5, 0.9, 1.2], [0, 0, 0, 0]], np.float32)),
        _raw("detection_scores", np.array([0.9, 0.0], np.float32)),
        _raw("detection_classes", np.array([0.0, 0.0], np.float32)),
    ]
    got = parse("sdk-tfssd", outs, 100, 100, 1, [0.0])
    assert [_box(o) for o in got] == [_approx((0, 50.0, 50.0, 49.0, 40.0))]


# ---------------------------------------------------------------------------------------------
# dtypes and missing outputs


def test_tfssd_wrong_dtype_counts_as_missing() -> None:
    # SDK 6.3 L219-L226 only matches FLOAT layers; L232-L236 returns false.
    outs = [
        _raw("detection_boxes", np.array([[0.2, 0.1, 0.6, 0.5]], np.float32)),
        _raw("detection_scores", np.array([0.9], np.float32)),
        _raw("detection_classes", np.array([1], np.int32)),
    ]
    with pytest.raises(ParserFailure, match="detection_classes") as err:
        parse("sdk-tfssd", outs, 300, 200, 3, [0.5] * 3)
    assert err.value.kind == "return_false"


def test_tfssd_num_detections_only_when_float() -> None:
    base = [
        _raw("detection_boxes", np.array([[0.2, 0.1, 0.6, 0.5]] * 2, np.float32)),
        _raw("detection_scores", np.array([0.9, 0.8], np.float32)),
        _raw("detection_classes", np.array([1.0, 2.0], np.float32)),
    ]
    # SDK 6.3 L239-L241: a FLOAT num_detections=1 limits the rows to 1.
    got = parse("sdk-tfssd", [_raw("num_detections", np.array([1.0], np.float32)), *base], 300, 200, 3, [0.5] * 3)
    assert [o.class_id for o in got] == [1]
    # An int32 num_detections is not found (L228 layerFinder needs FLOAT): all d[0]=2 rows.
    got = parse("sdk-tfssd", [_raw("num_detections", np.array([1], np.int32)), *base], 300, 200, 3, [0.5] * 3)
    assert [o.class_id for o in got] == [1, 2]
    # L242-L244: a count above d[0] is capped, no read past the buffer.
    got = parse("sdk-tfssd", [_raw("num_detections", np.array([7.0], np.float32)), *base], 300, 200, 3, [0.5] * 3)
    assert [o.class_id for o in got] == [1, 2]


def test_missing_outputs() -> None:
    full = _effdet_outputs(np.array([2, 0], np.int32))
    # SDK 6.3 L613-L618 / TAO master L473-L479: exactly 4 outputs or return false.
    for key in ("sdk-efficientdet", "tao-efficientdet", "batchednms"):
        with pytest.raises(ParserFailure) as err:
            parse(key, full[:3], 300, 300, 3, [0.5] * 3)
        assert err.value.kind == "return_false"
    # TAO master L481-L497: a name not found stays nullptr; boxes are first read at L510.
    renamed = [*full[:1], RawOutput("boxes", full[1].dtype, full[1].dims, full[1].data), *full[2:]]
    with pytest.raises(ParserFailure, match="detection_boxes") as err:
        parse("tao-efficientdet", renamed, 300, 300, 3, [0.5] * 3)
    assert err.value.kind == "crash"
    # ... but when no row passes the threshold the null pointer is never read.
    low = _effdet_outputs(np.array([2, 0], np.int32), scores=np.array([0.1, 0.1], np.float32))
    low[1] = RawOutput("boxes", low[1].dtype, low[1].dims, low[1].data)
    assert parse("tao-efficientdet", low, 300, 300, 3, [0.5] * 3) == []
    # SDK 6.3 L232-L236.
    with pytest.raises(ParserFailure) as err:
        parse("sdk-tfssd", full[2:], 300, 300, 3, [0.5] * 3)
    assert err.value.kind == "return_false"


# ---------------------------------------------------------------------------------------------
# counts and NaN


def test_count_larger_than_k_reads_past_the_buffer() -> None:
    # TAO master L504: loop i < count[0] with no bound on K: row 2 of a 2-row buffer.
    outs = _effdet_outputs(np.array([2, 0], np.int32), count=np.array([3], np.int32))
    with pytest.raises(ParserFailure) as err:
        parse("tao-efficientdet", outs, 300, 300, 3, [0.5] * 3)
    assert err.value.kind == "out_of_bounds"
    # TF's float num_detections 2.0 read as int* (SDK 6.3 L620) is 1073741824 rows.
    tf_count = _effdet_outputs(np.array([2.0, 0.0], np.float32), count=np.array([2.0], np.float32))
    with pytest.raises(ParserFailure) as err:
        parse("sdk-efficientdet", tf_count, 300, 300, 3, [0.5] * 3)
    assert err.value.kind == "out_of_bounds"


def test_nan_rules() -> None:
    # SDK 6.3 L250-L251: NaN < threshold is false, so a NaN score is kept.
    tfssd = [
        _raw("detection_boxes", np.array([[0.2, 0.1, 0.6, 0.5]], np.float32)),
        _raw("detection_scores", np.array([np.nan], np.float32)),
        _raw("detection_classes", np.array([1.0], np.float32)),
    ]
    (obj,) = parse("sdk-tfssd", tfssd, 300, 200, 3, [0.5] * 3)
    assert math.isnan(obj.confidence) and _box(obj) == _approx((1, 30.0, 40.0, 120.0, 80.0))
    # TAO master L510 (NaN comparisons false: not skipped), L517-L525: CLIP = MAX(MIN(a,max),min)
    # turns NaN into max: left = 299, width = 200 - NaN -> 299.
    boxes = np.array([[10, np.nan, 100, 200]], np.float32)
    tao = _effdet_outputs(np.array([1], np.int32), boxes=boxes, scores=np.array([0.9], np.float32))
    assert [_box(o) for o in parse("tao-efficientdet", tao, 300, 300, 3, [0.5] * 3)] == [(1, 299.0, 10.0, 299.0, 90.0)]
    # SDK 6.3 L508: (unsigned) NaN is undefined in C.
    batched = [
        _raw("n", np.array([1], np.int32)),
        _raw("b", np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)),
        _raw("s", np.array([0.9], np.float32)),
        _raw("c", np.array([np.nan], np.float32)),
    ]
    with pytest.raises(ParserFailure) as err:
        parse("batchednms", batched, 300, 200, 3, [0.5] * 3)
    assert err.value.kind == "undefined"


def test_batchednms_stops_after_201_objects() -> None:
    # SDK 6.3 L491, L498: loop while objectList.size() <= 200.
    k = 300
    outs = [
        _raw("n", np.array([k], np.int32)),
        _raw("b", np.tile(np.array([0.1, 0.1, 0.2, 0.2], np.float32), (k, 1))),
        _raw("s", np.full(k, 0.9, np.float32)),
        _raw("c", np.zeros(k, np.float32)),
    ]
    assert len(parse("batchednms", outs, 100, 100, 1, [0.5])) == 201


# ---------------------------------------------------------------------------------------------
# instance masks and nvinfer's DetectNet decoding


def test_mrcnn_rows_and_mask_index() -> None:
    # SDK 6.3 L562-L570: N=2 rows from mask d[0]; rows of 6 floats y1,x1,y2,x2,class,score (L38-L40).
    dets = np.array([[10, 20, 50, 60, 1, 0.9], [0, 0, 30, 30, 0, 0.9]], np.float32)
    masks = np.arange(2 * 2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2, 2)
    outs = [_raw("generate_detections", dets), _raw("mask_fcn_logits/BiasAdd", masks)]
    got = parse("mrcnn", outs, 100, 100, 2, [0.5, 0.5])
    # L583-L586: left 20, top 10, width clip(60)-20 = 40, height clip(50)-10 = 40.
    assert [_box(o) for o in got] == [(1, 20.0, 10.0, 40.0, 40.0), (0, 0.0, 0.0, 30.0, 30.0)]
    # L597-L599: mask block (i*num_classes + class) of h*w = 4 floats: row 0 -> 4..7, row 1 -> 8..11.
    assert got[0].mask.tolist() == [[4, 5], [6, 7]] and got[1].mask.tolist() == [[8, 9], [10, 11]]
    # With num-detected-classes=3 (a mismatch only warns, L564-L568) row 1 reads block 3: 12..15.
    got3 = parse("mrcnn", outs, 100, 100, 3, [0.5] * 3)
    assert got3[1].mask.tolist() == [[12, 13], [14, 15]]
    with pytest.raises(ParserFailure) as err:  # L556-L560: 4 mask dims or return false
        parse("mrcnn", [outs[0], _raw("mask_fcn_logits/BiasAdd", masks.reshape(2, 2, 4))], 100, 100, 2, [0.5] * 2)
    assert err.value.kind == "return_false"


def test_detectnet_builtin_decoding() -> None:
    # NVI 6.3 L68-L83: network 32x32, grid 2x2 -> stride 16, centres (0.5/35, 16.5/35).
    # Cell h=0, w=1 (i=1) has coverage 0.9 (L101-L104); offsets o0=0.1, o1=0, o2=0.2, o3=0.3:
    # x1 = (16.5/35 - 0.1)*35 = 13, y1 = 0.5, x2 = (0.2 + 16.5/35)*35 = 23.5, y2 = 11 (L109-L117).
    cov = np.array([[[0.1, 0.9], [0.2, 0.3]]], np.float32)
    bbox = np.zeros((4, 2, 2), np.float32)
    bbox[0, 0, 1], bbox[1, 0, 1], bbox[2, 0, 1], bbox[3, 0, 1] = 0.1, 0.0, 0.2, 0.3
    outs = [_raw("output_cov/Sigmoid", cov), _raw("output_bbox/BiasAdd", bbox)]
    got = parse("detectnet-builtin", outs, 32, 32, 1, [0.5])
    assert [_box(o) for o in got] == [_approx((0, 13.0, 0.5, 10.5, 10.5), rel=1e-5)]
    # L120-L127: o2 = 1.0 gives x2 = 51.5 >= 32 -> 31.
    bbox[2, 0, 1] = 1.0
    got = parse("detectnet-builtin", [outs[0], _raw("output_bbox/BiasAdd", bbox)], 32, 32, 1, [0.5])
    assert [_box(o) for o in got] == [_approx((0, 13.0, 0.5, 18.0, 10.5), rel=1e-5)]
    with pytest.raises(ParserFailure) as err:  # L50-L53
        parse("detectnet-builtin", [outs[1]], 32, 32, 1, [0.5])
    assert err.value.kind == "return_false"


# ---------------------------------------------------------------------------------------------
# ONNX Runtime outputs of a tiny EfficientNMS-shaped graph


def _effnms_shaped_model(class_type: int) -> onnx.ModelProto:
    """dets [1,K,6] (y1,x1,y2,x2,score,class) -> the four EfficientNMS outputs."""
    k = 3
    nodes = [
        helper.make_node("Constant", [], ["c0"], value=helper.make_tensor("c0", TensorProto.INT64, [1], [0])),
        helper.make_node("Constant", [], ["c4"], value=helper.make_tensor("c4", TensorProto.INT64, [1], [4])),
        helper.make_node("Constant", [], ["c5"], value=helper.make_tensor("c5", TensorProto.INT64, [1], [5])),
        helper.make_node("Constant", [], ["c6"], value=helper.make_tensor("c6", TensorProto.INT64, [1], [6])),
        helper.make_node("Constant", [], ["ax2"], value=helper.make_tensor("ax2", TensorProto.INT64, [1], [2])),
        helper.make_node("Constant", [], ["ax1"], value=helper.make_tensor("ax1", TensorProto.INT64, [1], [1])),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])),
        helper.make_node("Slice", ["dets", "c0", "c4", "ax2"], ["detection_boxes"]),
        helper.make_node("Slice", ["dets", "c4", "c5", "ax2"], ["score3"]),
        helper.make_node("Squeeze", ["score3", "ax2"], ["detection_scores"]),
        helper.make_node("Slice", ["dets", "c5", "c6", "ax2"], ["class3"]),
        helper.make_node("Squeeze", ["class3", "ax2"], ["class_f"]),
        helper.make_node("Cast", ["class_f"], ["detection_classes"], to=class_type),
        helper.make_node("Greater", ["detection_scores", "zero"], ["valid"]),
        helper.make_node("Cast", ["valid"], ["valid_i"], to=TensorProto.INT32),
        helper.make_node("ReduceSum", ["valid_i", "ax1"], ["num_detections"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "effnms_shaped",
        [helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, k, 6])],
        [
            helper.make_tensor_value_info("num_detections", TensorProto.INT32, [1, 1]),
            helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [1, k, 4]),
            helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [1, k]),
            helper.make_tensor_value_info("detection_classes", class_type, [1, k]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


DETS = np.array([[[10, 20, 100, 200, 0.9, 2], [5, 5, 50, 60, 0.8, 0], [0, 0, 0, 0, 0, 0]]], np.float32)


def test_onnxruntime_int_class_graph_through_tao_efficientdet() -> None:
    session = _session(_effnms_shaped_model(TensorProto.INT32))
    outs = raw_outputs_from_session(session, {"dets": DETS})
    assert [(o.name, o.dtype, o.dims) for o in outs] == [
        ("num_detections", "int32", (1,)),
        ("detection_boxes", "float32", (3, 4)),
        ("detection_scores", "float32", (3,)),
        ("detection_classes", "int32", (3,)),
    ]
    assert misreads("tao-efficientdet", [(o.name, o.dtype, (1, *o.dims)) for o in outs]) == []
    # count 2 (the zero row is padding); same expectation as the hand-made buffers above.
    got = parse("tao-efficientdet", outs, 300, 300, 3, [0.5] * 3)
    assert [_box(o) for o in got] == [(2, 20.0, 10.0, 180.0, 90.0), (0, 5.0, 5.0, 55.0, 45.0)]


def test_onnxruntime_float_class_graph_is_refused_and_misread() -> None:
    session = _session(_effnms_shaped_model(TensorProto.FLOAT))
    outs = raw_outputs_from_session(session, {"dets": DETS})
    problems = misreads("tao-efficientdet", [(o.name, o.dtype, o.dims) for o in outs])
    assert len(problems) == 1
    assert "detection_classes" in problems[0] and "float32" in problems[0] and "int32" in problems[0]
    # The top detection is class 2: 2.0f read as int is 1073741824 -> break (TAO master L507).
    assert parse("tao-efficientdet", outs, 300, 300, 3, [0.5] * 3) == []
    # The SDK's by-position float-class copy (6.3 L627) reads the same buffers correctly.
    got = parse("sdk-efficientdet", outs, 300, 300, 3, [0.5] * 3)
    assert [_box(o) for o in got] == [(2, 20.0, 10.0, 180.0, 90.0), (0, 5.0, 5.0, 55.0, 45.0)]


def test_raw_outputs_take_one_batch_element_in_the_declared_dtype() -> None:
    batch = np.arange(2 * 3, dtype=np.int64).reshape(2, 3)
    (out,) = raw_outputs_from_arrays(
        [("detection_classes", batch)], batch_index=1, engine_dtypes={"detection_classes": "int32"}
    )
    assert (out.dtype, out.dims) == ("int32", (3,))
    assert struct.unpack("<3i", out.data) == (3, 4, 5)


def test_undefined_conversions_per_platform() -> None:
    # SDK 6.3 L508: (unsigned) of a negative float is undefined. GCC on x86-64 converts through a
    # 64-bit cvttss2si and keeps the low 32 bits (-1.0 -> 4294967295 >= 3: continue); aarch64's
    # fcvtzu saturates (-1.0 -> 0 < 3: kept), then classId = (int) -1.0 = -1 (defined, L514) is
    # stored unsigned: 4294967295, which nvinfer drops after the parser.
    outs = [
        _raw("n", np.array([1], np.int32)),
        _raw("b", np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)),
        _raw("s", np.array([0.9], np.float32)),
        _raw("c", np.array([-1.0], np.float32)),
    ]
    with pytest.raises(ParserFailure):
        parse("batchednms", outs, 300, 200, 3, [0.5] * 3)
    assert parse("batchednms", outs, 300, 200, 3, [0.5] * 3, undefined="x86_64") == []
    (obj,) = parse("batchednms", outs, 300, 200, 3, [0.5] * 3, undefined="aarch64")
    assert obj.class_id == 2**32 - 1
    with pytest.raises(UsageError):
        parse("batchednms", outs, 300, 200, 3, [0.5] * 3, undefined="sparc")


def test_efficientnms_reference_outputs_through_the_tao_and_sdk_parsers() -> None:
    # A single EfficientNMS_TRT node run by our CPU reference (trtdeploy.nms.ort_session): its
    # outputs have the plugin's dtypes (int32 count and classes), so tao-efficientdet reads them
    # (TAO master L481-L497) and sdk-efficientdet, which reads classes as float (SDK 6.3 L627),
    # sees class 2 as the denormal 2.8e-45 -> class 0.
    from trtdeploy.nms.ort_session import make_session

    node = helper.make_node(
        "EfficientNMS_TRT",
        ["boxes", "scores"],
        ["num_detections", "detection_boxes", "detection_scores", "detection_classes"],
        score_threshold=0.3,
        iou_threshold=0.5,
        max_output_boxes=4,
        background_class=-1,
        score_activation=0,
        box_coding=0,
        plugin_version="1",
    )
    graph = helper.make_graph(
        [node],
        "one_nms",
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 3, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3, 3]),
        ],
        [
            helper.make_tensor_value_info("num_detections", TensorProto.INT32, [1, 1]),
            helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [1, 4, 4]),
            helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("detection_classes", TensorProto.INT32, [1, 4]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    # Pixel y1,x1,y2,x2; anchor 1 (class 2, 0.9) and anchor 0 (class 0, 0.8) do not overlap;
    # anchor 2 scores under 0.3 everywhere.
    boxes = np.array([[[5, 5, 50, 60], [100, 120, 200, 280], [0, 0, 10, 10]]], np.float32)
    scores = np.array([[[0.8, 0.1, 0.0], [0.0, 0.1, 0.9], [0.1, 0.2, 0.1]]], np.float32)
    outs = raw_outputs_from_session(make_session(model), {"boxes": boxes, "scores": scores})
    assert [(o.name, o.dtype) for o in outs][3] == ("detection_classes", "int32")
    got = parse("tao-efficientdet", outs, 300, 300, 3, [0.5] * 3)
    # left=x1, top=y1, width=x2-x1, height=y2-y1 (TAO master L517-L520), highest score first.
    assert [_box(o) for o in got] == [(2, 120.0, 100.0, 160.0, 100.0), (0, 5.0, 5.0, 55.0, 45.0)]
    assert [o.class_id for o in parse("sdk-efficientdet", outs, 300, 300, 3, [0.5] * 3)] == [0, 0]
