"""The `trtdeploy` command. Each command group lives in its own module and registers itself;
heavy imports happen inside the commands so `--help` is instant."""

from __future__ import annotations

import typer

from trtdeploy import __version__
from trtdeploy.cli import (
    benchmark,
    build_engine,
    calib,
    compare,
    create_onnx,
    ds_config,
    ds_run,
    evaluate,
    import_onnx,
    import_tao,
    infer,
    rewrite_plugins,
    verify,
)
from trtdeploy.cli.common import run_app

app = typer.Typer(
    name="trtdeploy",
    help="Trained detectors (TF2 Object Detection API, AutoML EfficientDet, TAO) to TensorRT "
    "engines and DeepStream configs.\n\n"
    "Pipeline: create-onnx -> verify/infer/evaluate/compare/benchmark -> build-engine -> gen-ds-config -> ds-run. Run 'trtdeploy COMMAND --help' "
    "for examples.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trtdeploy {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


# In pipeline order: what --help lists.
for module in (create_onnx, import_onnx, import_tao, rewrite_plugins, verify, infer, evaluate, compare, benchmark, build_engine, calib, ds_config, ds_run):
    module.register(app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
