"""Sidecar round trip, usability (staleness) rules, and `trtdeploy inspect` on crafted sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trtdeploy.cli.main import app
from trtdeploy.engine import inspect as inspect_module
from trtdeploy.engine.machine import GpuInfo, Machine
from trtdeploy.engine.naming import sidecar_path
from trtdeploy.engine.sidecar import (
    Sidecar,
    TensorInfo,
    check_usable,
    load_sidecar,
    sidecar_verdict,
)
from trtdeploy.errors import InputError
from trtdeploy.files import sha256_file

A100 = GpuInfo(0, "NVIDIA A100-SXM4-40GB", "8.0")
RTX4090 = GpuInfo(0, "NVIDIA GeForce RTX 4090", "8.9")
L40 = GpuInfo(0, "NVIDIA L40", "8.9")


def _sidecar(engine: Path, onnx: Path, **overrides) -> Sidecar:
    fields = {
        "backend": "tensorrt",
        "backend_version": "10.16.0.72",
        "backend_label": "TensorRT 10",
        "strongly_typed": False,
        "cuda_version": "12.9",
        "gpu": {"index": 0, "name": RTX4090.name, "compute_capability": "8.9"},
        "target_compute_capabilities": [],
        "device": "gpu0",
        "precision": {"requested": "fp16", "label": "fp16", "builder_flags": ["FP16"]},
        "profiles": [{"images": {"min": [1, 3, 16, 16], "opt": [4, 3, 16, 16], "max": [4, 3, 16, 16]}}],
        "tensors": [
            TensorInfo("images", "float32", [-1, 3, 16, 16], "input"),
            TensorInfo("scores", "float32", [-1, 8, 16, 16], "output"),
        ],
        "io_source": "engine",
        "onnx_path": str(onnx),
        "onnx_sha256": sha256_file(onnx),
        "built_onnx_sha256": sha256_file(onnx),
        "engine_file": engine.name,
        "engine_sha256": sha256_file(engine),
        "engine_bytes": engine.stat().st_size,
        "build_seconds": 1.5,
        "built_at": "2026-11-23T20:00:00+00:00",
        "tool_version": "0.1.0",
    }
    fields.update(overrides)
    return Sidecar(**fields)


@pytest.fixture
def engine(tmp_path: Path) -> tuple[Path, Path]:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx bytes")
    engine = tmp_path / "model.onnx_b4_gpu0_fp16.engine"
    engine.write_bytes(b"engine bytes")
    return engine, onnx


HERE = Machine(backends={"tensorrt": "10.16.0.72"}, cuda_driver="13.0", gpus=[RTX4090])


def test_sidecar_round_trip(engine):
    eng, onnx = engine
    sidecar = _sidecar(eng, onnx)
    sidecar.save(sidecar_path(eng))
    loaded = load_sidecar(eng)
    assert loaded == sidecar
    assert [t.name for t in loaded.inputs] == ["images"] and [t.name for t in loaded.outputs] == ["scores"]
    assert json.loads(sidecar_path(eng).read_text())["schema"] == "trtdeploy.engine_sidecar"


def test_same_version_and_gpu_is_usable(engine):
    eng, onnx = engine
    verdict = check_usable(_sidecar(eng, onnx), HERE, eng)
    assert verdict.usable and verdict.reasons == []


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (
            Machine({"tensorrt": "10.3.0.26"}, "13.0", [RTX4090]),
            "built with tensorrt 10.16.0.72 but this machine has 10.3.0.26",
        ),
        (Machine({"tensorrt_rtx": "1.7.1.116"}, "13.0", [RTX4090]), "which is not installed here"),
        (
            Machine({"tensorrt": "10.16.0.72"}, "13.0", [A100]),
            "built on NVIDIA GeForce RTX 4090 (compute capability 8.9) but GPU 0 here is NVIDIA A100",
        ),
        (Machine({"tensorrt": "10.16.0.72"}, "13.0", [L40]), "same compute capability 8.9"),
        (Machine({"tensorrt": "10.16.0.72"}, None, []), "no NVIDIA GPU here"),
        (Machine({"tensorrt": "10.16.0.72"}, "11.8", [RTX4090]), "driver here supports CUDA 11.8"),
    ],
)
def test_other_version_gpu_or_driver_is_not_usable(engine, machine, expected):
    eng, onnx = engine
    verdict = check_usable(_sidecar(eng, onnx), machine, eng)
    assert verdict.status == "not usable"
    assert any(expected in reason for reason in verdict.reasons), verdict.reasons


def test_changed_engine_or_onnx_makes_it_stale(engine):
    eng, onnx = engine
    sidecar = _sidecar(eng, onnx)
    onnx.write_bytes(b"re-exported onnx")
    assert any(
        "stale" in r and "changed since this engine was built" in r for r in check_usable(sidecar, HERE, eng).reasons
    )
    eng.write_bytes(b"another engine")
    assert any("engine file changed" in r for r in check_usable(sidecar, HERE, eng).reasons)


def test_rtx_targets_decide_usability(engine):
    eng, onnx = engine
    sidecar = _sidecar(
        eng,
        onnx,
        backend="tensorrt_rtx",
        backend_version="1.7.1.116",
        backend_label="TensorRT-RTX",
        gpu=None,
        target_compute_capabilities=["8.6", "8.9"],
    )
    rtx_here = Machine({"tensorrt_rtx": "1.7.1.116"}, "13.0", [RTX4090])
    assert check_usable(sidecar, rtx_here, eng).usable
    turing = Machine({"tensorrt_rtx": "1.7.1.116"}, "13.0", [GpuInfo(0, "NVIDIA GeForce RTX 2080 Ti", "7.5")])
    (reason,) = check_usable(sidecar, turing, eng).reasons
    assert "targets 8.6, 8.9" in reason and "--compute-capability 7.5" in reason


def test_missing_and_corrupt_sidecars_are_unknown(engine):
    eng, _ = engine
    _, verdict = sidecar_verdict(eng, HERE)
    assert verdict.status == "unknown" and "no sidecar" in verdict.reasons[0]
    sidecar_path(eng).write_text("{ not json")
    _, verdict = sidecar_verdict(eng, HERE)
    assert verdict.status == "unknown" and "corrupt" in verdict.reasons[0]
    sidecar_path(eng).write_text(json.dumps({"schema": "trtdeploy.engine_sidecar", "schema_version": 1}))
    with pytest.raises(InputError, match="missing or has a malformed field"):
        load_sidecar(eng)
    sidecar_path(eng).write_text(json.dumps({"schema": "trtdeploy.engine_sidecar", "schema_version": 99}))
    with pytest.raises(InputError, match="schema version 99"):
        load_sidecar(eng)


# --- the CLI, with this machine replaced by a known one ----------------------------------------


@pytest.fixture
def machine_here(monkeypatch):
    monkeypatch.setattr(inspect_module, "current_machine", lambda: HERE)


def _inspect(eng: Path):
    return CliRunner().invoke(app, ["inspect", str(eng)])


def test_inspect_usable_engine(engine, machine_here):
    eng, onnx = engine
    _sidecar(eng, onnx).save(sidecar_path(eng))
    result = _inspect(eng)
    assert result.exit_code == 0, result.output
    assert "usable here" in result.output and "not usable" not in result.output
    assert "TensorRT 10: tensorrt 10.16.0.72" in result.output and "NVIDIA GeForce RTX 4090" in result.output
    assert "images" in result.output and "scores" in result.output


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"backend_version": "10.3.0.26"},
            "built with tensorrt 10.3.0.26 but this machine has 10.16.0.72",
        ),
        (
            {"gpu": {"index": 0, "name": A100.name, "compute_capability": "8.0"}},
            "built on NVIDIA A100",
        ),
    ],
)
def test_inspect_other_version_or_gpu(engine, machine_here, overrides, expected):
    eng, onnx = engine
    _sidecar(eng, onnx, **overrides).save(sidecar_path(eng))
    result = _inspect(eng)
    assert result.exit_code == 1
    assert "not usable here" in result.output
    assert expected in " ".join(result.output.split())


def test_inspect_missing_or_corrupt_sidecar(engine, machine_here):
    eng, _ = engine
    result = _inspect(eng)
    assert result.exit_code == 1 and "not usable / unknown" in result.output and "no sidecar" in result.output
    sidecar_path(eng).write_text("garbage")
    result = _inspect(eng)
    assert result.exit_code == 1 and "corrupt" in result.output


def test_inspect_missing_engine(tmp_path):
    result = _inspect(tmp_path / "nothing.engine")
    assert result.exit_code == 1 and "not found" in result.output
