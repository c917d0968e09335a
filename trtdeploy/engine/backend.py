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
from typing import TYPE_CHECKING, Any, TypeVar, cast

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


if TYPE_CHECKING:
    _LoggerBase = tensorrt.ILogger
    _MonitorBase = tensorrt.IProgressMonitor
else:  # at run time the interface comes from whichever module is in use (see implement())
    _LoggerBase = _MonitorBase = object

T = TypeVar("T")


def implement(mixin: type[T], interface: Any) -> T:
    """Instantiate ``mixin`` on top of a TensorRT interface class of the module in use.

    The mixin is written (and type-checked) against the tensorrt stubs; the real base class
    (``tensorrt.ILogger`` or ``tensorrt_rtx.ILogger``, ...) is only known at run time, and
    pybind11 requires its ``__init__`` to run.
    """

    def __init__(self: Any) -> None:
        interface.__init__(self)

    cls = type(mixin.__name__, (mixin, interface), {"__init__": __init__})
    return cast(T, cls())


class _RoutingLogger(_LoggerBase):
    """ILogger that hands every line to a LogRouter."""

    router: LogRouter
    levels: dict[Any, int]

    def log(self, severity: tensorrt.ILogger.Severity, msg: str) -> None:
        self.router(self.levels.get(severity, logging.INFO), msg)


def make_trt_logger(backend: Backend, router: LogRouter) -> tensorrt.ILogger:
    """A TensorRT ILogger that feeds ``router``."""
    logger = implement(_RoutingLogger, backend.module.ILogger)
    logger.router = router
    logger.levels = _severity_levels(backend.module)
    return logger


ProgressCallback = Callable[[str, int, int], None]  # (phase, steps done, steps total)


class _PhaseMonitor(_MonitorBase):
    """IProgressMonitor reporting top-level phases to a callback; never cancels."""

    callback: ProgressCallback
    totals: dict[str, int]
    top: set[str]

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        self.totals[phase_name] = num_steps
        if not parent_phase:
            self.top.add(phase_name)
            self.callback(phase_name, 0, num_steps)

    def step_complete(self, phase_name: str, step: int) -> bool:
        if phase_name in self.top:
            self.callback(phase_name, step + 1, self.totals.get(phase_name, 0))
        return True

    def phase_finish(self, phase_name: str) -> None:
        if phase_name in self.top:
            total = self.totals.get(phase_name, 0)
            self.callback(phase_name, total, total)


def make_progress_monitor(backend: Backend, callback: ProgressCallback) -> tensorrt.IProgressMonitor | None:
    """An IProgressMonitor for ``callback`` (None when the backend has none)."""
    if not backend.caps.progress_monitor or not hasattr(backend.module, "IProgressMonitor"):
        return None
    monitor = implement(_PhaseMonitor, backend.module.IProgressMonitor)
    monitor.callback = callback
    monitor.totals = {}
    monitor.top = set()
    return monitor
