"""What each TensorRT generation can do: the one table every build decision reads.

Nothing here imports TensorRT: the table is keyed by backend name and version so that
planning, refusals and the README matrix can be computed (and tested) on any machine.
Sources for the facts are in docs/DOMAIN.md section 1 (TensorRT 10 vs 11 vs TensorRT-RTX).
"""

from __future__ import annotations

from dataclasses import dataclass

from trtdeploy import plugins
from trtdeploy.errors import UsageError
from trtdeploy.versions import major_version
from trtdeploy.versions import version_tuple as version_tuple  # public name, kept for its readers

BACKEND_NAMES = ("tensorrt", "tensorrt_rtx")

# Plugin facts live in trtdeploy.plugins (the one list); these names are views of it.
# NMS plugin ops (default ONNX domain; the parser finds plugins by op type).
NMS_PLUGIN_OPS = frozenset(op for op in plugins.op_types() if "NMS" in op)
# Registered plugins TensorRT 11.0 no longer ships (absent from NVIDIA/TensorRT release/11.0 plugin/).
PLUGINS_REMOVED_IN_11 = plugins.removed_in("tensorrt", 11)
# TensorRT-RTX ships no general plugin library: only these are built in.
RTX_BUILTIN_PLUGINS = frozenset(p.op_type for p in plugins.all_plugins() if p.rtx)

# Target compute capabilities TensorRT-RTX can build for ahead of time (no 9.0 / H100).
RTX_COMPUTE_CAPABILITIES = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")


@dataclass(frozen=True)
class Capabilities:
    """What one installed backend supports. Build code asks this, never the version number."""

    backend: str  # "tensorrt" | "tensorrt_rtx"
    version: str  # exact version string, e.g. "10.16.0.72"
    label: str  # human name for messages, e.g. "TensorRT 11" or "TensorRT-RTX"
    weak_typing: bool  # BuilderFlag.FP16 / INT8 exist and the network may be weakly typed
    int8_calibrator: bool  # IInt8EntropyCalibrator2 / MinMax + cache
    plugins: bool  # a general plugin library can be loaded (libnvinfer_plugin, --plugin-lib)
    missing_plugins: frozenset[str]  # plugin op types this backend does not ship
    nms_layer: bool  # an ONNX NonMaxSuppression (INMSLayer) can be built
    dla: bool  # the API can target DLA cores (whether the machine has one is asked at build)
    timing_cache: bool  # a timing cache affects the build and works without a GPU query
    progress_monitor: bool  # IProgressMonitor exists
    ahead_of_time: bool  # builds on a CPU for a list of target compute capabilities
    layer_precision: bool  # per-layer precision constraints (weak typing only)

    @property
    def strongly_typed(self) -> bool:
        return not self.weak_typing

    def unavailable_plugin(self, op_type: str) -> bool:
        """True when a graph node of ``op_type`` needs a plugin this backend lacks."""
        if not self.plugins:
            return op_type not in RTX_BUILTIN_PLUGINS
        return op_type in self.missing_plugins


def capabilities_for(backend: str, version: str) -> Capabilities:
    """The capabilities of ``backend`` at ``version`` (pure: no TensorRT import)."""
    if backend == "tensorrt_rtx":
        return Capabilities(
            backend=backend,
            version=version,
            label="TensorRT-RTX",
            weak_typing=False,
            int8_calibrator=False,
            plugins=False,
            missing_plugins=frozenset(),
            nms_layer=False,  # parses, but building fails with "no runners" (DOMAIN.md s.1)
            dla=False,
            # RTX 1.1 release notes: a timing cache forces a GPU query and has no effect.
            timing_cache=False,
            progress_monitor=True,
            ahead_of_time=True,
            layer_precision=False,
        )
    if backend != "tensorrt":
        raise UsageError(f"unknown backend {backend!r}; use one of: auto, {', '.join(BACKEND_NAMES)}")
    major = major_version(version)
    if major < 10:
        raise UsageError(
            f"TensorRT {version} is not supported; trtdeploy needs TensorRT 10 or newer "
            "(or tensorrt_rtx: pip install 'trtdeploy[rtx]')"
        )
    weak = major == 10
    return Capabilities(
        backend=backend,
        version=version,
        label=f"TensorRT {major}",
        weak_typing=weak,
        int8_calibrator=weak,
        plugins=True,
        missing_plugins=frozenset() if weak else PLUGINS_REMOVED_IN_11,
        nms_layer=True,
        dla=True,
        timing_cache=True,
        progress_monitor=True,
        ahead_of_time=False,
        layer_precision=weak,
    )


def precision_summary(caps: Capabilities) -> dict[str, str]:
    """How each --precision is realised on this backend (for docs and `--help`)."""
    if caps.weak_typing:
        return {
            "fp32": "plain build",
            "fp16": "BuilderFlag.FP16",
            "int8": "BuilderFlag.INT8 + calibrator/cache, or a Q/DQ ONNX",
            "best": "FP16 + INT8 flags (calibrator or Q/DQ)",
        }
    return {
        "fp32": "plain build (strongly typed)",
        "fp16": "ONNX converted to FP16, I/O kept float32",
        "int8": "Q/DQ ONNX only",
        "best": "Q/DQ ONNX if given, else FP16 conversion",
    }
