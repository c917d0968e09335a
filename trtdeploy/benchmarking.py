"""Time a runner's inference: latency statistics and throughput, in the style of trtexec's
performance summary (min / max / mean / median / percentiles, queries and images per second).

The input is real pixels (the bundled sample photos, preprocessed by the model's deploy card),
not zeros or noise: the NMS stage's work depends on how many boxes pass its score threshold.

Statistics as trtexec computes them (NVIDIA/TensorRT samples/common/sampleReporting.cpp,
commit 052281f: ``findPercentile`` l. 43-56, ``findMedian`` l. 61-75, ``printEpilog``): on the
timings sorted ascending, percentile p is element ``max(n - 1 - int((1 - p/100) * n), 0)`` (no
interpolation); the median is the middle element, or the mean of the two middle ones; throughput
is queries divided by the host wall time of the timed run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trtdeploy.errors import InputError, UsageError


@dataclass
class BenchmarkResult:
    model: str
    backend: str
    batch: int
    iterations: int
    warmup: int
    latency_ms: dict[str, float]  # min, max, mean, p50, p90, p95, p99
    throughput_qps: float  # inferences per second over the timed run
    throughput_images: float  # qps * batch
    total_seconds: float
    options: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lat = self.latency_ms
        return (
            f"Throughput: {self.throughput_qps:.2f} qps ({self.throughput_images:.1f} images/s at batch {self.batch})\n"
            f"Latency: min = {lat['min']:.3f} ms, max = {lat['max']:.3f} ms, mean = {lat['mean']:.3f} ms, "
            f"median = {lat['p50']:.3f} ms, percentile(90%) = {lat['p90']:.3f} ms, "
            f"percentile(95%) = {lat['p95']:.3f} ms, percentile(99%) = {lat['p99']:.3f} ms\n"
            f"Total: {self.iterations} iterations in {self.total_seconds:.3f} s after {self.warmup} warm-up runs"
        )


def percentile(sorted_ms: np.ndarray, p: float) -> float:
    """trtexec's percentile of ascending timings (see the module docstring)."""
    n = len(sorted_ms)
    # in float32 as trtexec's C++ (`float percentile`): 1 - 90/100 is 0.100000024 there, not 0.0999...
    exclude = int((np.float32(1) - np.float32(p) / np.float32(100)) * np.float32(n))
    return float(sorted_ms[max(n - 1 - exclude, 0)])


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.sort(np.asarray(seconds, np.float64) * 1000.0)
    n = len(ms)
    median = float(ms[n // 2]) if n % 2 else float((ms[n // 2 - 1] + ms[n // 2]) / 2)
    return {
        "min": float(ms[0]), "max": float(ms[-1]), "mean": float(ms.mean()), "p50": median,
        **{f"p{q}": percentile(ms, q) for q in (90, 95, 99)},
    }


def time_steps(step: Callable[[], object], iterations: int, warmup: int,
               on_step: Callable[[], None] | None = None) -> tuple[list[float], float]:
    """Run ``step`` ``warmup`` times untimed, then ``iterations`` times timed one by one."""
    for _ in range(warmup):
        step()
    timings = []
    start = time.perf_counter()
    for _ in range(iterations):
        t0 = time.perf_counter()
        step()
        timings.append(time.perf_counter() - t0)
        if on_step is not None:
            on_step()
    return timings, time.perf_counter() - start


def sample_batch(runner: Any, batch: int) -> np.ndarray:
    """``batch`` real photos preprocessed for the runner's model."""
    from trtdeploy.sample_images import sample_photos

    photos = [image for _, image in sample_photos(min(batch, 12))]
    photos = [photos[i % len(photos)] for i in range(batch)]
    tensor, _ = runner.prepare(photos)
    return tensor


def benchmark_runner(
    runner: Any,
    batch: int | None = None,
    iterations: int = 100,
    warmup: int = 10,
    cuda_graph: bool = False,
    no_data_transfers: bool = False,
    on_step: Callable[[], None] | None = None,
) -> BenchmarkResult:
    """Time ``runner.infer`` (or the TensorRT runner's device-side step) on one real batch."""
    if iterations < 1 or warmup < 0:
        raise UsageError(f"need --iterations >= 1 and --warmup >= 0, got {iterations} and {warmup}")
    static = runner.static_batch
    batch = batch or static or 1
    if batch < 1:
        raise UsageError(f"--batch must be >= 1, got {batch}")
    if static is not None and batch != static:
        raise InputError(f"{runner.name} has a static batch of {static}; benchmark it at --batch {static}")
    tensor = sample_batch(runner, batch)
    options = {"cuda_graph": cuda_graph, "no_data_transfers": no_data_transfers}
    if hasattr(runner, "benchmark_step"):
        step = runner.benchmark_step(tensor, cuda_graph=cuda_graph, no_data_transfers=no_data_transfers)
    else:
        if cuda_graph or no_data_transfers:
            raise UsageError("--cuda-graph and --no-data-transfers apply to TensorRT engines only")
        step = lambda: runner.infer(tensor)  # noqa: E731
    timings, total = time_steps(step, iterations, warmup, on_step)
    qps = iterations / total if total > 0 else 0.0
    return BenchmarkResult(
        model=runner.name, backend=getattr(runner, "backend", type(runner).__name__), batch=batch,
        iterations=iterations, warmup=warmup, latency_ms=latency_stats(timings), throughput_qps=qps,
        throughput_images=qps * batch, total_seconds=total, options=options,
    )
