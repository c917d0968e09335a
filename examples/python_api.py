"""The pipeline from Python, as a notebook would run it: the functions the CLI commands call.

    .venv/bin/python examples/python_api.py [-o OUT_DIR]

On the bundled SSD: create-onnx (EfficientNMS head, DeepStream outputs) -> compare with
TensorFlow on two photos -> a TensorRT-RTX engine of the plugin-free variant -> the nvinfer
config, checked -> a CPU dry run of gst-nvinfer with it. Takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from tfod_trt.create_onnx import CreateOnnxOptions, create_onnx
from tfod_trt.runner import TfodRunner
from trtdeploy.deepstream import check_ds_config
from trtdeploy.deepstream.dry_run import DryRun, NvInferSetup, load_images
from trtdeploy.deepstream.generate import DsOptions, gen_ds_config
from trtdeploy.engine import BuildOptions, build_engine
from trtdeploy.runners import OnnxRuntimeRunner
from trtdeploy.sample_images import resize_for_model, sample_photos
from trtdeploy.verify import Tolerance, compare, run_batched

MODEL = Path(__file__).resolve().parent / "models" / "ssd_mobilenet_v2_035_5class_300"


def main(out: Path) -> None:
    saved_model, labels = MODEL / "saved_model", MODEL / "label_map.pbtxt"

    # create-onnx: the ONNX and its deploy card (result.card), here shaped for DeepStream
    ds = create_onnx(CreateOnnxOptions(saved_model=saved_model, label_map=labels, output=out / "ds.onnx",
                                       output_layout="deepstream", score_threshold=0.3, force=True))

    # verify: both on the same pixels, detections matched by class and IoU
    tfod = create_onnx(CreateOnnxOptions(saved_model=saved_model, label_map=labels, output=out / "model.onnx",
                                         score_threshold=0.3, force=True))
    h, w = tfod.card.input.shape[1:3]
    pixels = np.stack([resize_for_model(img, h, w, "stretch") for _, img in sample_photos(2)])
    onnx_runner = OnnxRuntimeRunner(tfod.onnx_path, tfod.card)  # a batch-1 ONNX: one image at a time
    stats = compare(TfodRunner(saved_model).detections(pixels), run_batched(onnx_runner.detections, pixels, 1),
                    Tolerance(iou=0.99, min_matched=0.99, score=1e-3, score_threshold=0.3))
    print(f"verify: {stats.matched}/{stats.reference} matched, max score difference {stats.max_score_diff:.2g}")

    # build-engine: TensorRT-RTX builds on this CPU; --nms none has no plugin
    raw = create_onnx(CreateOnnxOptions(saved_model=saved_model, label_map=labels, output=out / "raw.onnx",
                                        nms="none", force=True))
    engine = build_engine(raw.onnx_path, BuildOptions(precision="fp16", backend="tensorrt_rtx", force=True))
    print(f"build-engine: {engine.engine_path.name} ({engine.sidecar.engine_bytes / 1e6:.1f} MB)")

    # gen-ds-config + check-ds-config, then ds-run's dry run of nvinfer with that config
    config = gen_ds_config(ds.card, ds.onnx_path, out / "deepstream", DsOptions(name="ds"), force=True).paths[0]
    errors = [p for p in check_ds_config(config) if p.level == "error"]
    frames = DryRun(NvInferSetup.from_config(config)).run(load_images(None, 2))
    print(f"gen-ds-config: {config.name}, {len(errors)} errors; ds-run: {sum(len(f.objects) for f in frames)} objects")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
