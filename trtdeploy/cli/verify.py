"""`trtdeploy verify`: run TensorFlow and the ONNX on the same images and compare detections."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, progress, setup_logging, user_errors
from trtdeploy.errors import UsageError, VerificationError


def verify(
    saved_model: Path = typer.Option(..., "--saved-model", help="The TFOD saved_model/ folder (the reference)."),
    onnx_path: Path = typer.Option(..., "--onnx", help="The ONNX made by create-onnx (its deploy card next to it)."),
    images: Path = typer.Option(None, help="Folder of images (default: real photos bundled with scikit-image)."),
    num: int = typer.Option(8, help="How many images."),
    batch: list[int] = typer.Option(None, help="Batch size(s) to run the ONNX at (default: its static batch, "
                                    "or 1 and 4 for a dynamic batch). Repeatable."),
    score_threshold: float = typer.Option(None, help="Compare detections at or above this score "
                                          "(default: the card's NMS threshold)."),
    iou: float = typer.Option(0.99, help="IoU needed for two detections of the same class to match."),
    min_matched: float = typer.Option(0.99, help="Fraction of TensorFlow's detections that must match."),
    score_tol: float = typer.Option(1e-4, help="Largest allowed score difference of a match."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Check an ONNX from create-onnx against the TensorFlow saved model it came from.

    Both see the same pixels: each image is resized to the model's input size first (as the
    deploy card says), then fed to TensorFlow and, preprocessed per the card, to ONNX Runtime
    (NMS plugins run through trtdeploy's CPU reference implementations). Exit code 0 only when
    every run is within tolerance.

    Examples:

      trtdeploy verify --saved-model export/saved_model --onnx model.onnx

      trtdeploy verify --saved-model export/saved_model --onnx model.onnx --images photos/ --num 32 --batch 4
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.deploy_card import DeployCard, card_path_for
        from trtdeploy.errors import InputError
        from trtdeploy.runners import OnnxRuntimeRunner
        from trtdeploy.sample_images import load_folder, resize_for_model, sample_photos
        from trtdeploy.verify import Tolerance, compare, run_batched

        if num < 1:
            raise UsageError(f"--num must be >= 1, got {num}")
        if not Path(onnx_path).is_file():
            raise InputError(f"ONNX file {onnx_path} not found")
        card = DeployCard.load(card_path_for(onnx_path))
        photos = load_folder(images, num) if images else sample_photos(num)
        pixels = np.stack(
            [resize_for_model(img, card.input.height, card.input.width, card.preprocess.resize) for _, img in photos]
        )
        static = card.input.shape[0]
        batches = list(batch) if batch else ([static] if static != -1 else [1, 4])
        if static != -1 and any(b != static for b in batches):
            raise UsageError(f"the ONNX has a static batch of {static}; cannot run it at {batches}")
        tol = Tolerance(iou, min_matched, score_tol,
                        card.nms.score_threshold if score_threshold is None else score_threshold)

        from tfod_trt.runner import TfodRunner

        with progress() as bar:
            task = bar.add_task("TensorFlow", total=len(pixels))
            tf_runner = TfodRunner(saved_model)
            reference = []
            for image in pixels:
                reference.extend(tf_runner.detections(image[None]))
                bar.advance(task)
            onnx_runner = OnnxRuntimeRunner(onnx_path, card)
            results = {}
            for b in batches:
                bar.update(task, description=f"ONNX Runtime (batch {b})", completed=0)
                results[b] = compare(reference, run_batched(onnx_runner.detections, pixels, b), tol)

        table = Table(title=f"{onnx_path.name} vs TensorFlow on {len(pixels)} images (score >= {tol.score_threshold:g})")
        for column in ("batch", "TF dets", "ONNX dets", "matched", "max dScore", "max dBox", "min IoU",
                       "max dCount", "ok"):
            table.add_column(column, justify="right")
        failed = []
        for b, stats in results.items():
            ok = tol.accepts(stats)
            if not ok:
                failed.append(b)
            table.add_row(str(b), str(stats.reference), str(stats.candidate), f"{stats.matched_fraction:.2%}",
                          f"{stats.max_score_diff:.2e}", f"{stats.max_box_diff:.2e}", f"{stats.min_iou:.4f}",
                          str(stats.count_diff), "[green]ok[/]" if ok else "[red]FAIL[/]")
        typer.echo("")
        Console(width=None if sys.stdout.isatty() else 130).print(table)
        if failed:
            raise VerificationError(
                f"ONNX differs from TensorFlow beyond tolerance at batch {failed} (need >= {min_matched:.0%} matched "
                f"at IoU >= {iou} and score difference <= {score_tol:g}; float32 noise alone can reach a few 1e-4 "
                "on some models, which --score-tol accepts)"
            )
        console.print("[green]verified[/]: the ONNX matches TensorFlow within tolerance")


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
