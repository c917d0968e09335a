"""Decrypt the ONNX payload of a TAO ``.etlt`` with NVIDIA's ``nvidia-eff-tao-encryption``.

That package ships wheels for CPython 3.10 and 3.12 on x86_64 only (and is obfuscated), so it
is never imported here: a small program runs in a subprocess of an interpreter that has it
(``--decrypt-python``, else ``python3.12`` / ``python3.10`` on PATH, else this interpreter).
The key travels on the subprocess's stdin, never on a command line or in the environment, and
the plaintext comes back on its stdout; nothing this module raises or logs contains the key.

Facts (NVIDIA/tao_tensorflow1_backend, main):
* ``nvidia_tao_tf1/encoding/encoding.py`` l.23, l.61-64, l.99-102: TAO calls
  ``eff_tao_encryption.tao_codec.encrypt_stream`` / ``decrypt_stream(in, out, key_bytes,
  encryption=True, rewind=False)`` with ``key.encode()``;
* ``internal/export/calibrator_app.py`` l.66-71 and
  ``nvidia_tao_tf1/cv/detectnet_v2/inferencer/tests/test_trt_inferencer.py`` l.129-133: an
  ``.etlt`` is ``struct.pack("<i", len(input_name))``, the input name, then the encrypted
  stream from the current position (hence ``rewind=False``);
* the library's own docstrings (``decrypt_stream.__doc__``): AES in CTR mode, key derived by
  PBKDF2, the raw 16-byte nonce first. CTR has no integrity check, so a wrong key "decrypts"
  to noise of the same length: we detect it by the result not parsing as ONNX.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from trtdeploy.errors import InputError, MissingDependencyError, UsageError
from trtdeploy.log import get_logger

log = get_logger("tao")

MODULE = "eff_tao_encryption.tao_codec"
PACKAGE = "nvidia-eff-tao-encryption"
CANDIDATES = ("python3.12", "python3.10")  # the CPython versions the package has wheels for
NONCE_BYTES = 16  # AES-CTR nonce written first by encrypt_stream (its docstring; checked in tests)
_PROBE_SECONDS = 60
_DECRYPT_SECONDS = 600

INSTALL_HINT = (
    f"{PACKAGE} (wheels for CPython 3.10/3.12 on x86_64 only) is needed to decrypt .etlt models: "
    f"python3.12 -m venv ~/.venv-tao && ~/.venv-tao/bin/pip install {PACKAGE}, then pass "
    "--decrypt-python ~/.venv-tao/bin/python (or put that python3.12 first on PATH)"
)

# Run as ``python -c``: argv[1] the .etlt, argv[2] the payload offset; the key is all of stdin.
# Exit 3: the library refused (its message on stderr, which never holds the key).
_PROGRAM = """
import sys
from eff_tao_encryption.tao_codec import decrypt_stream
key = sys.stdin.buffer.read()
with open(sys.argv[1], "rb") as src:
    src.seek(int(sys.argv[2]))
    try:
        decrypt_stream(src, sys.stdout.buffer, key, encryption=True, rewind=False)
    except (ValueError, TypeError) as exc:
        sys.stderr.write(type(exc).__name__ + ": " + str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        sys.exit(3)
sys.stdout.buffer.flush()
"""


@dataclass(frozen=True)
class Decrypter:
    python: str  # the interpreter that imports eff_tao_encryption


def _has_module(python: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", f"import {MODULE}"], stdin=subprocess.DEVNULL, capture_output=True,
            timeout=_PROBE_SECONDS, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_decrypter(python: str | Path | None = None) -> Decrypter:
    """The interpreter to decrypt with: ``python`` when given (refused, naming it, when it
    lacks the package), else the first of python3.12, python3.10 on PATH and this interpreter
    that imports the package; MissingDependencyError saying what to install when none does."""
    if python is not None:
        given = str(python)
        resolved = shutil.which(given) or (given if Path(given).is_file() else None)
        if resolved is None:
            raise UsageError(f"--decrypt-python {given} is not an executable file")
        if not _has_module(resolved):
            raise MissingDependencyError(
                f"--decrypt-python {given} cannot import {MODULE}; run {given} -m pip install {PACKAGE} "
                "(wheels for CPython 3.10/3.12 on x86_64 only)"
            )
        return Decrypter(resolved)
    seen: set[str] = set()
    for name in (*CANDIDATES, sys.executable):
        found = shutil.which(name) or (name if os.path.isfile(name) else None)
        if found is None or os.path.realpath(found) in seen:
            continue
        seen.add(os.path.realpath(found))
        if _has_module(found):
            log.debug("decrypting .etlt payloads with %s", found)
            return Decrypter(found)
    raise MissingDependencyError(INSTALL_HINT)


def decrypt_payload(decrypter: Decrypter, etlt: Path, offset: int, key: str) -> bytes:
    """The plaintext of the encrypted stream that starts at ``offset`` in ``etlt``.

    Raises InputError for a payload too short to hold the nonce (a truncated file) and for
    anything the library refuses; the key is never part of a message."""
    etlt = Path(etlt)
    if not key:
        raise UsageError("--key is empty; pass the key the model was exported with")
    size = etlt.stat().st_size - offset
    if size < NONCE_BYTES:
        raise InputError(
            f"{etlt} is truncated: its encrypted payload has {max(size, 0)} bytes, fewer than the "
            f"{NONCE_BYTES}-byte nonce every .etlt payload starts with"
        )
    try:
        done = subprocess.run(
            [decrypter.python, "-c", _PROGRAM, str(etlt), str(offset)], input=key.encode("utf-8"),
            capture_output=True, timeout=_DECRYPT_SECONDS, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"decrypting {etlt} took over {_DECRYPT_SECONDS} s; stopped") from exc
    except OSError as exc:
        raise MissingDependencyError(f"cannot run {decrypter.python}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        reason = _scrub(done.stderr.decode("utf-8", "replace"), key).strip().splitlines()
        raise InputError(
            f"{PACKAGE} could not decrypt {etlt} ({reason[-1] if reason else f'exit {done.returncode}'})"
        )
    return done.stdout


def _scrub(text: str, key: str) -> str:
    """``text`` without the key (belt and braces: the library's messages do not echo it)."""
    return text.replace(key, "<key>") if key else text


def looks_like_onnx(data: bytes) -> bool:
    """Do the first bytes read as the start of a serialized onnx.ModelProto? Protobuf writes
    fields in number order and ``ir_version`` (field 1, varint) comes first, so an ONNX
    starts 0x08, a small varint, then the tag of a later ModelProto field (onnx/onnx.proto3:
    producer_name 2, producer_version 3, domain 4, model_version 5, doc_string 6, graph 7,
    opset_import 8, metadata_props 14, training_info 20, functions 25). Noise from a wrong key
    passes with odds near 1e-5; a truncated or damaged true ONNX passes."""
    if len(data) < 3 or data[0] != 0x08 or not 1 <= data[1] <= 0x7F:
        return False
    return data[2] in {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA}


def parse_onnx_payload(data: bytes, etlt: Path) -> None:
    """Refuse a plaintext that is not an ONNX model: a wrong key, or a truncated/damaged file."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)
        # a cut at a field boundary can still parse: a whole model has all three
        ok = model.ir_version > 0 and len(model.opset_import) > 0 and len(model.graph.output) > 0
    except Exception:  # noqa: BLE001 - protobuf raises DecodeError and others for bad bytes
        ok = False
    if ok:
        return
    if looks_like_onnx(data):
        raise InputError(
            f"{etlt} decrypts to the start of an ONNX model that does not parse: the file is "
            "truncated or damaged; export or copy it again"
        )
    raise InputError(
        f"{etlt} did not decrypt to an ONNX model: wrong --key (use the key the model was "
        "exported with, the $KEY of tao export)"
    )
