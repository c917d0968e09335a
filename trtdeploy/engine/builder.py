"""build_engine: ONNX (+ deploy card) -> TensorRT engine + sidecar, on whichever TensorRT is installed.

Order of work: read and check everything that can be checked without TensorRT building
(options, ops, profiles, precision plan, output paths); then parse, configure, build, and
only then write the engine and its sidecar atomically. A refusal therefore never leaves a
file behind.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx

from trtdeploy import __version__
from trtdeploy.deploy_card import card_path_for
from trtdeploy.engine import int8, preflight
from trtdeploy.engine.backend import (
    Backend,
    LogRouter,
    ProgressCallback,
    make_progress_monitor,
    make_trt_logger,
    select_backend,
)
from trtdeploy.engine.capabilities import RTX_COMPUTE_CAPABILITIES
from trtdeploy.engine.fp16 import convert_to_fp16, has_qdq
from trtdeploy.engine.machine import GpuInfo, cuda_version_of, probe_gpus
from trtdeploy.engine.naming import default_engine_path, sidecar_path
from trtdeploy.engine.plugin_path import REWRITE_PREFIX, PluginPath, resolve_plugins
from trtdeploy.engine.precision import (
    INT8_CACHE,
    INT8_CALIBRATOR,
    INT8_QDQ_FROM_CALIBRATION,
    PrecisionPlan,
    parse_layer_precisions,
    plan_precision,
)
from trtdeploy.engine.profiles import (
    OnnxInput,
    Profile,
    card_shapes,
    check_card_matches,
    max_batch,
    onnx_inputs,
    plan_profiles,
)
from trtdeploy.engine.sidecar import Sidecar, TensorInfo
from trtdeploy.errors import InputError, TrtDeployError, UsageError
from trtdeploy.files import check_not_input, check_output, check_same_outputs, sha256_file, write_bytes_atomic
from trtdeploy.log import get_logger

if TYPE_CHECKING:
    import tensorrt

log = get_logger("engine")


class BuildError(TrtDeployError):
    """TensorRT could not parse or build the network."""


@dataclass
class BuildOptions:
    """Everything `trtdeploy build-engine` can be told; the CLI fills this, notebooks too."""

    precision: str = "fp16"
    backend: str = "auto"
    batch: int | None = None
    profiles: Sequence[str] = ()
    engine_path: Path | None = None
    force: bool = False
    workspace_mib: int | None = None
    timing_cache: Path | None = None
    opt_level: int | None = None
    gpu_id: int = 0
    dla_core: int | None = None
    gpu_fallback: bool = False
    layer_precisions: Sequence[str] = ()
    plugin_libs: Sequence[Path] = ()
    calib_images: Path | None = None
    calib_cache: Path | None = None
    calib_num: int = 500
    calib_batch: int = 8
    trust_calib_cache: bool = False  # replay --calib-cache even when its sidecar does not match
    compute_capabilities: Sequence[str] = ()  # TensorRT-RTX ahead-of-time targets, e.g. ["8.6"]
    progress: ProgressCallback | None = field(default=None, repr=False)


@dataclass
class BuildResult:
    engine_path: Path
    sidecar_path: Path
    sidecar: Sidecar
    plan: PrecisionPlan
    seconds: float


@dataclass
class _Prepared:
    """The checked plan, before TensorRT builds anything."""

    onnx_path: Path
    model: onnx.ModelProto
    backend: Backend
    card: Any
    inputs: list[OnnxInput]
    plan: PrecisionPlan
    profiles: list[Profile]
    engine_path: Path
    targets: list[str]
    plugin_path: PluginPath = field(default_factory=PluginPath)


def check_options(options: BuildOptions) -> None:
    """Option values no build could accept (UsageError, exit 2), before any file is read."""
    for option, value, low in (
        ("--batch", options.batch, 1),
        ("--workspace", options.workspace_mib, 1),
        ("--opt-level", options.opt_level, 0),
        ("--gpu-id", options.gpu_id, 0),
        ("--dla-core", options.dla_core, 0),
        ("--calib-num", options.calib_num, 1),
        ("--calib-batch", options.calib_batch, 1),
    ):
        if value is not None and value < low:
            raise UsageError(f"{option} {value} is out of range: it must be >= {low}")
    if options.opt_level is not None and options.opt_level > 5:
        raise UsageError(f"--opt-level {options.opt_level} is out of range: TensorRT's levels are 0..5")
    if options.trust_calib_cache and options.calib_cache is None:
        raise UsageError("--trust-calib-cache needs --calib-cache FILE (the cache to use unverified)")
    calib_given = options.calib_images is not None or options.calib_cache is not None
    if calib_given and options.precision not in ("int8", "best"):
        raise UsageError(
            f"--calib-images/--calib-cache are for INT8; --precision is {options.precision}: add --precision int8"
        )


def _check_outputs(onnx_path: Path, options: BuildOptions, engine_path: Path) -> None:
    """The engine, its sidecar and the caches it writes are never one of the inputs."""
    card = card_path_for(onnx_path)
    inputs = [onnx_path, card, *options.plugin_libs]
    for written in (engine_path, sidecar_path(engine_path)):
        check_output(written, options.force, inputs=[*inputs, options.calib_cache, options.timing_cache])
    check_same_outputs([engine_path, sidecar_path(engine_path), options.timing_cache, options.calib_cache])
    for flag, cache in (("--timing-cache", options.timing_cache), ("--calib-cache", options.calib_cache)):
        if cache is not None:
            check_not_input(Path(cache), inputs, what=flag)
            if Path(cache).is_dir():
                raise UsageError(f"{flag} {cache} is a folder; give a file name")


def _check_card_is_for(onnx_path: Path, card: Any, calibrating: bool) -> None:
    """The deploy card next to the ONNX must be the one written for it (its recorded hash): INT8
    calibration would preprocess for another model (refused); otherwise its shapes may be stale."""
    recorded = getattr(card, "onnx_sha256", "") if card is not None else ""
    if not recorded or sha256_file(onnx_path) == recorded:
        return
    message = (
        f"deploy card {card_path_for(onnx_path)} was written for another ONNX (sha256 {recorded[:12]}...) "
        f"than {onnx_path.name}"
    )
    if calibrating:
        raise InputError(f"{message}: calibration would use its preprocessing; re-run create-onnx for this model")
    log.warning("%s; its input shapes may be stale", message)


def _check_calib_cache(prep: _Prepared, options: BuildOptions) -> None:
    """A cache is replayed only when its sidecar says it was made for this model (issue 12 item 7)."""
    # With images (and for the Q/DQ path of TensorRT 11 / RTX) the calibration package reuses a
    # cache only when its sidecar matches and recalibrates otherwise; here: the TensorRT 10 replay.
    if prep.plan.int8_source != INT8_CACHE or options.calib_cache is None:
        return
    cache = Path(options.calib_cache)
    if not cache.is_file():
        return  # refused in prepare() already
    problem = int8.calib_cache_problem(cache, prep.onnx_path, prep.card, prep.backend.caps.version)
    if problem is None:
        log.info("calibration cache %s matches this model (sidecar checked)", cache)
    elif options.trust_calib_cache:
        int8.trusted_cache_warning(cache, problem)
    else:
        raise int8.untrusted_cache_refusal(cache, problem)


def prepare(onnx_path: Path, options: BuildOptions, backend: Backend | None = None) -> _Prepared:
    """Every check that needs no build; raises the refusal with its fix."""
    check_options(options)
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise InputError(f"ONNX file {onnx_path} not found")
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise InputError(f"{onnx_path} is not a readable ONNX model: {exc}") from exc
    backend = backend or select_backend(options.backend)
    caps = backend.caps
    preflight.check_options(
        caps,
        dla_core=options.dla_core,
        gpu_fallback=options.gpu_fallback,
        plugin_libs=[str(p) for p in options.plugin_libs],
        compute_capabilities=options.compute_capabilities,
    )
    targets = _targets(options.compute_capabilities) if caps.ahead_of_time else []
    model, plugin_path = resolve_plugins(model, caps)  # plugins the backend lacks -> standard ops
    preflight.check_graph_ops(model, caps)
    card_shape, card = card_shapes(onnx_path)
    inputs = onnx_inputs(model)
    check_card_matches(card_shape, inputs, card_path_for(onnx_path))
    if options.calib_images is not None and not Path(options.calib_images).is_dir():
        raise InputError(f"--calib-images {options.calib_images} is not a folder")
    plan = plan_precision(
        caps,
        options.precision,
        has_qdq=has_qdq(model),
        calib_images=options.calib_images is not None,
        calib_cache=options.calib_cache is not None,
        layer_precisions=parse_layer_precisions(options.layer_precisions),
    )
    _check_card_is_for(onnx_path, card, calibrating=plan.int8_source in (INT8_CALIBRATOR, INT8_QDQ_FROM_CALIBRATION))
    replay = plan.int8_source in (INT8_CACHE, INT8_QDQ_FROM_CALIBRATION) and options.calib_images is None
    if replay and options.calib_cache is not None and not Path(options.calib_cache).is_file():
        raise InputError(
            f"--calib-cache {options.calib_cache} does not exist and no --calib-images were given to create it"
        )
    profiles = plan_profiles(inputs, options.profiles, options.batch, card_shape)
    engine_path = options.engine_path or default_engine_path(
        onnx_path,
        max_batch(profiles, inputs),
        plan.label,
        gpu_id=options.gpu_id,
        dla_core=options.dla_core,
    )
    _check_outputs(onnx_path, options, Path(engine_path))
    for note in plan.notes:
        log.info("%s", note)
    prep = _Prepared(onnx_path, model, backend, card, inputs, plan, profiles, Path(engine_path), targets, plugin_path)
    _check_calib_cache(prep, options)
    return prep


def _targets(values: Sequence[str]) -> list[str]:
    targets = []
    for value in values:
        text = value.strip().lower().removeprefix("sm")
        if "." not in text and text.isdigit() and len(text) >= 2:
            text = f"{text[:-1]}.{text[-1]}"
        if text not in RTX_COMPUTE_CAPABILITIES:
            raise UsageError(
                f"--compute-capability {value!r}: TensorRT-RTX targets {', '.join(RTX_COMPUTE_CAPABILITIES)}"
            )
        targets.append(text)
    return targets


def build_engine(onnx_path: Path, options: BuildOptions | None = None, backend: Backend | None = None) -> BuildResult:
    """Build a TensorRT engine and its sidecar from ``onnx_path``; returns where they went."""
    options = options or BuildOptions()
    start = time.perf_counter()
    prep = prepare(onnx_path, options, backend)
    with tempfile.TemporaryDirectory(prefix="trtdeploy-build-") as scratch:
        model_bytes, built_sha = _graph_to_parse(prep, options, Path(scratch))
        router = LogRouter()
        engine_bytes, tensors, io_source, gpu, cuda = _run_tensorrt(prep, options, model_bytes, router)
    write_bytes_atomic(prep.engine_path, engine_bytes)
    seconds = time.perf_counter() - start
    sidecar = Sidecar(
        backend=prep.backend.name,
        backend_version=prep.backend.caps.version,
        backend_label=prep.backend.caps.label,
        strongly_typed=prep.backend.caps.strongly_typed,
        cuda_version=cuda,
        gpu=asdict(gpu) if gpu else None,
        target_compute_capabilities=_effective_targets(prep),
        device=f"dla{options.dla_core}" if options.dla_core is not None else f"gpu{options.gpu_id}",
        precision=prep.plan.to_dict(),
        profiles=[{name: rng.to_dict() for name, rng in p.items()} for p in prep.profiles],
        tensors=tensors,
        io_source=io_source,
        onnx_path=str(prep.onnx_path.resolve()),
        onnx_sha256=sha256_file(prep.onnx_path),
        built_onnx_sha256=built_sha,
        engine_file=prep.engine_path.name,
        engine_sha256=sha256_file(prep.engine_path),
        engine_bytes=len(engine_bytes),
        build_seconds=round(seconds, 3),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        tool_version=__version__,
        options=_options_record(options),
        deploy_card=prep.card.to_dict() if prep.card is not None else None,
        plugins=prep.plugin_path.to_dict(),
    )
    side = sidecar_path(prep.engine_path)
    try:
        sidecar.save(side)
    except BaseException:
        prep.engine_path.unlink(missing_ok=True)  # an engine without its sidecar is unusable
        raise
    log.info(
        "built %s (%s, %s, %.1f MiB) in %.1f s",
        prep.engine_path,
        prep.backend.caps.label,
        prep.plan.label,
        len(engine_bytes) / 2**20,
        seconds,
    )
    return BuildResult(prep.engine_path, side, sidecar, prep.plan, seconds)


def _effective_targets(prep: _Prepared) -> list[str]:
    if not prep.backend.caps.ahead_of_time:
        return []
    # TensorRT-RTX's default targets when none are set (TensorRT-RTX docs, CPU-only AOT page).
    return prep.targets or ["8.0", "8.6", "8.9", "12.0"]


def _options_record(options: BuildOptions) -> dict[str, Any]:
    record = {k: v for k, v in asdict(options).items() if k != "progress"}
    return {
        k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, (list, tuple)) else v)
        for k, v in record.items()
    }


def _calibration_request(prep: _Prepared, options: BuildOptions) -> int8.CalibrationRequest:
    return int8.CalibrationRequest(
        onnx_path=prep.onnx_path,
        images=Path(options.calib_images) if options.calib_images is not None else None,
        cache=Path(options.calib_cache) if options.calib_cache is not None else None,
        num_images=options.calib_num,
        batch_size=options.calib_batch,
        card=prep.card,
        trust_cache=options.trust_calib_cache,
    )


def _graph_to_parse(prep: _Prepared, options: BuildOptions, scratch: Path) -> tuple[bytes, str]:
    """The ONNX bytes TensorRT parses: as given, FP16-converted, or Q/DQ from calibration."""
    plan = prep.plan
    if plan.int8_source == INT8_QDQ_FROM_CALIBRATION:
        qdq_path = int8.qdq_onnx_from_calibration(
            _calibration_request(prep, options),
            output=scratch / "model.qdq.onnx",
            backend_label=prep.backend.caps.label,
        )
        if prep.plugin_path.rewritten:  # calibrated on the plugin graph: rewrite the Q/DQ graph too
            from trtdeploy.rewrites.driver import rewrite_plugins

            rewritten, _ = rewrite_plugins(onnx.load(str(qdq_path)), only=prep.plugin_path.rewritten_ops)
            qdq_path.write_bytes(rewritten.SerializeToString())
        return qdq_path.read_bytes(), sha256_file(qdq_path)
    if plan.convert_fp16:
        keep = [name for name, prec in plan.layer_precisions.items() if prec == "fp32"]
        if prep.plugin_path.rewritten:  # a rewritten plugin computes in float32, as the plugin does
            keep += [n.name for n in prep.model.graph.node if n.name.startswith(REWRITE_PREFIX)]
        converted, report = convert_to_fp16(prep.model, keep_nodes=keep)
        log.info(
            "FP16 conversion: %d nodes to float16, %d kept float32, %d casts added",
            report.converted_nodes,
            len(report.kept_nodes),
            report.casts_added,
        )
        data = converted.SerializeToString()
        path = scratch / "model.fp16.onnx"
        path.write_bytes(data)
        return data, sha256_file(path)
    if prep.plugin_path.rewritten:
        path = scratch / "model.rewritten.onnx"
        path.write_bytes(prep.model.SerializeToString())
        return path.read_bytes(), sha256_file(path)
    return prep.onnx_path.read_bytes(), sha256_file(prep.onnx_path)


_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "UINT8": "uint8",
    "FP8": "float8",
    "INT4": "int4",
    "FP4": "float4",
}


def dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", str(dtype).rsplit(".", 1)[-1])
    return _DTYPES.get(name, name.lower())


def _parse(
    backend: Backend,
    network: tensorrt.INetworkDefinition,
    logger: tensorrt.ILogger,
    model_bytes: bytes,
    onnx_path: Path,
) -> tensorrt.OnnxParser:
    parser: tensorrt.OnnxParser = backend.module.OnnxParser(network, logger)
    if parser.parse(model_bytes, str(onnx_path)):
        return parser
    problems = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        where = error.node_name() or (f"node #{error.node()}" if error.node() >= 0 else "graph")
        problems.append(f"{where} ({error.node_operator() or '-'}): {error.desc()}")
    raise BuildError(
        f"{backend.caps.label} could not parse {onnx_path.name} ({len(problems)} error(s)): " + "; ".join(problems)
    )


def _run_tensorrt(
    prep: _Prepared, options: BuildOptions, model_bytes: bytes, router: LogRouter
) -> tuple[bytes, list[TensorInfo], str, GpuInfo | None, str | None]:
    backend = prep.backend
    trt = backend.module
    caps = backend.caps
    logger = make_trt_logger(backend, router)
    builder: tensorrt.Builder = trt.Builder(logger)
    preflight.check_dla_available(caps, options.dla_core, builder.num_DLA_cores if caps.dla else 0)
    for lib in options.plugin_libs:
        if not Path(lib).is_file():
            raise InputError(f"--plugin-lib {lib} not found")
        builder.get_plugin_registry().load_library(str(lib))
    if caps.plugins and hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")
    network_flags = 0
    strongly_typed_flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if caps.strongly_typed and strongly_typed_flag is not None:
        # Implied on TensorRT 11 / RTX; said explicitly so the types in the ONNX are obeyed.
        network_flags |= 1 << int(strongly_typed_flag)
    network: tensorrt.INetworkDefinition = builder.create_network(network_flags)
    _parse(backend, network, logger, model_bytes, prep.onnx_path)
    config: tensorrt.IBuilderConfig = builder.create_builder_config()
    _configure(prep, options, builder, network, config)

    _driver, gpus = probe_gpus()
    gpu = next((g for g in gpus if g.index == options.gpu_id), None)
    timing_cache = _load_timing_cache(prep, options, config)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = "; ".join(router.errors[-5:]) or "no error message from TensorRT (re-run with -v)"
        raise BuildError(f"{caps.label} failed to build {prep.onnx_path.name}: {detail}")
    engine_bytes = bytes(memoryview(serialized))
    if timing_cache is not None and options.timing_cache is not None:
        write_bytes_atomic(Path(options.timing_cache), bytes(memoryview(timing_cache.serialize())))
    tensors, source = _engine_io(backend, logger, engine_bytes, network, gpu is not None)
    return engine_bytes, tensors, source, gpu, cuda_version_of(trt)


def _configure(
    prep: _Prepared,
    options: BuildOptions,
    builder: tensorrt.Builder,
    network: tensorrt.INetworkDefinition,
    config: tensorrt.IBuilderConfig,
) -> None:
    trt = prep.backend.module
    caps = prep.backend.caps
    if options.workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mib) * 2**20)
    if options.opt_level is not None:
        if not 0 <= options.opt_level <= 5:
            raise UsageError(f"--opt-level must be 0..5, got {options.opt_level}")
        config.builder_optimization_level = options.opt_level
    for flag in prep.plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if prep.plan.layer_precisions and caps.layer_precision:
        _set_layer_precisions(prep, network)
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        if options.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    for profile_spec in prep.profiles:
        profile = builder.create_optimization_profile()
        for name, rng in profile_spec.items():
            profile.set_shape(name, rng.min, rng.opt, rng.max)
        config.add_optimization_profile(profile)
    if prep.plan.int8_source in (INT8_CALIBRATOR, INT8_CACHE):
        config.int8_calibrator = int8.make_calibrator(prep.backend, _calibration_request(prep, options))
        if prep.profiles:
            config.set_calibration_profile(_first_profile(builder, prep))
    if caps.ahead_of_time and prep.targets:
        _set_compute_capabilities(prep.backend, config, prep.targets)
    if options.progress is not None:
        monitor = make_progress_monitor(prep.backend, options.progress)
        if monitor is not None:
            config.progress_monitor = monitor


def _first_profile(builder: tensorrt.Builder, prep: _Prepared) -> tensorrt.IOptimizationProfile:
    profile = builder.create_optimization_profile()
    for name, rng in prep.profiles[0].items():
        # Calibrate at the optimum shape (TensorRT 10 calibrates one shape).
        profile.set_shape(name, rng.opt, rng.opt, rng.opt)
    return profile


def _set_layer_precisions(prep: _Prepared, network: tensorrt.INetworkDefinition) -> None:
    """Weak typing: pin the named layers' precision (the ONNX parser names layers after nodes)."""
    trt = prep.backend.module
    wanted = dict(prep.plan.layer_precisions)
    types = {"fp32": trt.float32, "fp16": trt.float16}
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.name in wanted:
            layer.precision = types[wanted[layer.name]]
            for out in range(layer.num_outputs):
                layer.set_output_type(out, types[wanted[layer.name]])
            del wanted[layer.name]
    if wanted:
        raise UsageError(f"--layer-precision names layers not in the TensorRT network: {sorted(wanted)}")


def _set_compute_capabilities(backend: Backend, config: Any, targets: Sequence[str]) -> None:
    """TensorRT-RTX only (not in TensorRT 10/11's API, hence untyped)."""
    enum = backend.module.ComputeCapability
    config.num_compute_capabilities = len(targets)
    for slot, target in enumerate(targets):
        config.set_compute_capability(getattr(enum, "SM" + target.replace(".", "")), slot)


def _load_timing_cache(
    prep: _Prepared, options: BuildOptions, config: tensorrt.IBuilderConfig
) -> tensorrt.ITimingCache | None:
    if options.timing_cache is None:
        return None
    if not prep.backend.caps.timing_cache:
        log.warning(
            "--timing-cache ignored: %s builds without one (it would force a GPU query)",
            prep.backend.caps.label,
        )
        return None
    path = Path(options.timing_cache)
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s does not match this TensorRT/GPU; starting a new one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=True)
    return cache


def _engine_io(
    backend: Backend,
    logger: tensorrt.ILogger,
    engine_bytes: bytes,
    network: tensorrt.INetworkDefinition,
    have_gpu: bool,
) -> tuple[list[TensorInfo], str]:
    """I/O as the deserialized engine reports it; without a GPU (TensorRT-RTX ahead-of-time
    builds on a CPU) the engine cannot be deserialized, so the network definition is used."""
    trt = backend.module
    if have_gpu:
        runtime: tensorrt.Runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(engine_bytes)
        if engine is not None:
            tensors = []
            for index in range(engine.num_io_tensors):
                name = engine.get_tensor_name(index)
                mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
                tensors.append(
                    TensorInfo(
                        name,
                        dtype_name(engine.get_tensor_dtype(name)),
                        [int(d) for d in engine.get_tensor_shape(name)],
                        mode,
                    )
                )
            return tensors, "engine"
        log.warning("could not deserialize the new engine on this GPU; recording I/O from the network")
    tensors = []
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        tensors.append(TensorInfo(tensor.name, dtype_name(tensor.dtype), [int(d) for d in tensor.shape], "input"))
    for index in range(network.num_outputs):
        tensor = network.get_output(index)
        tensors.append(TensorInfo(tensor.name, dtype_name(tensor.dtype), [int(d) for d in tensor.shape], "output"))
    return tensors, "network"
