"""check-ds-config: run the generator's validation over an existing nvinfer config."""

from __future__ import annotations

import json
from pathlib import Path

from calibration.cache import CalibrationCache
from trtdeploy.deepstream.config import read_config, read_label_lines
from trtdeploy.deepstream.generate import read_calib_cache, read_engine_sidecar
from trtdeploy.deepstream.validate import WARNING, ConfigView, Problem, validate
from trtdeploy.deploy_card import DeployCard, card_path_for
from trtdeploy.errors import TrtDeployError


def check_ds_config(path: Path) -> list[Problem]:
    """Every problem in the config at ``path`` and the files it names that exist here.

    Files the config names but that are absent (models are often elsewhere) give a warning and
    the checks that need them are skipped.
    """
    loaded = read_config(Path(path))
    props = loaded.properties
    problems: list[Problem] = []
    labels = None
    label_problems: list[str] = []
    if "labelfile-path" in props:
        label_path = loaded.resolve(props["labelfile-path"])
        if label_path.is_file():
            labels, label_problems = read_label_lines(label_path)
        else:
            problems.append(
                Problem(WARNING, f"labels file {label_path} not found; label checks skipped")
            )

    card = None
    model = props.get("onnx-file")
    if model:
        card_path = card_path_for(loaded.resolve(model))
        if card_path.is_file():
            try:
                card = DeployCard.load(card_path)
            except TrtDeployError as exc:
                problems.append(Problem(WARNING, f"deploy card {card_path} unreadable: {exc}"))

    sidecar = None
    engine = props.get("model-engine-file")
    if engine and loaded.resolve(engine).is_file():
        try:
            sidecar = read_engine_sidecar(loaded.resolve(engine))
        except TrtDeployError as exc:
            problems.append(Problem(WARNING, str(exc)))

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
    )
    return problems + validate(view)


def problems_as_json(problems: list[Problem]) -> str:
    return json.dumps([{"level": p.level, "message": p.message} for p in problems], indent=2)
