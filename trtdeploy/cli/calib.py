"""`trtdeploy calib ...`: INT8 calibration on the CPU and calibration cache tools.

A thin layer over the `calibration` package (imported inside the commands so --help is instant).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trtdeploy.cli.common import QuietOpt, VerboseOpt, check_range, console, setup_logging, user_errors
from trtdeploy.errors import InputError, UsageError

calib_app = typer.Typer(
    name="calib",
    help="INT8 calibration: calibrate on the CPU, inspect / retarget / diff caches, write TAO tensorfiles.",
    no_args_is_help=True,
)


AllowUnknownTrtOpt = typer.Option(
    "--allow-unknown-trt", help="Accept a --trt-version that is not in trtdeploy's table of TensorRT releases."
)


def _card_path(onnx: Path | None, card: Path | None) -> Path:
    """--card, or the deploy card next to the ONNX; refused when there is none."""
    from trtdeploy.deploy_card import card_path_for

    path = card if card is not None else (card_path_for(onnx) if onnx is not None else None)
    if path is None:
        raise UsageError("no deploy card given: pass --card model.deploy.json or --onnx model.onnx")
    if not Path(path).is_file():
        raise InputError(
            f"no deploy card at {path}: pass --card model.deploy.json (create-onnx writes it next to the ONNX)"
        )
    return Path(path)


def _spec_from_card(path: Path, onnx: Path | None = None):  # type: ignore[no-untyped-def]
    """The PreprocessSpec of a deploy card; with ``onnx``, the card must be the one written for it
    (its recorded hash): another model's card gives scales for the wrong preprocessing."""
    from calibration import PreprocessSpec
    from trtdeploy.deploy_card import DeployCard
    from trtdeploy.files import sha256_file

    card = DeployCard.load(path)
    if onnx is not None and card.onnx_sha256 and Path(onnx).is_file() and sha256_file(onnx) != card.onnx_sha256:
        raise InputError(
            f"deploy card {path} was written for another ONNX (sha256 {card.onnx_sha256[:12]}..., {onnx} has "
            f"{sha256_file(onnx)[:12]}...); pass the card of this model with --card, or re-run create-onnx"
        )
    if onnx is not None:
        _check_card_input(path, card.input.name, card.input.shape, Path(onnx))
    return PreprocessSpec.from_card_dict(card.to_dict())


def _check_card_input(card_path: Path, name: str, shape: list[int], onnx: Path) -> None:
    """The card's input must be the ONNX's (name, and every dimension both fix): a card of
    another model preprocesses for the wrong input."""
    import onnx as onnx_lib

    if not onnx.is_file():
        raise InputError(f"ONNX model {onnx} not found")
    try:
        model = onnx_lib.load(str(onnx), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends for a file that is not ONNX
        raise InputError(f"{onnx} is not a readable ONNX model: {exc}") from exc
    inits = {i.name for i in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    if name not in inputs:
        raise InputError(
            f"deploy card {card_path} describes input {name!r} but {onnx} has {sorted(inputs)}; "
            "the card is not this model's: pass the right --card or re-run create-onnx"
        )
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inputs[name].type.tensor_type.shape.dim]
    if len(dims) != len(shape) or any(a > 0 and b > 0 and a != b for a, b in zip(dims, shape, strict=False)):
        raise InputError(
            f"deploy card {card_path} gives input {name!r} shape {shape} but {onnx} has {dims}; "
            "the card is not this model's: pass the right --card or re-run create-onnx"
        )


def _image_inputs(images: Path, image_root: Path | None, paths: object) -> list[Path | None]:
    """Every file an image source reads: the folder/list/JSON itself and the images listed."""
    listed = list(paths) if isinstance(paths, list) else []
    return [images, image_root, *listed]


@calib_app.command("inspect")
def inspect_command(
    files: Annotated[
        list[Path], typer.Argument(help="Calibration caches (TensorRT / TAO cal.bin) or TAO tensorfiles.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Show a cache's header, TensorRT version, algorithm, tensor count, scale range and infinities
    (or a tensorfile's batch count and shape).

    Examples:
      trtdeploy calib inspect model.cache
      trtdeploy calib inspect cal.bin calib.tensorfile --json
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from dataclasses import asdict

        from calibration import inspect_cache, read_cache, tensorfile_info
        from calibration.tensorfile import is_tensorfile

        reports = []
        for path in files:
            if not path.is_file():
                raise InputError(f"{path} not found")
            if is_tensorfile(path):
                count, shape = tensorfile_info(path)
                reports.append({"file": str(path), "kind": "tensorfile", "count": count, "shape": list(shape or [])})
                if not as_json:
                    typer.echo(f"{path}: TAO tensorfile, {count} batches of shape {list(shape or [])}")
                continue
            summary = inspect_cache(read_cache(path))
            reports.append({"file": str(path), "kind": "cache", **asdict(summary)})
            if not as_json:
                typer.echo(f"{path}:")
                for line in summary.lines():
                    typer.echo(f"  {line}")
        if as_json:
            typer.echo(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))


@calib_app.command("retarget")
def retarget_command(
    cache: Annotated[Path, typer.Argument(help="The calibration cache to rewrite (it is never overwritten).")],
    trt_version: Annotated[
        str, typer.Option("--trt-version", help="TensorRT release for the header, e.g. 10.16 or 8.6.1.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output cache (not CACHE itself).")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output.")] = False,
    allow_unknown_trt: Annotated[bool, AllowUnknownTrtOpt] = False,
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Write a copy of a cache with the header of another TensorRT version (TensorRT only trusts its own).

    Only safe for the identical ONNX graph and preprocessing: the scales are kept as they are.
    The version must be a real TensorRT release (--allow-unknown-trt for one newer than trtdeploy).

    Examples:
      trtdeploy calib retarget cal.bin --trt-version 10.16 -o cal_trt10.bin
      trtdeploy calib retarget model.cache --trt-version 10.3.0 -o model_trt103.cache --force
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from calibration import RETARGET_WARNING, TrtVersion, read_cache, retarget_cache
        from trtdeploy.files import check_output

        version = TrtVersion.cache_reader(trt_version, allow_unknown_trt)
        check_output(output, force, inputs=[cache])
        old = read_cache(cache)
        new = retarget_cache(old, version)
        new.save(output)
        console.print(f"[yellow]warning:[/] {RETARGET_WARNING}", highlight=False)
        typer.echo(f"{output}: {old.header} -> {new.header} ({len(new.bits)} tensors)")


@calib_app.command("diff")
def diff_command(
    a: Annotated[Path, typer.Argument(help="First cache.")],
    b: Annotated[Path, typer.Argument(help="Second cache.")],
    top: Annotated[int, typer.Option("--top", help="How many of the most different tensors to list.")] = 10,
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Compare two caches tensor by tensor: ratio of scales (B / A), tensors only in one.

    Examples:
      trtdeploy calib diff gpu.cache cpu.cache
      trtdeploy calib diff old.cache new.cache --top 30
    """
    setup_logging(verbose, quiet)
    with user_errors():
        import math

        check_range("--top", top, minimum=0)

        from calibration import diff_caches, read_cache

        ca, cb = read_cache(a), read_cache(b)
        d = diff_caches(ca, cb)
        typer.echo(f"A: {a} ({ca.header}, {len(ca.bits)} tensors)")
        typer.echo(f"B: {b} ({cb.header}, {len(cb.bits)} tensors)")
        typer.echo(f"in both: {len(d.ratios)}, only in A: {len(d.only_a)}, only in B: {len(d.only_b)}")
        finite = [r for r in d.ratios.values() if math.isfinite(r) and r > 0]
        if finite:
            typer.echo(
                f"ratio B/A: min {min(finite):.4g}, max {max(finite):.4g}, "
                f"median {sorted(finite)[len(finite) // 2]:.4g}"
            )
        for name, ratio in d.largest(top):
            typer.echo(f"  {ratio:10.4g}  {name}")
        for label, names in (("only in A", d.only_a), ("only in B", d.only_b)):
            if names:
                typer.echo(f"{label}: {', '.join(names[:top])}{' ...' if len(names) > top else ''}")


@calib_app.command("tensorfile")
def tensorfile_command(
    images: Annotated[Path, typer.Argument(help="Image folder (recursive), list file or COCO JSON.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Tensorfile to write (HDF5).")],
    image_root: Annotated[
        Path | None, typer.Option("--image-root", help="Folder the COCO JSON's file_name entries are in.")
    ] = None,
    onnx: Annotated[
        Path | None, typer.Option("--onnx", help="Model whose deploy card gives the preprocessing.")
    ] = None,
    card: Annotated[
        Path | None, typer.Option("--card", help="Deploy card (default: <model>.deploy.json of --onnx).")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", help="Batch size of each stored array.")] = 8,
    num: Annotated[int | None, typer.Option("--calib-num", help="Use this many images (random, --seed).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    shuffle: Annotated[
        bool, typer.Option("--shuffle", help="Feed the images in a random (--seed) order, not sorted by path.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output.")] = False,
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Write preprocessed calibration batches as a TAO tensorfile (for TAO's --cal_data_file).

    Examples:
      trtdeploy calib tensorfile images/ --onnx model.onnx -o calib.tensorfile
      trtdeploy calib tensorfile coco/instances_val2017.json --card model.deploy.json -o cal.h5 --calib-num 500
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from calibration import ImageBatcher, list_images, write_tensorfile
        from trtdeploy.files import check_output

        check_range("--batch", batch, minimum=1)
        check_range("--calib-num", num, minimum=1)
        check_range("--seed", seed, minimum=0)
        card_path = _card_path(onnx, card)
        paths = list_images(images, num=num, seed=seed, shuffle=shuffle, image_root=image_root)
        check_output(output, force, inputs=[onnx, card_path, *_image_inputs(images, image_root, paths)])
        spec = _spec_from_card(card_path, onnx)
        count = write_tensorfile(output, ImageBatcher(paths, spec, batch, drop_last=True))
        typer.echo(f"{output}: {count} batches of {list(spec.shape(batch))} from {len(paths)} images")


@calib_app.command("calibrate")
def calibrate_command(
    onnx: Annotated[
        Path, typer.Argument(help="The ONNX model (its deploy card <model>.deploy.json gives the preprocessing).")
    ],
    images: Annotated[
        Path,
        typer.Option("--images", "-i", help="Image folder (recursive), list file, COCO JSON or TAO tensorfile."),
    ],
    image_root: Annotated[
        Path | None, typer.Option("--image-root", help="Folder the COCO JSON's file_name entries are in.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Calibration cache (default <model>.cache).")
    ] = None,
    qdq_onnx: Annotated[
        Path | None, typer.Option("--qdq-onnx", help="Also write a Q/DQ ONNX here (TensorRT 11 / RTX).")
    ] = None,
    card: Annotated[Path | None, typer.Option("--card", help="Deploy card (default <model>.deploy.json).")] = None,
    method: Annotated[str, typer.Option("--calib-method", "-m", help="entropy | minmax | percentile.")] = "entropy",
    percentile: Annotated[
        float | None, typer.Option("--percentile", help="Percentile for --calib-method percentile, in (0, 100] (default 99.99).")
    ] = None,
    trt_version: Annotated[
        str, typer.Option("--trt-version", help="TensorRT release the cache header is for.")
    ] = "10.16",
    allow_unknown_trt: Annotated[bool, AllowUnknownTrtOpt] = False,
    num: Annotated[int | None, typer.Option("--calib-num", help="Use this many images (random, --seed).")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    shuffle: Annotated[
        bool, typer.Option("--shuffle", help="Feed the images in a random (--seed) order, not sorted by path.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", "-b", help="Batch size (a fixed model batch wins).")] = 8,
    fast_decode: Annotated[
        bool, typer.Option("--fast-decode", help="Let JPEGs decode at reduced size (faster, approximate).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite outputs.")] = False,
    verbose: int = VerboseOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Calibrate INT8 on the CPU with ONNX Runtime (TensorRT-style entropy, min-max or percentile).

    Writes a TensorRT calibration cache (plus a <cache>.json sidecar) usable as DeepStream's
    int8-calib-file for the same ONNX, and optionally a Q/DQ ONNX for strongly typed backends.

    Examples:
      trtdeploy calib calibrate model.onnx -i images/ -o model.cache
      trtdeploy calib calibrate model.onnx -i val.json --qdq-onnx model_int8.onnx --trt-version 10.3
      trtdeploy calib calibrate model.onnx -i list.txt -m percentile --percentile 99.9 --calib-num 1000
      trtdeploy calib calibrate model.onnx -i instances_val2017.json --image-root val2017/
      trtdeploy calib calibrate model.onnx -i calib.tensorfile   (TAO's preprocessed batches)
    """
    setup_logging(verbose, quiet)
    with user_errors():
        from calibration import (
            CalibrationMethod,
            TrtVersion,
            calibrate_onnx,
            list_images,
            save_result,
            write_qdq_onnx,
        )
        from calibration.errors import CalibrationError
        from calibration.sidecar import sidecar_path
        from calibration.tensorfile import is_tensorfile
        from trtdeploy.files import check_output, check_same_outputs

        # every option first: nothing below may fail on a value we could have refused here
        check_range("--batch", batch, minimum=1)
        check_range("--calib-num", num, minimum=1)
        check_range("--seed", seed, minimum=0)
        try:
            calib_method = CalibrationMethod.parse(method)
        except CalibrationError as exc:
            raise UsageError(f"--calib-method: {exc}") from None
        if percentile is not None and calib_method is not CalibrationMethod.PERCENTILE:
            raise UsageError(f"--percentile is only used with --calib-method percentile (not {calib_method.value})")
        check_range("--percentile", percentile, above=0, maximum=100)
        version = TrtVersion.cache_reader(trt_version, allow_unknown_trt)

        cache_path = output or onnx.with_suffix(".cache")
        outputs = [cache_path, sidecar_path(cache_path), qdq_onnx]
        check_same_outputs(outputs)
        card_path = _card_path(onnx, card)
        source = (
            images
            if is_tensorfile(images)
            else list_images(images, num=num, seed=seed, shuffle=shuffle, image_root=image_root)
        )
        inputs = [onnx, card_path, *_image_inputs(images, image_root, source)]
        for path in outputs:
            if path is not None:
                check_output(path, force, inputs=inputs)
        spec = _spec_from_card(card_path, onnx)
        result = calibrate_onnx(
            onnx,
            source,
            spec,
            calib_method,
            batch_size=batch,
            percentile=99.99 if percentile is None else percentile,
            fast_decode=fast_decode,
        )
        cache = save_result(result, onnx, spec, cache_path, version)
        typer.echo(
            f"{cache_path}: {cache.header}, {len(cache.bits)} tensors from {result.num_images} images "
            f"in {result.seconds:.1f} s"
        )
        if qdq_onnx is not None:
            report = write_qdq_onnx(onnx, qdq_onnx, cache)
            typer.echo(f"{qdq_onnx}: {report.summary()}")


def register(app: typer.Typer) -> None:
    """Add the `calib` command group."""
    app.add_typer(calib_app, name="calib")
