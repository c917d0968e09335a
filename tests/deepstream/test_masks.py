"""Mask R-CNN outputs for DeepStream: the mask passes (trtdeploy.masks), the parser emulation of
NvDsInferParseCustomMrcnnTLTV2, gen-ds-config / check-ds-config / the ds-run dry run for the
``ds/mrcnn`` contract, and the mask IoU of verify.

The model is a hand-made ONNX graph with the tensors a converted Mask R-CNN has (TFOD's four
detection tensors + per-class mask logits [B,K,C,h,w]); every expected value is worked out here
from those constants and the parser's source (NVIDIA/DeepStream@DeepStream-9.0:src/utils/
nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp L639-L713), not produced by the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtdeploy.contracts import MRCNN_NAMES, TFOD_NAMES

H, W = 24, 40  # network input
C, K, MH, MW = 3, 4, 6, 5  # classes, detection rows, mask height and width
COUNT = 3
BOXES = np.array([[[0.1, 0.2, 0.6, 0.7], [0.3, 0.05, 0.9, 0.5], [0.0, 0.5, 0.4, 1.0], [0.2, 0.2, 0.8, 0.8]]],
                 np.float32)  # row 3 is past the count: junk that must not reach DeepStream
SCORES = np.array([[0.9, 0.7, 0.5, 0.4]], np.float32)
CLASSES = np.array([[2, 0, 1, 1]], np.int32)
LOGITS = (np.random.default_rng(14).standard_normal((1, K, C, MH, MW)) * 3).astype(np.float32)
LABELS = ["cat", "dog", "bird"]
THRESHOLD = 0.3


def base_model(per_class: np.ndarray = LOGITS) -> onnx.ModelProto:
    """An image input and, as constants, TFOD's four detection tensors + per-class masks."""
    values = {"num_detections": np.array([[COUNT]], np.int32), "detection_boxes": BOXES,
              "detection_scores": SCORES, "detection_classes": CLASSES, "per_class_masks": per_class}
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(v, f"{name}_value"))
             for name, v in values.items()]
    outputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
               for name, v in values.items()]
    graph = helper.make_graph(nodes, "mask_rcnn_like",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, H, W])], outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"image": np.zeros((1, 3, H, W), np.float32)}), strict=True))


def expected_rows() -> np.ndarray:
    """generate_detections by hand: pixel y1,x1,y2,x2, class, score; rows past the count zero."""
    rows = np.zeros((1, K, 6), np.float32)
    rows[0, :COUNT, :4] = BOXES[0, :COUNT] * np.array([H, W, H, W], np.float32)
    rows[0, :COUNT, 4] = CLASSES[0, :COUNT]
    rows[0, :COUNT, 5] = SCORES[0, :COUNT]
    return rows


@pytest.fixture(scope="module")
def ds_outputs() -> dict[str, np.ndarray]:
    from trtdeploy.masks import shape_for_deepstream

    return run(shape_for_deepstream(base_model(), "per_class_masks", (H, W)))


def test_deepstream_shape_is_rows_and_mask_logits_as_the_parser_reads_them(ds_outputs):
    assert list(ds_outputs) == list(MRCNN_NAMES)  # only the two tensors the parser looks up by name
    rows, masks = ds_outputs[MRCNN_NAMES[0]], ds_outputs[MRCNN_NAMES[1]]
    assert rows.dtype == masks.dtype == np.float32  # layerFinder takes FLOAT layers only (L646)
    np.testing.assert_array_equal(rows, expected_rows())
    np.testing.assert_array_equal(masks, LOGITS)  # copied unchanged: logits, not probabilities


def test_probability_masks_become_logits_with_the_same_sign():
    from trtdeploy.masks import shape_for_deepstream

    probabilities = (1 / (1 + np.exp(-LOGITS.astype(np.float64)))).astype(np.float32)
    out = run(shape_for_deepstream(base_model(probabilities), "per_class_masks", (H, W), activation="sigmoid"))
    logits = out[MRCNN_NAMES[1]]
    # segmentation-threshold 0 on the logits keeps exactly the pixels with probability > 0.5
    np.testing.assert_array_equal(logits > 0, probabilities > 0.5)
    np.testing.assert_allclose(logits, LOGITS, atol=1e-3)


def test_tfod_masks_are_the_detected_class_mask_after_a_sigmoid():
    from trtdeploy.masks import with_tfod_masks

    out = run(with_tfod_masks(base_model(), "per_class_masks"))
    assert list(out)[-1] == "detection_masks" and out["detection_masks"].shape == (1, K, MH, MW)
    picked = LOGITS[0, np.arange(K), CLASSES[0]]
    expected = 1 / (1 + np.exp(-picked.astype(np.float64)))
    np.testing.assert_array_equal(out["detection_masks"][0] > 0.5, expected > 0.5)
    # ONNX Runtime's float32 logistic is an approximation: within a few float32 steps of 1.0 (2**-24)
    np.testing.assert_allclose(out["detection_masks"][0], expected, rtol=0, atol=4 * 2.0**-24)


def test_a_graph_without_the_per_class_masks_is_refused_naming_its_outputs():
    from trtdeploy.errors import GraphError
    from trtdeploy.masks import shape_for_deepstream

    with pytest.raises(GraphError, match="no tensor named mask_logits.*num_detections"):
        shape_for_deepstream(base_model(), "mask_logits", (H, W))


# --- the parser, on the bytes ---------------------------------------------------------------


def test_parser_emulation_reads_boxes_classes_and_the_class_mask(ds_outputs):
    from trtdeploy.deepstream.parser_emulation import parse, raw_outputs_from_arrays

    raw = raw_outputs_from_arrays(list(ds_outputs.items()))
    assert [r.dims for r in raw] == [(K, 6), (K, C, MH, MW)]  # inferDims: no batch dim, 4 for the masks
    objects = parse("mrcnn", raw, W, H, C, [THRESHOLD] * C)
    assert len(objects) == COUNT  # the zeroed row 3 is dropped (score 0 < 0.3)
    for i, o in enumerate(objects):
        y1, x1, y2, x2 = BOXES[0, i] * np.array([H, W, H, W], np.float32)
        # L690-L693: left/top clipped to size-1, width = clip(x2) - x1
        assert (o.class_id, o.left, o.top) == (CLASSES[0, i], pytest.approx(x1), pytest.approx(y1))
        assert o.width == pytest.approx(min(x2, W - 1) - x1) and o.height == pytest.approx(min(y2, H - 1) - y1)
        assert o.confidence == pytest.approx(SCORES[0, i])
        # L704-L706: block i * num-detected-classes + class_id, memcpy'd
        np.testing.assert_array_equal(o.mask, LOGITS[0, i, CLASSES[0, i]])


def test_a_class_count_other_than_the_masks_reads_another_mask_and_is_reported(ds_outputs):
    from trtdeploy.deepstream.parser_emulation import parse, raw_outputs_from_arrays
    from trtdeploy.deepstream.parsers import mask_layout_problems

    raw = raw_outputs_from_arrays(list(ds_outputs.items()))
    wrong = parse("mrcnn", raw, W, H, C + 1, [THRESHOLD] * (C + 1))
    # row 1 (class 0) is read at block 1*4+0 = 4 of the flat [K*C] blocks: row 1, class 1
    np.testing.assert_array_equal(wrong[1].mask, LOGITS[0, 1, 1])
    outputs = [(n, "float32", a.shape) for n, a in ds_outputs.items()]
    assert mask_layout_problems("mrcnn", outputs, C) == []
    (problem,) = mask_layout_problems("mrcnn", outputs, C + 1)
    assert "num-detected-classes=4" in problem and "set num-detected-classes=3" in problem
    (flat,) = mask_layout_problems("mrcnn", [outputs[0], (MRCNN_NAMES[1], "float32", (1, K, C * MH * MW))], C)
    assert "returns false unless it has 4 dims" in flat


# --- gen-ds-config, check-ds-config, ds-run ---------------------------------------------------


def write_model(folder: Path, model: onnx.ModelProto) -> Path:
    from trtdeploy.deploy_card import DeployCard, InputSpec, NmsParams, OutputSpec, Preprocess
    from trtdeploy.masks import ds_output_spec

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mrcnn.onnx"
    onnx.save(model, str(path))
    card = DeployCard(
        input=InputSpec("image", [1, 3, H, W], "NCHW"),
        preprocess=Preprocess(scale=1 / 255),
        # the converter's TFOD-style outputs, turned into the ds/mrcnn card section
        output=ds_output_spec(OutputSpec(nms="efficient", layout="tfod", names=list(TFOD_NAMES), num_classes=C,
                                         max_detections=K)),
        labels=LABELS,
        nms=NmsParams(score_threshold=THRESHOLD, max_detections=K),
    )
    from trtdeploy.deploy_card import card_path_for

    card.save(card_path_for(path))
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    from trtdeploy.deepstream.generate import DsOptions, gen_ds_config
    from trtdeploy.deploy_card import DeployCard, card_path_for
    from trtdeploy.masks import shape_for_deepstream

    root = tmp_path_factory.mktemp("mrcnn")
    model = write_model(root / "model", shape_for_deepstream(base_model(), "per_class_masks", (H, W)))
    result = gen_ds_config(DeployCard.load(card_path_for(model)), model, root / "ds", DsOptions(name="mrcnn"))
    return result.paths[0], dict(result.config.properties)


def test_gen_ds_config_writes_the_instance_mask_keys(generated):
    from trtdeploy.deepstream.parsers import SDK_CUSTOM_LIB

    _, props = generated
    assert props["network-type"] == "3"  # instance segmentation (property_parser.cpp L821-L838)
    assert props["output-instance-mask"] == "1"
    assert props["parse-bbox-instance-mask-func-name"] == "NvDsInferParseCustomMrcnnTLTV2"
    assert "parse-bbox-func-name" not in props
    assert props["custom-lib-path"] == SDK_CUSTOM_LIB  # the SDK library defines it (L639)
    assert props["cluster-mode"] == "4"  # the only mode for instance masks (output_parsing.cpp L702-L712)
    assert props["output-blob-names"] == ";".join(MRCNN_NAMES)
    assert props["num-detected-classes"] == str(C)  # = the mask tensor's d[1]
    assert float(props["segmentation-threshold"]) == 0.0  # logits: probability 0.5


def test_the_generated_config_passes_check_ds_config(generated):
    from trtdeploy.deepstream.check import check_ds_config

    ini, _ = generated
    problems = check_ds_config(ini)
    assert [p.message for p in problems if p.level == "error"] == []


def test_check_ds_config_catches_a_wrong_class_count_and_threshold(generated, tmp_path):
    from trtdeploy.deepstream.check import check_ds_config

    ini, _ = generated
    text = ini.read_text().replace(f"num-detected-classes={C}", f"num-detected-classes={C + 1}")
    text = text.replace("segmentation-threshold=0.0", "segmentation-threshold=-0.5")
    edited = ini.with_name("edited.txt")
    edited.write_text(text)
    errors = [p.message for p in check_ds_config(edited) if p.level == "error"]
    assert any("holds 3 class masks per detection but num-detected-classes=4" in e for e in errors)
    assert any("segmentation-threshold=-0.5 is negative" in e for e in errors)


def test_dry_run_masks_match_the_models_own(generated):
    from PIL import Image

    from trtdeploy.deepstream.dry_run import DryRun, NvInferSetup

    ini, _ = generated
    runner = DryRun(NvInferSetup.from_config(ini))
    result = runner.run_image("grey.png", Image.new("RGB", (W, H), (128, 128, 128)))
    assert len(result.objects) == COUNT and all(o.mask is not None for o in result.objects)
    assert result.masks.mask_pairs == COUNT and result.masks.mean_mask_iou == 1.0


def test_dry_run_mask_comparison_fails_when_deepstream_binarises_elsewhere(generated):
    """segmentation-threshold 2 on logits keeps only probability > 0.88: fewer pixels than TFOD's 0.5."""
    from PIL import Image

    from trtdeploy.deepstream.dry_run import DryRun, NvInferSetup

    ini, _ = generated
    edited = ini.with_name("threshold2.txt")
    edited.write_text(ini.read_text().replace("segmentation-threshold=0.0", "segmentation-threshold=2"))
    runner = DryRun(NvInferSetup.from_config(edited))
    stats = runner.run_image("grey.png", Image.new("RGB", (W, H))).masks
    on_05 = [(LOGITS[0, i, CLASSES[0, i]] > 0).sum() for i in range(COUNT)]
    on_2 = [(LOGITS[0, i, CLASSES[0, i]] > 2).sum() for i in range(COUNT)]
    expected = np.mean([b / a for a, b in zip(on_05, on_2, strict=True)])  # the stricter set is a subset
    assert stats.mean_mask_iou == pytest.approx(expected) and stats.mean_mask_iou < 0.99


def test_gen_ds_config_refuses_tfod_masks_naming_the_deepstream_shape(tmp_path):
    from trtdeploy.deepstream.generate import DsOptions, gen_ds_config
    from trtdeploy.deploy_card import DeployCard, InputSpec, NmsParams, OutputSpec, Preprocess
    from trtdeploy.errors import UnsupportedModelError
    from trtdeploy.masks import tfod_output_spec, with_tfod_masks

    path = tmp_path / "tfod.onnx"
    onnx.save(with_tfod_masks(base_model(), "per_class_masks"), str(path))
    output = tfod_output_spec(OutputSpec(nms="efficient", layout="tfod", names=list(TFOD_NAMES), num_classes=C))
    assert output.output_contract.key == "tfod-masks" and output.names[-1] == "detection_masks"
    card = DeployCard(InputSpec("image", [1, 3, H, W], "NCHW"), Preprocess(), output, LABELS,
                      nms=NmsParams(score_threshold=THRESHOLD))
    with pytest.raises(UnsupportedModelError, match="NvDsInferParseCustomMrcnnTLTV2 needs the ds/mrcnn outputs"):
        gen_ds_config(card, path, tmp_path / "ds", DsOptions())


# --- verify: mask IoU ---------------------------------------------------------------------------


def test_match_reports_mask_iou_binarised_at_one_half():
    from trtdeploy.detections import Detections, match
    from trtdeploy.verify import Tolerance

    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9]], np.float32)
    ref_masks = np.zeros((2, 4, 4), np.float32)
    ref_masks[0, :2] = 0.9  # 8 pixels on
    ref_masks[1] = 0.7  # 16 on
    cand_masks = ref_masks.copy()
    cand_masks[0, 1] = 0.5  # 4 of them exactly at 0.5: off (value > 0.5 is on)
    cand_masks[1, 0, 0] = 0.49
    ref = Detections(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]), ref_masks)
    cand = Detections(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]), cand_masks)
    stats = match(ref, cand, 0.99)
    assert stats.matched == stats.mask_pairs == 2
    assert stats.mean_mask_iou == pytest.approx((4 / 8 + 15 / 16) / 2) and stats.min_mask_iou == pytest.approx(0.5)
    assert not Tolerance().accepts(stats)  # mean mask IoU 0.72 < 0.99
    assert Tolerance().accepts(match(ref, ref, 0.99))
    assert match(ref, Detections(boxes, ref.scores, ref.classes), 0.99).mask_pairs == 0  # no masks: not compared


def test_the_contract_reader_returns_probabilities_of_the_detected_class(ds_outputs, tmp_path):
    from trtdeploy.deploy_card import DeployCard, card_path_for

    model = write_model(tmp_path, base_model())
    card = DeployCard.load(card_path_for(model))
    (dets,) = card.output.output_contract.read([ds_outputs[n] for n in MRCNN_NAMES], card)
    np.testing.assert_allclose(dets.boxes, BOXES[0, :COUNT], atol=1e-6)
    assert dets.classes.tolist() == CLASSES[0, :COUNT].tolist()
    np.testing.assert_array_equal(dets.masks > 0.5, LOGITS[0, np.arange(COUNT), CLASSES[0, :COUNT]] > 0)


def test_ds_run_prints_the_mask_comparison_and_fails_below_the_bound(generated, tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from trtdeploy.cli.main import app

    ini, _ = generated
    photo = tmp_path / "grey.png"
    Image.new("RGB", (W, H), (128, 128, 128)).save(photo)
    ok = CliRunner().invoke(app, ["ds-run", str(ini), "-i", str(photo)])
    assert ok.exit_code == 0, ok.output
    assert f"masks: {COUNT} of the parser's masks vs the model's own, mean IoU 1.0000" in ok.output
    strict = ini.with_name("strict.txt")
    strict.write_text(ini.read_text().replace("segmentation-threshold=0.0", "segmentation-threshold=2"))
    bad = CliRunner().invoke(app, ["ds-run", str(strict), "-i", str(photo)])
    assert bad.exit_code == 1 and "check segmentation-threshold" in bad.output, bad.output


def test_verify_table_shows_mean_mask_iou_only_when_masks_were_compared():
    import io

    from rich.console import Console

    from trtdeploy.cli.verify import _match_table
    from trtdeploy.detections import MatchStats
    from trtdeploy.verify import Tolerance

    def render(stats: MatchStats) -> str:
        buffer = io.StringIO()
        Console(file=buffer, width=200).print(_match_table({1: stats}, Tolerance(), "m.onnx", 2))
        return buffer.getvalue()

    with_masks = MatchStats(reference=2, matched=2, candidate=2, mask_pairs=2, mask_iou_sum=1.9, min_mask_iou=0.9)
    text = render(with_masks)
    assert "mean mask IoU" in text and "0.9500" in text and "FAIL" in text  # 0.95 < 0.99
    assert "mask IoU" not in render(MatchStats(reference=2, matched=2, candidate=2))


@pytest.mark.parametrize(
    ("value", "yaml", "error"),
    [
        ("1", False, None),
        ("true", False, None),  # g_key_file_get_boolean (property_parser.cpp L382-L386)
        ("yes", False, "is not a boolean"),
        ("0", False, "needs output-instance-mask=1"),
        ("1", True, None),
        ("true", True, "is not an integer"),  # std::stoi (yaml_parser.cpp L329-L330) throws on it
    ],
)
def test_output_instance_mask_is_read_as_each_config_form_reads_it(generated, value, yaml, error):
    from trtdeploy.deepstream.validate import ConfigView, validate

    _, props = generated
    view = ConfigView(properties={**props, "output-instance-mask": value}, class_attrs={"pre-cluster-threshold": "0.3"},
                      labels=LABELS, yaml=yaml)
    found = [p.message for p in validate(view) if p.level == "error" and "output-instance-mask" in p.message]
    assert (found == []) if error is None else any(error in m for m in found), found


@pytest.mark.rtx
def test_both_mask_shapes_build_with_tensorrt_rtx_at_dynamic_batch():
    """Standard ops only (GatherND batch_dims=2, Clip, Sigmoid, Concat, Less, Cast): the graph the
    --nms onnx/none Mask R-CNN conversions will carry builds where no plugin exists."""
    import onnx_graphsurgeon as gs

    from trtdeploy.masks import add_deepstream_masks, add_tfod_masks

    trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx not installed")
    graph = gs.Graph(opset=17)
    count = gs.Variable("num_detections", np.int32, ["batch", 1])
    boxes = gs.Variable("detection_boxes", np.float32, ["batch", K, 4])
    scores = gs.Variable("detection_scores", np.float32, ["batch", K])
    classes = gs.Variable("detection_classes", np.int32, ["batch", K])
    per_class = gs.Variable("per_class_masks", np.float32, ["batch", K, C, MH, MW])
    graph.inputs = [count, boxes, scores, classes, per_class]
    graph.outputs = [add_tfod_masks(graph, per_class, classes),
                     *add_deepstream_masks(graph, count, boxes, scores, classes, per_class, (H, W))]
    model = gs.export_onnx(graph.cleanup().toposort())

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString()), [parser.get_error(i).desc() for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for tensor in graph.inputs:
        shape = [d if isinstance(d, int) else 1 for d in tensor.shape]
        profile.set_shape(tensor.name, shape, [2 if d == "batch" else d for d in tensor.shape],
                          [4 if d == "batch" else d for d in tensor.shape])
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    assert engine is not None and engine.nbytes > 0
    assert [network.get_output(i).name for i in range(network.num_outputs)] == ["detection_masks", *MRCNN_NAMES]
