"""The engine sidecar `<engine>.json`: what was built, with what, for which machine; and the
rules that decide whether an engine is usable on the current machine.

Provenance lives here, never inside the engine file (TensorRT engines are opaque and only
valid for the TensorRT version, CUDA version and GPU they were built for).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtdeploy.engine.machine import Machine
from trtdeploy.engine.naming import sidecar_path
from trtdeploy.errors import InputError
from trtdeploy.files import read_json_object, sha256_file, write_text_atomic
from trtdeploy.versions import version_tuple

SCHEMA = "trtdeploy.engine_sidecar"
SCHEMA_VERSION = 1


@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: list[int]  # -1 = dynamic
    mode: str  # "input" | "output"


@dataclass
class Sidecar:
    backend: str
    backend_version: str
    backend_label: str
    strongly_typed: bool
    cuda_version: str | None
    gpu: dict[str, Any] | None  # {"index", "name", "compute_capability"} when a GPU was present
    target_compute_capabilities: list[str]  # RTX ahead-of-time targets; [] = the build GPU
    device: str  # "gpu0" | "dla1"
    precision: dict[str, Any]
    profiles: list[dict[str, dict[str, list[int]]]]
    tensors: list[TensorInfo]
    io_source: str  # "engine" (deserialized) | "network" (no GPU to deserialize on)
    onnx_path: str
    onnx_sha256: str
    built_onnx_sha256: str  # the graph actually parsed (FP16-converted or Q/DQ); = onnx_sha256 if unchanged
    engine_file: str
    engine_sha256: str
    engine_bytes: int
    build_seconds: float
    built_at: str
    tool_version: str
    options: dict[str, Any] = field(default_factory=dict)
    deploy_card: dict[str, Any] | None = None
    # how plugin nodes were built (trtdeploy.engine.plugin_path): {"path", "kept", "rewritten"}
    plugins: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def inputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.mode == "input"]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.mode == "output"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA
        return data

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Sidecar:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise InputError(f"{source} is not a trtdeploy engine sidecar")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise InputError(
                f"{source} has sidecar schema version {data.get('schema_version')}; this trtdeploy reads "
                f"{SCHEMA_VERSION}: rebuild the engine with this version"
            )
        payload = {k: v for k, v in data.items() if k != "schema"}
        problem = _type_problem(payload)
        if problem:
            raise InputError(f"{source} is corrupt: {problem}; rebuild the engine or restore its sidecar")
        try:
            payload["tensors"] = [TensorInfo(**t) for t in payload["tensors"]]
            return cls(**payload)
        except (KeyError, TypeError) as exc:
            raise InputError(f"{source} is missing or has a malformed field: {exc}") from exc


_STR, _INT, _NUM, _BOOL = (str,), (int,), (int, float), (bool,)
# What each field must hold; a sidecar is written by us, so anything else is damage.
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {  # name -> (types, None allowed)
    **{name: (_STR, False) for name in (
        "backend", "backend_version", "backend_label", "device", "io_source", "onnx_path", "onnx_sha256",
        "built_onnx_sha256", "engine_file", "engine_sha256", "built_at", "tool_version",
    )},
    "strongly_typed": (_BOOL, False),
    "cuda_version": (_STR, True),
    "gpu": ((dict,), True),
    "target_compute_capabilities": ((list,), False),
    "precision": ((dict,), False),
    "profiles": ((list,), False),
    "tensors": ((list,), False),
    "engine_bytes": (_INT, False),
    "build_seconds": (_NUM, False),
    "options": ((dict,), False),
    "deploy_card": ((dict,), True),
    "plugins": ((dict,), False),
    "schema_version": (_INT, False),
}  # fmt: skip


def _is(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def _type_problem(payload: dict[str, Any]) -> str | None:
    """The first field whose value has the wrong type or form, as a phrase (None: all fine)."""
    for name, (types, nullable) in _FIELD_TYPES.items():
        if name not in payload:
            continue  # a missing field is reported by the constructor
        value = payload[name]
        if not (_is(value, types) or (nullable and value is None)):
            return f"field {name!r} is {value!r}"
    if not re.fullmatch(r"(gpu|dla)\d{1,3}", str(payload.get("device", "gpu0"))):
        return f"field 'device' is {payload.get('device')!r}, expected gpu<i> or dla<i>"
    if not all(isinstance(t, str) for t in payload.get("target_compute_capabilities", [])):
        return "field 'target_compute_capabilities' must list strings"
    for name in ("onnx_path", "engine_file"):
        if "\x00" in str(payload.get(name, "")):
            return f"field {name!r} contains a NUL character"
    gpu = payload.get("gpu")
    if isinstance(gpu, dict) and not (
        all(isinstance(gpu.get(k), str) for k in ("name", "compute_capability")) and _is(gpu.get("index", 0), _INT)
    ):
        return f"field 'gpu' is {gpu!r}, expected {{index, name, compute_capability}}"
    flags = payload.get("precision", {}).get("builder_flags", []) if isinstance(payload.get("precision"), dict) else []
    if not (isinstance(flags, list) and all(isinstance(f, str) for f in flags)):
        return f"field 'precision.builder_flags' is {flags!r}"
    for profile in payload.get("profiles", []):
        if not _is_profile(profile):
            return f"profile entry {profile!r} is not {{input: {{min, opt, max: [int]}}}}"
    for tensor in payload.get("tensors", []):
        if not (
            isinstance(tensor, dict)
            and isinstance(tensor.get("name"), str)
            and isinstance(tensor.get("dtype"), str)
            and tensor.get("mode") in ("input", "output")
            and isinstance(tensor.get("shape"), list)
            and all(_is(d, _INT) for d in tensor["shape"])
        ):
            return f"tensor entry {tensor!r} is not {{name, dtype, shape: [int], mode: input|output}}"
    return None


def _is_profile(profile: Any) -> bool:
    return isinstance(profile, dict) and all(
        isinstance(name, str)
        and isinstance(rng, dict)
        and all(isinstance(rng.get(k), list) and all(_is(d, _INT) for d in rng[k]) for k in ("min", "opt", "max"))
        for name, rng in profile.items()
    )


def load_sidecar(engine_path: Path) -> Sidecar:
    """Read ``<engine>.json``; InputError (one line) when missing or corrupt."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise InputError(f"no sidecar {path.name} next to the engine, so its TensorRT version and GPU are unknown")
    return Sidecar.from_dict(read_json_object(path, "sidecar"), str(path))


@dataclass
class Verdict:
    status: str  # "usable" | "not usable" | "unknown"
    reasons: list[str]

    @property
    def usable(self) -> bool:
        return self.status == "usable"


def check_usable(sidecar: Sidecar, machine: Machine, engine_path: Path | None = None) -> Verdict:
    """Is the engine usable on ``machine``? Every failed rule gives one reason with the fix."""
    reasons: list[str] = []
    rebuild = "rebuild it here with trtdeploy build-engine"
    if engine_path is not None:
        engine_path = Path(engine_path)
        if not engine_path.is_file():
            reasons.append(f"engine file {engine_path} is missing")
        elif sha256_file(engine_path) != sidecar.engine_sha256:
            reasons.append("the engine file changed since its sidecar was written; the sidecar does not describe it")
    here = machine.backends.get(sidecar.backend)
    if here is None:
        reasons.append(
            f"built with {sidecar.backend_label} {sidecar.backend_version} (module {sidecar.backend}), "
            f"which is not installed here; install that exact version or {rebuild}"
        )
    elif here != sidecar.backend_version:
        reasons.append(
            f"built with {sidecar.backend} {sidecar.backend_version} but this machine has {here}; "
            f"engines only load on the TensorRT version that built them: {rebuild}"
        )
    if sidecar.cuda_version and machine.cuda_driver:
        built_major = version_tuple(sidecar.cuda_version)[:1]
        driver_major = version_tuple(machine.cuda_driver)[:1]
        if built_major and driver_major and driver_major < built_major:
            reasons.append(
                f"built for CUDA {sidecar.cuda_version} but the driver here supports CUDA {machine.cuda_driver}; "
                "update the NVIDIA driver"
            )
    reasons.extend(_gpu_reasons(sidecar, machine, rebuild))
    onnx_file = Path(sidecar.onnx_path) if sidecar.onnx_path else None
    if onnx_file is not None and onnx_file.is_file() and sha256_file(onnx_file) != sidecar.onnx_sha256:
        reasons.append(f"stale: {sidecar.onnx_path} changed since this engine was built; {rebuild}")
    return Verdict("not usable" if reasons else "usable", reasons)


def _gpu_reasons(sidecar: Sidecar, machine: Machine, rebuild: str) -> list[str]:
    if not machine.gpus:
        targets = sidecar.target_compute_capabilities
        if targets:
            return [f"no NVIDIA GPU here; the engine runs on GPUs with compute capability {', '.join(targets)}"]
        built_on = sidecar.gpu.get("name") or "a GPU" if sidecar.gpu else "a GPU"
        return [f"no NVIDIA GPU here; the engine was built for {built_on}"]
    index = int(sidecar.device[3:] or 0) if sidecar.device.startswith("gpu") else 0
    gpu = next((g for g in machine.gpus if g.index == index), machine.gpus[0])
    if sidecar.target_compute_capabilities:
        if gpu.compute_capability not in sidecar.target_compute_capabilities:
            return [
                (
                    f"GPU {gpu.index} here is {gpu.name} (compute capability {gpu.compute_capability}) but the engine "
                    f"targets {', '.join(sidecar.target_compute_capabilities)}; rebuild with --compute-capability "
                    f"{gpu.compute_capability}"
                )
            ]
        return []
    if not sidecar.gpu:
        return ["the sidecar records no GPU for this engine, so it cannot be matched to this machine"]
    built_name, built_cc = sidecar.gpu.get("name", "?"), sidecar.gpu.get("compute_capability", "?")
    if gpu.compute_capability != built_cc:
        return [
            (
                f"built on {built_name} (compute capability {built_cc}) but GPU {gpu.index} here is {gpu.name} "
                f"({gpu.compute_capability}); {rebuild}"
            )
        ]
    if gpu.name.strip().lower() != str(built_name).strip().lower():
        return [
            (
                f"built on {built_name} but GPU {gpu.index} here is {gpu.name} (same compute capability "
                f"{built_cc}); TensorRT engines are specific to the GPU model: {rebuild}"
            )
        ]
    return []


def sidecar_verdict(engine_path: Path, machine: Machine) -> tuple[Sidecar | None, Verdict]:
    """Load the sidecar and judge it; a missing or corrupt sidecar gives an 'unknown' verdict."""
    try:
        sidecar = load_sidecar(engine_path)
    except InputError as exc:
        return None, Verdict("unknown", [f"not usable / unknown: {exc}"])
    return sidecar, check_usable(sidecar, machine, engine_path)
