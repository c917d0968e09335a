"""`trtdeploy import-tao`: a TAO ONNX export + its spec -> ONNX + deploy card."""

from __future__ import annotations

from pathlib import Path

import typer

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, setup_logging, user_errors

ARCH_HELP = (
    "TAO architecture: ssd, dssd, retinanet, yolo_v3, yolo_v4, yolo_v4_tiny, faster_rcnn, mask_rcnn, "
    "detectnet_v2, unet, classification, multitask_classification, efficientdet"
)


def import_tao(
    spec: Path = typer.Argument(..., help="TAO experiment spec the model was trained with (protobuf text or YAML)."),  # noqa: B008
    arch: str = typer.Option(..., "--arch", help=ARCH_HELP),
    onnx: Path = typer.Option(..., "--onnx", help="The TAO 5 .onnx export."),  # noqa: B008
    output: Path = typer.Option(
        None, "--output", "-o",
        help="Copy the ONNX (same bytes) to this .onnx and write its card next to it "
        "(default: the card goes next to --onnx, which is not changed).",
    ),  # noqa: B008
    labels: Path = typer.Option(
        None, "--labels", help="Class names when the spec has none (mask_rcnn, efficientdet, classification)."
    ),  # noqa: B008
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (never an input)."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Write the deploy card of a TAO model, so build-engine, calibration and gen-ds-config
    read its facts (input, preprocessing, labels, outputs) like those of a converted model.

    Examples:

      trtdeploy import-tao ssd_train.txt --arch ssd --onnx ssd.onnx

      trtdeploy import-tao yolo_v4.txt --arch yolo_v4 --onnx export/yolov4.onnx -o models/yolov4.onnx

      trtdeploy import-tao spec.yaml --arch efficientdet --onnx d0.onnx --labels labels.yaml --force

    Then: trtdeploy build-engine models/yolov4.onnx -p fp16, trtdeploy gen-ds-config
    models/yolov4.deploy.json.
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from tao_trt.import_model import import_tao as run

        result = run(spec, arch, onnx, output, labels, force)
        card = result.card
        wrote = f"{result.onnx_path} (copied from {onnx}) and " if result.copied else ""
        console.print(
            f"[green]wrote[/] {wrote}{result.card_path}: {card.provenance.model_family}, input {card.input.name} "
            f"{card.input.shape} ({card.input.layout}), {len(card.labels)} labels, outputs "
            f"{';'.join(card.output.names)} ({card.output.layout}), {result.seconds:.1f} s",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("import-tao")(import_tao)
