"""The `trtdeploy` command. Each command group lives in its own module and registers itself;
heavy imports happen inside the commands so `--help` is instant."""

from __future__ import annotations

import inspect
import re

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


_ITEM = re.compile(r"^([-*] |\d+[.)] )")


def unwrap(text: str) -> str:
    """A docstring as rich should wrap it: the lines of each prose paragraph (and of each list
    item) joined, so the terminal's width decides the breaks, not the 100 columns of our source.
    Indented paragraphs (examples, tables) stay line for line."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines = paragraph.split("\n")
        if any(line.startswith((" ", "\t")) for line in lines):
            paragraphs.append(paragraph)
            continue
        items: list[str] = []
        for line in lines:
            if items and not _ITEM.match(line):
                items[-1] += " " + line.strip()
            else:
                items.append(line.strip())
        paragraphs.append("\n".join(items))
    return "\n\n".join(paragraphs)


def _unwrap_help(typer_app: typer.Typer) -> None:
    for command in typer_app.registered_commands:
        text = command.help or (inspect.getdoc(command.callback) if command.callback else None)
        if text:
            command.help = unwrap(text)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _unwrap_help(group.typer_instance)


# In pipeline order: what --help lists.
for module in (
    create_onnx,
    import_onnx,
    import_tao,
    rewrite_plugins,
    verify,
    infer,
    evaluate,
    compare,
    benchmark,
    build_engine,
    calib,
    ds_config,
    ds_run,
):
    module.register(app)
_unwrap_help(app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
