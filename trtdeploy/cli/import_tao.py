"""`trtdeploy import-tao`: a TAO ONNX export (or an ONNX-holding .etlt + its key) + its spec ->
ONNX + deploy card."""

from __future__ import annotations

from pathlib import Path

import typer

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, setup_logging, user_errors
from trtdeploy.errors import UsageError

ARCH_HELP = (
    "TAO architecture: ssd, dssd, retinanet, yolo_v3, yolo_v4, yolo_v4_tiny, faster_rcnn, mask_rcnn, "
    "detectnet_v2, unet, classification, multitask_classification, efficientdet"
)


def import_tao(
    spec: Path = typer.Argument(..., help="TAO experiment spec the model was trained with (protobuf text or YAML)."),  # noqa: B008
    arch: str = typer.Option(..., "--arch", help=ARCH_HELP),
    onnx: Path = typer.Option(None, "--onnx", help="The TAO 5 .onnx export."),  # noqa: B008
    etlt: Path = typer.Option(
        None, "--etlt", help="A TAO .etlt holding an ONNX model (exports before TAO 5), instead of --onnx; needs --key."
    ),  # noqa: B008
    key: str = typer.Option(
        None, "--key", envvar="TRTDEPLOY_TAO_KEY", show_envvar=True,
        help="The .etlt's encryption key ($KEY of tao export). Prefer the environment variable: "
        "a command line is visible to other users. Never written or logged.",
    ),
    keep_decrypted: bool = typer.Option(
        False, "--keep-decrypted",
        help="Also write the decrypted ONNX (mode 0600) at the output name, for build-engine.",
    ),
    decrypt_python: Path = typer.Option(
        None, "--decrypt-python", envvar="TRTDEPLOY_TAO_PYTHON", show_envvar=True,
        help="A Python 3.10/3.12 with nvidia-eff-tao-encryption installed "
        "(default: the first of python3.12, python3.10 on PATH and this Python that has it).",
    ),  # noqa: B008
    output: Path = typer.Option(
        None, "--output", "-o",
        help="Copy the ONNX (same bytes) to this .onnx and write its card next to it "
        "(default: the card goes next to --onnx, which is not changed; for --etlt, next to it).",
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

      TRTDEPLOY_TAO_KEY=nvidia_tlt trtdeploy import-tao frcnn.txt --arch faster_rcnn --etlt frcnn.etlt
      --keep-decrypted -o models/frcnn.onnx

    Then: trtdeploy build-engine models/yolov4.onnx -p fp16, trtdeploy gen-ds-config
    models/yolov4.deploy.json.
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from tao_trt.import_model import import_tao as run
        from tao_trt.import_model import import_tao_etlt

        if (onnx is None) == (etlt is None):
            raise UsageError("pass exactly one of --onnx MODEL.onnx or --etlt MODEL.etlt")
        if etlt is None and (key or keep_decrypted or decrypt_python):
            raise UsageError("--key, --keep-decrypted and --decrypt-python go with --etlt")
        if etlt is not None:
            result = import_tao_etlt(spec, arch, etlt, key or "", output, labels, force, keep_decrypted, decrypt_python)
        else:
            result = run(spec, arch, onnx, output, labels, force)
        card = result.card
        wrote = f"{result.onnx_path} (copied from {onnx}) and " if result.copied else ""
        if result.decrypted:
            wrote = f"{result.onnx_path} (decrypted from {etlt}, mode 0600) and "
        console.print(
            f"[green]wrote[/] {wrote}{result.card_path}: {card.provenance.model_family}, input {card.input.name} "
            f"{card.input.shape} ({card.input.layout}), {len(card.labels)} labels, outputs "
            f"{';'.join(card.output.names)} ({card.output.layout}), {result.seconds:.1f} s",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("import-tao")(import_tao)
