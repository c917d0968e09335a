"""The precision plan: what `--precision` means on the backend that is installed.

Weakly typed TensorRT 10 takes builder flags (FP16, INT8 + calibrator or Q/DQ). Strongly
typed TensorRT 11 and TensorRT-RTX take the types from the network itself, so FP16 means
converting the ONNX (I/O kept float32) and INT8 means a Q/DQ ONNX. Pure logic: no TensorRT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from trtdeploy.engine.capabilities import Capabilities
from trtdeploy.errors import UsageError

PRECISIONS = ("fp32", "fp16", "int8", "best")
LAYER_PRECISIONS = ("fp32", "fp16")

# Where the INT8 scales come from.
INT8_NONE = "none"
INT8_QDQ = "qdq"  # the ONNX already carries Q/DQ nodes
INT8_CALIBRATOR = "calibrator"  # TensorRT 10 calibrator over images (+ cache written)
INT8_CACHE = "cache"  # TensorRT 10 calibrator that only replays an existing cache
INT8_QDQ_FROM_CALIBRATION = "qdq_from_calibration"  # calibration package makes a Q/DQ ONNX


@dataclass(frozen=True)
class PrecisionPlan:
    requested: str  # what the user asked for
    label: str  # fp32 | fp16 | int8: engine name and DeepStream network-mode
    strongly_typed: bool
    builder_flags: tuple[str, ...] = ()  # BuilderFlag names (weak typing only)
    convert_fp16: bool = False  # convert the ONNX to FP16 before parsing
    int8_source: str = INT8_NONE
    layer_precisions: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer_precisions"] = dict(self.layer_precisions)
        data["builder_flags"] = list(self.builder_flags)
        data["notes"] = list(self.notes)
        return data


def parse_layer_precisions(specs: Sequence[str]) -> dict[str, str]:
    """``["conv1=fp32"]`` -> ``{"conv1": "fp32"}``; the name may contain ``=`` (split on the last)."""
    result: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        value = value.strip().lower()
        if not sep or not name or value not in LAYER_PRECISIONS:
            raise UsageError(f"--layer-precision {spec!r} is not NAME=fp32 or NAME=fp16")
        result[name] = value
    return result


def plan_precision(
    caps: Capabilities,
    precision: str,
    *,
    has_qdq: bool = False,
    calib_images: bool = False,
    calib_cache: bool = False,
    layer_precisions: Mapping[str, str] | None = None,
) -> PrecisionPlan:
    """Decide flags, conversions and the INT8 source, or refuse with the fix."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    layers = dict(layer_precisions or {})
    strong = caps.strongly_typed
    has_data = calib_images or calib_cache
    notes: list[str] = []

    if has_qdq and precision in ("fp32", "fp16"):
        raise UsageError(
            f"the ONNX has QuantizeLinear/DequantizeLinear nodes, which build as INT8; --precision "
            f"{precision} cannot remove them: use --precision int8 (or best), or pass the float ONNX"
        )
    if has_qdq and has_data:
        raise UsageError(
            "the ONNX already has Q/DQ nodes (its INT8 scales are in the graph); drop --calib-images/--calib-cache"
        )

    want_int8 = precision == "int8" or (precision == "best" and (has_qdq or has_data))
    if precision == "int8" and not (has_qdq or has_data):
        raise UsageError(
            "INT8 needs calibration data: pass --calib-images DIR (and optionally --calib-cache FILE "
            "to save/reuse the scales), --calib-cache FILE with an existing cache, or a Q/DQ ONNX"
        )
    if precision == "best" and not want_int8:
        notes.append("best: no Q/DQ ONNX and no calibration data, so INT8 is off; building FP16")

    flags: list[str] = []
    convert_fp16 = False
    int8_source = INT8_NONE
    if want_int8:
        if has_qdq:
            int8_source = INT8_QDQ
        elif strong:
            int8_source = INT8_QDQ_FROM_CALIBRATION
        else:
            int8_source = INT8_CALIBRATOR if calib_images else INT8_CACHE
        if not strong:
            flags.append("INT8")
            if precision == "best":
                flags.append("FP16")
        elif precision == "best":
            notes.append(f"best on {caps.label}: the Q/DQ graph decides INT8 layers; the rest stays float32")
    elif precision in ("fp16", "best"):
        if strong:
            convert_fp16 = True
        else:
            flags.append("FP16")

    if layers:
        if strong:
            wrong = sorted(n for n, p in layers.items() if p != "fp32")
            if wrong:
                raise UsageError(
                    f"--layer-precision {wrong[0]}={layers[wrong[0]]}: on {caps.label} (strongly typed) "
                    "only NAME=fp32 is honoured, by keeping those ONNX nodes float32 in the FP16 conversion"
                )
            if not convert_fp16:
                raise UsageError(
                    f"--layer-precision NAME=fp32 only has an effect with --precision fp16 on {caps.label} "
                    "(the network is otherwise float32 or fixed by its Q/DQ nodes)"
                )
            notes.append("layer precisions: listed ONNX nodes kept float32 in the FP16 conversion")
        else:
            flags.append("OBEY_PRECISION_CONSTRAINTS")
            notes.append("layer precisions: set on the TensorRT layers, obeyed by the builder")

    label = "int8" if want_int8 else ("fp16" if precision in ("fp16", "best") else "fp32")
    return PrecisionPlan(
        requested=precision,
        label=label,
        strongly_typed=strong,
        builder_flags=tuple(flags),
        convert_fp16=convert_fp16,
        int8_source=int8_source,
        layer_precisions=layers,
        notes=tuple(notes),
    )
