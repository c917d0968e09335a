"""`trtdeploy ds-run`: a CPU dry run of gst-nvinfer on a detector config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, progress, setup_logging, user_errors
from trtdeploy.errors import UsageError, VerificationError
from trtdeploy.log import get_logger

log = get_logger("cli.ds_run")


def ds_run(
    config: Path = typer.Argument(..., help="The nvinfer config (.txt or .yml) of a detector (network-type=0) or instance segmentation (3)."),
    images: Path = typer.Option(None, "--images", "-i",
                                help="An image file or a folder of images (default: bundled sample photos)."),
    out: Path = typer.Option(None, "--output", "-o",
                             help="Folder for <image>.json and <image>_ds.png (default: only print the summary)."),
    compare_saved_model: Path = typer.Option(
        None, "--compare-saved-model",
        help="A TFOD saved_model/ folder: run it on the same pixels and require >= 99% of its detections above "
        "the config's thresholds to match (same class, IoU >= 0.9)."),
    num: int = typer.Option(None, "--num", "-n", help="At most this many images (default: all; 8 sample photos)."),
    ds_parser: str = typer.Option(None, "--ds-parser",
                                  help="Parser variant to emulate instead of the one the config's "
                                  "parse-bbox-func-name + custom-lib-path name (e.g. tao-efficientdet)."),
    deepstream: str = typer.Option(
        "9.0", "--deepstream",
        help="The DeepStream release whose gst-nvinfer is emulated: 6.0, 6.0.1, 6.1, 6.1.1, 6.2, 6.3 or 9.0 "
        "(they differ in how boxes past the frame are mapped back; 7.x/8.0 have no public source, 6.3 and "
        "9.0 agree)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Run a detector config the way gst-nvinfer would, on a CPU, and show what DeepStream would detect.

    Reads the config as nvinfer does (relative paths from its folder, nvinfer's defaults), scales
    each image to the network size (maintain-aspect-ratio, symmetric-padding, scaling-filter), applies
    model-color-format, net-scale-factor * (x - offsets) and network-input-order, runs the config's
    onnx-file in ONNX Runtime (NMS plugins through trtdeploy's CPU references), reads the raw output
    buffers with an emulation of the configured parser, clusters (cluster-mode, thresholds, topk,
    detected-min/max-w/h) and maps the boxes back to the image (instance masks with
    output-instance-mask=1 are drawn over their boxes). Every rule is DeepStream 9.0's (NVIDIA/DeepStream
    sources; 6.3's is the same code); --deepstream 6.0-6.2 maps boxes back as those releases did.
    Approximate only in the GPU scaler's sampling (see docs/ds-run.md).

    Examples:

      trtdeploy ds-run deepstream/config_infer_primary_ds.txt -o ds-run/

      trtdeploy ds-run deepstream/config_infer_primary_ds.yml --images photos/ --num 16 -o ds-run/ --force

      trtdeploy ds-run deepstream/config_infer_primary_ds.txt --compare-saved-model export/saved_model

      trtdeploy ds-run deepstream/config_infer_primary_ds.txt --deepstream 6.1 -o ds-run-6.1/
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.deepstream.dry_run import (
            IOU_MATCH,
            MIN_MATCHED,
            DryRun,
            NvInferSetup,
            check_outputs,
            class_id_base_for,
            compare_with_saved_model,
            load_images,
            mask_summary,
            matched_fraction,
            write_result,
        )

        if num is not None and num < 1:
            raise UsageError(f"--num must be >= 1, got {num}")
        setup = NvInferSetup.from_config(config, ds_parser, deepstream)
        photos = load_images(images, num)
        if out is not None:
            inputs = [images / name for name, _ in photos] if images is not None and images.is_dir() else (
                [images] if images is not None else [])
            check_outputs(out, photos, force, inputs)
        log.info("%s: %s", config.name, setup.describe())
        runner = DryRun(setup)
        results = []
        with progress() as bar:
            task = bar.add_task("nvinfer dry run", total=len(photos))
            for name, image in photos:
                result = runner.run_image(name, image)
                if out is not None:
                    write_result(out, image, result, setup)
                results.append(result)
                bar.advance(task)
            comparisons = None
            if compare_saved_model is not None:
                tf_task = bar.add_task("TensorFlow", total=len(results))
                comparisons = compare_with_saved_model(compare_saved_model, results, setup,
                                                       class_id_base_for(setup.onnx_path),
                                                       on_image=lambda: bar.advance(tf_task))
        total = sum(len(r.objects) for r in results)
        where = f" -> {out}" if out is not None else ""
        typer.echo(f"ds-run: {total} object(s) on {len(results)} image(s) ({setup.variant}, DeepStream "
                   f"{setup.deepstream}){where}")
        degenerate = sum(1 for r in results for o in r.objects if o.width <= 0 or o.height <= 0)
        if degenerate:
            # crop-objects-to-roi-boundary sets height = frame height - top even when top is below
            # the frame (NVIDIA/DeepStream DeepStream-9.0 gstnvinfer_meta_utils.cpp l.128-134)
            console.print(f"[yellow]warning:[/] {degenerate} object(s) with a width or height <= 0: boxes lying "
                          "entirely outside the frame (in the letterbox padding), cut to a negative size by "
                          "crop-objects-to-roi-boundary=1 as nvinfer does; drop them downstream", highlight=False)
        _check_masks(mask_summary(results))
        if comparisons is None:
            return
        table = Table(title=f"dry run vs TensorFlow (same class, IoU >= {IOU_MATCH})")
        for column in ("image", "TF dets", "DS dets", "matched", "min IoU", "max dScore"):
            table.add_column(column, justify="right")
        for c in comparisons:
            table.add_row(c.name, str(c.reference), str(c.candidate), f"{c.matched}/{c.reference}",
                          f"{c.min_iou:.4f}" if c.matched else "-", f"{c.max_score_diff:.2e}" if c.matched else "-")
        reference = sum(c.reference for c in comparisons)
        matched = sum(c.matched for c in comparisons)
        fraction = matched_fraction(comparisons)
        table.add_row("all", str(reference), str(sum(c.candidate for c in comparisons)), f"{fraction:.2%}", "", "")
        Console(width=None if sys.stdout.isatty() else 110).print(table)
        if fraction < MIN_MATCHED:
            raise VerificationError(
                f"only {matched} of TensorFlow's {reference} detections above the config's thresholds are in the "
                f"dry run ({fraction:.2%} < {MIN_MATCHED:.0%}); check the parser variant, thresholds and model"
            )
        if reference == 0:
            console.print("[yellow]warning:[/] TensorFlow has no detections above the config's thresholds; "
                          "nothing was compared", highlight=False)
        console.print(f"[green]matched[/]: {matched}/{reference} of TensorFlow's detections", highlight=False)


def _check_masks(stats: Any) -> None:
    """Instance masks: the emulated parser's masks (binarised at segmentation-threshold) against
    the model's own (at 0.5), on the same buffers; VerificationError below MIN_MASK_IOU."""
    from trtdeploy.deepstream.dry_run import MIN_MASK_IOU

    if stats is None:
        return
    line = (f"masks: {stats.mask_pairs} of the parser's masks vs the model's own, mean IoU "
            f"{stats.mean_mask_iou:.4f} (min {stats.min_mask_iou:.4f})")
    if stats.mask_pairs and stats.mean_mask_iou < MIN_MASK_IOU:
        raise VerificationError(f"{line} < {MIN_MASK_IOU}: check segmentation-threshold (0 for mask logits) and "
                                "num-detected-classes (the mask tensor's class count)")
    typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("ds-run")(ds_run)
