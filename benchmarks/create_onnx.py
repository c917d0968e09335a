"""Time plain tf2onnx on a whole TFOD saved model against `trtdeploy create-onnx` on the same
model, in one run, and print both and their ratio.

    .venv/bin/python benchmarks/create_onnx.py [SAVED_MODEL_DIR] [--opset 17] [--nms onnx]
    .venv/bin/python benchmarks/create_onnx.py --automl      # the AutoML EfficientDet-D0 fixture
    .venv/bin/python benchmarks/create_onnx.py --frcnn       # the Faster R-CNN fixture (--nms onnx)

Each tool runs in its own fresh Python process (both pay TensorFlow's start-up), as a user
would run them. Default model: the shared SSD MobileNet v2 320x320 fixture. For an AutoML
EfficientDet export the baseline is the tf2onnx efficientdet tutorial's whole-model conversion
(tfod_trt.automl.tutorial: tf2onnx's from_graph_def at opset 12 on the serving graph with hard
NMS, since tf2onnx refuses the export's soft-NMS), against create-onnx at --opset.
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
AUTOML = REPO.parent / "shared" / "fixtures" / "automl_efficientdet_d0" / "saved_model"
FRCNN = REPO.parent / "shared" / "fixtures" / "faster_rcnn_resnet50_v1_640x640_coco17_tpu-8" / "saved_model"


def timed(cmd: list[str]) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("saved_model", nargs="?", type=Path, default=None)
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--nms", default=None, choices=("efficient", "onnx", "batched", "none"),
                        help="create-onnx's head (default: its own; onnx with --frcnn)")
    parser.add_argument("--automl", action="store_true", help="benchmark the AutoML EfficientDet-D0 fixture")
    parser.add_argument("--frcnn", action="store_true", help="benchmark the Faster R-CNN ResNet50 640 fixture")
    args = parser.parse_args()
    args.saved_model = args.saved_model or (AUTOML if args.automl else FRCNN if args.frcnn else DEFAULT)
    nms = args.nms or ("onnx" if args.frcnn else None)
    if not (args.saved_model / "saved_model.pb").is_file():
        sys.exit(f"{args.saved_model} is not a saved model folder")
    with tempfile.TemporaryDirectory() as tmp:
        ours = timed([sys.executable, "-m", "trtdeploy.cli.main", "create-onnx", "-q", "--saved-model",
                      str(args.saved_model), "-o", f"{tmp}/ours.onnx", "--opset", str(args.opset),
                      *(["--nms", nms] if nms else [])])
        print(f"trtdeploy create-onnx          : {ours:7.1f} s", flush=True)
        if _is_automl(args.saved_model):
            script = ("import sys; from pathlib import Path; from tfod_trt.automl.tutorial import tutorial_onnx; "
                      "tutorial_onnx(Path(sys.argv[1]), Path(sys.argv[2]))")
            plain = timed([sys.executable, "-c", script, str(args.saved_model), f"{tmp}/plain.onnx"])
            print(f"tf2onnx tutorial, whole model   : {plain:7.1f} s")
        else:
            plain = timed([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(args.saved_model),
                           "--output", f"{tmp}/plain.onnx", "--opset", str(args.opset)])
            print(f"tf2onnx on the whole saved model: {plain:7.1f} s")
    print(f"speed-up: {plain / ours:.1f}x  ({args.saved_model})")


def _is_automl(saved_model: Path) -> bool:
    sys.path.insert(0, str(REPO))
    from tfod_trt.automl.hparams import is_automl_export

    return is_automl_export(saved_model)


if __name__ == "__main__":
    main()
