"""The adapter over the installed TensorRT module (`tensorrt` 10.x/11.x or `tensorrt_rtx`).

`select_backend` picks the module and pairs it with its `Capabilities`; the helpers here
(logger routed into ours, progress monitor) are the only places that subclass TensorRT
interfaces, created inside factories so importing this module needs no TensorRT.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trtdeploy.engine.capabilities import BACKEND_NAMES, Capabilities, capabilities_for
from trtdeploy.engine.machine import load_module, module_version
from trtdeploy.errors import MissingDependencyError, UsageError
from trtdeploy.log import get_logger

if TYPE_CHECKING:  # type-checked against tensorrt-stubs (see tests/engine/test_mypy.py)
    import tensorrt

log = get_logger("engine")
trt_log = get_logger("engine.tensorrt")


@dataclass
class Backend:
    module: Any  # the imported tensorrt or tensorrt_rtx module (same Python API shape)
    caps: Capabilities

    @property
    def name(self) -> str:
        return self.caps.backend


def select_backend(name: str = "auto") -> Backend:
    """``auto`` prefers full TensorRT (what DeepStream runs) and falls back to TensorRT-RTX."""
    if name not in ("auto", *BACKEND_NAMES):
        raise UsageError(f"--backend {name!r} is not one of: auto, {', '.join(BACKEND_NAMES)}")
    candidates = BACKEND_NAMES if name == "auto" else (name,)
    for candidate in candidates:
        module = load_module(candidate)
        if module is not None:
            return Backend(module, capabilities_for(candidate, module_version(module)))
    if name == "tensorrt":
        raise MissingDependencyError(
            "--backend tensorrt: the Python module 'tensorrt' is not installed; install TensorRT "
            "(DeepStream/JetPack ship it) or use --backend tensorrt_rtx"
        )
    raise MissingDependencyError(
        "no TensorRT found: install TensorRT 10/11 (module 'tensorrt') or "
        "pip install 'trtdeploy[rtx]' (module 'tensorrt_rtx')"
    )


class LogRouter:
    """Receives TensorRT log lines: forwards them to our logger, says repeated warnings once,
    and keeps the errors so a failed build can report them."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, level: int, message: str) -> None:
        with self._lock:
            if level >= logging.ERROR:
                self.errors.append(message)
            if level >= logging.WARNING:
                if message in self._seen:
                    return
                self._seen.add(message)
        if trt_log.isEnabledFor(level):
            trt_log.log(level, "%s", message)


def _severity_levels(trt: Any) -> dict[Any, int]:
    sev = trt.ILogger.Severity
    return {
        sev.INTERNAL_ERROR: logging.CRITICAL,
        sev.ERROR: logging.ERROR,
        sev.WARNING: logging.WARNING,
        sev.INFO: logging.DEBUG,  # TensorRT's INFO is build chatter: our -v
        sev.VERBOSE: logging.DEBUG - 5,
    }


def make_trt_logger(backend: Backend, router: LogRouter) -> tensorrt.ILogger:
    """A TensorRT ILogger that feeds ``router``; only asks TensorRT for what we will show."""
    trt = backend.module
    levels = _severity_levels(trt)

    class _Logger(trt.ILogger):  # type: ignore[misc]  # base comes from the runtime module
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: tensorrt.ILogger.Severity, msg: str) -> None:
            router(levels.get(severity, logging.INFO), msg)

    logger: tensorrt.ILogger = _Logger()
    return logger


ProgressCallback = Callable[[str, int, int], None]  # (phase, steps done, steps total)


def make_progress_monitor(
    backend: Backend, callback: ProgressCallback
) -> tensorrt.IProgressMonitor | None:
    """An IProgressMonitor reporting top-level phases to ``callback`` (None if unsupported)."""
    if not backend.caps.progress_monitor or not hasattr(backend.module, "IProgressMonitor"):
        return None
    trt = backend.module

    class _Monitor(trt.IProgressMonitor):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._totals: dict[str, int] = {}
            self._top: set[str] = set()

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._totals[phase_name] = num_steps
            if not parent_phase:
                self._top.add(phase_name)
                callback(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            if phase_name in self._top:
                callback(phase_name, step + 1, self._totals.get(phase_name, 0))
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            if phase_name in self._top:
                total = self._totals.get(phase_name, 0)
                callback(phase_name, total, total)

    monitor: tensorrt.IProgressMonitor = _Monitor()
    return monitor
