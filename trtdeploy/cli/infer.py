"""`trtdeploy infer`: run a model on images and write them with their detections drawn."""

from __future__ import annotations

from pathlib import Path

import typer

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, progress, setup_logging, user_errors

ModelArg = typer.Argument(..., help="A TFOD saved_model/ folder, an .onnx (its deploy card next to it) or a "
                          "TensorRT .engine (its sidecar next to it).")
BatchOpt = typer.Option(None, "--batch", "-b", help="Images per run (default: the model's static batch, else 1).")


def infer(
    model: Path = ModelArg,
    images: Path = typer.Option(..., "--images", "-i", help="An image file or a folder of images (recursive)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    threshold: float = typer.Option(0.3, "--threshold", "-t", help="Draw and list detections at or above this "
                                    "score."),
    batch: int = BatchOpt,
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Detect objects in images; write each image with its boxes, labels and scores drawn.

    Writes into OUTPUT: <image>.png (detections drawn), <image>.json (the same detections), and
    one detections.tsv for the run (image, class_id, label, score, x1, y1, x2, y2 in
    original-image pixels). Images are preprocessed as the model's deploy card says (stretch or
    letterbox) and boxes are mapped back to the original images.

    Examples:

      trtdeploy infer model.onnx --images photos/ -o out/

      trtdeploy infer export/saved_model --images photo.jpg -o out/ --threshold 0.5

      trtdeploy infer model_b4_gpu0_fp16.engine --images photos/ -o out/ --batch 4
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.errors import UsageError
        from trtdeploy.inference import infer_images
        from trtdeploy.runners import open_runner

        if batch is not None and batch < 1:
            raise UsageError(f"--batch must be >= 1, got {batch}")
        if not 0.0 <= threshold <= 1.0:
            raise UsageError(f"--threshold must be in 0..1, got {threshold}")
        with progress() as bar:
            task = bar.add_task(f"loading {model.name}", total=None)
            runner = open_runner(model)
            bar.update(task, description=f"infer {runner.name}")
            summary = infer_images(
                runner, images, output, threshold, batch, force,
                on_start=lambda n: bar.update(task, total=n),
                on_batch=lambda n: bar.advance(task, n),
            )
        console.print(
            f"infer: {summary.images} images, {summary.detections} detections (score >= {threshold:g}), "
            f"{summary.images_per_second:.1f} images/s -> {output}/ ({summary.tsv.name})",
            highlight=False, soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
