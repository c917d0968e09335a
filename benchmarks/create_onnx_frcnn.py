"""Time `trtdeploy create-onnx` on the shared Faster R-CNN fixture against plain tf2onnx on the
whole saved model, in one run, and print both and their ratio.

    .venv/bin/python benchmarks/create_onnx_frcnn.py [SAVED_MODEL_DIR] [--opset 17] [--nms onnx]
    .venv/bin/python benchmarks/create_onnx_frcnn.py --verify     # the issue's 8-photo check

Each tool runs in its own fresh Python process, as a user would run it (benchmarks/create_onnx.py's
``timed``). create-onnx converts only the two networks the surgery keeps (tfod_trt.two_stage);
tf2onnx converts the whole serving graph, both NMS loops included. ``--verify`` runs
tests/tfod/test_faster_rcnn.py with TRTDEPLOY_FRCNN_PHOTOS=8 (every head, batch 1 and dynamic, 8
photos; about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from create_onnx import timed  # noqa: E402 - the shared timer of benchmarks/create_onnx.py

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "fixtures" / "faster_rcnn_resnet50_v1_640x640_coco17_tpu-8" / "saved_model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("saved_model", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--nms", default="onnx", choices=("efficient", "onnx", "none"))
    parser.add_argument("--verify", action="store_true", help="run the 8-photo TensorFlow comparison instead")
    args = parser.parse_args()
    if args.verify:
        env = dict(os.environ, TRTDEPLOY_FRCNN_PHOTOS="8", TF_CPP_MIN_LOG_LEVEL="2")
        test = str(REPO / "tests" / "tfod" / "test_faster_rcnn.py")
        sys.exit(subprocess.run([sys.executable, "-m", "pytest", "-q", test, "--durations=0"], env=env, cwd=REPO).returncode)
    if not (args.saved_model / "saved_model.pb").is_file():
        sys.exit(f"{args.saved_model} is not a saved model folder")
    with tempfile.TemporaryDirectory() as tmp:
        ours = timed([sys.executable, "-m", "trtdeploy.cli.main", "create-onnx", "-q", "--saved-model",
                      str(args.saved_model), "-o", f"{tmp}/ours.onnx", "--opset", str(args.opset), "--nms", args.nms])
        print(f"trtdeploy create-onnx --nms {args.nms:<9}: {ours:7.1f} s", flush=True)
        plain = timed([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(args.saved_model),
                       "--output", f"{tmp}/plain.onnx", "--opset", str(args.opset)])
        print(f"tf2onnx on the whole saved model    : {plain:7.1f} s")
    print(f"speed-up: {plain / ours:.1f}x  ({args.saved_model})")


if __name__ == "__main__":
    main()
