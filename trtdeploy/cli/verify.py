"""`trtdeploy verify`: run TensorFlow and the ONNX on the same images and compare detections."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, progress, setup_logging, user_errors
from trtdeploy.errors import UsageError, VerificationError

DEFAULT_SCORE_TOL = 1e-4


def verify(
    saved_model: Path = typer.Option(..., "--saved-model", help="The TFOD saved_model/ folder (the reference)."),
    onnx_path: Path = typer.Option(..., "--onnx", help="The ONNX made by create-onnx (its deploy card next to it)."),
    images: Path = typer.Option(None, help="Folder of images (default: real photos bundled with scikit-image)."),
    num: int = typer.Option(8, help="How many images."),
    batch: list[int] = typer.Option(None, help="Batch size(s) to run the ONNX at (default: its static batch, "
                                    "or 1 and 4 for a dynamic batch). Repeatable."),
    score_threshold: float = typer.Option(None, help="Compare detections at or above this score, in [0, 1] "
                                          "(default: the card's NMS threshold)."),
    iou: float = typer.Option(0.99, help="IoU needed for two detections of the same class to match."),
    min_matched: float = typer.Option(0.99, help="Fraction of each side's detections that must match."),
    score_tol: float = typer.Option(None, help="Largest allowed score difference of a match (default 1e-4, or "
                                    "with --exact the bound derived from the float64 reference)."),
    exact: bool = typer.Option(False, "--exact", help="Also evaluate the converted network in float64 on the first "
                               "--exact-num images and report, per output, TF vs exact, ONNX vs exact and TF vs "
                               "ONNX; the score tolerance is then max(1e-4, 2 x TF's own float32 error)."),
    exact_num: int = typer.Option(2, help="How many images the float64 reference runs on (slow: ~1.5 s per "
                                  "300x300 image)."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Check an ONNX from create-onnx against the TensorFlow saved model it came from.

    Both see the same pixels: each image is resized to the model's input size first (as the
    deploy card says), then fed to TensorFlow and, preprocessed per the card, to ONNX Runtime
    (NMS plugins run through trtdeploy's CPU reference implementations). The saved model must be
    the one the deploy card records (file hashes), and there must be detections to compare. Exit
    code 0 only when every run is within tolerance.

    With --exact, a float64 evaluation of the converted network tells conversion error from float
    noise: TensorFlow's float32 error against it is of the order of ONNX Runtime's when the
    conversion is right, and much larger when the converted graph computes something else.

    Examples:

      trtdeploy verify --saved-model export/saved_model --onnx model.onnx

      trtdeploy verify --saved-model export/saved_model --onnx model.onnx --exact

      trtdeploy verify --saved-model export/saved_model --onnx model.onnx --images photos/ --num 32 --batch 4
    """
    from trtdeploy.verify import noise_tolerance

    setup_logging(verbose, quiet)
    with user_errors():
        _check_options(num, exact, exact_num, score_tol, iou, min_matched, score_threshold, onnx_path, saved_model)
        card, batches, pixels, frames = _load_inputs(onnx_path, saved_model, images, num, batch)
        threshold = card.nms.score_threshold if score_threshold is None else score_threshold
        with progress() as bar:
            task = bar.add_task("TensorFlow", total=len(pixels))
            reference, report = _run_tensorflow(bar, task, saved_model, onnx_path, card, pixels, frames, exact,
                                                exact_num)
            if report is not None:
                score_tol = report.score_tolerance()
            tol = _tolerance(iou, min_matched, score_tol, threshold)
            results, first = _run_onnx(bar, task, onnx_path, card, pixels, batches, reference, tol)
            noise = None
            if score_tol is None and _only_scores_fail(results, tol):
                bar.update(task, description="float32 noise (ONNX Runtime, graph optimisations off)", completed=0)
                noise = _float32_noise(onnx_path, card, pixels, batches[0], first, tol)
                tol = replace(tol, score=noise_tolerance(noise))  # trtdeploy.verify
        _print_tables(report, results, tol, onnx_path.name, len(pixels), noise)
        _judge(report, results, tol, threshold, len(pixels), min_matched, iou)


def _tolerance(iou: float, min_matched: float, score_tol: float | None, threshold: float):  # type: ignore[no-untyped-def]
    from trtdeploy.verify import Tolerance

    return Tolerance(iou, min_matched, DEFAULT_SCORE_TOL if score_tol is None else score_tol, threshold)


def _check_options(num: int, exact: bool, exact_num: int, score_tol: float | None, iou: float, min_matched: float,
                   score_threshold: float | None, onnx_path: Path, saved_model: Path) -> None:
    """The option checks, cheapest first, before anything is loaded."""
    from trtdeploy.errors import InputError

    if num < 1:
        raise UsageError(f"--num must be >= 1, got {num}")
    if exact and not 1 <= exact_num <= num:
        raise UsageError(f"--exact-num must be in 1..--num ({num}), got {exact_num}")
    if score_tol is not None and exact:
        raise UsageError("--score-tol and --exact exclude each other: --exact derives the score tolerance")
    _tolerance(iou, min_matched, score_tol, 0.0 if score_threshold is None else score_threshold).validate()
    if not Path(onnx_path).is_file():
        raise InputError(f"ONNX file {onnx_path} not found")
    if not Path(saved_model).is_dir():
        raise InputError(f"saved model folder {saved_model} not found")


def _load_inputs(onnx_path: Path, saved_model: Path, images: Path | None, num: int, batch: list[int] | None):  # type: ignore[no-untyped-def]
    """The deploy card, the batch sizes to run, a provenance check, the resized images and
    where each photo is in them."""
    from trtdeploy.deploy_card import DeployCard, card_path_for
    from trtdeploy.sample_images import load_folder, place_for_model, resize_for_model, sample_photos
    from trtdeploy.verify import check_batches, check_saved_model_provenance

    card = DeployCard.load(card_path_for(onnx_path))
    batches = check_batches(list(batch or []), card.input.shape[0])
    checked = check_saved_model_provenance(card, saved_model)
    if not checked:
        console.print(f"[yellow]warning[/]: the deploy card records no saved-model hashes; cannot check that "
                      f"{onnx_path.name} was made from {saved_model}")
    photos = load_folder(images, num) if images else sample_photos(num)
    size = (card.input.height, card.input.width, card.preprocess.resize)
    pixels = np.stack([resize_for_model(img, *size) for _, img in photos])
    return card, batches, pixels, [place_for_model(img, *size) for _, img in photos]


def _run_tensorflow(bar, task, saved_model: Path, onnx_path: Path, card, pixels, frames, exact: bool,  # type: ignore[no-untyped-def]
                    exact_num: int):
    """TensorFlow's detections on every image and, with --exact, the float64 report on the first
    exact_num images (None without --exact)."""
    from tfod_trt.runner import saved_model_runner
    from trtdeploy.exact import TFOD_RAW, exact_errors, tfod_raw_outputs
    from trtdeploy.runners import to_input_tensor

    tf_runner = saved_model_runner(saved_model, card)  # TFOD serving signature, or AutoML raw heads + our NMS
    reference = []
    raw = []
    for i, (image, frame) in enumerate(zip(pixels, frames, strict=True)):
        reference.extend(tf_runner.detections_placed(image[None], [frame]))
        if exact and i < exact_num:
            raw.append(tf_runner.infer(image[None], list(TFOD_RAW.values())))
        bar.advance(task)
    if not exact:
        return reference, None
    import onnx

    bar.update(task, description="float64 reference", completed=0, total=exact_num)
    tf_raw = tfod_raw_outputs(raw, len(card.labels))
    report = exact_errors(onnx.load(str(onnx_path)), to_input_tensor(pixels[:exact_num], card), tf_raw,
                          batch=max(card.input.shape[0], 1), progress=lambda: bar.advance(task, 0.5))
    return reference, report


def _run_onnx(bar, task, onnx_path: Path, card, pixels, batches: list[int], reference, tol):  # type: ignore[no-untyped-def]
    """ONNX Runtime's detections at each batch size, compared with TensorFlow's: (batch -> stats,
    the first batch size's detections)."""
    from trtdeploy.runners import OnnxRuntimeRunner
    from trtdeploy.verify import compare, run_batched

    onnx_runner = OnnxRuntimeRunner(onnx_path, card)
    results, first = {}, None
    for b in batches:
        bar.update(task, description=f"ONNX Runtime (batch {b})", completed=0, total=len(pixels))
        found = run_batched(onnx_runner.detections, pixels, b)
        first = found if first is None else first
        results[b] = compare(reference, found, tol)
    return results, first


def _only_scores_fail(results, tol) -> bool:  # type: ignore[no-untyped-def]
    """Every run's detections matched, but some score difference is above the default bound."""
    loose = replace(tol, score=1.0)
    return all(loose.accepts(stats) for stats in results.values()) and not all(
        tol.accepts(stats) for stats in results.values())


def _float32_noise(onnx_path: Path, card, pixels, batch: int, optimised, tol) -> float:  # type: ignore[no-untyped-def]
    """The ONNX's own float32 noise on these images: the largest matched-score difference
    between ONNX Runtime with its graph optimisations (``optimised``, the detections of the first
    run) and without them: other kernels and fusions, the same arithmetic. The rule the tests
    use when a float64 evaluation is too slow (a two-stage model): trtdeploy.verify.noise_tolerance."""
    from trtdeploy.runners import OnnxRuntimeRunner
    from trtdeploy.verify import compare, run_batched

    plain = OnnxRuntimeRunner(onnx_path, card, optimize=False)
    return compare(optimised, run_batched(plain.detections, pixels, batch), replace(tol, score=1.0)).max_score_diff


def _print_tables(report, results, tol, name: str, images: int, noise: float | None) -> None:  # type: ignore[no-untyped-def]
    from trtdeploy.exact import K_SCORE, SCORE_FLOOR

    out = Console(width=None if sys.stdout.isatty() else 130)
    typer.echo("")
    if report is not None:
        out.print(_exact_table(report, name))
        scores = report.output("scores")
        derived = f"max({SCORE_FLOOR:g}, {K_SCORE:g} x {scores.tf_exact:.2e})"
        typer.echo(f"score tolerance from the float64 reference: {derived} = {tol.score:.2e}")
    if noise is not None:
        typer.echo(f"score tolerance from the ONNX's float32 noise (ONNX Runtime with vs without graph optimisations): "
                   f"max({SCORE_FLOOR:g}, {K_SCORE:g} x {noise:.2e}) = {tol.score:.2e}")
    out.print(_match_table(results, tol, name, images))


def _judge(report, results, tol, threshold: float, images: int, min_matched: float, iou: float) -> None:  # type: ignore[no-untyped-def]
    """Raise VerificationError unless every run is within tolerance; print the summary line if it is."""
    from trtdeploy.verify import nothing_compared, refuse_empty_comparison

    if report is not None and report.suspects:
        worst = report.output(report.suspects[0])
        raise VerificationError(
            f"TensorFlow's {worst.name} are {worst.tf_exact:.2e} from the float64 value of the ONNX, "
            f"{worst.tf_exact / max(worst.onnx_exact, 1e-30):.0f}x ONNX Runtime's own float32 error "
            f"({worst.onnx_exact:.2e}): that is not float noise, the converted graph computes something else"
        )
    first = next(iter(results.values()))
    if nothing_compared(first):
        refuse_empty_comparison(first, threshold, images)
    failed = [b for b, stats in results.items() if not tol.accepts(stats)]
    if failed:
        raise VerificationError(
            f"ONNX differs from TensorFlow beyond tolerance at batch {failed} (need >= {min_matched:.0%} of each "
            f"side matched at IoU >= {iou} and score difference <= {tol.score:.2g}"
            + (f", mean mask IoU >= {tol.mask_iou:g}" if any(s.mask_pairs for s in results.values()) else "")
            + "; to tell float32 noise from a conversion error, run with --exact)"
        )
    totals = ", ".join(f"batch {b}: {s.matched}/{s.reference} matched" for b, s in results.items())
    console.print(f"[green]verified[/]: the ONNX matches TensorFlow within tolerance ({totals}, "
                  f"max dScore {max(s.max_score_diff for s in results.values()):.2e} <= {tol.score:.2e})")


def _exact_table(report, name: str) -> Table:  # type: ignore[no-untyped-def]
    table = Table(title=f"{name}: float32 results vs a float64 evaluation of the converted network "
                        f"({report.images} images, max |difference|)")
    for column in ("output", "TF vs exact", "ONNX vs exact", "TF vs ONNX", "reading"):
        table.add_column(column, justify="right")
    for out in report.outputs:
        reading = "[red]conversion error[/]" if out.conversion_suspect else "float32 noise"
        table.add_row(out.name, f"{out.tf_exact:.2e}", f"{out.onnx_exact:.2e}", f"{out.tf_onnx:.2e}", reading)
    return table


def _match_table(results, tol, name: str, images: int) -> Table:  # type: ignore[no-untyped-def]
    table = Table(title=f"{name} vs TensorFlow on {images} images (score >= {tol.score_threshold:g})")
    masks = any(stats.mask_pairs for stats in results.values())  # instance masks compared (binarised at 0.5)
    for column in ("batch", "TF dets", "ONNX dets", "matched", "max dScore", "max dBox", "min IoU",
                   *(("mean mask IoU",) if masks else ()), "max dCount", "ok"):
        table.add_column(column, justify="right")
    for b, stats in results.items():
        ok = tol.accepts(stats)
        # with no match there is no score difference or IoU to report (not 0 and 1.0)
        none = stats.matched == 0
        mask_cell = ("-" if not stats.mask_pairs else f"{stats.mean_mask_iou:.4f}",) if masks else ()
        table.add_row(str(b), str(stats.reference), str(stats.candidate),
                      f"{stats.matched}/{stats.reference}" if stats.reference else "-",
                      "-" if none else f"{stats.max_score_diff:.2e}", "-" if none else f"{stats.max_box_diff:.2e}",
                      "-" if none else f"{stats.min_iou:.4f}", *mask_cell, str(stats.count_diff),
                      "[green]ok[/]" if ok else "[red]FAIL[/]")
    return table


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
