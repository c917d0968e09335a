"""`trtdeploy build-engine` and `trtdeploy inspect`: thin wrappers over trtdeploy.engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, progress, setup_logging, user_errors
from trtdeploy.errors import InputError


def build_engine_command(
    onnx: Annotated[
        Path,
        typer.Argument(
            help="The ONNX model (its deploy card <model>.deploy.json is read if present)."
        ),
    ],
    precision: Annotated[
        str, typer.Option("--precision", "-p", help="fp32 | fp16 | int8 | best.")
    ] = "fp16",
    backend: Annotated[
        str,
        typer.Option("--backend", help="auto | tensorrt | tensorrt_rtx (auto prefers tensorrt)."),
    ] = "auto",
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            "-b",
            help="Max batch: dynamic batch 1..N (opt N), or must equal a static batch.",
        ),
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            help="NAME:MINxCxHxW:OPTx..:MAXx.. (repeatable; repeats of one input make more profiles).",
        ),
    ] = None,
    engine: Annotated[
        Path | None,
        typer.Option(
            "--engine",
            "-o",
            help="Engine path (default: DeepStream's <model file>_b<B>_gpu<i>_<precision>.engine next to the ONNX).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite an existing engine and sidecar.")
    ] = False,
    workspace: Annotated[
        int | None, typer.Option("--workspace", help="Workspace memory pool limit in MiB.")
    ] = None,
    timing_cache: Annotated[
        Path | None,
        typer.Option(
            "--timing-cache",
            help="Timing cache file, loaded if present and saved after the build (TensorRT 10/11).",
        ),
    ] = None,
    opt_level: Annotated[
        int | None, typer.Option("--opt-level", help="Builder optimization level 0..5.")
    ] = None,
    gpu_id: Annotated[int, typer.Option("--gpu-id", help="GPU index (engine name gpu<i>).")] = 0,
    dla_core: Annotated[
        int | None,
        typer.Option("--dla-core", help="Build for this DLA core (Jetson, TensorRT 10)."),
    ] = None,
    gpu_fallback: Annotated[
        bool, typer.Option("--gpu-fallback", help="Let layers DLA cannot run fall back to the GPU.")
    ] = False,
    layer_precision: Annotated[
        list[str] | None,
        typer.Option(
            "--layer-precision",
            help="NAME=fp32|fp16 (repeatable). TensorRT 10: layer constraint; 11/RTX: NAME=fp32 keeps that ONNX node float32 in the FP16 conversion.",
        ),
    ] = None,
    plugin_lib: Annotated[
        list[Path] | None,
        typer.Option(
            "--plugin-lib", help="Plugin library to load (repeatable; not on TensorRT-RTX)."
        ),
    ] = None,
    calib_images: Annotated[
        Path | None, typer.Option("--calib-images", help="Folder of calibration images (INT8).")
    ] = None,
    calib_cache: Annotated[
        Path | None,
        typer.Option(
            "--calib-cache",
            help="Calibration cache: reused only if its sidecar matches this model, preprocessing, "
            "algorithm and TensorRT version; written after calibrating.",
        ),
    ] = None,
    trust_calib_cache: Annotated[
        bool,
        typer.Option(
            "--trust-calib-cache",
            help="Use --calib-cache even when its sidecar is missing or does not match (says what is unverified).",
        ),
    ] = False,
    calib_num: Annotated[
        int, typer.Option("--calib-num", help="Number of calibration images.")
    ] = 500,
    calib_batch: Annotated[int, typer.Option("--calib-batch", help="Calibration batch size.")] = 8,
    compute_capability: Annotated[
        list[str] | None,
        typer.Option(
            "--compute-capability",
            help="TensorRT-RTX target, e.g. 8.6 (repeatable; default 8.0, 8.6, 8.9, 12.0).",
        ),
    ] = None,
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Build a TensorRT engine (TensorRT 10, 11 or TensorRT-RTX) and its <engine>.json sidecar.

    \b
    Examples:
      trtdeploy build-engine model.onnx                       # FP16, batch from the deploy card
      trtdeploy build-engine model.onnx --precision fp32 --batch 4
      trtdeploy build-engine model.onnx --profile input:1x3x300x300:4x3x300x300:8x3x300x300
      trtdeploy build-engine model.onnx -p int8 --calib-images imgs/ --calib-cache model.cache
      trtdeploy build-engine model.onnx -p int8 --calib-cache cal.bin --trust-calib-cache   # no sidecar
      trtdeploy build-engine model.onnx --backend tensorrt_rtx --compute-capability 8.6
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.engine import BuildOptions, build_engine

        options = BuildOptions(
            precision=precision,
            backend=backend,
            batch=batch,
            profiles=profile or [],
            engine_path=engine,
            force=force,
            workspace_mib=workspace,
            timing_cache=timing_cache,
            opt_level=opt_level,
            gpu_id=gpu_id,
            dla_core=dla_core,
            gpu_fallback=gpu_fallback,
            layer_precisions=layer_precision or [],
            plugin_libs=plugin_lib or [],
            calib_images=calib_images,
            calib_cache=calib_cache,
            calib_num=calib_num,
            calib_batch=calib_batch,
            trust_calib_cache=trust_calib_cache,
            compute_capabilities=compute_capability or [],
        )
        with progress() as bar:
            tasks: dict[str, int] = {}

            def on_progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=max(total, 1))
                bar.update(tasks[phase], completed=done)

            options.progress = on_progress
            result = build_engine(onnx, options)
        console.print(
            f"[green]engine[/] {result.engine_path}  [dim]sidecar {result.sidecar_path.name}[/]"
        )


def inspect_command(
    engine: Annotated[
        Path, typer.Argument(help="An engine built by trtdeploy (reads <engine>.json).")
    ],
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Show what an engine is and whether it is usable on this machine (exit 1 if not).

    \b
    Examples:
      trtdeploy inspect model.onnx_b4_gpu0_fp16.engine
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from rich.table import Table

        from trtdeploy.engine.inspect import inspect_engine, report_rows

        report = inspect_engine(engine)
        table = Table(title=str(engine), show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for key, value in report_rows(report):
            table.add_row(key, value)
        out = typer.get_text_stream("stdout")
        from rich.console import Console

        Console(file=out, soft_wrap=True).print(table)
        verdict = report.verdict
        colour = "green" if verdict.usable else ("yellow" if verdict.status == "unknown" else "red")
        Console(file=out, soft_wrap=True).print(f"[bold {colour}]{verdict.status} here[/]")
        for reason in verdict.reasons:
            Console(file=out, soft_wrap=True).print(f"  - {reason}", highlight=False)
        if not verdict.usable:
            first = verdict.reasons[0] if verdict.reasons else "see above"
            raise InputError(f"{engine} is {verdict.status} here: {first}")


def register(app: typer.Typer) -> None:
    """Add `build-engine` and `inspect` to the app."""
    app.command("build-engine")(build_engine_command)
    app.command("inspect")(inspect_command)
