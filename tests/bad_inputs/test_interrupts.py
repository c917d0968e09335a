"""Ctrl-C (issue 11): exit 130 with one line, helper threads joined before the interpreter exits,
no partial output. (Before: one Ctrl-C during `calib calibrate --qdq-onnx` aborted with
"terminate called without an active exception", exit 134.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from trtdeploy.cli.common import user_errors


class _Session:
    """Stands for an ONNX Runtime session: native threads that must stop before the interpreter
    tears down."""

    released: list[str] = []

    def __del__(self) -> None:
        self.released.append("session")


def test_interrupt_releases_what_the_interrupted_frames_hold() -> None:
    """The Exit(130) that leaves user_errors() keeps the KeyboardInterrupt as its context, and
    its traceback the interrupted frames: their locals must be released right away, not at
    interpreter teardown."""

    def calibrate() -> None:
        session = _Session()  # noqa: F841 - held by this frame only
        raise KeyboardInterrupt  # Ctrl-C while it runs

    _Session.released.clear()
    with pytest.raises(typer.Exit) as exit_info:
        with user_errors():
            calibrate()
    assert exit_info.value.exit_code == 130
    assert exit_info.value.__context__ is not None  # the traceback chain is still reachable ...
    assert _Session.released == ["session"], "... but the interrupted frame's session must be gone"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc to see when calibration runs")
def test_ctrl_c_during_calibration_exits_130_without_files(tmp_path: Path) -> None:
    from PIL import Image

    from tests.calibration.calib_helpers import conv_net
    from tests.engine.conftest import write_card

    model = conv_net(tmp_path / "net.onnx", size=96)
    write_card(model, name="x", shape=(-1, 3, 96, 96))
    images = tmp_path / "imgs"
    images.mkdir()
    tile = Image.frombytes("RGB", (32, 32), bytes(range(256)) * 12)
    for index in range(3000):  # far more work than the 4 s before Ctrl-C, on any machine
        tile.save(images / f"{index:04d}.jpg", quality=80)
    out = tmp_path / "out"
    out.mkdir()
    command = [
        sys.executable, "-m", "trtdeploy.cli.main", "calib", "calibrate", str(model), "-i", str(images),
        "-o", str(out / "n.cache"), "--qdq-onnx", str(out / "q.onnx"), "--calib-num", "3000", "-b", "2",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a shell job may ignore it
    )
    # Ctrl-C once calibration runs: ONNX Runtime (imported inside calibrate_onnx) is mapped, then 1 s
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if "onnxruntime" in maps.read_text(errors="replace"):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    assert process.poll() is None, "calibration ended before Ctrl-C: give it more images"
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 130, output
    assert "terminate called" not in output and "Traceback" not in output, output
    assert output.strip().splitlines()[-1].strip() == "interrupted", output
    assert sorted(p.name for p in out.iterdir()) == [], "an interrupted run left files behind"
