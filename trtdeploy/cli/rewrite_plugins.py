"""`trtdeploy rewrite-plugins`: a TAO-style ONNX with TensorRT plugin nodes -> the same model
with those nodes as standard ONNX ops (for TensorRT 11 and TensorRT-RTX)."""

from __future__ import annotations

from pathlib import Path

import typer

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, setup_logging, user_errors


def rewrite_plugins(
    model: Path = typer.Argument(..., help="ONNX model with TensorRT plugin nodes (NMS_TRT, BatchedNMS_TRT, ...)."),  # noqa: B008
    output: Path = typer.Option(..., "--output", "-o", help="The rewritten .onnx (its deploy card goes next to it)."),  # noqa: B008
    plugin: list[str] = typer.Option(  # noqa: B008
        None, "--plugin", help="Rewrite only nodes of this plugin op type (repeatable; default: every plugin node)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (never an input)."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Replace TensorRT plugin nodes by standard ONNX ops (for TensorRT 11 and TensorRT-RTX).

    The standard ops write the same output tensors (names, order, shapes; NMS_TRT's keep count
    declared int32, the bytes the plugin writes), so the DeepStream TAO parser and the deploy
    card stay valid. build-engine does this by itself when its backend lacks a plugin. Where
    results can differ: docs/tao_plugins.md.

    Examples:

      trtdeploy rewrite-plugins ssd_resnet18.onnx -o ssd_resnet18.std.onnx

      trtdeploy rewrite-plugins yolov4.onnx -o yolov4.std.onnx --plugin BatchedNMSDynamic_TRT --force

    Then: trtdeploy build-engine ssd_resnet18.std.onnx --backend tensorrt_rtx -p fp16.
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.rewrites.driver import rewrite_file

        result = rewrite_file(model, output, only=plugin or None, force=force)
        ops = sorted({r.plugin for r in result.rewritten})
        card = f" and {result.card}" if result.card else ""
        left = f"; kept {', '.join(result.kept)}" if result.kept else ""
        console.print(
            f"[green]wrote[/] {result.output}{card}: {len(result.rewritten)} plugin node(s) rewritten "
            f"({', '.join(ops)}){left}, {result.seconds:.1f} s",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("rewrite-plugins")(rewrite_plugins)
