"""`trtdeploy compare`: what FP16, INT8 or an engine changes, against a reference model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, progress, setup_logging, user_errors
from trtdeploy.cli.infer import BatchOpt


def compare(
    models: list[Path] = typer.Argument(..., help="Two or more models (saved_model/ folder, .onnx with its deploy "
                                        "card, .engine with its sidecar); each is compared with the FIRST."),
    images: Path = typer.Option(..., "--images", "-i", help="Image folder (or file)."),
    annotations: Path = typer.Option(None, "--annotations", "-a", help="COCO instances JSON: adds each model's "
                                     "mAP@[.5:.95] and the deltas."),
    output: Path = typer.Option(None, "--output", "-o", help="Write side-by-side pictures of the images where a "
                                "model disagrees with the first into this folder."),
    max_images: int = typer.Option(None, "--max-images", "-n", help="Use the first N images."),
    threshold: float = typer.Option(0.3, "--threshold", "-t", help="Match detections at or above this score."),
    iou: float = typer.Option(0.5, help="IoU two detections of the same class need to match."),
    max_pictures: int = typer.Option(20, help="At most this many side-by-side pictures per pair."),
    batch: int = BatchOpt,
    json_out: Path = typer.Option(None, "--json", help="Also write the table as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Compare models on the same images: what FP16, INT8 or an engine changes.

    Each model is compared with the first: matched detections
    (same class, IoU >= --iou, score >= --threshold), the largest score and box differences,
    and with --annotations the mAP of each and its delta. mAP uses every detection a model emits
    (see `trtdeploy evaluate --help` on the score threshold).

    Examples:

      trtdeploy compare model.onnx model_fp16.onnx model_int8.onnx --images val/ --annotations val/instances_val.json

      trtdeploy compare export/saved_model model.onnx --images photos/ -o disagreements/
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.comparison import compare_models, write_disagreements
        from trtdeploy.errors import UsageError
        from trtdeploy.files import check_output, write_text_atomic

        if len(models) < 2:
            raise UsageError(f"compare needs at least two models, got {len(models)}")
        if not 0.0 <= threshold <= 1.0:
            raise UsageError(f"--threshold must be in 0..1, got {threshold}")
        if max_images is not None and max_images < 1:
            raise UsageError(f"--max-images must be >= 1, got {max_images}")
        if batch is not None and batch < 1:
            raise UsageError(f"--batch must be >= 1, got {batch}")
        if json_out is not None:
            check_output(json_out, force, [*models, annotations])
        with progress() as bar:
            task = bar.add_task("compare", total=None)
            runs, pairs, files = compare_models(
                models, images, annotations, max_images, iou, threshold, batch,
                on_model=lambda name, n: bar.update(task, description=name, total=n, completed=0),
                on_batch=lambda n: bar.advance(task, n),
            )
        with_map = annotations is not None
        table = Table(title=f"each model vs {runs[0].name} on {len(files)} images (score >= {threshold:g}, "
                      f"IoU >= {iou:g})")
        columns = ["model", "dets", "matched", "extra", "max dScore", "max dBox", "images differ"]
        columns += ["mAP", "dmAP"] if with_map else []
        for column in columns:
            table.add_column(column, justify="left" if column == "model" else "right")
        first = pairs[0].stats.reference
        first_row = [runs[0].name, str(first), "(reference)", "", "", "", ""]
        table.add_row(*first_row, *([f"{runs[0].metrics['AP']:.4f}", ""] if with_map and runs[0].metrics else []))
        for run, pair in zip(runs[1:], pairs, strict=True):
            s = pair.stats
            row = [run.name, str(s.candidate), f"{s.matched_fraction:.2%}", str(s.candidate - s.matched),
                   _small(s.max_score_diff), _small(s.max_box_diff), str(len(pair.disagreeing_images))]
            if with_map:
                row += [f"{pair.map_candidate:.4f}", f"{pair.map_delta:+.4f}"]
            table.add_row(*row)
        Console(width=None if sys.stdout.isatty() else 140).print(table)
        typer.echo("matched: share of the reference's detections found by the model; extra: the model's detections "
                   "with no match; dBox: normalised by the image size.")
        pictures = []
        if output is not None:
            pictures = write_disagreements(output, runs, pairs, files, threshold, max_pictures, force)
        if json_out is not None:
            document = {"images": len(files), "threshold": threshold, "iou": iou,
                        "models": [{"name": r.name, "path": str(r.path), "seconds": r.seconds, "metrics": r.metrics}
                                   for r in runs],
                        "pairs": [p.to_dict() for p in pairs]}
            write_text_atomic(json_out, json.dumps(document, indent=1) + "\n")
        worst = min(p.stats.matched_fraction for p in pairs)
        console.print(
            f"compare: {len(runs)} models on {len(files)} images; lowest matched {worst:.2%}"
            + (f"; {len(pictures)} side-by-side pictures in {output}/" if output is not None else ""),
            highlight=False, soft_wrap=True,
        )


def _small(value: float) -> str:
    """A difference readably: 4 decimals, or 2 significant digits below 0.001 (float noise)."""
    return f"{value:.4f}" if value >= 1e-3 or value == 0 else f"{value:.1e}"


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
