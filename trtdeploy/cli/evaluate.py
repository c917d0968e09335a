"""`trtdeploy evaluate`: COCO box mAP of a model on an annotated image set."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, progress, setup_logging, user_errors
from trtdeploy.cli.infer import BatchOpt, ModelArg


def evaluate(
    model: Path = ModelArg,
    images: Path = typer.Option(..., "--images", "-i", help="Folder holding the annotated images."),
    annotations: Path = typer.Option(..., "--annotations", "-a", help="COCO instances JSON (images' file_name "
                                     "relative to --images)."),
    max_images: int = typer.Option(None, "--max-images", "-n", help="Evaluate the first N annotated images "
                                   "(by image id)."),
    batch: int = BatchOpt,
    json_out: Path = typer.Option(None, "--json", help="Also write the numbers to this JSON file."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --json file."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """COCO box mAP (the 12 standard numbers, pycocotools) of a saved model, ONNX or engine.

    Model classes map to annotation categories by name (the deploy card's labels, or the label
    map next to a saved model). Every detection the model emits counts, i.e. down to its own NMS
    score threshold (printed): a model converted with a high --score-threshold loses the
    low-score end of each precision/recall curve and scores lower, so compare models converted
    at the same, low threshold.

    Examples:

      trtdeploy evaluate model.onnx --images val/ --annotations val/instances_val.json

      trtdeploy evaluate export/saved_model --images val/ --annotations val/instances_val.json --json tf.json

      trtdeploy evaluate model.onnx -i val2017/ -a instances_val2017.json --max-images 500 --batch 8
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.errors import UsageError
        from trtdeploy.evaluation import METRIC_TITLES, METRICS, evaluate_runner, load_coco
        from trtdeploy.files import check_output, write_text_atomic
        from trtdeploy.runners import open_runner

        if batch is not None and batch < 1:
            raise UsageError(f"--batch must be >= 1, got {batch}")
        if max_images is not None and max_images < 1:
            raise UsageError(f"--max-images must be >= 1, got {max_images}")
        coco_set = load_coco(annotations, images, max_images)
        if json_out is not None:
            check_output(json_out, force, [annotations, model, *coco_set.files])
        with progress() as bar:
            task = bar.add_task(f"loading {model.name}", total=len(coco_set.files))
            runner = open_runner(model)
            bar.update(task, description=f"evaluate {runner.name}")
            result = evaluate_runner(runner, coco_set, batch, on_batch=lambda n: bar.advance(task, n))
        for name in METRICS:
            typer.echo(f" {METRIC_TITLES[name]:<48} = {result[name]:.3f}")
        if json_out is not None:
            write_text_atomic(json_out, json.dumps(result, indent=1) + "\n")
        console.print(
            f"evaluate: {runner.name} mAP@[.5:.95] {result['AP']:.4f}, mAP@.5 {result['AP50']:.4f} on "
            f"{result['images']} images ({result['detections']} detections at score >= "
            f"{result['score_threshold']:g}), {result['images_per_second']:.1f} images/s",
            highlight=False, soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
