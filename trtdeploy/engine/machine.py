"""What this machine has: installed TensorRT backends, CUDA driver, GPUs.

GPUs are asked through the CUDA driver library with ctypes, so no CUDA Python package is
needed and a machine without a driver simply reports no GPU.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.metadata
import re
from dataclasses import dataclass, field
from types import ModuleType

from trtdeploy.log import get_logger

log = get_logger("engine")

_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    compute_capability: str  # "8.6"


@dataclass
class Machine:
    """Facts the usability check compares a sidecar against."""

    backends: dict[str, str] = field(default_factory=dict)  # module name -> exact version
    cuda_driver: str | None = None  # "13.0"
    gpus: list[GpuInfo] = field(default_factory=list)


def load_module(name: str) -> ModuleType | None:
    """Import a TensorRT module, or None. An empty namespace folder (left by type-stub
    packages such as tensorrt-stubs) is not an installation."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    if getattr(module, "__file__", None) is None or not hasattr(module, "Builder"):
        log.debug("module %s is only a namespace/stub folder; treating it as not installed", name)
        return None
    return module


def module_version(module: ModuleType) -> str:
    return str(getattr(module, "__version__", "unknown"))


def cuda_version_of(module: ModuleType) -> str | None:
    """The CUDA major version a TensorRT wheel was built for, from its distribution name
    (``tensorrt_rtx_cu13``, ``tensorrt_cu12``); None when it cannot be told."""
    base = module.__name__.replace("_", "-")
    pattern = re.compile(rf"^{re.escape(base)}[-_]cu(\d+)$", re.IGNORECASE)
    for dist in importlib.metadata.distributions():
        name = dist.name or ""
        match = pattern.match(name.replace("_", "-"))
        if match:
            return match.group(1)
    return None


def _libcuda() -> ctypes.CDLL | None:
    for candidate in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    return None


def probe_gpus() -> tuple[str | None, list[GpuInfo]]:
    """(CUDA driver version, GPUs) from the driver API; (None, []) without a driver."""
    lib = _libcuda()
    if lib is None:
        return None, []
    try:
        version = ctypes.c_int(0)
        driver = None
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value:
            driver = f"{version.value // 1000}.{(version.value % 1000) // 10}"
        if lib.cuInit(0) != 0:
            return driver, []
        count = ctypes.c_int(0)
        if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return driver, []
        gpus = []
        for index in range(count.value):
            device = ctypes.c_int(0)
            if lib.cuDeviceGet(ctypes.byref(device), index) != 0:
                continue
            name = ctypes.create_string_buffer(256)
            lib.cuDeviceGetName(name, 256, device)
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            lib.cuDeviceGetAttribute(ctypes.byref(major), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device)
            lib.cuDeviceGetAttribute(ctypes.byref(minor), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device)
            gpus.append(GpuInfo(index, name.value.decode(errors="replace"), f"{major.value}.{minor.value}"))
        return driver, gpus
    except (AttributeError, OSError) as exc:  # a broken or partial driver install
        log.debug("CUDA driver probe failed: %s", exc)
        return None, []


def current_machine() -> Machine:
    backends = {}
    for name in ("tensorrt", "tensorrt_rtx"):
        module = load_module(name)
        if module is not None:
            backends[name] = module_version(module)
    driver, gpus = probe_gpus()
    return Machine(backends=backends, cuda_driver=driver, gpus=gpus)
