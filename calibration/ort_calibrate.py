"""CPU calibration with ONNX Runtime: per-tensor ranges of every float activation.

Every float tensor a node computes from the network input (not from constants alone), plus the
input itself, is added as a graph output; the images run through ONNX Runtime in batches and
each tensor's |x| statistics are accumulated (calibration.ranges). Tensor names are the ONNX
value names, which is what TensorRT's ONNX parser names its tensors, so the resulting cache is
usable by TensorRT (and DeepStream's ``int8-calib-file``) for the same graph.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.batcher import BatchSource, ImageBatcher
from calibration.cache import NEWEST_TRT10, CalibrationCache, TrtVersion
from calibration.errors import CalibrationError
from calibration.images import list_images
from calibration.preprocess import PreprocessSpec
from calibration.ranges import AbsHistogram, CalibrationMethod, amax_from

# A child of the "trtdeploy" logger by name only (no import), so the CLI's handler shows it.
log = logging.getLogger("trtdeploy.calibration")

FLOAT_TYPES = (1, 10)  # onnx.TensorProto.FLOAT, FLOAT16
# Which cache header each method writes by default. TensorRT (and DeepStream's calibrator) only
# reads a cache whose header names its own calibrator; percentile ranges go under the entropy
# calibrator's header, which is what DeepStream uses.
HEADER_ALGORITHM = {
    CalibrationMethod.ENTROPY: "EntropyCalibration2",
    CalibrationMethod.PERCENTILE: "EntropyCalibration2",
    CalibrationMethod.MINMAX: "MinMaxCalibration",
}


@dataclass
class CalibrationResult:
    """amax (range) per tensor name, in graph order, and how it was obtained."""

    amax: dict[str, float]
    method: CalibrationMethod
    num_images: int
    input_name: str
    seconds: float = 0.0
    histograms: dict[str, AbsHistogram] = field(default_factory=dict, repr=False)

    def cache(self, trt_version: str | TrtVersion = NEWEST_TRT10, algorithm: str | None = None) -> CalibrationCache:
        return CalibrationCache.from_amax(self.amax, trt_version, algorithm or HEADER_ALGORITHM[self.method])


def as_batches(
    images: BatchSource | Sequence[Path] | str | Path,
    preprocess: PreprocessSpec,
    batch_size: int,
    *,
    num: int | None = None,
    seed: int = 0,
    fast_decode: bool = False,
    workers: int | None = None,
    drop_last: bool = False,
) -> BatchSource:
    """Accept a ready batch source, a list of image paths, a folder / list file / COCO JSON, or a
    TAO tensorfile (whose batches are already preprocessed: its batch size wins)."""
    if isinstance(images, (str, Path)):
        from calibration.tensorfile import TensorfileBatches, is_tensorfile

        if is_tensorfile(images):  # TAO's preprocessed batches: used as they are
            return TensorfileBatches(images)
        paths = list_images(images, num=num, seed=seed)
    elif isinstance(images, Sequence):
        paths = [Path(p) for p in images]
    else:
        return images
    return ImageBatcher(paths, preprocess, batch_size, workers=workers, fast_decode=fast_decode, drop_last=drop_last)


def _pipelined(run, batches: Iterable[np.ndarray]):  # type: ignore[no-untyped-def]
    """Run the model on batch k+1 in a helper thread while the caller digests batch k (ONNX
    Runtime releases the GIL, so statistics and inference overlap)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calib-ort") as pool:
        pending = None
        for batch in batches:
            future = pool.submit(run, batch)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


def _load(onnx_path: str | Path):  # type: ignore[no-untyped-def]
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise CalibrationError(f"ONNX model {path} not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a corrupt file
        raise CalibrationError(f"cannot read ONNX model {path}: {exc}") from exc


ORT_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")


def runnable_part(model):  # type: ignore[no-untyped-def]
    """A copy of ``model`` without TensorRT plugin nodes (``*_TRT`` or a custom domain, e.g. an
    EfficientNMS_TRT head) and everything computed from them, which ONNX Runtime cannot run and
    which calibration does not need; and the names of the nodes removed."""
    import onnx

    dead: set[str] = set()
    removed = []
    for node in model.graph.node:
        plugin = node.op_type.endswith("_TRT") or node.domain not in ORT_DOMAINS
        if plugin or any(i in dead for i in node.input if i):
            dead.update(o for o in node.output if o)
            removed.append(node.name or node.op_type)
    if not removed:
        return model, []
    part = onnx.ModelProto()
    part.CopyFrom(model)
    kept = [n for n in part.graph.node if not any(o in dead for o in n.output if o)]
    del part.graph.node[:]
    part.graph.node.extend(kept)
    outputs = [o for o in part.graph.output if o.name not in dead]
    del part.graph.output[:]
    part.graph.output.extend(outputs)
    return part, removed


def activation_tensors(model) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """(input name, float tensors that depend on the input, in graph order incl. the input)."""
    import onnx

    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise CalibrationError(
            f"calibration needs a model with one image input, this one has {len(inputs)}: "
            f"{', '.join(i.name for i in inputs)}"
        )
    input_name = inputs[0].name
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    except Exception:  # noqa: BLE001 - shape inference may fail on custom ops; then keep every tensor and filter at run time
        types = {}
    types.update({o.name: o.type.tensor_type.elem_type for o in model.graph.output})
    variable = {input_name}  # tensors computed from the input (not constant-foldable)
    names = [input_name] if inputs[0].type.tensor_type.elem_type in FLOAT_TYPES else []
    for node in model.graph.node:
        if not any(i in variable for i in node.input if i):
            continue
        for out in node.output:
            if not out:
                continue
            variable.add(out)
            if types.get(out, 1) in FLOAT_TYPES:
                names.append(out)
    return input_name, names


def _input_batch(model, input_name: str) -> int | None:  # type: ignore[no-untyped-def]
    for inp in model.graph.input:
        if inp.name == input_name:
            dims = inp.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                return int(dims[0].dim_value)
    return None


def _selected(names: list[str], tensors: Sequence[str] | None, onnx_path: str | Path) -> list[str]:
    """The activation tensors to calibrate: all of them, or the ones ``tensors`` names (each must be one)."""
    if tensors is None:
        return names
    unknown = sorted(set(tensors) - set(names))
    if unknown:
        raise CalibrationError(f"tensors {unknown[:5]} are not float activations of {onnx_path}")
    return [n for n in names if n in set(tensors)]


def _batch_runner(model, names: list[str], input_name: str, preprocess: PreprocessSpec, onnx_path: str | Path):  # type: ignore[no-untyped-def]
    """A function running one batch through ONNX Runtime: tensor name -> value for every name
    (``model`` gets them as graph outputs; the input is passed through as given)."""
    import onnx
    import onnxruntime as ort

    existing = {o.name for o in model.graph.output}
    for name in names:
        if name not in existing and name != input_name:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        raise CalibrationError(f"ONNX Runtime cannot load {onnx_path} for calibration: {exc}") from exc
    fetch = [n for n in names if n != input_name]
    want_dtype = (
        np.float16 if preprocess.dtype == "float16" else (np.uint8 if preprocess.dtype == "uint8" else np.float32)
    )
    expected = session.get_inputs()[0].type
    if "float16" in expected:
        want_dtype = np.float16
    elif "uint8" in expected:
        want_dtype = np.uint8

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        try:
            outputs = session.run(fetch, {input_name: batch.astype(want_dtype, copy=False)})
        except Exception as exc:
            raise CalibrationError(
                f"ONNX Runtime failed on a calibration batch of shape {list(batch.shape)} for input "
                f"{input_name!r}: {str(exc).splitlines()[0]} (does the preprocessing match the model?)"
            ) from exc
        values = dict(zip(fetch, outputs, strict=True))
        values[input_name] = batch
        return values

    return run


def _range_pass(run, batches: BatchSource, range_stride: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Each float tensor's max |x| over every range_stride-th batch (the histograms' ranges)."""
    # The range pass only needs each tensor's max, and only for candidates i = 2048: values
    # above a sampled max land in the last bin, which the KL search folds into the tail for
    # every smaller candidate anyway. So it runs on every range_stride-th batch.
    ranges: dict[str, float] = {}
    sampled = (b for k, b in enumerate(batches) if k % max(1, range_stride) == 0)
    for values in _pipelined(run, sampled):
        for name, value in values.items():
            if value.dtype.kind == "f" and value.size:
                peak = max(float(value.max()), -float(value.min()))  # no |x| temporary
                ranges[name] = max(ranges.get(name, 0.0), peak)
    return ranges


def _histograms(run, batches: BatchSource, ranges: dict[str, float], input_name: str):  # type: ignore[no-untyped-def]
    """|x| histograms of every float tensor over all batches, and the number of images seen."""
    hists: dict[str, AbsHistogram] = {}
    count = 0
    for values in _pipelined(run, batches):
        count += len(values[input_name])
        for name, value in values.items():
            if value.dtype.kind != "f":
                continue  # shape arithmetic that shape inference could not type
            hist = hists.get(name)
            if hist is None:
                hist = hists[name] = AbsHistogram(fixed_range=ranges.get(name) or None)
            try:
                hist.add(value)
            except CalibrationError as exc:
                raise CalibrationError(f"tensor {name!r}: {exc}; check the model and preprocessing") from exc
    return hists, count


def calibrate_onnx(
    onnx_path: str | Path,
    images: BatchSource | Sequence[Path] | str | Path,
    preprocess: PreprocessSpec,
    method: str | CalibrationMethod = CalibrationMethod.ENTROPY,
    *,
    batch_size: int = 8,
    num: int | None = None,
    seed: int = 0,
    percentile: float = 99.99,
    two_pass: bool | None = None,
    range_stride: int = 4,
    fast_decode: bool = False,
    workers: int | None = None,
    tensors: Sequence[str] | None = None,
) -> CalibrationResult:
    """Run the images through ONNX Runtime and return amax per float activation tensor.

    ``two_pass`` (default: on for entropy/percentile) first finds each tensor's max |x| on every
    ``range_stride``-th batch, so the 2048 histogram bins span [0, max] (larger values of other
    batches go to the last bin); off, one pass with doubling ranges (see calibration.ranges).
    Min-max always uses the exact max over all batches.
    ``tensors`` restricts calibration to these names. A fixed batch dimension in the model
    overrides ``batch_size`` (and drops a final partial batch).
    """
    method = CalibrationMethod.parse(method)
    model, removed = runnable_part(_load(onnx_path))
    if removed:
        log.info(
            "calibrating without %d plugin node(s) ONNX Runtime cannot run and what follows them: %s",
            len(removed),
            ", ".join(removed[:5]),
        )
    input_name, names = activation_tensors(model)
    names = _selected(names, tensors, onnx_path)
    fixed = _input_batch(model, input_name)
    batches = as_batches(
        images,
        preprocess,
        fixed or batch_size,
        num=num,
        seed=seed,
        fast_decode=fast_decode,
        workers=workers,
        drop_last=fixed is not None,
    )
    run = _batch_runner(model, names, input_name, preprocess, onnx_path)

    start = time.perf_counter()
    two_pass = method is not CalibrationMethod.MINMAX if two_pass is None else two_pass
    ranges = _range_pass(run, batches, range_stride) if two_pass else {}
    hists, count = _histograms(run, batches, ranges, input_name)
    if count == 0:
        raise CalibrationError("no calibration batches were produced")
    amax = {name: amax_from(hists[name], method, percentile) for name in names if name in hists}
    took = time.perf_counter() - start
    log.info(
        "calibrated %d tensors of %s on %d images (%s) in %.1f s",
        len(amax),
        Path(onnx_path).name,
        count,
        method.value,
        took,
    )
    return CalibrationResult(amax, method, count, input_name, took, hists)
