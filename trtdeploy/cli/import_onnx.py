"""`trtdeploy import-onnx`: an AutoML EfficientDet ONNX from the tf2onnx efficientdet tutorial
(`detections` [B,100,7], uint8 input) -> an ONNX in our output contract + deploy card."""

from __future__ import annotations

from pathlib import Path

import typer

from trtdeploy import contracts
from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, setup_logging, user_errors
from trtdeploy.cli.create_onnx import parse_size
from trtdeploy.deepstream.parsers import DEFAULT_DS_PARSER

_DS_PARSER_HELP = (
    f"DeepStream bbox parser variant to shape the outputs for (default with the deepstream layout: "
    f"{DEFAULT_DS_PARSER}): "
    + ", ".join(k for k, c in contracts.ds_contracts().items() if c.reader == "nms" and "efficient" in c.heads)
    + "."
)


def import_onnx(
    model: Path = typer.Argument(..., help="The ONNX converted with tf2onnx's efficientdet tutorial."),  # noqa: B008
    output: Path = typer.Option(..., "--output", "-o", help="The rewritten .onnx (its card is written next to it)."),  # noqa: B008
    labels: Path = typer.Option(None, "--labels", help="Class names, one per line (the ONNX has none)."),  # noqa: B008
    num_classes: int = typer.Option(None, "--num-classes", help="Number of classes, without --labels."),
    input_size: str = typer.Option(
        None, "--input-size",
        help="HxW the engine takes (the network's own size, e.g. 512x512 for efficientdet-d0); needed when the "
        "ONNX leaves the image size open, as the tutorial's does.",
    ),
    output_layout: str = typer.Option(
        None, "--output-layout", help="deepstream (default: tensors a stock DeepStream parser reads) or tfod."
    ),
    ds_parser: str = typer.Option(None, "--ds-parser", help=_DS_PARSER_HELP),
    box_format: str = typer.Option(
        "y1x1y2x2", "--box-format",
        help="Order of detection[1:5]: y1x1y2x2 (the tutorial's), x1y1x2y2 (AutoML TF2 generate_detections), "
        "yxhw (AutoML TF1: y, x, height, width).",
    ),
    class_id_base: int = typer.Option(1, "--class-id-base", help="detection[6] of the first label (AutoML: 1)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (never the input)."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Make the tf2onnx efficientdet tutorial's ONNX DeepStream-ready, without re-exporting.

    Its `detections` rows become tensors a stock DeepStream parser reads, its uint8 input (which
    TensorRT cannot bind) becomes float32 RGB 0-255 at a fixed size, and a deploy card records
    what build-engine and gen-ds-config need.

    Examples:

      trtdeploy import-onnx efficientdet-d0.onnx -o models/d0.onnx --input-size 512x512 --labels coco_labels.txt

      trtdeploy import-onnx d0.onnx -o d0_tfod.onnx --input-size 512x512 --num-classes 90 --output-layout tfod

    Then: trtdeploy build-engine models/d0.onnx -p fp16, trtdeploy gen-ds-config models/d0.deploy.json.
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.import_onnx import ImportOnnxOptions
        from trtdeploy.import_onnx import import_onnx as run

        result = run(ImportOnnxOptions(
            model=model, output=output, labels=labels, num_classes=num_classes, input_size=parse_size(input_size),
            output_layout=output_layout, ds_parser=ds_parser, box_format=box_format, class_id_base=class_id_base,
            force=force,
        ))
        card = result.card
        console.print(
            f"[green]wrote[/] {result.onnx_path} and {result.card_path.name}: input {card.input.name} {card.input.shape} "
            f"float32, {len(card.labels)} labels, outputs {';'.join(card.output.names)} "
            f"({card.output.output_contract.key}), {result.seconds:.1f} s",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("import-onnx")(import_onnx)
