"""A float64 evaluation of a converted network: tells conversion error from float32 noise.

`verify` compares two float32 programs, TensorFlow and ONNX Runtime. Their difference is the
conversion error plus two rounding errors, and the rounding errors depend on the CPU (TensorFlow
picks other oneDNN kernels on other processors: the same model's scores move by 1e-4..3e-4).
Evaluating the converted ONNX graph in float64 (ONNX's NumPy reference evaluator, every float
tensor widened) gives the value the converted network computes without rounding, so on the images
at hand we measure, per output:

- ``tf_exact``: TensorFlow's float32 result vs that value (its own float32 error, plus any
  conversion error: the float64 value is of the graph as converted);
- ``onnx_exact``: ONNX Runtime's float32 result vs that value (pure float32 error: same graph);
- ``tf_onnx``: the two float32 results against each other (what verify's tolerance must cover).

Reading them: a correct conversion has ``tf_exact`` of the same order as ``onnx_exact`` (two float32
evaluations of the same arithmetic; measured ratio 1.3-1.4 on the SSD fixtures); a conversion that
changed the network shows as ``tf_exact`` far above ``onnx_exact`` (``NOISE_RATIO``). The score
tolerance derived from the run is ``max(SCORE_FLOOR, K_SCORE * tf_exact)`` on the scores: by the
triangle inequality ``tf_onnx <= tf_exact + onnx_exact``, which is at most ``2 * tf_exact`` when our
float32 result is no further from the exact value than TensorFlow's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trtdeploy.errors import InputError

SCORE_FLOOR = 1e-4  # verify's default score tolerance: never derive a stricter one
K_SCORE = 2.0  # tf_onnx <= tf_exact + onnx_exact <= 2 * tf_exact (see the module docstring)
# TensorFlow further than this many times our own float32 error from the exact value (and beyond
# SCORE_FLOOR) is not float noise: the converted graph computes something else.
NOISE_RATIO = 4.0
# The converted TFOD graph's pre-NMS tensors (tfod_trt.passes: decode_boxes, select_class_scores)
# -> the saved model's serving outputs with the same values.
TFOD_RAW = {"boxes": "raw_detection_boxes", "scores": "raw_detection_scores"}


@dataclass(frozen=True)
class OutputError:
    """Largest absolute differences over the images, for one output."""

    name: str
    tf_exact: float
    onnx_exact: float
    tf_onnx: float

    @property
    def conversion_suspect(self) -> bool:
        return self.tf_exact > max(SCORE_FLOOR, NOISE_RATIO * self.onnx_exact)


@dataclass(frozen=True)
class ExactReport:
    images: int
    outputs: tuple[OutputError, ...]

    def output(self, name: str) -> OutputError:
        for out in self.outputs:
            if out.name == name:
                return out
        raise KeyError(name)

    def score_tolerance(self, name: str = "scores") -> float:
        """The matched-score tolerance this run supports: max(SCORE_FLOOR, K_SCORE x TF's error)."""
        return max(SCORE_FLOOR, K_SCORE * self.output(name).tf_exact)

    @property
    def suspects(self) -> list[str]:
        return [out.name for out in self.outputs if out.conversion_suspect]


def as_float64(model: Any) -> Any:
    """The same ONNX graph computing in float64: initializers, constants, I/O types and casts."""
    import onnx
    from onnx import TensorProto, numpy_helper

    wide = onnx.ModelProto()
    wide.CopyFrom(model)
    tensors = list(wide.graph.initializer) + [
        a.t for n in wide.graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR
    ]
    for tensor in tensors:
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))
    for info in [*wide.graph.input, *wide.graph.output, *wide.graph.value_info]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            info.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in wide.graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
    return wide


def cut_at(model: Any, names: Sequence[str]) -> Any:
    """The part of ``model`` that computes the tensors ``names`` from the graph inputs."""
    from onnx import TensorProto, helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    missing = [n for n in names if n not in producer]
    if missing:
        raise InputError(f"the ONNX has no tensor(s) {missing}; --exact needs a graph made by create-onnx")
    keep: set[int] = set()
    stack = [producer[n] for n in names]
    while stack:
        node = stack.pop()
        if id(node) in keep:
            continue
        keep.add(id(node))
        stack.extend(producer[i] for i in node.input if i in producer)
    nodes = [n for n in graph.node if id(n) in keep]
    used = {i for n in nodes for i in n.input}
    cut = helper.make_graph(
        nodes,
        f"{graph.name}_cut",
        [i for i in graph.input if i.name in used],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names],
        [t for t in graph.initializer if t.name in used],
        value_info=[v for v in graph.value_info if v.name in used],
    )
    result = helper.make_model(cut, opset_imports=list(model.opset_import))
    result.ir_version = model.ir_version
    return result


def exact_errors(
    model: Any,
    inputs: np.ndarray,
    tf_outputs: dict[str, np.ndarray],
    batch: int = 1,
    progress: Callable[[], None] | None = None,
    float32_model: Any = None,
) -> ExactReport:
    """Measure TF-vs-exact, ONNX-vs-exact and TF-vs-ONNX for each output named in ``tf_outputs``.

    ``model``: the converted ONNX (ModelProto); ``inputs``: its input tensor for N images (as the
    deploy card prescribes); ``tf_outputs``: TensorFlow's float32 values of the same tensors for
    those images, ``[N, ...]``; ``batch``: the ONNX's static batch (1 for a dynamic one);
    ``float32_model``: run this graph in ONNX Runtime instead of ``model`` (tests: a deliberately
    altered copy against the exact value of the original).
    """
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    from trtdeploy.verify import run_batched

    names = list(tf_outputs)
    cut = cut_at(model, names)
    feed = cut.graph.input[0].name
    float32_cut = cut if float32_model is None else cut_at(float32_model, names)
    session = ort.InferenceSession(float32_cut.SerializeToString(), providers=["CPUExecutionProvider"])
    evaluator = ReferenceEvaluator(as_float64(cut))

    def per_image(run: Callable[[np.ndarray], list[np.ndarray]]) -> Callable[[np.ndarray], list[list[np.ndarray]]]:
        def split(chunk: np.ndarray) -> list[list[np.ndarray]]:
            values = run(chunk)
            if progress is not None:
                for _ in range(len(chunk)):
                    progress()
            return [[v[i] for v in values] for i in range(len(chunk))]

        return split

    ours = run_batched(per_image(lambda x: session.run(names, {feed: x.astype(np.float32)})), inputs, batch)
    exact = run_batched(per_image(lambda x: evaluator.run(names, {feed: x.astype(np.float64)})), inputs, batch)
    errors = []
    for k, name in enumerate(names):
        tf_value = np.asarray(tf_outputs[name], np.float64)
        our_value = np.stack([o[k] for o in ours]).astype(np.float64)
        exact_value = np.stack([e[k] for e in exact])
        if tf_value.shape != exact_value.shape:
            raise InputError(
                f"TensorFlow's {name} has shape {list(tf_value.shape)} but the ONNX's is {list(exact_value.shape)}"
            )
        errors.append(
            OutputError(
                name,
                float(np.abs(tf_value - exact_value).max()),
                float(np.abs(our_value - exact_value).max()),
                float(np.abs(tf_value - our_value).max()),
            )
        )
    return ExactReport(len(inputs), tuple(errors))


def tfod_raw_outputs(outputs: Sequence[dict[str, np.ndarray]], num_classes: int) -> dict[str, np.ndarray]:
    """TensorFlow's raw (pre-NMS) TFOD outputs as the converted graph's ``boxes`` and ``scores``.

    ``raw_detection_boxes`` are the decoded, unclipped boxes [A,4] (normalised y1,x1,y2,x2) and
    ``raw_detection_scores`` the converted class scores [A,S] with, for SSDs that predict one,
    the background column first, which the converted graph drops.
    """
    boxes = np.concatenate([o[TFOD_RAW["boxes"]] for o in outputs])
    scores = np.concatenate([o[TFOD_RAW["scores"]] for o in outputs])
    if scores.shape[-1] == num_classes + 1:
        scores = scores[..., 1:]
    elif scores.shape[-1] != num_classes:
        raise InputError(
            f"the saved model predicts {scores.shape[-1]} score columns but the ONNX has {num_classes} classes: "
            "was the ONNX made from this saved model?"
        )
    return {"boxes": boxes, "scores": scores}
