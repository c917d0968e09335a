"""create-onnx's DeepStream outputs: each --ds-parser variant emits exactly the tensors its
parser reads (names, order, dtypes, box order and units), on the bundled model through ONNX
Runtime; pixel boxes are clipped per axis (a non-square input, tiny graph, no TensorFlow); the
--output-layout help says the order the graph has.

Expected reads are written here from the parsers' C source (cited per entry), not taken from
trtdeploy's tables; the tables are then checked against them and against
trtdeploy.deepstream.parsers (another reading of the same source).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from typer.testing import CliRunner

from tests.data import BUNDLED_MODEL
from tests.shared_cache import converted_core, store_dir
from trtdeploy.deploy_card import DS_OUTPUTS, NmsParams
from trtdeploy.graph_passes import PassContext, run_passes

TFOD = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
BATCHED = ("num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes")

# variant -> (output names in order, count dtype, box order, box units, class dtype)
PARSER_READS = {
    # hiennguyen9874/deepstream-sources branch 6.3, sources/libs/nvdsinfer_customparser/
    # nvdsinfer_custombboxparser.cpp, NvDsInferParseCustomTfSSD l. 214-278: layers by NAME whose
    # dataType is FLOAT (l. 219-226), num_detections read as float (l. 240), classes as float and
    # used as the label index (l. 249-253), boxes y1,x1,y2,x2 times the network size (l. 254-260).
    "sdk-tfssd": (TFOD, np.float32, "y1x1y2x2", "normalized", np.float32),
    # same file, NvDsInferParseCustomEfficientDetTAO l. 607-672: 4 outputs by position (l. 613),
    # int *p_keep_count (l. 620), float *p_classes (l. 627), left = box[1], top = box[0], no
    # scaling (l. 658-661), assert(!(max_bbox < 2.0)) (l. 640): pixels.
    "sdk-efficientdet": (TFOD, np.int32, "y1x1y2x2", "pixels", np.float32),
    # NVIDIA-AI-IOT/deepstream_tao_apps master, post_processor/nvdsinfer_custombboxparser_tao.cpp
    # l. 469-531 (the same since release/tao4.0_ds6.3ga): by name (l. 486-497), int *p_classes
    # (l. 495), left = box[1], top = box[0] (l. 517-518), no scaling.
    "tao-efficientdet": (TFOD, np.int32, "y1x1y2x2", "pixels", np.int32),
    # deepstream_tao_apps release/tao3.0_ds6.2ga, same file l. 325-396: float *p_classes (l. 344).
    "tao-efficientdet-6.2": (TFOD, np.int32, "y1x1y2x2", "pixels", np.float32),
    # deepstream_tao_apps release/tao4.0_ds6.2ga, same file l. 334-381: int *p_classes (l. 349).
    "tao-efficientdet-6.2-tao4": (TFOD, np.int32, "y1x1y2x2", "pixels", np.int32),
    # deepstream-sources 6.3, NvDsInferParseCustomBatchedNMSTLT l. 467-530: by position, int count
    # (l. 484), float classes (l. 487), left = box[0] * width, top = box[1] * height (l. 518-519).
    "batchednms": (BATCHED, np.int32, "x1y1x2y2", "normalized", np.float32),
}


def test_every_emitted_variant_has_a_source_reading_here():
    assert set(DS_OUTPUTS) == set(PARSER_READS)


@pytest.mark.parametrize("variant", sorted(PARSER_READS))
def test_emission_table_agrees_with_the_parser_contracts(variant):
    """Our emission table against trtdeploy.deepstream.parsers' reading of the same source."""
    from trtdeploy.deepstream.parsers import VARIANTS, misreads

    out = DS_OUTPUTS[variant]
    names, count_dtype, order, units, class_dtype = PARSER_READS[variant]
    assert out.names == names and out.box_format == order and out.box_units == units
    assert (out.count_dtype, out.class_dtype) == (np.dtype(count_dtype).name, np.dtype(class_dtype).name)
    contract = VARIANTS[variant]
    assert (contract.box_order, contract.box_units, contract.class_id_base) == (order, units, 0)
    dtypes = [out.count_dtype, "float32", "float32", out.class_dtype]
    assert misreads(variant, [(n, d, ()) for n, d in zip(out.names, dtypes, strict=True)]) == []


# --- the bundled model, converted once ----------------------------------------------------------


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    from tfod_trt.create_onnx import CreateOnnxOptions, prepare

    prepared = prepare(
        CreateOnnxOptions(
            saved_model=BUNDLED_MODEL / "saved_model",
            label_map=BUNDLED_MODEL / "label_map.pbtxt",
            output=tmp_path_factory.mktemp("ds") / "unused.onnx",
            score_threshold=0.05,
        )
    )
    return prepared, converted_core(store_dir(tmp_path_factory), BUNDLED_MODEL / "saved_model", False)


def photos(prepared) -> np.ndarray:
    from trtdeploy.sample_images import resize_for_model, sample_photos

    return np.stack([resize_for_model(img, prepared.height, prepared.width, "stretch") for _, img in sample_photos(4)])


def run_head(bundled, nms, ds_parser, images):
    from tfod_trt.create_onnx import attach_head
    from trtdeploy.nms import make_session

    prepared, core = bundled
    model, card = attach_head(core, prepared, nms, None if ds_parser is None else "deepstream", ds_parser)
    session = make_session(model)
    feed = {session.get_inputs()[0].name: images.astype(np.float32)}
    outputs = [o.name for o in session.get_outputs()]
    return card, outputs, [session.run(None, {k: v[i : i + 1] for k, v in feed.items()}) for i in range(len(images))]


@pytest.mark.slow
@pytest.mark.tf
def test_each_ds_parser_variant_on_the_bundled_model(bundled):
    """One conversion; every variant's head on 4 photos. Names, order and dtypes exactly as the
    parser reads them, and the same detections as the tfod layout in the variant's units."""
    prepared, _ = bundled
    images = photos(prepared)
    height, width = prepared.height, prepared.width
    _, _, tfod = run_head(bundled, "efficient", None, images)
    _, _, plain_batched = run_head(bundled, "batched", None, images)
    assert sum(int(r[0][0, 0]) for r in tfod) > 0  # something to compare
    for variant, (names, count_dtype, order, units, class_dtype) in PARSER_READS.items():
        nms = "batched" if variant == "batchednms" else "efficient"
        card, outputs, results = run_head(bundled, nms, variant, images)
        assert outputs == list(names) == card.output.names, variant
        assert card.output.ds_parser == variant and card.output.class_id_base == 0
        assert (card.output.box_format, card.output.box_units) == (order, units)
        reference = plain_batched if variant == "batchednms" else tfod
        for got, want in zip(results, reference, strict=True):
            count, boxes, scores, classes = got
            assert count.dtype == count_dtype and classes.dtype == class_dtype, variant
            assert boxes.dtype == np.float32 and scores.dtype == np.float32, variant
            n = int(want[0][0, 0])
            assert int(count[0, 0]) == n, variant
            np.testing.assert_array_equal(scores, want[2])
            np.testing.assert_array_equal(classes[0, :n].astype(np.int64), want[3][0, :n].astype(np.int64))
            expected = want[1][0, :n]  # normalised y1,x1,y2,x2
            if order == "x1y1x2y2":
                expected = expected[:, [1, 0, 3, 2]]
            if units == "pixels":
                along = [height, width] if order == "y1x1y2x2" else [width, height]
                expected = expected * np.array(along * 2, np.float32)
            np.testing.assert_allclose(boxes[0, :n], expected, rtol=1e-5, atol=1e-4)
            if units == "pixels" and n:
                assert boxes.max() >= 2  # sdk-efficientdet asserts this (l. 640)


@pytest.mark.slow
@pytest.mark.tf
def test_output_layout_deepstream_uses_the_default_variant(bundled):
    from tfod_trt.create_onnx import attach_head
    from trtdeploy.deepstream.parsers import DEFAULT_DS_PARSER

    prepared, core = bundled
    _, card = attach_head(core, prepared, "efficient", "deepstream")
    assert card.output.ds_parser == DEFAULT_DS_PARSER
    _, card = attach_head(core, prepared, "batched", "deepstream")
    assert card.output.ds_parser == "batchednms"


# --- the pixel clip, on a tiny non-square graph (no TensorFlow) ---------------------------------


@pytest.mark.parametrize("variant", ["sdk-efficientdet", "tao-efficientdet"])
def test_pixel_boxes_clip_x_to_the_width_and_y_to_the_height(variant):
    """A 300x400 (HxW) input: a box reaching past the right edge keeps x2 = 400 (clipping x2 to the
    height gave 300 before) and one past the bottom keeps y2 = 300."""
    from tfod_trt.passes import HEAD_PASSES
    from trtdeploy.nms import make_session

    height, width = 300, 400
    graph = gs.Graph(opset=17)
    boxes = gs.Variable("boxes", np.float32, [1, 2, 4])
    scores = gs.Variable("scores", np.float32, [1, 2, 1])
    graph.inputs = graph.outputs = [boxes, scores]
    params = NmsParams(score_threshold=0.1, iou_threshold=0.5, max_detections=4, max_detections_per_class=4)
    ctx = PassContext(family="test", facts={"nms": "efficient", "nms_params": params, "output_layout": "deepstream",
                                            "ds_parser": variant, "input_hw": (height, width)})
    model = run_passes(gs.export_onnx(graph), HEAD_PASSES, ctx)
    # normalised y1,x1,y2,x2: one box past the right edge, one past the bottom (disjoint)
    feed_boxes = np.array([[[0.1, 0.5, 0.3, 1.2], [0.6, -0.1, 1.3, 0.2]]], np.float32)
    feed_scores = np.array([[[0.9], [0.8]]], np.float32)
    count, out_boxes, _, _ = make_session(model).run(None, {"boxes": feed_boxes, "scores": feed_scores})
    assert count[0, 0] == 2
    np.testing.assert_allclose(out_boxes[0, 0], [30.0, 200.0, 90.0, 400.0], rtol=1e-6)
    np.testing.assert_allclose(out_boxes[0, 1], [180.0, 0.0, 300.0, 80.0], rtol=1e-6)


# --- help text ----------------------------------------------------------------------------------


def test_help_states_the_box_order_the_graph_has():
    import typer

    from trtdeploy.cli.main import app

    command = typer.main.get_command(app).commands["create-onnx"]  # type: ignore[attr-defined]
    helps = {opt: " ".join(p.help.split()) for p in command.params for opt in p.opts if p.help}
    assert helps["--output-layout"].startswith(
        "tfod: num_detections, detection_boxes, detection_scores, detection_classes; count int32, "
        "normalised y1,x1,y2,x2 boxes, int32 classes"
    )
    ds_help = helps["--ds-parser"]
    for variant, (names, count_dtype, order, units, class_dtype) in PARSER_READS.items():
        coords = ",".join(order[i : i + 2] for i in range(0, 8, 2))
        said = f"{variant}: {', '.join(names)} "
        assert said in ds_help, variant
        reads = ds_help.split(said)[1].split(";")[1]
        assert f"{'pixel' if units == 'pixels' else 'normalised'} {coords} boxes" in reads, variant
        assert f"count {np.dtype(count_dtype).name}," in reads and f"{np.dtype(class_dtype).name} classes" in reads
    # the printed help shows the same text
    text = CliRunner().invoke(app, ["create-onnx", "--help"]).output
    assert "y1,x1,y2,x2" in text and "pixel x1,y1" not in " ".join(text.split())


# --- cards written before variants existed ---------------------------------------------------------


def test_old_deepstream_card_loads_as_sdk_efficientdet(tmp_path):
    """A card from before --ds-parser (no ds_parser/count_dtype keys, layout deepstream) is what
    --output-layout deepstream made then: int32 count, pixel y1,x1,y2,x2, float32 classes."""
    import json

    from trtdeploy.deploy_card import DeployCard

    old = {
        "schema": "trtdeploy.deploy_card", "schema_version": 1,
        "input": {"name": "input_tensor", "shape": [1, 300, 300, 3], "layout": "NHWC", "dtype": "float32"},
        "preprocess": {"color_order": "RGB", "scale": 1.0, "offsets": [0.0, 0.0, 0.0]},
        "output": {"nms": "efficient", "layout": "deepstream", "names": list(TFOD), "num_classes": 2,
                   "box_format": "y1x1y2x2", "box_units": "pixels", "class_id_base": 0, "class_dtype": "float32",
                   "max_detections": 100},
        "labels": ["cat", "dog"],
        "provenance": {"source_files": {"/abs/path/saved_model/saved_model.pb": "ab" * 32}},
    }
    path = tmp_path / "old.deploy.json"
    path.write_text(json.dumps(old))
    card = DeployCard.load(path)
    assert card.output.ds_parser == "sdk-efficientdet" and card.output.count_dtype == "int32"
    tfod = dict(old, output=dict(old["output"], layout="tfod", box_units="normalized", class_dtype="int32"))
    path.write_text(json.dumps(tfod))
    assert DeployCard.load(path).output.ds_parser == ""
