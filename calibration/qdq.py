"""Q/DQ (QuantizeLinear/DequantizeLinear) ONNX for strongly typed backends (TensorRT 11, RTX).

Only the inputs of Conv, MatMul and Gemm are quantized, so everything else -- box decoding,
NMS heads, softmax/sigmoid, concatenations -- stays in float:

* activation input x (calibrated amax a):  x -> QuantizeLinear(s, 0) -> DequantizeLinear(s, 0),
  s = a / 127, int8, symmetric; one Q/DQ pair per tensor, shared by all its quantized consumers;
* constant weight W: per output channel c, s_c = max|W_c| / 127 (1 for an all-zero channel),
  stored as int8 round(W / s_c) clipped to [-127, 127] followed by DequantizeLinear(axis):
  axis 0 for Conv ([K, C/g, kh, kw]), 1 for a MatMul weight [K, N], and for Gemm 0 with transB=1
  else 1. Conv bias stays float.
* MatMul/Gemm are quantized only with a constant 2-D weight whose dimensions are both at least
  ``MIN_GEMM_DIM`` (real fully connected layers, not small coordinate transforms); nodes whose
  activation has no calibrated range, and nodes named in ``exclude`` (or of an op type in it),
  stay float.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.cache import CalibrationCache
from calibration.errors import CalibrationError

log = logging.getLogger("trtdeploy.calibration")

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
MIN_GEMM_DIM = 8
MIN_OPSET = 13  # per-axis DequantizeLinear


@dataclass
class QdqReport:
    quantized: list[str] = field(default_factory=list)  # node names
    skipped: dict[str, str] = field(default_factory=dict)  # node name -> why
    activations: int = 0  # Q/DQ pairs inserted
    weights: int = 0  # weights stored as int8

    def summary(self) -> str:
        return (
            f"{len(self.quantized)} nodes quantized ({self.activations} activation Q/DQ pairs, "
            f"{self.weights} int8 weights), {len(self.skipped)} left in float"
        )


def amax_of(ranges: CalibrationCache | Mapping[str, float]) -> dict[str, float]:
    """amax per tensor from a cache (scale * 127) or a mapping of amax."""
    if isinstance(ranges, CalibrationCache):
        return {name: s * 127.0 for name, s in ranges.scales.items() if np.isfinite(s) and s > 0}
    return {name: float(a) for name, a in ranges.items() if np.isfinite(a) and a > 0}


def insert_qdq(model, ranges: CalibrationCache | Mapping[str, float], exclude: Iterable[str] = ()):  # type: ignore[no-untyped-def]
    """Return (new ModelProto, QdqReport); ``model`` is not modified."""
    import onnx

    amax = amax_of(ranges)
    exclude = set(exclude)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise CalibrationError(
            f"Q/DQ insertion needs ONNX opset >= {MIN_OPSET} (per-channel DequantizeLinear); "
            f"the model has opset {opset}: re-export it with a newer opset"
        )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    builder = _QdqBuilder(graph, amax)
    new_nodes = builder.rewrite(graph.node, exclude)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(builder.new_inits)
    _drop_unread_initializers(graph)
    return out, builder.report


def _int8_per_channel(array: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weight, float32 scale per channel along ``axis``), symmetric, 1 for an all-zero channel."""
    w = array.astype(np.float64)
    other = tuple(d for d in range(w.ndim) if d != axis)
    wmax = np.abs(w).max(axis=other) if other else np.abs(w)
    scales = np.where(wmax > 0, wmax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scales.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return q, scales


def _drop_unread_initializers(graph) -> None:  # type: ignore[no-untyped-def]
    # float weights now only feed the int8 copies' creation: drop those no node reads
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in used]
    dropped = {t.name for t in graph.initializer} - {t.name for t in kept}
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # old-IR models also list initializers as graph inputs; a dropped one must not become an input
    stale = [i for i in graph.input if i.name in dropped]
    for value in stale:
        graph.input.remove(value)


class _QdqBuilder:
    """The Q/DQ nodes and initializers for one graph: unique names, one Q/DQ pair per activation
    tensor and one int8 copy per (weight, axis), each emitted once before its first consumer."""

    def __init__(self, graph, amax: Mapping[str, float]) -> None:  # type: ignore[no-untyped-def]
        self.amax = amax
        self.inits = {t.name: t for t in graph.initializer}
        self.constant_nodes = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and n.output}
        self.taken = {n.name for n in graph.node} | set(self.inits) | {v for n in graph.node for v in n.output}
        self.report = QdqReport()
        self.act_dq: dict[str, tuple[str, list]] = {}  # tensor -> (dequantized name, nodes to emit)
        self.weight_dq: dict[tuple[str, int], tuple[str, list]] = {}
        self.new_inits: list = []

    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def weight_array(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.constant_nodes.get(name)
        if node is not None:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def activation(self, tensor: str) -> tuple[str, list]:
        from onnx import helper, numpy_helper

        if tensor not in self.act_dq:
            unique = self.unique
            scale = unique(f"{tensor}_qdq_scale")
            zero = unique(f"{tensor}_qdq_zero_point")
            self.new_inits.append(numpy_helper.from_array(np.array(self.amax[tensor] / 127.0, np.float32), scale))
            self.new_inits.append(numpy_helper.from_array(np.array(0, np.int8), zero))
            q_out, dq_out = unique(f"{tensor}_quantized"), unique(f"{tensor}_dequantized")
            nodes = [
                helper.make_node(
                    "QuantizeLinear", [tensor, scale, zero], [q_out], name=unique(f"{tensor}_QuantizeLinear")
                ),
                helper.make_node(
                    "DequantizeLinear", [q_out, scale, zero], [dq_out], name=unique(f"{tensor}_DequantizeLinear")
                ),
            ]
            self.act_dq[tensor] = (dq_out, nodes)
            self.report.activations += 1
        return self.act_dq[tensor]

    def weight(self, tensor: str, array: np.ndarray, axis: int) -> tuple[str, list]:
        from onnx import helper, numpy_helper

        key = (tensor, axis)
        if key not in self.weight_dq:
            q, scales = _int8_per_channel(array, axis)
            unique = self.unique
            q_name, s_name, z_name = (
                unique(f"{tensor}_int8"),
                unique(f"{tensor}_qdq_scale"),
                unique(f"{tensor}_qdq_zero_point"),
            )
            self.new_inits.append(numpy_helper.from_array(q, q_name))
            self.new_inits.append(numpy_helper.from_array(scales, s_name))
            self.new_inits.append(numpy_helper.from_array(np.zeros(len(scales), np.int8), z_name))
            dq_out = unique(f"{tensor}_dequantized")
            node = helper.make_node(
                "DequantizeLinear",
                [q_name, s_name, z_name],
                [dq_out],
                name=unique(f"{tensor}_DequantizeLinear"),
                axis=axis,
            )
            self.weight_dq[key] = (dq_out, [node])
            self.report.weights += 1
        return self.weight_dq[key]

    def rewrite(self, nodes, exclude: set[str]) -> list:  # type: ignore[no-untyped-def]
        """The graph's nodes with each quantizable node's inputs read through Q/DQ (recorded in the report)."""
        emitted: set[str] = set()
        new_nodes = []
        for node in nodes:
            plan = _plan(node, self.weight_array, self.amax, exclude)
            if isinstance(plan, str):
                if node.op_type in QUANTIZED_OPS:
                    self.report.skipped[node.name or node.output[0]] = plan
                new_nodes.append(node)
                continue
            acts, weights = plan
            for index in acts:
                _read_through(node, index, self.activation(node.input[index]), new_nodes, emitted)
            for index, array, axis in weights:
                _read_through(node, index, self.weight(node.input[index], array, axis), new_nodes, emitted)
            new_nodes.append(node)
            self.report.quantized.append(node.name or node.output[0])
        return new_nodes


def _read_through(node, index: int, dequantized: tuple[str, list], new_nodes: list, emitted: set[str]) -> None:  # type: ignore[no-untyped-def]
    """Make ``node`` read input ``index`` from its dequantized copy, emitting the Q/DQ nodes the first time."""
    dq_out, dq_nodes = dequantized
    if dq_out not in emitted:
        new_nodes.extend(dq_nodes)
        emitted.add(dq_out)
    node.input[index] = dq_out


def _plan(node, weight_array, amax: Mapping[str, float], exclude: set[str]):  # type: ignore[no-untyped-def]
    """(activation input indices, [(weight input index, array, axis)]) or a reason to skip."""
    if node.op_type not in QUANTIZED_OPS:
        return "not a Conv/MatMul/Gemm"
    if node.name in exclude or node.op_type in exclude:
        return "excluded"
    inputs = list(node.input)
    if len(inputs) < 2:
        return "missing inputs"
    w = weight_array(inputs[1])
    if node.op_type == "Conv":
        if w is None:
            return "weight is not a constant"
        acts, weights = [0], [(1, w, 0)]
    else:
        if w is None or w.ndim != 2 or min(w.shape) < MIN_GEMM_DIM or weight_array(inputs[0]) is not None:
            return f"{node.op_type} without a constant 2-D weight of at least {MIN_GEMM_DIM}x{MIN_GEMM_DIM}"
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
        if node.op_type == "Gemm" and trans_a:
            return "Gemm with transA"
        axis = 0 if (node.op_type == "Gemm" and trans_b) else 1
        acts, weights = [0], [(1, w, axis)]
    missing = [inputs[i] for i in acts if inputs[i] not in amax]
    if missing:
        return f"no calibrated range for {missing[0]!r}"
    return acts, weights


def write_qdq_onnx(
    onnx_in: str | Path,
    onnx_out: str | Path,
    ranges: CalibrationCache | Mapping[str, float],
    exclude: Iterable[str] = (),
) -> QdqReport:
    """Read ``onnx_in``, insert Q/DQ from the ranges, check and write ``onnx_out`` atomically."""
    import onnx

    from calibration._io import atomic_target
    from calibration.ort_calibrate import _load

    model = _load(onnx_in)
    qdq, report = insert_qdq(model, ranges, exclude)
    if not report.quantized:
        raise CalibrationError(
            f"no Conv/MatMul/Gemm in {onnx_in} could be quantized ({next(iter(report.skipped.values()), 'none found')})"
        )
    from calibration.ort_calibrate import runnable_part

    try:
        # the ONNX checker knows no TensorRT plugin ops: check the part without them (all we changed)
        onnx.checker.check_model(runnable_part(qdq)[0])
    except onnx.checker.ValidationError as exc:
        raise CalibrationError(f"the Q/DQ model fails the ONNX checker: {str(exc).splitlines()[0]}") from exc
    with atomic_target(Path(onnx_out)) as tmp:
        onnx.save(qdq, str(tmp))
    log.info("wrote Q/DQ ONNX %s: %s", onnx_out, report.summary())
    return report
