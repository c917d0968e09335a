"""``import-tao``: a TAO 5 ONNX export + its spec -> ONNX + deploy card, so the model goes
through build-engine, calibration and gen-ds-config like a converted TFOD model.

The ONNX is not changed: without an output name the card is written next to the input (the
ONNX stays where it is); with one, the same bytes are copied under that name. An input is
never written over, with or without --force.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from tao_trt.facts import ARCHITECTURES
from trtdeploy import families
from trtdeploy.deploy_card import DeployCard, card_path_for
from trtdeploy.errors import InputError, UsageError
from trtdeploy.files import check_output, sha256_file, write_text_atomic
from trtdeploy.log import get_logger

log = get_logger("tao")


@dataclass
class ImportedTao:
    onnx_path: Path
    card_path: Path
    card: DeployCard
    copied: bool  # the ONNX was copied to a new name (else the card sits next to the input)
    seconds: float


def _same_file(a: Path, b: Path) -> bool:
    return b.exists() and os.path.realpath(a) == os.path.realpath(b)


def import_tao(
    spec: Path, arch: str, onnx_path: Path, output: Path | None = None, labels_file: Path | None = None,
    force: bool = False,
) -> ImportedTao:
    """Write the deploy card of a TAO ONNX (and the ONNX under ``output``, when given)."""
    start = time.perf_counter()
    if arch not in ARCHITECTURES:
        raise UsageError(f"--arch {arch!r} is not a TAO architecture; choose one of {', '.join(ARCHITECTURES)}")
    spec, onnx_path = Path(spec), Path(onnx_path)
    for path, what in ((spec, "TAO spec"), (onnx_path, "ONNX model"), (labels_file, "labels file")):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{what} {path} not found")
    source = families.ModelSource(onnx_path, spec, arch, Path(labels_file) if labels_file else None)
    family = families.find_family(source)  # refuses what is not a TAO ONNX, naming what it is
    if output is not None and Path(output).suffix.lower() != ".onnx":
        raise UsageError(f"-o {output} must name an .onnx file (its card is <name>.deploy.json next to it)")
    output = Path(output) if output is not None else onnx_path
    copy = not _same_file(onnx_path, output)
    card_path = card_path_for(output)
    inputs = [spec, onnx_path, labels_file]
    for out in [output, card_path] if copy else [card_path]:
        check_output(out, force, inputs=inputs)
    card = family.deploy_card(family.read_config(source), None, {})
    card.validate(str(onnx_path))
    if copy:
        families.write_model(onnx_path.read_bytes(), card, output)
    else:
        card.onnx_sha256 = sha256_file(onnx_path)
        write_text_atomic(card_path, card.to_json())
    seconds = time.perf_counter() - start
    log.info("wrote %s%s in %.1f s", f"{output} and " if copy else "", card_path, seconds)
    return ImportedTao(output, card_path, card, copy, seconds)
