"""TAO tutorial specs, set to the classes and input size of NVIDIA's sample models, must give
the model-determined keys and labels of deepstream_tao_apps' reference configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tao_trt import import_tao_model
from tests.deepstream.ds_helpers import (
    NVINFER,
    SPECS,
    fake_etlt,
    need_reference,
    reference_labels,
    reference_properties,
    set_field,
    set_target_classes,
    tiny_onnx,
)
from trtdeploy.deepstream import DsOptions, check_ds_config, gen_ds_config, read_config

KITTI4 = ["bicycle", "car", "person", "road_sign"]

# Output dtypes of the TensorRT NMS plugins TAO exports end in (DOMAIN.md section 3; TensorRT
# plugin/nmsPlugin and plugin/batchedNMSPlugin getOutputDataType, plugin/efficientNMSPlugin):
# the keep count / num_detections is int32, boxes and scores float32; BatchedNMS classes float32,
# EfficientNMS classes int32. The parsers read these buffers as raw memory, so a test model must
# carry them (an all-float model is refused by gen-ds-config's dtype check, rightly).
K = 100
NMS_TRT = [("NMS", "float32", [1, 1, K, 7]), ("NMS_1", "int32", [1, 1, 1, 1])]
BATCHED_NMS = [
    ("BatchedNMS", "int32", [1, 1]), ("BatchedNMS_1", "float32", [1, K, 4]), ("BatchedNMS_2", "float32", [1, K]),
    ("BatchedNMS_3", "float32", [1, K]),
]  # fmt: skip
FRCNN_NMS = [("nms_out", "float32", [1, 1, K, 7]), ("nms_out_1", "int32", [1, 1, 1, 1])]
EFFICIENT_NMS = [
    ("num_detections", "int32", [1, 1]), ("detection_boxes", "float32", [1, K, 4]),
    ("detection_scores", "float32", [1, K]), ("detection_classes", "int32", [1, K]),
]  # fmt: skip


def typed_onnx(path: Path, input_name: str, shape: list[int], outputs: list[tuple[str, str, list[int]]]) -> Path:
    """An ONNX file with the given input and (constant) outputs of the given dtypes and shapes."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    nodes, infos = [], []
    for name, dtype, dims in outputs:
        value = np.zeros(dims, np.dtype(dtype))
        nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, f"{name}_v")))
        infos.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), dims))
    graph = helper.make_graph(
        nodes,
        "typed_tiny",
        [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, [d if d > 0 else "batch" for d in shape])],
        infos,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _network_type(props: dict[str, str]) -> int:
    if "network-type" in props:
        return int(props["network-type"].split()[0])
    return 1 if props.get("is-classifier") == "1" else 0


def _floats(text: str | None) -> list[float]:
    return [float(v) for v in (text or "0;0;0").split(";") if v]


def _generate(tmp_path: Path, spec_text: str, spec_name: str, arch: str, model: Path, **kw):
    spec = tmp_path / spec_name
    spec.write_text(spec_text)
    tao = import_tao_model(
        spec, arch, **{("onnx_path" if model.suffix == ".onnx" else "etlt_path"): model}, **kw
    )
    out = tmp_path / "ds"
    result = gen_ds_config(tao.card, tao.model_path, out, DsOptions(name=arch), tao.hints)
    props = read_config(result.paths[0]).properties
    yml = read_config(result.paths[1]).properties
    assert props == yml, "the .txt and .yml forms must hold the same keys and values"
    labels = result.paths[2].read_text().split("\n")[:-1]
    errors = [p for p in check_ds_config(result.paths[0]) if p.level == "error"]
    assert errors == [], errors
    return props, labels, result


def _compare(ours: dict[str, str], ref: dict[str, str], ref_outputs_subset: bool = True) -> None:
    """Every model-determined key equals the reference."""
    assert float(ours["net-scale-factor"]) == pytest.approx(
        float(ref["net-scale-factor"]), rel=1e-4
    )
    assert _floats(ours.get("offsets")) == pytest.approx(_floats(ref.get("offsets")))
    assert ours["model-color-format"] == ref["model-color-format"]
    if "infer-dims" in ref:
        assert ours["infer-dims"] == ref["infer-dims"]
    assert ours.get("network-input-order", "0") == ref.get("network-input-order", "0")
    assert ours.get("num-detected-classes") == ref.get("num-detected-classes")
    assert _network_type(ours) == _network_type(ref)
    for key in (
        "parse-bbox-func-name",
        "parse-bbox-instance-mask-func-name",
        "output-instance-mask",
    ):
        assert ours.get(key) == ref.get(key), key
    ref_names = ref["output-blob-names"].split(";")
    our_names = ours["output-blob-names"].split(";")
    # nvinfer binds every engine output whatever output-blob-names says; the references list
    # only the first output of the NMS plugins (e.g. "NMS" of NMS/NMS_1), we list them all.
    assert set(ref_names) <= set(our_names) if ref_outputs_subset else ref_names == our_names
    if "maintain-aspect-ratio" in ref:
        assert ours.get("maintain-aspect-ratio", "0") == ref["maintain-aspect-ratio"]


SSD_LIKE = [
    (
        "ssd",
        "ssd/specs/ssd_train_resnet18_kitti.txt",
        "ssd_tao/pgie_ssd_tao_config.txt",
        "ssd_tao/ssd_labels.txt",
    ),
    (
        "dssd",
        "dssd/specs/dssd_train_resnet18_kitti.txt",
        "dssd_tao/pgie_dssd_tao_config.txt",
        "dssd_tao/dssd_labels.txt",
    ),
    (
        "retinanet",
        "retinanet/specs/retinanet_train_resnet18_kitti.txt",
        "retinanet_tao/pgie_retina_tao_config.txt",
        "retinanet_tao/retinanet_labels.txt",
    ),
    (
        "yolo_v3",
        "yolo_v3/specs/yolo_v3_train_resnet18_kitti.txt",
        "yolov3_tao/pgie_yolov3_tao_config.txt",
        "yolov3_tao/yolov3_labels.txt",
    ),
    (
        "yolo_v4",
        "yolo_v4/specs/yolo_v4_train_resnet18_kitti.txt",
        "yolov4_tao/pgie_yolov4_tao_config.txt",
        "yolov4_tao/yolov4_labels.txt",
    ),
    (
        "yolo_v4_tiny",
        "yolo_v4_tiny/specs/yolo_v4_tiny_train_kitti.txt",
        "yolov4-tiny_tao/pgie_yolov4_tiny_tao_config.txt",
        "yolov4-tiny_tao/yolov4_tiny_labels.txt",
    ),
]


@pytest.mark.parametrize(
    ("arch", "spec", "config", "labels"), SSD_LIKE, ids=[a[0] for a in SSD_LIKE]
)
def test_ssd_and_yolo_families_match_reference(
    tmp_path: Path, arch: str, spec: str, config: str, labels: str
) -> None:
    need_reference()
    text = set_target_classes((SPECS / spec).read_text(), KITTI4)
    text = set_field(set_field(text, "output_width", 960), "output_height", 544)
    outputs = NMS_TRT if "yolo" not in arch else BATCHED_NMS
    model = typed_onnx(tmp_path / f"{arch}.onnx", "Input", [-1, 3, 544, 960], outputs)
    ours, our_labels, _ = _generate(tmp_path, text, Path(spec).name, arch, model)
    ref = reference_properties(NVINFER / config)
    _compare(ours, ref)
    assert our_labels == reference_labels(NVINFER / labels)
    if "yolo" in arch:
        # TAO YOLO resizes keeping the aspect ratio (pad right/bottom), as the reference says.
        assert ours["maintain-aspect-ratio"] == ref["maintain-aspect-ratio"] == "1"
        assert ours.get("symmetric-padding", "0") == "0"
        # Deliberate difference: the references use cluster-mode=3 (DBSCAN+NMS) although the
        # engine already ran BatchedNMS; clustering again only costs time and can merge boxes.
        assert ref["cluster-mode"] == "3" and ours["cluster-mode"] == "4"
    else:
        assert ours.get("maintain-aspect-ratio", "0") == ref["maintain-aspect-ratio"] == "0"
        # Deliberate difference: the references leave cluster-mode unset (nvinfer's default
        # clusters again) although NMS_TRT already ran in the engine.
        assert "cluster-mode" not in ref and ours["cluster-mode"] == "4"


def test_faster_rcnn_matches_reference(tmp_path: Path) -> None:
    need_reference()
    text = (SPECS / "faster_rcnn/specs/default_spec_resnet18.txt").read_text()
    text = set_target_classes(text, ["Bicycle", "Car", "Person", "Roadsign"])
    text = set_field(set_field(text, "height", 544), "width", 960)
    model = typed_onnx(tmp_path / "frcnn.onnx", "input_image", [-1, 3, 544, 960], FRCNN_NMS)
    ours, labels, _ = _generate(tmp_path, text, "frcnn.txt", "faster_rcnn", model)
    _compare(ours, reference_properties(NVINFER / "frcnn_tao/pgie_frcnn_tao_config.txt"))
    ref_labels = reference_labels(NVINFER / "frcnn_tao/frcnn_labels.txt")
    # Deliberate difference: TAO training lower-cases class names before sorting them into ids
    # (DOMAIN.md §6), so the model's classes are lower-case; the reference keeps the dataset's
    # capitals. Same order, background last.
    assert labels == [name.lower() for name in ref_labels]
    assert labels[-1] == "background"


def test_mask_rcnn_matches_peoplesegnet(tmp_path: Path) -> None:
    need_reference()
    text = (SPECS / "mask_rcnn/specs/maskrcnn_train_resnet50.txt").read_text()
    text = set_field(text, "num_classes", 2).replace(
        'image_size: "(832, 1344)"', 'image_size: "(576, 960)"'
    )
    (tmp_path / "people.txt").write_text("people\n")
    model = fake_etlt(tmp_path / "peoplesegnet.etlt", "Input")
    ours, labels, _ = _generate(
        tmp_path,
        text,
        "mrcnn.txt",
        "mask_rcnn",
        model,
        key="nvidia_tlt",
        labels_file=tmp_path / "people.txt",
    )
    ref = reference_properties(NVINFER / "peopleSegNet_tao/pgie_peopleSegNet_tao_config.txt")
    _compare(ours, ref, ref_outputs_subset=False)
    assert ours["cluster-mode"] == ref["cluster-mode"] == "4"
    assert (
        ours["tlt-model-key"] == "nvidia_tlt"
        and ours["uff-input-blob-name"] == ref["uff-input-blob-name"]
    )
    assert labels == reference_labels(NVINFER / "peopleSegNet_tao/peopleSegNet_labels.txt")


def test_unet_matches_reference(tmp_path: Path) -> None:
    need_reference()
    text = (SPECS / "unet/tao_isbi/specs/unet_train_resnet_unet_isbi.txt").read_text()
    text = set_field(text, "model_input_channels", 3)
    model = tiny_onnx(tmp_path / "unet.onnx", "input_1", [-1, 3, 320, 320], ["argmax_1"])
    ours, labels, _ = _generate(tmp_path, text, "unet.txt", "unet", model)
    ref = reference_properties(NVINFER / "unet_tao/pgie_unet_tao_config.txt")
    _compare(ours, ref, ref_outputs_subset=False)
    for key in ("segmentation-output-order", "segmentation-threshold"):
        assert float(ours[key]) == float(ref[key])
    # Deliberate difference: the reference labels file ends its first line with CRLF, and
    # nvinfer keeps the '\r' in the label ("foreground\r"); ours is LF only.
    assert (NVINFER / "unet_tao/unet_labels.txt").read_bytes().startswith(b"foreground\r\n")
    assert (
        labels
        == reference_labels(NVINFER / "unet_tao/unet_labels.txt")
        == ["foreground", "background"]
    )


def test_efficientdet_tf2_matches_reference(tmp_path: Path) -> None:
    need_reference()
    text = (SPECS / "efficientdet_tf2/specs/spec_train.yaml").read_text()
    text = text.replace("num_classes: 91", "num_classes: 2").replace(
        "input_width: 512", "input_width: 960"
    )
    text = text.replace("input_height: 512", "input_height: 544")
    (tmp_path / "map.yaml").write_text("1: 'car'\n")
    model = typed_onnx(tmp_path / "d0.onnx", "input", [-1, 544, 960, 3], EFFICIENT_NMS)
    ours, labels, _ = _generate(
        tmp_path, text, "spec.yaml", "efficientdet", model, labels_file=tmp_path / "map.yaml"
    )
    ref = reference_properties(NVINFER / "efficientdet_tao/pgie_d0_tao_config.txt")
    _compare(ours, ref, ref_outputs_subset=False)
    assert ours["cluster-mode"] == ref["cluster-mode"] == "4"
    assert ours["maintain-aspect-ratio"] == ref["maintain-aspect-ratio"] == "1"
    assert labels == reference_labels(NVINFER / "efficientdet_tao/efficientdet_d0_labels.txt")


def test_efficientdet_coco_label_map_gaps_keep_ids(tmp_path: Path) -> None:
    """The 90-class COCO sample: ids the label map skips keep their number as the name."""
    need_reference()
    text = (SPECS / "efficientdet_tf2/specs/spec_train.yaml").read_text()
    model = fake_etlt(tmp_path / "d0_512.etlt", "input")
    ours, labels, _ = _generate(
        tmp_path, text, "spec.yaml", "efficientdet", model, key="nvidia_tlt",
        labels_file=SPECS / "efficientdet_tf2/specs/coco_labels.yaml",
    )  # fmt: skip
    ref = reference_properties(NVINFER / "efficientdet_tao/pgie_d0_512_tao_config.txt")
    _compare(ours, ref, ref_outputs_subset=False)
    assert labels == reference_labels(NVINFER / "efficientdet_tao/efficientdet_d0_512_labels.txt")


def test_detectnet_v2_matches_peoplenet(tmp_path: Path) -> None:
    need_reference()
    text = (SPECS / "detectnet_v2/specs/detectnet_v2_train_resnet18_kitti.txt").read_text()
    text = set_field(set_field(text, "output_image_width", 960), "output_image_height", 544)
    model = tiny_onnx(
        tmp_path / "peoplenet.onnx",
        "input_1:0",
        [-1, 3, 544, 960],
        ["output_bbox/BiasAdd:0", "output_cov/Sigmoid:0"],
    )
    spec = tmp_path / "dnv2.txt"
    spec.write_text(text)
    tao = import_tao_model(spec, "detectnet_v2", onnx_path=model)
    ours = gen_ds_config(
        tao.card, model, tmp_path / "ds", DsOptions(name="dnv2"), tao.hints
    ).config.properties
    ref = reference_properties(NVINFER / "peoplenet_tao/config_infer_primary_peoplenet.txt")
    assert float(ours["net-scale-factor"]) == pytest.approx(float(ref["net-scale-factor"]))
    assert ours["model-color-format"] == ref["model-color-format"]
    assert ours["infer-dims"] == ref["infer-dims"]
    assert ours["output-blob-names"] == ref["output-blob-names"]
    assert (
        ours["cluster-mode"] == ref["cluster-mode"] == "2"
    )  # no NMS in the model: nvinfer clusters
    assert (
        "parse-bbox-func-name" not in ours and "parse-bbox-func-name" not in ref
    )  # nvinfer's own parser
    # The sample's labels file is not in the reference; the class count follows the spec here
    # (3 KITTI classes), the reference's num-detected-classes=1 belongs to PeopleNet's own data.
    assert ours["num-detected-classes"] == "3"
