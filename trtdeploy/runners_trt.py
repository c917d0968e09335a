"""The TensorRT runner (TensorRT 10/11, or TensorRT-RTX), built on Polygraphy's ``TrtRunner``.

Polygraphy is NVIDIA's own test harness, released with and run against every TensorRT
version: its runner handles the 10/11 name-based I/O API (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``), data-dependent output shapes (the NMS layer)
through an output allocator, and device buffers. Read in polygraphy 0.53.6 (the version in
this project's venv): backend/trt/runner.py ``TrtRunner.__init__`` (l. 179: engine or context,
optimization profile, allocation strategy), ``activate_impl`` (l. 231; its ``self.stream`` is a
``cuda.Stream``, l. 264), ``infer_impl(feed_dict, copy_outputs_to_host=True)`` (l. 600; inputs
already on the device are not copied, outputs stay on it with ``copy_outputs_to_host=False``),
``execute_async_v3`` on its stream (l. 507); cuda/cuda.py ``wrapper().handle`` is the ctypes
handle of libcudart (l. 123-170); config.py l. 61 reads ``POLYGRAPHY_USE_TENSORRT_RTX``. Binding code of our own could not be run on
this CPU-only machine; Polygraphy's is exercised by NVIDIA. For TensorRT-RTX engines Polygraphy
is switched to ``tensorrt_rtx`` with ``POLYGRAPHY_USE_TENSORRT_RTX=1`` before its first import.

NOT RUN HERE: this machine has no GPU, so no engine can be deserialized; the module is
type-checked against tensorrt-stubs (tests/inference/test_runners_trt.py) and its tests are
marked ``trt``/``gpu``.

The engine's sidecar says which backend built it and carries the deploy card; an engine the
sidecar rules say is not usable here (other GPU, TensorRT or CUDA version) is refused with the
reasons.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trtdeploy.deploy_card import DeployCard, card_path_for
from trtdeploy.errors import InputError, MissingDependencyError, UsageError
from trtdeploy.runners import CardRunner

if TYPE_CHECKING:
    import tensorrt

# enum cudaStreamCaptureMode of the CUDA runtime API (driver_types.h): Global 0, ThreadLocal 1, Relaxed 2
CAPTURE_MODE_THREAD_LOCAL = 1


def engine_card(engine_path: Path, sidecar_card: dict[str, Any] | None, onnx_path: str) -> DeployCard:
    """The deploy card recorded in the sidecar, else the one next to the ONNX it was built from."""
    if sidecar_card:
        return DeployCard.from_dict(sidecar_card, source=f"{engine_path.name} sidecar")
    card_path = card_path_for(Path(onnx_path)) if onnx_path else None
    if card_path is None or not card_path.is_file():
        raise InputError(f"{engine_path.name}: its sidecar has no deploy card and none is next to the ONNX "
                         f"{onnx_path or '(unknown)'}; rebuild the engine with build-engine")
    return DeployCard.load(card_path)


def _polygraphy_trt(backend_name: str) -> Any:
    """polygraphy.backend.trt, pointed at the module that built the engine."""
    if backend_name == "tensorrt_rtx":
        os.environ.setdefault("POLYGRAPHY_USE_TENSORRT_RTX", "1")
    try:
        from polygraphy.backend import trt as poly_trt  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("the TensorRT runner needs Polygraphy: pip install polygraphy") from exc
    return poly_trt


class TensorRtRunner(CardRunner):
    """A serialized engine + sidecar, run through Polygraphy's TrtRunner on the GPU."""

    def __init__(self, engine_path: Path) -> None:
        from trtdeploy.engine.backend import LogRouter, make_trt_logger, select_backend
        from trtdeploy.engine.machine import current_machine
        from trtdeploy.engine.sidecar import check_usable, load_sidecar

        engine_path = Path(engine_path)
        sidecar = load_sidecar(engine_path)
        verdict = check_usable(sidecar, current_machine(), engine_path)
        if not verdict.usable:
            raise InputError(f"engine {engine_path.name} is not usable here: {'; '.join(verdict.reasons)}")
        self._card = engine_card(engine_path, sidecar.deploy_card, sidecar.onnx_path)
        self.name = engine_path.name
        backend = select_backend(sidecar.backend)
        self.backend = f"{backend.name} {sidecar.backend_version} (GPU)"
        trt: Any = backend.module
        poly_trt = _polygraphy_trt(backend.name)
        router = LogRouter()  # TensorRT's log goes through ours; its errors end up in our message
        self._logger = make_trt_logger(backend, router)  # kept alive as long as the runtime
        runtime = trt.Runtime(self._logger)
        engine: tensorrt.ICudaEngine | None = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if engine is None:
            detail = f": {router.errors[-1]}" if router.errors else ""
            raise InputError(f"TensorRT could not deserialize {engine_path.name}{detail}; rebuild it with build-engine")
        self._engine = engine
        self.input_name = next(
            engine.get_tensor_name(i) for i in range(engine.num_io_tensors)
            if engine.get_tensor_mode(engine.get_tensor_name(i)) == trt.TensorIOMode.INPUT
        )
        self._runner = poly_trt.TrtRunner(engine, name=self.name)
        self._runner.activate()

    @property
    def static_batch(self) -> int | None:
        dims = list(self._engine.get_tensor_shape(self.input_name))
        return None if dims[0] == -1 else int(dims[0])

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._runner.infer({self.input_name: np.ascontiguousarray(batch)})
        return {name: np.asarray(value) for name, value in outputs.items()}

    def close(self) -> None:
        self._runner.deactivate()

    def benchmark_step(self, batch: np.ndarray, cuda_graph: bool = False,
                       no_data_transfers: bool = False) -> Callable[[], None]:
        """A callable doing one timed inference.

        ``no_data_transfers``: the input is copied to the GPU once and outputs stay there
        (Polygraphy ``copy_outputs_to_host=False``), so only the engine is timed.
        ``cuda_graph``: the enqueue is captured once into a CUDA graph and replayed (engines
        whose outputs have data-dependent shapes, e.g. the NMS layer, cannot be captured);
        without ``no_data_transfers`` each replay also copies the input from the host.
        """
        from polygraphy import cuda  # type: ignore[import-untyped]

        device_input = cuda.DeviceArray(shape=batch.shape, dtype=batch.dtype)
        device_input.copy_from(np.ascontiguousarray(batch))
        feed = {self.input_name: device_input if no_data_transfers else np.ascontiguousarray(batch)}
        # one plain run sets shapes and addresses (and the allocator's output buffers)
        self._runner.infer(feed, copy_outputs_to_host=not no_data_transfers)
        if not cuda_graph:
            return lambda: self._runner.infer(feed, copy_outputs_to_host=not no_data_transfers) and None
        return self._graph_step(cuda, batch, device_input, no_data_transfers)

    def _graph_step(self, cuda: Any, batch: np.ndarray, device_input: Any,
                    no_data_transfers: bool) -> Callable[[], None]:
        context: tensorrt.IExecutionContext = self._runner.context
        stream = self._runner.stream
        engine = self._engine
        for i in range(engine.num_io_tensors):
            if -1 in list(context.get_tensor_shape(engine.get_tensor_name(i))):
                raise UsageError(f"{self.name} has outputs with data-dependent shapes (the NMS layer); "
                                 "they cannot be captured in a CUDA graph: run without --cuda-graph")
        lib = cuda.wrapper().handle
        if not context.set_tensor_address(self.input_name, device_input.ptr):
            raise InputError(f"could not bind the input {self.input_name} for CUDA graph capture")
        graph, graph_exec = ctypes.c_void_p(), ctypes.c_void_p()
        ptr = ctypes.c_void_p(stream.ptr)
        cuda.wrapper().check(lib.cudaStreamBeginCapture(ptr, ctypes.c_int(CAPTURE_MODE_THREAD_LOCAL)))
        context.execute_async_v3(stream.ptr)
        cuda.wrapper().check(lib.cudaStreamEndCapture(ptr, ctypes.byref(graph)))
        # cudaGraphInstantiate's signature changed in CUDA 12 (5 arguments before); the WithFlags
        # form (cudaGraphExec_t*, cudaGraph_t, unsigned long long) is the same in 11.4+ and 12.x
        cuda.wrapper().check(lib.cudaGraphInstantiateWithFlags(ctypes.byref(graph_exec), graph, ctypes.c_ulonglong(0)))
        host = np.ascontiguousarray(batch)

        def step() -> None:
            if not no_data_transfers:
                device_input.copy_from(host, stream=stream)
            cuda.wrapper().check(lib.cudaGraphLaunch(graph_exec, ptr))
            stream.synchronize()

        return step
