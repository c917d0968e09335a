"""Time plain tf2onnx on a whole TFOD saved model against `trtdeploy create-onnx` on the same
model, in one run, and print both and their ratio.

    .venv/bin/python benchmarks/create_onnx.py [SAVED_MODEL_DIR] [--opset 17]

Each tool runs in its own fresh Python process (both pay TensorFlow's start-up), as a user
would run them. Default model: the shared SSD MobileNet v2 320x320 fixture.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "fixtures" / "ssd_mobilenet_v2_320x320_coco17_tpu-8" / "saved_model"


def timed(cmd: list[str]) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saved_model", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    if not (args.saved_model / "saved_model.pb").is_file():
        sys.exit(f"{args.saved_model} is not a saved model folder")
    with tempfile.TemporaryDirectory() as tmp:
        ours = timed([sys.executable, "-m", "trtdeploy.cli.main", "create-onnx", "-q", "--saved-model",
                      str(args.saved_model), "-o", f"{tmp}/ours.onnx", "--opset", str(args.opset)])
        print(f"trtdeploy create-onnx          : {ours:7.1f} s", flush=True)
        plain = timed([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(args.saved_model),
                       "--output", f"{tmp}/plain.onnx", "--opset", str(args.opset)])
        print(f"tf2onnx on the whole saved model: {plain:7.1f} s")
    print(f"speed-up: {plain / ours:.1f}x  ({args.saved_model})")


if __name__ == "__main__":
    main()
