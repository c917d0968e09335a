"""Output contracts read back to Detections (trtdeploy.contracts readers), against the slow oracle."""

from __future__ import annotations

import numpy as np
import pytest

from tests.nms.slow_nms import slow_efficient_nms
from tests.nms.test_per_class_boxes import flattened, inputs
from trtdeploy.deploy_card import DeployCard, InputSpec, NmsParams, OutputSpec, Preprocess
from trtdeploy.errors import InputError
from trtdeploy.runners import read_contract


def card(layout: str, names: list[str], num_classes: int = 3, **output) -> DeployCard:
    return DeployCard(
        input=InputSpec("x", [2, 300, 400, 3]),
        preprocess=Preprocess(),
        output=OutputSpec(nms="none", layout=layout, names=names, num_classes=num_classes, **output),
        labels=[f"c{i}" for i in range(num_classes)],
        nms=NmsParams(score_threshold=0.4, iou_threshold=0.45, max_detections=10),
    )


@pytest.mark.parametrize("layout", ["raw", "raw_per_class"])
def test_raw_contracts_are_read_through_nms_with_the_cards_parameters(layout):
    boxes, scores = inputs(6, batch=2, anchors=20)
    if layout == "raw":
        boxes = boxes[:, :, 0]  # shared boxes [B,A,4]
        expected = slow_efficient_nms(boxes, scores, 0.4, 0.45, 10)
    else:
        expected = slow_efficient_nms(*flattened(boxes, scores), 0.4, 0.45, 10)
    dets = read_contract({"boxes": boxes, "scores": scores}, card(layout, ["boxes", "scores"]))
    num, out_boxes, out_scores, out_classes = expected
    for b, d in enumerate(dets):
        n = int(num[b, 0])
        assert len(d) == n > 0
        np.testing.assert_array_equal(d.boxes, np.clip(out_boxes[b, :n], 0, 1))
        np.testing.assert_array_equal(d.scores, out_scores[b, :n])
        np.testing.assert_array_equal(d.classes, out_classes[b, :n])


def test_pixel_x1y1x2y2_nms_outputs_come_back_normalised_y1x1y2x2():
    names = ["num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes"]
    c = card("batched", names, box_format="x1y1x2y2", class_dtype="float32")
    outputs = {
        "num_detections": np.array([[1]], np.int32),
        "nmsed_boxes": np.array([[[0.1, 0.2, 0.5, 0.6]]], np.float32),  # x1,y1,x2,y2
        "nmsed_scores": np.array([[0.9]], np.float32),
        "nmsed_classes": np.array([[2.0]], np.float32),
    }
    (d,) = read_contract(outputs, c)
    np.testing.assert_allclose(d.boxes, [[0.2, 0.1, 0.6, 0.5]])
    assert d.classes.tolist() == [2]
    assert c.output.output_contract.key == "ds/batchednms"  # what NvDsInferParseCustomBatchedNMSTLT reads


def test_a_contract_without_a_reader_says_so():
    c = card("nms_trt", ["NMS", "NMS_1"])
    with pytest.raises(InputError, match="'nms_trt'.*has no reader"):
        read_contract({"NMS": np.zeros((1, 1, 10, 7), np.float32), "NMS_1": np.zeros((1, 1, 1, 1), np.float32)}, c)


def test_every_contract_reads_as_its_deepstream_readers_read():
    """Each contract's DeepStream readers (parsers.VARIANTS, facts read in the parsers' C source)
    read its tensors without a misread, in the contract's box order and units."""
    from trtdeploy import contracts
    from trtdeploy.deepstream.parsers import VARIANTS, misreads

    checked = 0
    for contract in contracts.CONTRACTS.values():
        shapes = contract.shapes(1, 100, 1000, 3)
        outputs = [(t.name, t.dtype, tuple(s)) for t, s in zip(contract.tensors, shapes, strict=True)]
        for key in contract.ds_readers:
            parser = VARIANTS[key]
            checked += 1
            problems = misreads(key, outputs)
            if contract.key == "nms_trt":
                # NMS_TRT declares its keep count float32 but writes int32 bits (NVIDIA/TensorRT
                # release/10.13 plugin/nmsPlugin/nmsPlugin.cpp l. 440-453, plugin/common/kernels/
                # gatherTopDetections.cu l. 52): the int32 read is right, misreads() flags the
                # declared dtype. Nothing else may differ.
                assert [p for p in problems if "NMS_1" not in p] == [], (contract.key, key)
                continue
            assert problems == [], (contract.key, key)
            if contract.has_nms:
                assert (parser.box_order, parser.box_units) == (contract.box_format, contract.box_units), key
    assert checked >= 8


def test_cards_store_the_contract_and_old_cards_map_their_layout(tmp_path):
    import json

    c = card("batched", ["num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes"], box_format="x1y1x2y2")
    path = tmp_path / "m.deploy.json"
    c.save(path)
    data = json.loads(path.read_text())
    assert data["output"]["contract"] == "ds/batchednms" and data["output"]["layout"] == "batched"
    assert DeployCard.load(path).output.output_contract.key == "ds/batchednms"
    del data["output"]["contract"]  # a card written before contracts were stored
    path.write_text(json.dumps(data))
    assert DeployCard.load(path).output.output_contract.key == "ds/batchednms"
    data["output"]["contract"] = "tfod"  # disagrees with the stored layout
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="output contract 'tfod' is stored as layout 'tfod'.*says layout 'batched'"):
        DeployCard.load(path)
    data["output"]["contract"] = "banana"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown output contract 'banana'"):
        DeployCard.load(path)
