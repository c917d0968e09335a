"""`trtdeploy benchmark`: latency and throughput of a model, like trtexec's summary."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, progress, setup_logging, user_errors
from trtdeploy.cli.infer import BatchOpt, ModelArg


def benchmark(
    model: Path = ModelArg,
    batch: int = BatchOpt,
    iterations: int = typer.Option(100, "--iterations", "-n", help="Timed inferences."),
    warmup: int = typer.Option(10, "--warmup", "-w", help="Untimed inferences first."),
    cuda_graph: bool = typer.Option(False, "--cuda-graph", help="TensorRT: capture the inference in a CUDA graph "
                                    "and replay it (like trtexec --useCudaGraph)."),
    no_data_transfers: bool = typer.Option(False, "--no-data-transfers", help="TensorRT: keep inputs and outputs "
                                           "on the GPU, time only the engine (like trtexec --noDataTransfers)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the result as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --json file."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Time a model's inference: latency percentiles and throughput, like trtexec's summary.

    Runs on a batch of real photos: latency min/max/mean/median/p90/p95/p99
    and throughput. ONNX models run in ONNX Runtime on the CPU (TensorRT NMS plugins through
    trtdeploy's NumPy references, which are part of the time); engines in TensorRT where it is
    installed; saved models in TensorFlow. Preprocessing is not timed.

    Examples:

      trtdeploy benchmark model.onnx

      trtdeploy benchmark raw.onnx --batch 4 --iterations 200 --json bench.json

      trtdeploy benchmark model_b1_gpu0_fp16.engine --cuda-graph --no-data-transfers
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.benchmarking import benchmark_runner
        from trtdeploy.files import check_output, write_text_atomic
        from trtdeploy.runners import open_runner

        if json_out is not None:
            check_output(json_out, force, [model])
        with progress() as bar:
            task = bar.add_task(f"loading {model.name}", total=iterations)
            runner = open_runner(model)
            bar.update(task, description=f"benchmark {runner.name}")
            result = benchmark_runner(runner, batch, iterations, warmup, cuda_graph, no_data_transfers,
                                      on_step=lambda: bar.advance(task))
        typer.echo(f"=== Performance summary: {result.model} on {result.backend} ===")
        typer.echo(result.summary())
        if json_out is not None:
            write_text_atomic(json_out, json.dumps(result.to_dict(), indent=1) + "\n")
        console.print(
            f"benchmark: {result.model} batch {result.batch}: median {result.latency_ms['p50']:.2f} ms, "
            f"{result.throughput_images:.1f} images/s ({result.backend})",
            highlight=False, soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    app.command("benchmark")(benchmark)
