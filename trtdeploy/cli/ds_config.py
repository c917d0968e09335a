"""gen-ds-config and check-ds-config: DeepStream nvinfer configs and label files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from trtdeploy.cli.common import QuietOpt, VerboseOpt, console, setup_logging, user_errors
from trtdeploy.deepstream.config import NETWORK_MODES, mode_help

ARCH_HELP = (
    "TAO architecture: ssd, dssd, retinanet, yolo_v3, yolo_v4, yolo_v4_tiny, faster_rcnn, mask_rcnn, "
    "detectnet_v2, unet, classification, multitask_classification, efficientdet"
)


def gen_ds_config(
    card: Path = typer.Argument(
        None, help="Deploy card <model>.deploy.json, or the ONNX next to it."
    ),  # noqa: B008
    tao_spec: Path = typer.Option(
        None, "--tao-spec", help="TAO experiment spec (protobuf text or YAML)."
    ),  # noqa: B008
    arch: str = typer.Option(None, "--arch", help=ARCH_HELP),
    onnx: Path = typer.Option(None, "--onnx", help="TAO model as ONNX (TAO 5)."),  # noqa: B008
    etlt: Path = typer.Option(None, "--etlt", help="TAO model as .etlt (needs --key)."),  # noqa: B008
    key: str = typer.Option(None, "--key", help="Key the .etlt was exported with."),
    labels: Path = typer.Option(
        None,
        "--labels",
        help="Class names when the spec has none (mask_rcnn, efficientdet, classification).",
    ),  # noqa: B008
    engine: Path = typer.Option(
        None, "--engine", help="Engine from build-engine (its <engine>.json is read)."
    ),  # noqa: B008
    calib_cache: Path = typer.Option(
        None, "--calib-cache", help="INT8 calibration cache for int8-calib-file."
    ),  # noqa: B008
    out_dir: Path = typer.Option(
        Path("."), "-o", "--output-dir", help="Folder for the config and labels files."
    ),  # noqa: B008
    name: str = typer.Option(
        "", "--name", help="Name in config_infer_primary_<name>.txt (default: model stem)."
    ),
    gie_id: int = typer.Option(1, "--gie-id", help="gie-unique-id."),
    secondary: bool = typer.Option(False, "--secondary", help="Secondary GIE (process-mode=2)."),
    operate_on_gie_id: int = typer.Option(
        1, "--operate-on-gie-id", help="For --secondary: the GIE whose objects to infer on."
    ),
    operate_on_class_ids: str = typer.Option(
        None, "--operate-on-class-ids", help="For --secondary: e.g. '0;2'."
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", help="batch-size (default: the engine's max batch, else 1)."
    ),
    network_mode: str = typer.Option(
        None,
        "--network-mode",
        help=f"network-mode: {mode_help()}; best builds INT8 + FP16 from the calibration cache "
        "(default: from the engine).",
    ),
    custom_lib: str = typer.Option(
        None,
        "--custom-lib",
        help="custom-lib-path (default: the --ds-parser variant's library, else the DeepStream SDK's "
        "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so).",
    ),
    ds_parser: str = typer.Option(
        None,
        "--ds-parser",
        help="Parser variant (function + library + release range) to write, e.g. sdk-tfssd, sdk-efficientdet, "
        "tao-efficientdet, batchednms, nmstlt, mrcnn, detectnet-builtin; the model's outputs (names, order, "
        "dtypes, read from the ONNX or the engine sidecar) must be what it reads.",
    ),
    parse_func: str = typer.Option(
        None, "--parse-func", help="Your own bbox parser function (with --custom-lib)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Write config_infer_primary_<name>.txt and .yml (DeepStream >= 6.1) and the labels file.

    Every model-determined key comes from the deploy card; the result is validated before
    anything is written.

    Examples:

      trtdeploy gen-ds-config ssd.deploy.json --engine ssd.onnx_b4_gpu0_fp16.engine -o ds/

      trtdeploy gen-ds-config --tao-spec yolo_v4.txt --arch yolo_v4 --onnx yolov4.onnx -o ds/

      trtdeploy gen-ds-config --tao-spec maskrcnn.txt --arch mask_rcnn --etlt m.etlt --key nvidia_tlt --labels labels.txt

      trtdeploy gen-ds-config ssd.onnx --ds-parser sdk-tfssd -o ds/

    Without --engine, model-engine-file is the path nvinfer saves the engine it builds at first
    start (next to the model: <model>_b<batch>_gpu<id>_<precision>.engine), so later starts
    reuse it. The config, its .yml twin and the labels file are written mode 0644.
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.deepstream import DsOptions
        from trtdeploy.deepstream import gen_ds_config as generate
        from trtdeploy.deepstream.generate import check_name
        from trtdeploy.deepstream.parsers import variant
        from trtdeploy.deploy_card import DeployCard, card_path_for
        from trtdeploy.errors import UsageError

        if network_mode is not None and network_mode.lower() not in NETWORK_MODES:
            raise UsageError(f"--network-mode {network_mode!r} must be one of {mode_help()}")
        check_name(name)
        if ds_parser is not None:
            variant(ds_parser)
        if arch is not None:
            from tao_trt import ARCHITECTURES

            if arch not in ARCHITECTURES:
                raise UsageError(f"--arch {arch!r} is not a TAO architecture; choose one of {', '.join(ARCHITECTURES)}")
        _class_ids(operate_on_class_ids)  # refuse a malformed list before any reading
        hints = None
        if tao_spec is not None:
            if card is not None or arch is None:
                raise UsageError("with --tao-spec pass --arch and --onnx/--etlt, not a deploy card")
            import tao_trt  # lazily: tao_trt depends on trtdeploy, not the reverse

            model = tao_trt.import_tao_model(tao_spec, arch, onnx, etlt, key, labels)
            deploy_card, hints, model_path = model.card, model.hints, model.model_path
        else:
            if card is None:
                raise UsageError("pass a deploy card (or its ONNX), or --tao-spec with --arch")
            card_file = card_path_for(card) if card.suffix == ".onnx" else card
            deploy_card = DeployCard.load(card_file)
            model_path = (
                card
                if card.suffix == ".onnx"
                else card_file.with_name(card_file.name.replace(".deploy.json", ".onnx"))
            )
            from trtdeploy.families import ds_hints

            hints = ds_hints(deploy_card, model_path)  # what the card's family knows beyond the card
        class_ids = _class_ids(operate_on_class_ids)
        options = DsOptions(
            name=name,
            gie_id=gie_id,
            secondary=secondary,
            operate_on_gie_id=operate_on_gie_id,
            operate_on_class_ids=class_ids,
            batch_size=batch_size,
            network_mode=network_mode.lower() if network_mode else None,
            custom_lib=custom_lib,
            parse_func=parse_func,
            ds_parser=ds_parser,
        )
        # Inputs are never outputs: every file this command reads, whatever route it took.
        inputs = (card, tao_spec, onnx, etlt, labels, engine, calib_cache, model_path)
        result = generate(
            deploy_card, model_path, out_dir, options, hints, engine, calib_cache, force, inputs=inputs
        )
        for path in result.paths:
            console.print(f"wrote {path}", highlight=False)
        props = result.config.properties
        console.print(
            f"{result.paths[0].name}: {props.get('parse-bbox-func-name') or props.get('parse-bbox-instance-mask-func-name') or 'built-in parser'}, "
            f"engine {props.get('model-engine-file', '-')}, {len(result.config.labels)} label(s)",
            highlight=False,
        )


def _class_ids(text: str | None) -> list[int] | None:
    """--operate-on-class-ids '0;2' (or '0,2') as class ids; one error line for anything else."""
    from trtdeploy.errors import UsageError

    if not text:
        return None
    parts = [v.strip() for v in text.replace(",", ";").split(";") if v.strip()]
    if not parts or not all(v.isdigit() for v in parts):
        raise UsageError(
            f"--operate-on-class-ids {text!r} must be class ids separated by ';' (e.g. '0;2')"
        )
    return [int(v) for v in parts]


def check_ds_config(
    config: Path = typer.Argument(..., help="nvinfer config (.txt or .yml)."),  # noqa: B008
    deepstream: str = typer.Option(
        None,
        "--deepstream",
        help="Check keys against this DeepStream release (5.0, 6.0, 6.1, 6.1.1, 6.2, 6.3, 9.0; "
        "default: a key any of them reads is accepted).",
    ),
    ds_parser: str = typer.Option(
        None, "--ds-parser", help="The parser variant the config's function + library is (see gen-ds-config)."
    ),
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Check an nvinfer config and its labels file; list every problem (exit 1 on errors).

    Checks: keys nvinfer does not read (typos, keys of a later release, legacy keys in YAML) and
    keys set twice; label count vs num-detected-classes, a missing labels file, blank lines, CRLF,
    a byte-order mark and trailing spaces in labels; offsets vs colour order; the parser vs the
    model's outputs (names, order, dtypes from the ONNX or the engine sidecar) and output layout;
    model-engine-file vs where nvinfer saves the engine it builds (else it rebuilds at every
    start); relative paths (resolved from the config's folder); batch, precision, calibration
    cache header vs engine version.

    Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 not a gst-nvinfer config
    (e.g. a gst-nvinferserver/Triton protobuf-text config, which this command does not check:
    it says so instead of reporting "no errors").

    Examples:

      trtdeploy check-ds-config config_infer_primary_ssd.txt

      trtdeploy check-ds-config deepstream_app/pgie.yml --deepstream 6.3
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from trtdeploy.deepstream import check_ds_config as check

        problems = check(config, deepstream=deepstream, ds_parser=ds_parser)
        for problem in problems:
            style = "bold red" if problem.level == "error" else "yellow"
            console.print(
                f"[{style}]{problem.level}:[/] {escape(problem.message)}", highlight=False, soft_wrap=True
            )
        errors = sum(p.level == "error" for p in problems)
        if errors:
            raise typer.Exit(1)
        console.print(f"{config}: no errors ({len(problems)} warning(s))", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("gen-ds-config")(gen_ds_config)
    app.command("check-ds-config")(check_ds_config)
