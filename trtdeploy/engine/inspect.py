"""`trtdeploy inspect ENGINE`: what an engine is (from its sidecar) and whether it runs here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trtdeploy.engine.machine import Machine, current_machine
from trtdeploy.engine.sidecar import Sidecar, Verdict, sidecar_verdict
from trtdeploy.errors import InputError


@dataclass
class EngineReport:
    engine_path: Path
    sidecar: Sidecar | None
    verdict: Verdict
    machine: Machine


def inspect_engine(engine_path: Path, machine: Machine | None = None) -> EngineReport:
    """Read the sidecar of ``engine_path`` and judge it against ``machine`` (default: this one)."""
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        raise InputError(f"engine {engine_path} not found")
    machine = machine if machine is not None else current_machine()
    sidecar, verdict = sidecar_verdict(engine_path, machine)
    return EngineReport(engine_path, sidecar, verdict, machine)


def report_rows(report: EngineReport) -> list[tuple[str, str]]:
    """(field, value) rows for a table; plain strings so any front end can print them."""
    s = report.sidecar
    if s is None:
        return [("engine", str(report.engine_path))]
    gpu = f"{s.gpu['name']} (compute capability {s.gpu['compute_capability']})" if s.gpu else "none at build time"
    rows = [
        ("engine", f"{report.engine_path} ({s.engine_bytes / 2**20:.2f} MiB)"),
        ("backend", f"{s.backend_label}: {s.backend} {s.backend_version}"),
        ("CUDA", s.cuda_version or "unknown"),
        ("build GPU", gpu),
    ]
    if s.target_compute_capabilities:
        rows.append(("target compute capabilities", ", ".join(s.target_compute_capabilities)))
    plan = s.precision
    flags = ",".join(plan.get("builder_flags", [])) or "none"
    typing_note = "strongly typed" if s.strongly_typed else f"builder flags {flags}"
    rows += [
        ("device", s.device),
        ("precision", f"{plan.get('label')} (asked {plan.get('requested')}; {typing_note})"),
    ]
    for index, profile in enumerate(s.profiles):
        for name, rng in profile.items():
            shapes = " / ".join("x".join(str(d) for d in rng[k]) for k in ("min", "opt", "max"))
            rows.append((f"profile {index}: {name}", f"min/opt/max {shapes}"))
    for tensor in s.tensors:
        shape = "x".join(str(d) for d in tensor.shape)
        rows.append((f"{tensor.mode}: {tensor.name}", f"{tensor.dtype} [{shape}]"))
    rows += [
        (
            "I/O read from",
            "deserialized engine" if s.io_source == "engine" else "network definition (no GPU at build)",
        ),
        ("ONNX", f"{s.onnx_path} sha256 {s.onnx_sha256[:16]}..."),
        ("deploy card", "embedded" if s.deploy_card else "none"),
        ("built", f"{s.built_at} in {s.build_seconds:.1f} s by trtdeploy {s.tool_version}"),
    ]
    return rows
