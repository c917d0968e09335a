"""`trtdeploy create-onnx`: a TF2 Object Detection API SSD or Google AutoML EfficientDet saved
model to ONNX + deploy card."""

from __future__ import annotations

from pathlib import Path

import typer

from trtdeploy import capabilities, contracts
from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, setup_logging, user_errors
from trtdeploy.errors import UsageError


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'300x300' -> (300, 300)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--input-size must look like HxW (e.g. 320x320), got {text!r}")
    return int(parts[0]), int(parts[1])


# Help texts from the registries themselves (contracts, capability matrix), so they cannot
# drift from what is emitted and refused.
_DS_PARSER_HELP = (
    "DeepStream bbox parser variant to shape the outputs for (implies --output-layout deepstream): "
    + "; ".join(f"{key}: {out.describe()}" for key, out in contracts.ds_contracts().items())
    + ". Default with --output-layout deepstream: DEFAULT_DS_PARSER of trtdeploy.deepstream.parsers "
    "(the card records the variant used)."
)
_LAYOUT_HELP = (
    "; ".join(f"{c.layout}: {c.describe()}" for c in contracts.for_head("efficient") if not c.ds_parser)
    + "; deepstream: the tensors the --ds-parser variant reads (the efficient and onnx heads; the "
    "other heads have one output contract each)."
)


def create_onnx(
    saved_model: Path = typer.Option(..., "--saved-model", help="The exported saved_model/ folder."),
    output: Path = typer.Option(..., "--output", "-o", help="The ONNX file to write (deploy card goes next to it)."),
    pipeline_config: Path = typer.Option(None, help="pipeline.config of a TFOD export (default: next to the saved "
                                         "model folder; an AutoML EfficientDet export needs none)."),
    label_map: Path = typer.Option(None, help="Label map .pbtxt; without it labels are class_1..class_N."),
    nms: str = typer.Option(None, help=capabilities.nms_help("tfod_ssd")
                            + " --ds-parser batchednms defaults to batched."),
    target: str = typer.Option(None, help=capabilities.target_help()),
    output_layout: str = typer.Option(None, help=_LAYOUT_HELP),
    ds_parser: str = typer.Option(None, help=_DS_PARSER_HELP),
    batch: int = typer.Option(None, help="Static batch size (default 1)."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Leave the batch dimension dynamic."),
    input_format: str = typer.Option("nhwc", help="Input layout of the ONNX: nhwc or nchw."),
    input_size: str = typer.Option(None, help="HxW (default: pipeline.config's). Must be the size the export runs at: TFOD bakes it, with the anchors, into the export."),
    score_threshold: float = typer.Option(None, help="NMS score threshold (default: pipeline.config)."),
    iou_threshold: float = typer.Option(None, help="NMS IoU threshold (default: pipeline.config)."),
    max_detections: int = typer.Option(None, help="Detections kept per image (default: pipeline.config)."),
    opset: int = typer.Option(17, help="ONNX opset, 10-18 (the onnx NMS head needs 13 or later)."),
    debug_dir: Path = typer.Option(None, help="Write the graph after every surgery pass here."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Convert a TF2 Object Detection API SSD or an AutoML EfficientDet model to ONNX with an NMS head.

    The graph takes float RGB pixels 0-255 of the model's input size (normalisation stays in
    the graph) and writes MODEL.deploy.json next to MODEL.onnx with every fact later stages
    need. An AutoML EfficientDet export (google/automl, with its 'predict' signature) needs no
    pipeline.config: its input size, classes, anchors and NMS settings come from the saved model
    (docs/automl.md).

    Examples:

      trtdeploy create-onnx --saved-model export/saved_model --label-map label_map.pbtxt -o model.onnx

      trtdeploy create-onnx --saved-model export/saved_model -o model.onnx --nms onnx --dynamic-batch

      trtdeploy create-onnx --saved-model export/saved_model -o ds.onnx --output-layout deepstream

      trtdeploy create-onnx --saved-model export/saved_model -o ds.onnx --ds-parser tao-efficientdet

      trtdeploy create-onnx --saved-model export/saved_model -o rtx.onnx --target rtx

      trtdeploy create-onnx --saved-model efficientdet-d0/saved_model -o d0.onnx --score-threshold 0.05
    """
    setup_logging(verbose, quiet)
    with user_errors():
        if batch is not None and dynamic_batch:
            raise UsageError("--batch and --dynamic-batch exclude each other")
        from tfod_trt.create_onnx import CreateOnnxOptions, resolve_output

        if target is not None:
            if nms is None and output_layout is None and ds_parser is None:
                nms = capabilities.default_head(target, "tfod_ssd")  # the default head that builds there
            head, _, _ = resolve_output(nms, output_layout, ds_parser)
            capabilities.check_head(head, target, "tfod_ssd")
        from tfod_trt.create_onnx import create_onnx as run

        with console.status("converting (TensorFlow -> ONNX -> surgery)...", spinner="dots"):
            result = run(
                CreateOnnxOptions(
                    saved_model=saved_model,
                    output=output,
                    pipeline_config=pipeline_config,
                    label_map=label_map,
                    nms=nms,
                    output_layout=output_layout,
                    ds_parser=ds_parser,
                    batch=1 if batch is None else batch,
                    dynamic_batch=dynamic_batch,
                    input_format=input_format,
                    input_size=parse_size(input_size),
                    score_threshold=score_threshold,
                    iou_threshold=iou_threshold,
                    max_detections=max_detections,
                    opset=opset,
                    debug_dir=debug_dir,
                    force=force,
                )
            )
        card = result.card
        parser = f" for DeepStream parser {card.output.ds_parser}" if card.output.ds_parser else ""
        console.print(
            f"[green]wrote[/] {result.onnx_path} and {result.card_path.name}: input {card.input.name} "
            f"{card.input.shape} ({card.input.layout}), {card.output.num_classes} classes, nms={card.output.nms}, "
            f"output contract {card.output.output_contract.key}{parser}, {result.seconds:.1f} s"
        )


def register(app: typer.Typer) -> None:
    app.command("create-onnx")(create_onnx)
