"""``import-tao``: a TAO 5 ONNX export + its spec -> ONNX + deploy card, so the model goes
through build-engine, calibration and gen-ds-config like a converted TFOD model.

The ONNX is not changed: without an output name the card is written next to the input (the
ONNX stays where it is); with one, the same bytes are copied under that name. An input is
never written over, with or without --force.

An ``.etlt`` (``import_tao_etlt``) is decrypted in memory (``tao_trt.decrypt``), checked like
an ONNX export, and its card written next to the output name (default: the .etlt's name with
``.onnx``); the decrypted ONNX itself is written there, mode 0600, only with ``keep_decrypted``.
The key is never written, logged or put in an error.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tao_trt import decrypt
from tao_trt.etlt import read_etlt_header
from tao_trt.facts import ARCHITECTURES
from trtdeploy import families
from trtdeploy.deploy_card import DeployCard, card_path_for
from trtdeploy.errors import InputError, UnsupportedModelError, UsageError
from trtdeploy.files import atomic_path, check_output, sha256_file, write_text_atomic
from trtdeploy.log import get_logger

log = get_logger("tao")


@dataclass
class ImportedTao:
    onnx_path: Path
    card_path: Path
    card: DeployCard
    copied: bool  # the ONNX was copied to a new name (else the card sits next to the input)
    seconds: float
    decrypted: bool = False  # from an .etlt: onnx_path holds the decrypted ONNX (keep_decrypted)


def _same_file(a: Path, b: Path) -> bool:
    return b.exists() and os.path.realpath(a) == os.path.realpath(b)


def import_tao(
    spec: Path, arch: str, onnx_path: Path, output: Path | None = None, labels_file: Path | None = None,
    force: bool = False,
) -> ImportedTao:
    """Write the deploy card of a TAO ONNX (and the ONNX under ``output``, when given)."""
    start = time.perf_counter()
    spec, onnx_path = Path(spec), Path(onnx_path)
    _check_inputs(arch, spec, onnx_path, "ONNX model", labels_file, output)
    source = families.ModelSource(onnx_path, spec, arch, Path(labels_file) if labels_file else None)
    family = families.find_family(source)  # refuses what is not a TAO ONNX, naming what it is
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


def _check_inputs(
    arch: str, spec: Path, model: Path, what: str, labels_file: Path | None, output: Path | None
) -> None:
    if arch not in ARCHITECTURES:
        raise UsageError(f"--arch {arch!r} is not a TAO architecture; choose one of {', '.join(ARCHITECTURES)}")
    for path, kind in ((spec, "TAO spec"), (model, what), (labels_file, "labels file")):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{kind} {path} not found")
    if output is not None and Path(output).suffix.lower() != ".onnx":
        raise UsageError(f"-o {output} must name an .onnx file (its card is <name>.deploy.json next to it)")


def decrypt_etlt(etlt: Path, key: str, decrypt_python: Path | str | None = None) -> bytes:
    """The ONNX inside a TAO ``.etlt``, checked to parse; one-line errors for a UFF payload,
    a truncated, empty or non-etlt file, a missing decrypter and a wrong key."""
    header = read_etlt_header(Path(etlt))  # empty, truncated-header and non-etlt files
    if header.is_uff:
        raise UnsupportedModelError(
            f"{etlt} holds a UFF model (input {header.input_name!r}): TensorRT >= 10 has no UFF parser, "
            "so it cannot be built; re-export the model to ONNX with TAO 5 (tao model <arch> export)"
        )
    if not key:
        raise UsageError("an .etlt needs --key (the key the model was exported with)")
    decrypter = decrypt.find_decrypter(decrypt_python)
    data = decrypt.decrypt_payload(decrypter, Path(etlt), header.payload_offset, key)
    decrypt.parse_onnx_payload(data, Path(etlt))
    return data


def import_tao_etlt(
    spec: Path, arch: str, etlt: Path, key: str, output: Path | None = None, labels_file: Path | None = None,
    force: bool = False, keep_decrypted: bool = False, decrypt_python: Path | str | None = None,
) -> ImportedTao:
    """Decrypt a TAO ``.etlt`` (ONNX inside) and write the card of its ONNX next to ``output``
    (default ``<etlt stem>.onnx``); the ONNX itself is written there (mode 0600) only with
    ``keep_decrypted``."""
    start = time.perf_counter()
    spec, etlt = Path(spec), Path(etlt)
    _check_inputs(arch, spec, etlt, ".etlt model", labels_file, output)
    output = Path(output) if output is not None else etlt.with_suffix(".onnx")
    card_path = card_path_for(output)
    inputs = [spec, etlt, labels_file]
    for out in [output, card_path] if keep_decrypted else [card_path]:
        check_output(out, force, inputs=inputs)
    data = decrypt_etlt(etlt, key, decrypt_python)
    labels = Path(labels_file) if labels_file else None
    # The family reads files: the plaintext goes to a private folder (0700, file 0600) for the
    # few seconds the card takes, and is removed whatever happens.
    with tempfile.TemporaryDirectory(prefix="trtdeploy-etlt-") as private:
        plain = Path(private) / f"{output.stem}.onnx"
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        source = families.ModelSource(plain, spec, arch, labels)
        family = families.find_family(source)
        card = family.deploy_card(family.read_config(source), None, {})
        card.provenance.source_files["etlt"] = sha256_file(etlt)
        card.onnx_sha256 = sha256_file(plain)
    card.validate(str(etlt))
    if keep_decrypted:
        with atomic_path(output) as tmp:
            os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)  # decrypted model: owner-only, before any byte
            Path(tmp).write_bytes(data)
            write_text_atomic(card_path, card.to_json())
    else:
        write_text_atomic(card_path, card.to_json())
        log.info("the decrypted ONNX was not kept; pass --keep-decrypted to write %s (mode 0600) for build-engine", output)
    seconds = time.perf_counter() - start
    log.info("wrote %s%s in %.1f s", f"{output} and " if keep_decrypted else "", card_path, seconds)
    return ImportedTao(output, card_path, card, False, seconds, decrypted=keep_decrypted)
