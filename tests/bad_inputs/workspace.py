"""Cheap inputs for the bad-input rows, made without TensorFlow.

A template workspace is built once per session (``build_template``) and copied for every row
(``Workspace.copy_of``), so a row may damage its copy freely. The template holds:

==================  ===========================================================================
placeholder         file
==================  ===========================================================================
``{ws}``            the workspace folder itself
``{onnx}``          ``model.onnx``: a tiny detector (NHWC float input ``input_tensor [1,32,32,3]``,
                    TFOD outputs ``num_detections``/``detection_boxes``/``detection_scores``/
                    ``detection_classes`` with K=4, two classes) built from ONNX ops in the test
``{card}``          ``model.deploy.json``: its deploy card (layout ``tfod``, labels cat/dog)
``{label_map}``     ``label_map.pbtxt``: TFOD label map of the two classes
``{images}``        ``images/``: six small JPEGs
``{cache}``         ``model.cache`` + ``model.cache.json``: a calibration cache of ``{onnx}`` made by
                    the calibration package, with its sidecar
``{engine}``        ``model.onnx_b1_gpu0_fp16.engine`` + ``.json``: a fake engine (random bytes)
                    with a well-formed sidecar describing ``{onnx}``
``{ds_config}``     ``config_infer.txt``: an nvinfer config for ``{onnx}`` (hand-written)
``{ds_labels}``     ``labels.txt``: its label file
``{text}``          ``notes.txt``: a text file that is not any model
``{dir}``           ``adir/``: an empty folder
``{missing}``       ``missing.onnx``: a path that does not exist
``{saved_model}``   the bundled saved model (read-only, shared; only rows with needs=converted)
``{ssd_onnx}``      ``ssd.onnx`` + card: the bundled model converted by create-onnx (needs=converted)
==================  ===========================================================================
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAMES = {
    "onnx": "model.onnx",
    "card": "model.deploy.json",
    "label_map": "label_map.pbtxt",
    "images": "images",
    "cache": "model.cache",
    "engine": "model.onnx_b1_gpu0_fp16.engine",
    "ds_config": "config_infer.txt",
    "ds_labels": "labels.txt",
    "text": "notes.txt",
    "dir": "adir",
    "missing": "missing.onnx",
    "ssd_onnx": "ssd.onnx",
}
INPUT_NAME = "input_tensor"
OUTPUT_NAMES = ["num_detections", "detection_boxes", "detection_scores", "detection_classes"]
LABELS = ["cat", "dog"]
SIZE = 32
K = 4


@dataclass
class Workspace:
    root: Path
    saved_model: Path | None = None  # shared, read-only

    def path(self, key: str) -> Path:
        return self.root / NAMES[key]

    def placeholders(self) -> dict[str, str]:
        values = {key: str(self.path(key)) for key in NAMES}
        values["ws"] = str(self.root)
        values["saved_model"] = str(self.saved_model) if self.saved_model else "{saved_model-not-built}"
        return values

    def fill(self, text: str) -> str:
        return text.format_map(self.placeholders())

    @classmethod
    def copy_of(cls, template: Workspace, root: Path) -> Workspace:
        shutil.copytree(template.root, root, symlinks=True, dirs_exist_ok=True)
        return cls(root, template.saved_model)


def tiny_detector(path: Path, *, seed: int = 0) -> Path:
    """A detector-shaped ONNX graph: Transpose -> Conv -> Sigmoid -> GAP gives 4 scores; boxes are
    fixed corners scaled by the scores; classes and count are constants (int32, TFOD's contract)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array((rng.standard_normal((K, 3, 3, 3)) * 0.05).astype(np.float32), "conv_w"),
        numpy_helper.from_array((rng.standard_normal(K) * 0.1).astype(np.float32), "conv_b"),
        numpy_helper.from_array(np.array([1, K], np.int64), "scores_shape"),
        numpy_helper.from_array(np.array([1, K, 1], np.int64), "col_shape"),
        numpy_helper.from_array(np.array([[[0.1, 0.2, 0.6, 0.7]]], np.float32), "corners"),
    ]
    const = helper.make_tensor
    nodes = [
        helper.make_node("Transpose", [INPUT_NAME], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Sigmoid", ["conv"], ["sig"], name="sigmoid"),
        helper.make_node("GlobalAveragePool", ["sig"], ["gap"], name="gap"),
        helper.make_node("Reshape", ["gap", "scores_shape"], ["detection_scores"], name="scores"),
        helper.make_node("Reshape", ["gap", "col_shape"], ["col"], name="col"),
        helper.make_node("Mul", ["col", "corners"], ["detection_boxes"], name="boxes"),
        helper.make_node(
            "Constant", [], ["detection_classes"], name="classes",
            value=const("classes_v", TensorProto.INT32, [1, K], [0, 1, 0, 1]),
        ),
        helper.make_node(
            "Constant", [], ["num_detections"], name="count",
            value=const("count_v", TensorProto.INT32, [1, 1], [K]),
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_detector",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, SIZE, SIZE, 3])],
        [
            helper.make_tensor_value_info("num_detections", TensorProto.INT32, [1, 1]),
            helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [1, K, 4]),
            helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [1, K]),
            helper.make_tensor_value_info("detection_classes", TensorProto.INT32, [1, K]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_tiny_card(onnx_path: Path) -> Path:
    from trtdeploy.deploy_card import DeployCard, InputSpec, OutputSpec, Preprocess, card_path_for

    card = DeployCard(
        input=InputSpec(name=INPUT_NAME, shape=[1, SIZE, SIZE, 3], layout="NHWC"),
        preprocess=Preprocess(),
        output=OutputSpec(nms="efficient", layout="tfod", names=list(OUTPUT_NAMES), num_classes=len(LABELS),
                          max_detections=K),
        labels=list(LABELS),
        onnx_sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
    )
    path = card_path_for(onnx_path)
    card.save(path)
    return path


def write_images(folder: Path, count: int = 6) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for index in range(count):
        pixels = rng.integers(0, 256, (40 + 4 * index, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index}.jpg", quality=90)
    return folder


def write_label_map(path: Path) -> Path:
    items = "".join(f'item {{\n  id: {i + 1}\n  name: "{name}"\n}}\n' for i, name in enumerate(LABELS))
    path.write_text(items, encoding="utf-8")
    return path


def write_cache(onnx_path: Path, images: Path, cache_path: Path) -> Path:
    """A real cache + sidecar for the tiny model, made by the calibration package."""
    from calibration import PreprocessSpec, calibrate_onnx, list_images, save_result
    from trtdeploy.deploy_card import DeployCard, card_path_for

    spec = PreprocessSpec.from_card_dict(DeployCard.load(card_path_for(onnx_path)).to_dict())
    result = calibrate_onnx(onnx_path, list_images(images), spec, "minmax", batch_size=1)
    save_result(result, onnx_path, spec, cache_path, "10.16")
    return cache_path


def write_fake_engine(onnx_path: Path, engine_path: Path) -> Path:
    """Random engine bytes and a well-formed sidecar describing ``onnx_path`` (no TensorRT)."""
    from trtdeploy.deploy_card import DeployCard, card_path_for
    from trtdeploy.engine.sidecar import Sidecar, TensorInfo

    engine_path.write_bytes(np.random.default_rng(2).bytes(512))
    onnx_sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    tensors = [TensorInfo(INPUT_NAME, "float32", [1, SIZE, SIZE, 3], "input")] + [
        TensorInfo(name, dtype, shape, "output")
        for name, dtype, shape in zip(
            OUTPUT_NAMES,
            ["int32", "float32", "float32", "int32"],
            [[1, 1], [1, K, 4], [1, K], [1, K]],
            strict=True,
        )
    ]
    sidecar = Sidecar(
        backend="tensorrt",
        backend_version="10.16.0",
        backend_label="TensorRT",
        strongly_typed=False,
        cuda_version="12.8",
        gpu={"index": 0, "name": "NVIDIA T4", "compute_capability": "7.5"},
        target_compute_capabilities=[],
        device="gpu0",
        precision={"requested": "fp16", "flags": ["fp16"]},
        profiles=[],
        tensors=tensors,
        io_source="network",
        onnx_path=onnx_path.name,
        onnx_sha256=onnx_sha,
        built_onnx_sha256=onnx_sha,
        engine_file=engine_path.name,
        engine_sha256=hashlib.sha256(engine_path.read_bytes()).hexdigest(),
        engine_bytes=engine_path.stat().st_size,
        build_seconds=1.0,
        built_at="2026-01-01T00:00:00+00:00",
        tool_version="test",
        deploy_card=DeployCard.load(card_path_for(onnx_path)).to_dict(),
    )
    sidecar.save(engine_path.with_name(engine_path.name + ".json"))
    return engine_path


def write_ds_config(root: Path) -> Path:
    """A plain nvinfer detector config for the tiny model (keys from gst-nvinfer's docs)."""
    (root / NAMES["ds_labels"]).write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    config = root / NAMES["ds_config"]
    config.write_text(
        "[property]\n"
        "gpu-id=0\n"
        "net-scale-factor=1.0\n"
        "model-color-format=0\n"
        f"onnx-file={NAMES['onnx']}\n"
        f"model-engine-file={NAMES['engine']}\n"
        f"labelfile-path={NAMES['ds_labels']}\n"
        "batch-size=1\n"
        "network-mode=2\n"
        f"num-detected-classes={len(LABELS)}\n"
        "gie-unique-id=1\n"
        "network-type=0\n",
        encoding="utf-8",
    )
    return config


def build_template(root: Path) -> Workspace:
    """Every cheap input, once per session."""
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root)
    onnx_path = tiny_detector(ws.path("onnx"))
    write_tiny_card(onnx_path)
    write_images(ws.path("images"))
    write_label_map(ws.path("label_map"))
    write_cache(onnx_path, ws.path("images"), ws.path("cache"))
    write_fake_engine(onnx_path, ws.path("engine"))
    write_ds_config(root)
    ws.path("text").write_text("not a model\n", encoding="utf-8")
    ws.path("dir").mkdir()
    return ws


def add_converted(ws: Workspace, converted: Path) -> None:
    """Copy the session's converted bundled model (ONNX + card) into a workspace."""
    from trtdeploy.deploy_card import card_path_for

    shutil.copy2(converted, ws.path("ssd_onnx"))
    shutil.copy2(card_path_for(converted), card_path_for(ws.path("ssd_onnx")))


def convert_bundled(saved_model_root: Path, out: Path) -> Path:
    """The bundled saved model through create-onnx (TensorFlow; once per session)."""
    from tfod_trt.create_onnx import CreateOnnxOptions, create_onnx

    label_map = saved_model_root / "label_map.pbtxt"
    create_onnx(
        CreateOnnxOptions(
            saved_model=saved_model_root / "saved_model",
            output=out,
            label_map=label_map if label_map.is_file() else None,
        )
    )
    return out


def snapshot(paths: list[Path]) -> dict[str, bytes | None]:
    """Bytes of each file (None when absent); folders by their sorted listing."""
    out: dict[str, bytes | None] = {}
    for path in paths:
        if path.is_dir():
            out[str(path)] = json.dumps(sorted(str(p.relative_to(path)) for p in path.rglob("*"))).encode()
        else:
            out[str(path)] = path.read_bytes() if path.is_file() else None
    return out
