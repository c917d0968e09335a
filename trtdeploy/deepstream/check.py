"""check-ds-config: run the generator's validation over an existing nvinfer config."""

from __future__ import annotations

import json
from pathlib import Path

from calibration.cache import CalibrationCache
from trtdeploy.deepstream.config import (
    DEEPSTREAM_RELEASES,
    LoadedConfig,
    read_config,
    read_label_lines,
)
from trtdeploy.deepstream.generate import (
    engine_mismatches,
    judge_parser,
    onnx_io,
    read_calib_cache,
    read_engine_sidecar,
    sidecar_io,
    variants_for,
)
from trtdeploy.deepstream.parsers import mask_layout_problems, variant
from trtdeploy.deepstream.validate import ERROR, WARNING, ConfigView, Problem, validate
from trtdeploy.deploy_card import DeployCard, card_path_for
from trtdeploy.engine.sidecar import Sidecar
from trtdeploy.errors import TrtDeployError, UsageError


def check_ds_config(
    path: Path, deepstream: str | None = None, ds_parser: str | None = None
) -> list[Problem]:
    """Every problem in the config at ``path`` and the files it names that exist here.

    Model, engine and cache files the config names but that are absent (models are often
    elsewhere) give a warning and the checks that need them are skipped; a labels file that is
    named but absent is an error, because nvinfer then fails to start (see below).
    ``deepstream``: check keys against that release (one of ``DEEPSTREAM_RELEASES``).
    ``ds_parser``: the parser variant the config's function + library is (default: every
    variant of that function in that library, newest first).
    """
    if ds_parser is not None:
        variant(ds_parser)
    if deepstream is not None and deepstream not in DEEPSTREAM_RELEASES:
        raise UsageError(
            f"--deepstream {deepstream}: key tables exist for DeepStream {', '.join(DEEPSTREAM_RELEASES)} "
            "(read from their gst-nvinfer source); pass the nearest older one"
        )
    loaded = read_config(Path(path))
    props = loaded.properties
    problems: list[Problem] = []
    labels, label_problems = _read_labels(loaded, problems)
    card = _read_card(loaded, problems)
    sidecar = _read_sidecar(loaded, problems)
    cache, cache_problem = _read_cache(loaded, problems)
    problems += _parser_problems(props, loaded, sidecar, ds_parser)
    view = ConfigView(
        properties=props,
        class_attrs=loaded.class_attrs,
        labels=labels,
        label_problems=label_problems,
        base_dir=loaded.path.parent,
        card=card,
        engine_sidecar=sidecar,
        calib_cache=cache,
        calib_problem=cache_problem,
        config_path=loaded.path,
        other_sections={k: v for k, v in loaded.sections.items() if k != "property"},
        duplicates=loaded.duplicates,
        yaml=loaded.yaml,
        deepstream=deepstream,
    )
    return problems + validate(view)


def _read_labels(loaded: LoadedConfig, problems: list[Problem]) -> tuple[list[str] | None, list[str]]:
    """The labels file's lines and problems (an error when nvinfer could not open it)."""
    props = loaded.properties
    labels = None
    label_problems: list[str] = []
    if "labelfile-path" in props:
        label_path = loaded.resolve(props["labelfile-path"])
        if label_path.is_file():
            labels, label_problems = read_label_lines(label_path)
        elif label_path.parent.is_dir():
            # InferPostprocessor::initResource parses labelfile-path for every network type and
            # fails when it cannot open it ("Could not open labels file"): hiennguyen9874/
            # deepstream-sources 6.3 sources/libs/nvdsinfer/nvdsinfer_context_impl.cpp lines
            # 476-478 and 516-518.
            problems.append(
                Problem(
                    ERROR,
                    f"labelfile-path={props['labelfile-path']}: {label_path} does not exist (relative paths "
                    "resolve from the config's folder); nvinfer fails to start without it",
                )
            )
        else:  # its whole folder is elsewhere (e.g. models downloaded on the DeepStream machine)
            problems.append(
                Problem(
                    WARNING,
                    f"labels file {label_path} not found here (its folder does not exist either); "
                    "nvinfer fails to start if it is missing there too; label checks skipped",
                )
            )
    return labels, label_problems


def _read_card(loaded: LoadedConfig, problems: list[Problem]) -> DeployCard | None:
    """The deploy card next to onnx-file, when there is one."""
    props = loaded.properties
    card = None
    model = props.get("onnx-file")
    if model:
        card_path = card_path_for(loaded.resolve(model))
        if card_path.is_file():
            try:
                card = DeployCard.load(card_path)
            except TrtDeployError as exc:
                problems.append(Problem(WARNING, f"deploy card {card_path} unreadable: {exc}"))
    return card


def _read_sidecar(loaded: LoadedConfig, problems: list[Problem]) -> Sidecar | None:
    """The sidecar of model-engine-file (typed), and whether the engine was built from onnx-file."""
    props = loaded.properties
    sidecar = None
    engine = props.get("model-engine-file")
    if engine and loaded.resolve(engine).is_file():
        try:
            sidecar = read_engine_sidecar(loaded.resolve(engine))
        except TrtDeployError as exc:
            problems.append(Problem(WARNING, str(exc)))
    if sidecar is not None and props.get("onnx-file"):
        onnx_path = loaded.resolve(props["onnx-file"])
        try:
            wrong = engine_mismatches(sidecar, onnx_path, onnx_io(onnx_path))
        except TrtDeployError:
            wrong = []  # an unreadable onnx-file is reported with the parser checks
        problems += [
            Problem(ERROR, f"model-engine-file={engine} was not built from onnx-file={props['onnx-file']}: {m}")
            for m in wrong
        ]
    return sidecar


def _read_cache(loaded: LoadedConfig, problems: list[Problem]) -> tuple[CalibrationCache | None, str | None]:
    """int8-calib-file parsed by the calibration package (ours: a TRT- header), or why not."""
    props = loaded.properties
    cache: CalibrationCache | None = None
    cache_problem: str | None = None
    calib = props.get("int8-calib-file")
    if calib:
        calib_path = loaded.resolve(calib)
        if calib_path.is_file():
            with open(calib_path, "rb") as fh:
                ours = fh.readline().strip().startswith(b"TRT-")
            if ours:  # another first line (e.g. a TAO text cache of another kind): not ours to judge
                cache, cache_problem = read_calib_cache(calib_path)
        else:
            problems.append(
                Problem(WARNING, f"int8-calib-file {calib_path} not found; cache checks skipped")
            )
    return cache, cache_problem


def _parser_problems(
    props: dict[str, str], loaded: LoadedConfig, sidecar: Sidecar | None, ds_parser: str | None
) -> list[Problem]:
    """The model's outputs (names, order, dtypes) from the engine sidecar or the ONNX file,
    against what the named parser reads."""
    func = props.get("parse-bbox-func-name") or props.get("parse-bbox-instance-mask-func-name")
    if not func:
        return []
    candidates = [variant(ds_parser)] if ds_parser else variants_for(func, props.get("custom-lib-path"))
    if not candidates:
        return []  # a parser of the user's own: its contract is unknown
    outputs, source = None, ""
    engine_io = sidecar_io(sidecar) if sidecar else None
    if engine_io and engine_io[1]:
        outputs, source = engine_io[1], f"the outputs of {props['model-engine-file']} (engine sidecar)"
    elif props.get("onnx-file"):
        try:
            model_io = onnx_io(loaded.resolve(props["onnx-file"]))
        except TrtDeployError as exc:
            return [Problem(ERROR, f"onnx-file: {exc}")]
        if model_io is not None:
            outputs, source = model_io[1], f"the outputs of {props['onnx-file']}"
    if outputs is None:
        return [Problem(WARNING, f"neither the ONNX nor an engine sidecar is here: {func}'s reads not checked")]
    errors, warnings = judge_parser(candidates, outputs, source)
    classes = props.get("num-detected-classes", "").strip()
    for v in candidates:
        errors += mask_layout_problems(v.key, outputs, int(classes) if classes.isdigit() else None, source)
    return [Problem(ERROR, m) for m in errors] + [Problem(WARNING, m) for m in warnings]


def problems_as_json(problems: list[Problem]) -> str:
    return json.dumps([{"level": p.level, "message": p.message} for p in problems], indent=2)
