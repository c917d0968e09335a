"""import-tao --etlt: TAO .etlt intake (issue 16 item 1).

The round trip encrypts a TAO-shaped ONNX with nvidia-eff-tao-encryption's own encrypt_stream
(as TAO's exporter calls it: NVIDIA/tao_tensorflow1_backend main, nvidia_tao_tf1/encoding/
encoding.py l.61-64, header as in nvidia_tao_tf1/cv/detectnet_v2/inferencer/tests/
test_trt_inferencer.py l.129-133) in an interpreter that has the package, and runs only where
one exists ($TRTDEPLOY_TAO_PYTHON, <repo>/.venv-tao/bin/python, or python3.12/3.10 on PATH).
The error cases that need no decrypter (UFF, empty, truncated header, not an .etlt) always run.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tao_trt import decrypt
from tests.data import REPO
from tests.deepstream.ds_helpers import SPECS, need_reference, set_field, set_target_classes
from tests.deepstream.test_tao_reference_configs import FRCNN_NMS, KITTI4, typed_onnx
from trtdeploy.cli import import_tao
from trtdeploy.deploy_card import DeployCard

KEY = "k3y-Zq8!tao-SECRET-7731"  # distinctive: grepped for in every output and the log
app = typer.Typer()
import_tao.register(app)
app.command("noop", hidden=True)(lambda: None)  # two commands: typer keeps the command name


def _tao_python() -> str | None:
    given = os.environ.get("TRTDEPLOY_TAO_PYTHON")
    if given:
        return given
    local = REPO / ".venv-tao" / "bin" / "python"
    if local.is_file() and decrypt._has_module(str(local)):
        return str(local)
    try:
        return decrypt.find_decrypter().python
    except Exception:  # noqa: BLE001 - none installed: the round-trip tests skip
        return None


@pytest.fixture(scope="module")
def tao_python() -> str:
    python = _tao_python()
    if python is None:
        pytest.skip(f"no Python with {decrypt.PACKAGE} (CPython 3.10/3.12 x86_64 only): {decrypt.INSTALL_HINT}")
    return python


_ENCRYPT = """
import sys
from eff_tao_encryption.tao_codec import encrypt_stream
key = sys.stdin.buffer.read()
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "ab") as dst:
    encrypt_stream(src, dst, key, encryption=True, rewind=False)
"""


def make_etlt(python: str, onnx_path: Path, etlt: Path, key: str, input_name: str = "") -> Path:
    """An .etlt as TAO writes it: <i name length, name, the library's encrypted stream."""
    etlt.write_bytes(struct.pack("<i", len(input_name)) + input_name.encode())
    subprocess.run([python, "-c", _ENCRYPT, str(onnx_path), str(etlt)], input=key.encode(), check=True, timeout=120)
    return etlt


@pytest.fixture(scope="module")
def frcnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The TAO FasterRCNN spec (KITTI classes, 544x960) and a tiny ONNX with its I/O."""
    need_reference()
    folder = tmp_path_factory.mktemp("frcnn")
    text = set_target_classes((SPECS / "faster_rcnn/specs/default_spec_resnet18.txt").read_text(), KITTI4)
    spec = folder / "spec.txt"
    spec.write_text(set_field(set_field(text, "height", 544), "width", 960))
    return spec, typed_onnx(folder / "frcnn.onnx", "input_image", [-1, 3, 544, 960], FRCNN_NMS)


def _run(*args: object, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["import-tao", *(str(a) for a in args)], env=env)


def _fails(result, *words: str) -> str:
    """A one-line error, exit 1, naming ``words``, without the key or a traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    text = " ".join(line.strip() for line in lines)
    assert "Traceback" not in result.output and KEY not in result.output
    for word in words:
        assert word in text, (word, text)
    return text


def _no_key_anywhere(folder: Path, *texts: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    for text in texts:
        assert KEY not in text


def test_round_trip_keeps_the_onnx_bytes_and_never_writes_the_key(
    tmp_path: Path, frcnn: tuple[Path, Path], tao_python: str
) -> None:
    spec, onnx_path = frcnn
    etlt = make_etlt(tao_python, onnx_path, tmp_path / "frcnn.etlt", KEY)
    assert onnx_path.read_bytes()[:64] not in etlt.read_bytes()  # really encrypted
    env = {"TRTDEPLOY_TAO_KEY": KEY, "TRTDEPLOY_TAO_PYTHON": tao_python}
    # without --keep-decrypted: the card only, next to the .etlt
    first = _run(spec, "--arch", "faster_rcnn", "--etlt", etlt, "-v", env=env)
    assert first.exit_code == 0, first.output
    assert not (tmp_path / "frcnn.onnx").exists()
    card = DeployCard.load(tmp_path / "frcnn.deploy.json")
    # with it: the decrypted ONNX (the same bytes, owner-only) and its card at -o
    out = tmp_path / "models" / "frcnn_plain.onnx"
    second = _run(spec, "--arch", "faster_rcnn", "--etlt", etlt, "--keep-decrypted", "-o", out, "-vv", env=env)
    assert second.exit_code == 0, second.output
    assert out.read_bytes() == onnx_path.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600
    kept = DeployCard.load(out.with_name("frcnn_plain.deploy.json"))
    # the card is the one --onnx gives for the same ONNX, plus the .etlt's hash
    plain = _run(spec, "--arch", "faster_rcnn", "--onnx", onnx_path, "-o", tmp_path / "ref" / "frcnn.onnx")
    assert plain.exit_code == 0, plain.output
    ref = DeployCard.load(tmp_path / "ref" / "frcnn.deploy.json")
    for got in (card, kept):
        assert got.onnx_sha256 == ref.onnx_sha256
        assert got.provenance.source_files["etlt"] != got.provenance.source_files["onnx"]
        got.provenance.source_files.pop("etlt")
        assert got.to_dict() == ref.to_dict()
    # the log goes to the console, captured in .output: its lines are there (the check is not vacuous)
    assert "--keep-decrypted" in first.output and "wrote" in second.output
    _no_key_anywhere(tmp_path, first.output, second.output)


def test_wrong_key_is_reported_as_such(tmp_path: Path, frcnn: tuple[Path, Path], tao_python: str) -> None:
    spec, onnx_path = frcnn
    etlt = make_etlt(tao_python, onnx_path, tmp_path / "m.etlt", KEY)
    result = _run(spec, "--arch", "faster_rcnn", "--etlt", etlt, "--key", "not-the-key",
                  "--decrypt-python", tao_python)
    _fails(result, "wrong --key")
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / "m.onnx").exists()


def test_truncated_payloads_are_named_truncated(tmp_path: Path, frcnn: tuple[Path, Path], tao_python: str) -> None:
    spec, onnx_path = frcnn
    whole = make_etlt(tao_python, onnx_path, tmp_path / "whole.etlt", KEY).read_bytes()
    env = {"TRTDEPLOY_TAO_KEY": KEY, "TRTDEPLOY_TAO_PYTHON": tao_python}
    cut = tmp_path / "cut.etlt"
    cut.write_bytes(whole[: len(whole) * 2 // 3])  # mid-model: decrypts to a prefix of the ONNX
    _fails(_run(spec, "--arch", "faster_rcnn", "--etlt", cut, env=env), "truncated or damaged")
    cut.write_bytes(whole[: 4 + 10])  # within the 16-byte nonce
    _fails(_run(spec, "--arch", "faster_rcnn", "--etlt", cut, env=env), "truncated", "nonce")


def test_encrypted_stream_starts_with_a_16_byte_nonce(tmp_path: Path, tao_python: str) -> None:
    """decrypt.NONCE_BYTES: the library's output is the plaintext length plus 16 bytes."""
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 5)
    etlt = make_etlt(tao_python, data, tmp_path / "d.etlt", KEY)
    assert etlt.stat().st_size - 4 == data.stat().st_size + decrypt.NONCE_BYTES
    plain = decrypt.decrypt_payload(decrypt.Decrypter(tao_python), etlt, 4, KEY)
    assert plain == data.read_bytes()


# ---- errors found before decrypting (no decrypter needed) ----------------------------------


def test_uff_payload_is_refused_with_reason_and_remedy(tmp_path: Path, frcnn: tuple[Path, Path]) -> None:
    spec, _ = frcnn
    etlt = tmp_path / "uff.etlt"
    etlt.write_bytes(struct.pack("<i", 11) + b"input_image" + os.urandom(64))
    text = _fails(_run(spec, "--arch", "faster_rcnn", "--etlt", etlt, "--key", KEY), "UFF", "no UFF parser", "TAO 5")
    assert "input_image" in text


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ("empty (0 bytes)",)),
        (b"\x05\x00", ("too short",)),
        (struct.pack("<i", 40) + b"input", ("truncated", "40 bytes")),
        (b"some text that is not a model\n" * 4, ("is not an .etlt model",)),
        (b"\x08\x07\x12\x07pytorch" + b"\x00" * 40, ("is not an .etlt model", "pass it with --onnx")),
    ],
    ids=["zero-byte", "short", "truncated-header", "text", "onnx"],
)
def test_broken_files_give_one_line_errors(tmp_path: Path, frcnn: tuple[Path, Path], content: bytes, words: tuple[str, ...]) -> None:
    spec, _ = frcnn
    etlt = tmp_path / "m.etlt"
    etlt.write_bytes(content)
    _fails(_run(spec, "--arch", "faster_rcnn", "--etlt", etlt, "--key", KEY), *words)


def test_no_decrypter_says_what_to_install(tmp_path: Path, frcnn: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec, _ = frcnn
    etlt = tmp_path / "m.etlt"
    etlt.write_bytes(struct.pack("<i", 0) + os.urandom(64))
    # a Python without the package, given explicitly
    text = _fails(_run(spec, "--arch", "faster_rcnn", "--etlt", etlt, "--key", KEY, "--decrypt-python", sys.executable),
                  "cannot import eff_tao_encryption", f"pip install {decrypt.PACKAGE}")
    assert sys.executable in text
    # none on PATH (and this interpreter lacks it, or the test would not be meaningful)
    if decrypt._has_module(sys.executable):
        pytest.skip("this interpreter has the package: the none-found case cannot be shown here")
    monkeypatch.setenv("PATH", str(tmp_path))
    _fails(_run(spec, "--arch", "faster_rcnn", "--etlt", etlt, "--key", KEY), decrypt.PACKAGE, "python3.12 -m venv")


def test_option_mistakes_exit_2(tmp_path: Path, frcnn: tuple[Path, Path]) -> None:
    spec, onnx_path = frcnn
    both = _run(spec, "--arch", "faster_rcnn", "--etlt", tmp_path / "x.etlt", "--onnx", onnx_path)
    assert both.exit_code == 2 and "exactly one of" in both.output
    stray = _run(spec, "--arch", "faster_rcnn", "--onnx", onnx_path, "--key", KEY)
    assert stray.exit_code == 2 and KEY not in stray.output
    etlt = tmp_path / "m.etlt"
    etlt.write_bytes(struct.pack("<i", 0) + os.urandom(64))
    nokey = _run(spec, "--arch", "faster_rcnn", "--etlt", etlt, env={"TRTDEPLOY_TAO_KEY": ""})
    assert nokey.exit_code == 2 and "--key" in nokey.output


def test_looks_like_onnx_tells_a_model_start_from_noise(frcnn: tuple[Path, Path]) -> None:
    import random

    _, onnx_path = frcnn
    data = onnx_path.read_bytes()
    assert decrypt.looks_like_onnx(data) and decrypt.looks_like_onnx(data[:40])
    rng = random.Random(16)
    noise = [bytes(rng.randrange(256) for _ in range(8)) for _ in range(3000)]
    assert sum(decrypt.looks_like_onnx(n) for n in noise) == 0


def test_an_etlt_given_with_onnx_points_to_etlt(tmp_path: Path, frcnn: tuple[Path, Path]) -> None:
    spec, _ = frcnn
    etlt = tmp_path / "m.etlt"
    etlt.write_bytes(struct.pack("<i", 0) + os.urandom(64))
    result = _run(spec, "--arch", "faster_rcnn", "--onnx", etlt)
    assert result.exit_code != 0 and "--etlt" in result.output and "--key" in result.output
