"""Shared by the DeepStream and TAO tests: reference paths, tiny model files, spec editing."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from tests.data import reference_path, reference_root

NVINFER_PARTS = ("deepstream_tao_apps", "release_tao5.3_ds7.0ga", "configs", "nvinfer")
SPECS = reference_root() / "tao_specs"
NVINFER = reference_root().joinpath(*NVINFER_PARTS)


def need_reference() -> None:
    """Skip (or fail under TRTDEPLOY_REQUIRE_DATA=1) unless both reference folders are there."""
    reference_path(*NVINFER_PARTS)
    reference_path("tao_specs")


def tiny_onnx(path: Path, input_name: str, shape: list[int], outputs: list[str]) -> Path:
    """An ONNX file with the given I/O names (outputs are constants): enough for I/O checks."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(f"c{i}", TensorProto.FLOAT, [1], [0.0])
        )
        for i, name in enumerate(outputs)
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info(
                input_name, TensorProto.FLOAT, [d if d > 0 else "batch" for d in shape]
            )
        ],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in outputs],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def fake_etlt(path: Path, input_name: str) -> Path:
    name = input_name.encode()
    path.write_bytes(struct.pack("<I", len(name)) + name + b"\x8f\x11encrypted-payload")
    return path


def set_target_classes(text: str, classes: list[str], block: str = "dataset_config") -> str:
    """Replace every target_class_mapping with one identity mapping per class."""
    text = re.sub(r"\n\s*target_class_mapping\s*\{[^}]*\}", "", text)
    mappings = "".join(
        f'\n  target_class_mapping {{\n    key: "{c}"\n    value: "{c}"\n  }}' for c in classes
    )
    return re.sub(rf"({block}\s*\{{)", lambda m: m.group(1) + mappings, text, count=1)


def set_field(text: str, name: str, value: object) -> str:
    new, count = re.subn(rf"(\b{name}\s*:\s*)[^\s\n]+", lambda m: f"{m.group(1)}{value}", text)
    assert count, f"{name} not in spec"
    return new


def reference_properties(path: Path) -> dict[str, str]:
    from trtdeploy.deepstream import read_config

    return read_config(path).properties


def reference_labels(path: Path) -> list[str]:
    return (
        path.read_bytes().decode().replace("\r", "").split("\n")[:-1]
        if path.read_bytes().endswith(b"\n")
        else path.read_bytes().decode().replace("\r", "").split("\n")
    )


def write_engine_sidecar(
    engine: Path,
    tensors: list[tuple[str, str, list[int], str]],
    precision: str,
    profiles: list[dict[str, dict[str, list[int]]]],
    onnx_sha256: str = "",
    backend_version: str = "10.3.0",
) -> Path:
    """A well-formed ``<engine>.json`` (trtdeploy.engine.sidecar's schema) with the given facts:
    tensors as (name, dtype, shape, mode), the precision plan's label, the profiles."""
    from trtdeploy.engine.sidecar import Sidecar, TensorInfo

    sidecar = Sidecar(
        backend="tensorrt", backend_version=backend_version, backend_label="TensorRT 10", strongly_typed=False,
        cuda_version="12.8", gpu=None, target_compute_capabilities=[], device="gpu0",
        precision={"label": precision}, profiles=profiles, tensors=[TensorInfo(*t) for t in tensors],
        io_source="network", onnx_path="", onnx_sha256=onnx_sha256, built_onnx_sha256=onnx_sha256,
        engine_file=engine.name, engine_sha256="", engine_bytes=0, build_seconds=0.0, built_at="", tool_version="test",
    )  # fmt: skip
    path = engine.with_name(engine.name + ".json")
    sidecar.save(path)
    return path
