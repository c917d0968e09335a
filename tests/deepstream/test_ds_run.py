"""`trtdeploy ds-run`: reading configs as nvinfer does, the whole dry run on a tiny ONNX, the CLI,
and (slow, TensorFlow) the generated DeepStream configs against the saved models they came from.

Facts from hiennguyen9874/deepstream-sources branch 6.3, cited where used:
gstnvinfer_property_parser.{h,cpp} (defaults, relative paths), nvdsinfer_context_impl.cpp
(labels, network size, NvDsInferContext_ResetInitParams), gstnvinfer.cpp (scaling),
gstnvinfer_meta_utils.cpp (mapping back, bottom-edge rule); NVIDIA/DeepStream branch DeepStream-9.0
holds the same code for each (9.0 lines in trtdeploy/deepstream/*.py and docs/ds-run.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from tests.data import BUNDLED_MODEL, fixture_dir
from tests.shared_cache import CachedTfRunner, converted_core, store_dir
from trtdeploy.cli import ds_run
from trtdeploy.deepstream.clustering import ClassParams
from trtdeploy.deepstream.dry_run import (
    DryRun,
    ImageComparison,
    NvInferSetup,
    compare_with_runner,
    load_images,
    matched_fraction,
    parser_candidates,
    read_labels,
)
from trtdeploy.deepstream.nvinfer_preprocess import COLOR_RGB, DEFAULT_FILTER, ORDER_NCHW
from trtdeploy.deploy_card import DS_OUTPUTS
from trtdeploy.errors import InputError, TrtDeployError, UnsupportedModelError

SDK_LIB = "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so"
TAO_LIB = "../../../post_processor/libnvds_infercustomparser_tao.so"


def tiny_detector(path: Path, box: tuple[float, ...] = (1.0, 1.0, 3.0, 3.0)) -> Path:
    """A 4x4 NHWC model in the layout NvDsInferParseCustomEfficientDetTAO (SDK) reads by position:
    count int32 = 1, one pixel box y1,x1,y2,x2 = (1,1,3,3), class 0.0 (float32), and a score equal
    to the mean of input channel 0, so the score shows what the preprocessing fed the model."""
    import onnx
    from onnx import TensorProto, helper

    def const(name: str, kind: int, dims: list[int], values: list[float]) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(f"{name}_c", kind, dims, values))

    nodes = [
        const("num_detections", TensorProto.INT32, [1, 1], [1]),
        const("detection_boxes", TensorProto.FLOAT, [1, 1, 4], list(box)),
        helper.make_node("ReduceMean", ["input_tensor"], ["means"], axes=[1, 2], keepdims=0),
        const("starts", TensorProto.INT64, [1], [0]),
        const("ends", TensorProto.INT64, [1], [1]),
        const("axis", TensorProto.INT64, [1], [1]),
        helper.make_node("Slice", ["means", "starts", "ends", "axis"], ["detection_scores"]),
        const("detection_classes", TensorProto.FLOAT, [1, 1], [0.0]),
    ]
    outputs = [
        helper.make_tensor_value_info("num_detections", TensorProto.INT32, [1, 1]),
        helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [1, 1, 4]),
        helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [1, 1]),
        helper.make_tensor_value_info("detection_classes", TensorProto.FLOAT, [1, 1]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input_tensor", TensorProto.FLOAT, [1, 4, 4, 3])], outputs
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def write_config(folder: Path, extra: str = "", attrs: str = "pre-cluster-threshold=0.4\n", yaml: bool = False) -> Path:
    """config/ holds the config and labels; the ONNX sits one folder up (onnx-file=../tiny.onnx)."""
    tiny_detector(folder / "tiny.onnx")
    cfg_dir = folder / "config"
    cfg_dir.mkdir(exist_ok=True)
    (cfg_dir / "labels.txt").write_text("red thing;alias\n")
    props = {
        "onnx-file": "../tiny.onnx",
        "net-scale-factor": "0.00392156862745098",
        "network-input-order": "1",
        "infer-dims": "3;4;4",
        "num-detected-classes": "1",
        "labelfile-path": "labels.txt",
        "parse-bbox-func-name": "NvDsInferParseCustomEfficientDetTAO",
        "custom-lib-path": SDK_LIB,
        "cluster-mode": "4",
    }
    for line in extra.splitlines():
        if line.strip():
            key, value = line.split("=", 1)
            props[key] = value
    if yaml:
        body = "property:\n" + "".join(f"  {k}: \"{v}\"\n" for k, v in props.items())
        body += "class-attrs-all:\n" + "".join(f"  {line.replace('=', ': ')}\n" for line in attrs.splitlines())
        path = cfg_dir / "config.yml"
    else:
        body = "[property]\n" + "".join(f"{k}={v}\n" for k, v in props.items()) + "\n[class-attrs-all]\n" + attrs
        path = cfg_dir / "config.txt"
    path.write_text(body)
    return path


def red(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.tile(np.array([255, 0, 0], np.uint8), (height, width, 1)))


def run_one(config: Path, image: Image.Image) -> list:
    pytest.importorskip("trtdeploy.deepstream.parser_emulation")
    return DryRun(NvInferSetup.from_config(config)).run_image("img.png", image).objects


# --- reading the config -------------------------------------------------------------------------


def test_defaults_are_nvinfers(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    tiny_detector(tmp_path / "m.onnx")
    (cfg_dir / "c.txt").write_text("[property]\nonnx-file=../m.onnx\nnum-detected-classes=2\n"
                                   "parse-bbox-func-name=NvDsInferParseCustomEfficientDetTAO\n"
                                   f"custom-lib-path={SDK_LIB}\n")
    s = NvInferSetup.from_config(cfg_dir / "c.txt")
    assert s.onnx_path.resolve() == (tmp_path / "m.onnx").resolve()  # relative to the config's folder
    # net-scale-factor 1.0, RGB, NCHW (context_impl.cpp l.1975-1981, property_parser.cpp l.532)
    assert (s.norm.scale, s.norm.offsets, s.norm.color_format, s.norm.input_order) == (1.0, (), COLOR_RGB, ORDER_NCHW)
    assert not s.maintain_aspect_ratio and not s.symmetric_padding
    assert s.scaling_filter == DEFAULT_FILTER  # gstnvinfer.cpp l.414
    assert s.cluster_mode == 0  # memset 0 = NVDSINFER_CLUSTER_GROUP_RECTANGLES, run as NMS without OpenCV
    assert "runs as 2" in s.describe()
    # gstnvinfer_property_parser.h l.20-27
    assert s.class_params == [ClassParams(0.2, 0.0, 0.3, -1)] * 2
    assert s.variant == "sdk-efficientdet"


def test_class_attrs_groups_and_yaml(tmp_path: Path) -> None:
    ini = write_config(tmp_path, "num-detected-classes=2", "pre-cluster-threshold=0.4\ntopk=7\n")
    with open(ini, "a") as fh:
        fh.write("\n[class-attrs-1]\npre-cluster-threshold=0.9\ndetected-min-w=12\n")
    s = NvInferSetup.from_config(ini)
    # class-attrs-all for every class, then [class-attrs-1] overrides (property_parser.cpp l.1199-1249)
    assert s.class_params[0] == ClassParams(pre_cluster_threshold=0.4, topk=7)
    assert s.class_params[1] == ClassParams(pre_cluster_threshold=0.9, topk=7, detected_min_w=12)
    (tmp_path / "y").mkdir()
    yml = write_config(tmp_path / "y", "num-detected-classes=2", "pre-cluster-threshold=0.4\ntopk=7\n", yaml=True)
    y = NvInferSetup.from_config(yml)
    assert y.class_params == [ClassParams(pre_cluster_threshold=0.4, topk=7)] * 2
    assert (y.norm, y.infer_dims, y.labels, y.variant) == (s.norm, s.infer_dims, s.labels, s.variant)


def test_class_attrs_group_id_is_the_leading_integer(tmp_path: Path) -> None:
    ini = write_config(tmp_path, "num-detected-classes=3")
    with open(ini, "a") as fh:
        fh.write("\n[class-attrs-2x]\npre-cluster-threshold=0.7\n")
    # g_ascii_strtoull stops at the first non-digit and nvinfer only refuses a suffix with no
    # digits (9.0 gstnvinfer_property_parser.cpp l.1395-1418; 6.3 l.1216-1238): class 2
    s = NvInferSetup.from_config(ini)
    assert [p.pre_cluster_threshold for p in s.class_params] == [0.4, 0.4, 0.7]
    with open(ini, "a") as fh:
        fh.write("\n[class-attrs-x]\npre-cluster-threshold=0.7\n")
    with pytest.raises(InputError, match="class-attrs-x"):
        NvInferSetup.from_config(ini)


def test_refusals(tmp_path: Path) -> None:
    for extra, error, text in (
        ("network-type=1", UnsupportedModelError, "detectors"),
        ("network-type=2", UnsupportedModelError, "instance segmentation"),
        ("network-type=3", InputError, "parse-bbox-instance-mask-func-name"),
        ("network-type=3\nparse-bbox-instance-mask-func-name=NvDsInferParseCustomMrcnnTLTV2\ncluster-mode=2",
         InputError, "only cluster-mode=4"),  # nvdsinfer_context_impl.cpp l.716-720
        ("onnx-file=../missing.onnx", InputError, "does not exist"),
        ("parse-bbox-func-name=NvDsInferParseMyOwn", UnsupportedModelError, "--ds-parser"),
        ("offsets=1,2,3", InputError, "list of numbers"),  # GKeyFile lists are ';'-separated
        ("net-scale-factor=abc", InputError, "not a number"),
    ):
        with pytest.raises(error, match=text):
            NvInferSetup.from_config(write_config(tmp_path, extra))
    cfg = write_config(tmp_path)
    with open(cfg, "a") as fh:
        fh.write("\n[class-attrs-3]\npre-cluster-threshold=0.5\n")
    with pytest.raises(InputError, match="num-detected-classes=1"):  # property_parser.cpp l.1232-1238
        NvInferSetup.from_config(cfg)


def test_labels_as_nvinfer_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes(b"person;human\n\ncar\r\n \nlast")
    # empty lines skipped, a line of one space is a label, CR kept, first ';' field (context_impl.cpp l.480-496)
    assert read_labels(path) == ["person", "car\r", " ", "last"]


def test_label_lines_keep_a_line_of_only_cr(tmp_path: Path) -> None:
    from trtdeploy.deepstream.config import read_label_lines

    path = tmp_path / "labels.txt"
    path.write_bytes(b"person\r\n\r\ncar\r\n\nlast")
    lines, problems = read_label_lines(path)
    # parseLabelsFile skips a line only when line.empty() after getline(..., '\n'): a CRLF file's
    # blank line is "\r", a label (hiennguyen9874/deepstream-sources 6.3
    # sources/libs/nvdsinfer/nvdsinfer_context_impl.cpp l.485-487; NVIDIA/DeepStream DeepStream-9.0
    # src/utils/nvdsinfer/nvdsinfer_context_impl.cpp l.561-563)
    assert lines == ["person\r", "\r", "car\r", "last"]
    assert read_labels(path) == lines  # ds-run counts the same classes as check-ds-config
    assert any("line(s) [2] holding only whitespace" in p for p in problems), problems
    assert any("blank line(s) [4]" in p for p in problems), problems


def test_parser_candidates_by_function_and_library() -> None:
    assert parser_candidates("NvDsInferParseCustomEfficientDetTAO", SDK_LIB) == ["sdk-efficientdet"]
    tao = parser_candidates("NvDsInferParseCustomEfficientDetTAO", TAO_LIB)
    assert tao[0] == "tao-efficientdet" and "sdk-efficientdet" not in tao
    assert parser_candidates(None, None) == ["detectnet-builtin"]
    assert parser_candidates("NvDsInferParseCustomBatchedNMSTLT", SDK_LIB) == ["batchednms"]


# --- the dry run on a tiny model ----------------------------------------------------------------


def test_red_frame_is_detected_and_mapped_back(tmp_path: Path) -> None:
    (obj,) = run_one(write_config(tmp_path), red(8, 8))
    # channel 0 = 1/255 * 255 = 1.0; the 4x4 net box (1,1)-(3,3) over an 8x8 frame: ratio 0.5
    assert obj.class_id == 0 and obj.confidence == pytest.approx(1.0)
    assert (obj.left, obj.top, obj.width, obj.height) == (2.0, 2.0, 4.0, 4.0)


def test_bgr_model_sees_the_blue_channel_first(tmp_path: Path) -> None:
    assert run_one(write_config(tmp_path, "model-color-format=1"), red(8, 8)) == []


def test_letterbox_padding_and_bottom_edge(tmp_path: Path) -> None:
    # 8x4 frame into 4x4 with maintain-aspect-ratio: image in rows 0-1, black rows 2-3, so channel 0
    # averages 0.5; the box (rows 1-3) maps to top 2, height 4: its bottom (6) is past the 4-row frame
    # and attach_metadata_detector drops it (gstnvinfer_meta_utils.cpp l.112-117)
    assert run_one(write_config(tmp_path, "maintain-aspect-ratio=1"), red(8, 4)) == []
    # with symmetric-padding the image sits in rows 1-2: top (1-1)/0.5 = 0, height 4, bottom 4: kept
    (obj,) = run_one(write_config(tmp_path, "maintain-aspect-ratio=1\nsymmetric-padding=1"), red(8, 4))
    assert (obj.left, obj.top, obj.width, obj.height) == (2.0, 0.0, 4.0, 4.0)
    assert obj.confidence == pytest.approx(0.5)
    # crop-objects-to-roi-boundary cuts the first box at the frame bottom instead (meta_utils l.103-111)
    (cut,) = run_one(write_config(tmp_path, "maintain-aspect-ratio=1\ncrop-objects-to-roi-boundary=1"), red(8, 4))
    assert (cut.top, cut.height) == (2.0, 2.0)


def test_mapping_back_per_deepstream_release(tmp_path: Path) -> None:
    pytest.importorskip("trtdeploy.deepstream.parser_emulation")
    # the letterboxed box of test_letterbox_padding_and_bottom_edge (bottom 6 on a 4-row frame) with
    # crop-objects-to-roi-boundary=1: cut in 6.2+ and 9.0, dropped by 6.1, which does not read the
    # key (hiennguyen9874/deepstream-sources 6.1 gstnvinfer_meta_utils.cpp l.78-82; 9.0 l.128-134)
    config = write_config(tmp_path, "maintain-aspect-ratio=1\ncrop-objects-to-roi-boundary=1")
    for release, expected in (("6.1", []), ("6.2", [(2.0, 2.0)]), ("9.0", [(2.0, 2.0)])):
        setup = NvInferSetup.from_config(config, deepstream=release)
        assert setup.deepstream == release and f"DeepStream {release}" in setup.describe()
        objects = DryRun(setup).run_image("x", red(8, 4)).objects
        assert [(o.top, o.height) for o in objects] == expected, release
    assert NvInferSetup.from_config(config).deepstream == "9.0"
    (tmp_path / "y").mkdir()
    yml = write_config(tmp_path / "y", yaml=True)
    # YAML configs are read from 6.1 on (6.1 gstnvinfer.cpp l.458-460; 6.0 has no YAML parser)
    with pytest.raises(InputError, match="reads no YAML"):
        NvInferSetup.from_config(yml, deepstream="6.0")
    assert NvInferSetup.from_config(yml, deepstream="6.1").deepstream == "6.1"
    bad = CliRunner().invoke(cli(), ["ds-run", str(config), "--deepstream", "8.0"])
    assert bad.exit_code == 2 and "--deepstream 8.0" in bad.output


def test_cli_warns_of_boxes_cut_to_a_negative_height(tmp_path: Path) -> None:
    pytest.importorskip("trtdeploy.deepstream.parser_emulation")
    config = write_config(tmp_path, "maintain-aspect-ratio=1\ncrop-objects-to-roi-boundary=1")
    # 8x4 frame, ratio 0.5, image in network rows 0-1: a box from row 2.5 lies entirely in the
    # padding; top (2.5 - 0) / 0.5 = 5, and the cut sets height = 4 - 5 = -1 (gstnvinfer_meta_utils.cpp
    # 9.0 l.133-134; 6.3 l.107-109)
    tiny_detector(tmp_path / "tiny.onnx", box=(2.5, 1.0, 3.5, 3.0))
    (obj,) = run_one(config, red(8, 4))
    assert (obj.top, obj.height) == (5.0, -1.0)
    red(8, 4).save(tmp_path / "red.png")
    result = CliRunner().invoke(cli(), ["ds-run", str(config), "-i", str(tmp_path / "red.png")])
    assert result.exit_code == 0, result.output
    assert "1 object(s) with a width or height <= 0" in result.output


def test_gen_ds_config_cuts_boxes_at_the_frame(tmp_path: Path) -> None:
    from tests.deepstream.test_check_ds_config import _tfod_card, ds_onnx
    from trtdeploy.deepstream import DsOptions, gen_ds_config, read_config
    from trtdeploy.deepstream.config import PROPERTY_KEYS, first_release_with
    from trtdeploy.deploy_card import card_path_for

    model = ds_onnx(tmp_path / "ssd.onnx")
    card = _tfod_card("deepstream")
    card.save(card_path_for(model))
    # a primary detector gets crop-objects-to-roi-boundary=1, in both file forms; a secondary one not
    # (its boxes are relative to the parent object, the rule compares with the frame)
    primary = gen_ds_config(card, model, tmp_path / "primary", DsOptions(name="ssd"))
    configs = [p for p in primary.paths if p.suffix in (".txt", ".yml") and "labels" not in p.name]
    assert [read_config(p).properties.get("crop-objects-to-roi-boundary") for p in configs] == ["1", "1"]
    secondary = gen_ds_config(card, model, tmp_path / "secondary", DsOptions(name="ssd", secondary=True))
    assert "crop-objects-to-roi-boundary" not in read_config(secondary.paths[0]).properties
    # check-ds-config's key table: read by gst-nvinfer from 6.2 on (hiennguyen9874/deepstream-sources
    # 6.2 and 6.3 gstnvinfer_property_parser.cpp l.475; NVIDIA/DeepStream DeepStream-9.0 l.523)
    assert first_release_with("crop-objects-to-roi-boundary") == "6.2"
    assert all("crop-objects-to-roi-boundary" in PROPERTY_KEYS[r] for r in ("6.2", "6.3", "9.0"))
    assert "crop-objects-to-roi-boundary" not in PROPERTY_KEYS["6.1.1"]


def test_threshold_and_wrong_parser_variant(tmp_path: Path) -> None:
    assert run_one(write_config(tmp_path, attrs="pre-cluster-threshold=0.6\n"),
                   Image.fromarray(np.zeros((8, 8, 3), np.uint8))) == []
    pytest.importorskip("trtdeploy.deepstream.parser_emulation")
    # --ds-parser overrides the config's variant: the tao_apps >= 6.3 copy reads the float32 class
    # 0.0 as int32 (the same 4 zero bytes: class 0), so it finds the object too
    setup = NvInferSetup.from_config(write_config(tmp_path), variant="tao-efficientdet")
    assert len(DryRun(setup).run_image("x", red(8, 8)).objects) == 1


def test_tensorflow_reference_is_clipped_to_the_frame(tmp_path: Path) -> None:
    from trtdeploy.deepstream.dry_run import FrameResult, tf_reference
    from trtdeploy.deepstream.nvinfer_preprocess import scale_geometry
    from trtdeploy.detections import Detections

    setup = NvInferSetup.from_config(write_config(tmp_path, "maintain-aspect-ratio=1"))
    geometry = scale_geometry(8, 4, 4, 4, maintain_aspect_ratio=True)  # the image fills input rows 0-1
    result = FrameResult("x", 8, 4, [], geometry, np.zeros((4, 4, 3), np.uint8))
    boxes = np.array([[0.25, 0.25, 0.75, 0.75], [0.6, 0.0, 1.0, 1.0]], np.float32)  # y1,x1,y2,x2 of the input
    dets = Detections(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 0]))
    (ref,) = tf_reference(dets, result, setup, 0)
    # rows 1..3 of the input -> frame rows 2..6, clipped to the 4-row frame as TFOD clips to the image;
    # the second box lies entirely in the padding: gone
    assert (ref.left, ref.top, ref.width, ref.height) == (2.0, 2.0, 4.0, 2.0)


def test_drawing_a_negative_height_box(tmp_path: Path) -> None:
    from trtdeploy.deepstream.clustering import NvObject
    from trtdeploy.deepstream.dry_run import FrameResult, draw
    from trtdeploy.deepstream.nvinfer_preprocess import scale_geometry

    # crop-objects-to-roi-boundary sets height = frame height - top, negative for a box below the
    # frame (gstnvinfer_meta_utils.cpp l.108-111); the picture must still be drawn
    setup = NvInferSetup.from_config(write_config(tmp_path))
    result = FrameResult("x", 20, 10, [NvObject(0, 2, 8, 5, -4, 0.5)], scale_geometry(20, 10, 4, 4),
                         np.zeros((4, 4, 3), np.uint8))
    drawn = np.asarray(draw(Image.new("RGB", (20, 10)), result, setup))
    assert drawn[4:7, 2].any() and not drawn[4:7, 12].any()  # rows 4-8, columns 2-7: its left edge drawn


def test_a_parser_failure_names_the_image(tmp_path: Path) -> None:
    pytest.importorskip("trtdeploy.deepstream.parser_emulation")
    config = write_config(tmp_path)
    tiny_detector(tmp_path / "tiny.onnx", box=(0.1, 0.1, 0.3, 0.3))  # normalised boxes
    # SDK 6.3 NvDsInferParseCustomEfficientDetTAO asserts the largest box value >= 2 (DOMAIN.md §5)
    with pytest.raises(TrtDeployError, match="on red.png, DeepStream's parser would fail \\(assert\\)"):
        DryRun(NvInferSetup.from_config(config)).run_image("red.png", red(8, 8))


def tiny_mask_model(path: Path) -> Path:
    """What NvDsInferParseCustomMrcnnTLTV2 reads (float layers found by name): generate_detections
    [K,6] rows y1,x1,y2,x2 (network pixels), class, score; mask_fcn_logits/BiasAdd [K,C,h,w]."""
    import onnx
    from onnx import TensorProto, helper

    dets = helper.make_tensor("d", TensorProto.FLOAT, [1, 1, 6], [1.0, 1.0, 3.0, 3.0, 0.0, 0.9])
    masks = helper.make_tensor("m", TensorProto.FLOAT, [1, 1, 1, 2, 2], [0.9, 0.1, 0.1, 0.9])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["generate_detections"], value=dets),
         helper.make_node("Constant", [], ["mask_fcn_logits/BiasAdd"], value=masks)],
        "tiny_mrcnn",
        [helper.make_tensor_value_info("input_tensor", TensorProto.FLOAT, [1, 4, 4, 3])],
        [helper.make_tensor_value_info("generate_detections", TensorProto.FLOAT, [1, 1, 6]),
         helper.make_tensor_value_info("mask_fcn_logits/BiasAdd", TensorProto.FLOAT, [1, 1, 1, 2, 2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_instance_segmentation_boxes_and_masks(tmp_path: Path) -> None:
    pytest.importorskip("trtdeploy.deepstream.parser_emulation")
    config = write_config(tmp_path, "network-type=3\nparse-bbox-instance-mask-func-name=NvDsInferParseCustomMrcnnTLTV2\n"
                          "output-instance-mask=1\nsegmentation-threshold=0.5")
    tiny_mask_model(tmp_path / "tiny.onnx")  # replaces the detector write_config made
    setup = NvInferSetup.from_config(config)
    assert setup.variant == "mrcnn" and setup.segmentation_threshold == 0.5
    result = DryRun(setup).run_image("x.png", red(8, 8))
    (obj,) = result.objects
    assert (obj.left, obj.top, obj.width, obj.height, obj.confidence) == (2.0, 2.0, 4.0, 4.0, pytest.approx(0.9))
    assert obj.mask is not None and np.allclose(obj.mask, [[0.9, 0.1], [0.1, 0.9]])
    assert result.to_json(setup)["objects"][0]["mask"] == {"width": 2, "height": 2, "threshold": 0.5}
    from trtdeploy.deepstream.dry_run import draw

    big = DryRun(setup).run_image("big.png", red(64, 64))  # box 16..48: room for the label above it
    drawn = np.asarray(draw(red(64, 64), big, setup)).astype(int)
    # mask values above 0.5 (the box's top-left and bottom-right quarters) are tinted, the others not
    assert (drawn[24, 24] != (255, 0, 0)).any() and (drawn[40, 40] != (255, 0, 0)).any()
    assert (drawn[24, 40] == (255, 0, 0)).all() and (drawn[40, 24] == (255, 0, 0)).all()


# --- the CLI ------------------------------------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    ds_run.register(app)
    return app


def test_cli_writes_json_and_picture_and_refuses_overwrite(tmp_path: Path) -> None:
    pytest.importorskip("trtdeploy.deepstream.parser_emulation")
    config = write_config(tmp_path)
    red(8, 8).save(tmp_path / "red.png")
    out = tmp_path / "out"
    args = ["ds-run", str(config), "--images", str(tmp_path / "red.png"), "-o", str(out)]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert "1 object(s) on 1 image(s) (sdk-efficientdet, DeepStream 9.0)" in result.output
    data = json.loads((out / "red.json").read_text())
    assert data["width"] == 8 and data["objects"][0]["label"] == "red thing"
    assert data["objects"][0]["left"] == 2.0 and data["objects"][0]["width"] == 4.0
    drawn = np.asarray(Image.open(out / "red_ds.png"))
    assert drawn.shape == (8, 8, 3)
    again = CliRunner().invoke(cli(), args)
    assert again.exit_code == 1 and "--force" in again.output
    assert CliRunner().invoke(cli(), [*args, "--force"]).exit_code == 0


def test_cli_usage_and_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("trtdeploy.deepstream.parser_emulation")
    config = write_config(tmp_path)
    red(8, 8).save(tmp_path / "red.png")
    bad = CliRunner().invoke(cli(), ["ds-run", str(config), "--num", "0"])
    assert bad.exit_code == 2 and "--num" in bad.output
    (tmp_path / "other").mkdir()
    wrong = CliRunner().invoke(cli(), ["ds-run", str(write_config(tmp_path / "other", "network-type=1"))])
    assert wrong.exit_code == 1 and wrong.output.count("error:") == 1

    import trtdeploy.deepstream.dry_run as dry_run

    def half(saved_model: Path, results: list, setup: NvInferSetup, base: int, on_image: object = None) -> list:
        return [ImageComparison(r.name, 2, len(r.objects), 1, 0.95, 0.0) for r in results]

    monkeypatch.setattr(dry_run, "compare_with_saved_model", half)
    failed = CliRunner().invoke(cli(), ["ds-run", str(config), "-i", str(tmp_path / "red.png"),
                                        "--compare-saved-model", str(tmp_path)])
    assert failed.exit_code == 1 and "only 1 of TensorFlow's 2" in failed.output


# --- generated configs against TensorFlow (slow) --------------------------------------------------

# The DeepStream layouts create-onnx offers (--ds-parser): every one must give TensorFlow's detections.
OFFERED = tuple(DS_OUTPUTS)


def gen_ds_config(onnx_path: Path) -> Path:
    from trtdeploy.cli.main import app

    out = onnx_path.parent / "deepstream"
    gen = CliRunner().invoke(app, ["gen-ds-config", str(onnx_path), "-o", str(out), "-q"])
    assert gen.exit_code == 0, gen.output
    return out / f"config_infer_primary_{onnx_path.stem}.txt"


def convert_for_deepstream(model: Path, out: Path, variants: tuple[str, ...], store: Path) -> dict[str, Path]:
    """create-onnx's conversion once per run (tests/shared_cache.py), then one DeepStream head per
    --ds-parser variant, each with its deploy card and a config from gen-ds-config:
    {variant: config path}."""
    import onnx

    from tfod_trt.create_onnx import CreateOnnxOptions, attach_head, prepare
    from trtdeploy.deploy_card import card_path_for
    from trtdeploy.files import sha256_file

    label_map = model / "label_map.pbtxt"
    prepared = prepare(CreateOnnxOptions(saved_model=model / "saved_model", output=out / "core.onnx",
                                         label_map=label_map if label_map.is_file() else None,
                                         output_layout="deepstream"))
    core = converted_core(store, model / "saved_model", False)
    configs = {}
    for variant in variants:
        onnx_path = out / variant / "ds.onnx"
        onnx_path.parent.mkdir(parents=True)
        graph, card = attach_head(core, prepared, ds_parser=variant)
        onnx.save(graph, str(onnx_path))
        card.onnx_sha256 = sha256_file(onnx_path)
        card.save(card_path_for(onnx_path))
        configs[variant] = gen_ds_config(onnx_path)
    return configs


@pytest.fixture(scope="module")
def bundled_configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return convert_for_deepstream(BUNDLED_MODEL, tmp_path_factory.mktemp("bundled"), OFFERED,
                                  store_dir(tmp_path_factory))


@pytest.fixture(scope="module")
def bundled_tf(tmp_path_factory: pytest.TempPathFactory) -> object:
    return CachedTfRunner(BUNDLED_MODEL / "saved_model", store_dir(tmp_path_factory))


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("variant", OFFERED)
def test_bundled_model_every_variant_matches_tensorflow(variant: str, bundled_configs: dict[str, Path],
                                                        bundled_tf: object) -> None:
    setup = NvInferSetup.from_config(bundled_configs[variant])
    assert setup.variant == variant
    results = DryRun(setup).run(load_images(None, 6))
    comparisons = compare_with_runner(bundled_tf, results, setup)
    assert sum(c.reference for c in comparisons) > 50
    assert matched_fraction(comparisons) >= 0.99, comparisons


@pytest.mark.tf
@pytest.mark.slow
def test_a_misread_layout_loses_the_detections(bundled_configs: dict[str, Path], bundled_tf: object) -> None:
    # the SDK EfficientDet layout (float32 classes) read by deepstream_tao_apps' same-named parser
    # (int32 classes, break at the first class id >= num-detected-classes): the empty video
    setup = NvInferSetup.from_config(bundled_configs["sdk-efficientdet"], variant="tao-efficientdet")
    comparisons = compare_with_runner(bundled_tf, DryRun(setup).run(load_images(None, 3)), setup)
    assert matched_fraction(comparisons) < 0.5


@pytest.mark.tf
@pytest.mark.slow
def test_cli_compare_saved_model_on_the_bundled_model(tmp_path: Path, bundled_configs: dict[str, Path],
                                                      bundled_tf: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import tfod_trt.runner

    # the real saved model, loaded once for the module (loading it takes most of the time)
    monkeypatch.setattr(tfod_trt.runner, "TfodRunner", lambda path: bundled_tf)
    config = bundled_configs["sdk-efficientdet"]
    result = CliRunner().invoke(cli(), ["ds-run", str(config), "--num", "3", "-o", str(tmp_path / "run"),
                                        "--compare-saved-model", str(BUNDLED_MODEL / "saved_model")])
    assert result.exit_code == 0, result.output
    assert "matched:" in result.output and len(list((tmp_path / "run").glob("*_ds.png"))) == 3


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "variant"),
    [
        ("ssd_mobilenet_v2_320x320_coco17_tpu-8", "tao-efficientdet"),
        ("ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8", "sdk-tfssd"),
        # BatchedNMS's CPU reference on D0's 49k anchors x 90 classes is the slowest case of the
        # suite; every variant also runs on the bundled model, so D0 takes the EfficientNMS one
        ("ssd_efficientdet_d0_512x512_coco17_tpu-8", "sdk-efficientdet"),
        ("ssd_mobilenet_v2_035_shapes_256", "batchednms"),
    ],
)
def test_shared_fixtures_match_tensorflow(fixture: str, variant: str, tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    model = fixture_dir(fixture)
    store = store_dir(tmp_path_factory)
    setup = NvInferSetup.from_config(convert_for_deepstream(model, tmp_path, (variant,), store)[variant])
    images = load_images(model / "val", 6) if (model / "val").is_dir() else load_images(None, 4)
    tf = CachedTfRunner(model / "saved_model", store)
    comparisons = compare_with_runner(tf, DryRun(setup).run(images), setup)
    assert sum(c.reference for c in comparisons) > 0
    # Letterboxed models (keep_aspect_ratio_resizer, SSD EfficientDet-D0) match only because
    # gen-ds-config writes crop-objects-to-roi-boundary=1: without it nvinfer DROPS every box whose
    # bottom reaches into the padding where TFOD clips it to the image (NVIDIA/DeepStream
    # DeepStream-9.0 gstnvinfer_meta_utils.cpp l.128-140; 6.3 l.103-117); measured 88.4% without.
    assert setup.crop_objects_to_roi_boundary
    assert matched_fraction(comparisons) >= 0.99, comparisons
