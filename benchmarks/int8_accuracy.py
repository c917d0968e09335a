"""What FP16 and INT8 cost in COCO mAP on the trained shapes fixture (ONNX Runtime, CPU).

Converts ``ssd_mobilenet_v2_035_shapes_256`` with create-onnx (``--nms efficient``), makes the
FP16 ONNX (trtdeploy.engine.fp16) and Q/DQ INT8 ONNX variants with the calibration package on
synthetic calibration images (tests/calibration/shapes_generator.py: shapes on scikit-image
photos, not the val images), and prints mAP@[.5:.95] of each on the fixture's ``val/`` set with
the delta to FP32. ``--modelopt PYTHON`` adds NVIDIA ModelOpt's ONNX quantiser on the same images,
run by a Python that has ``nvidia-modelopt[onnx]`` (it needs numpy 2 and torch, which TensorFlow
2.15 cannot share a venv with).

Examples:
    python benchmarks/int8_accuracy.py
    python benchmarks/int8_accuracy.py --calib-images 500 --variants entropy,percentile
    python benchmarks/int8_accuracy.py --work /tmp/int8 --modelopt /opt/modelopt-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# This folder holds a script named like the calibration package: keep it off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIXTURE = "ssd_mobilenet_v2_035_shapes_256"


def with_card(onnx_path: Path, card: Path) -> Path:
    """Put the FP32 model's deploy card next to a derived ONNX (same input, outputs, preprocessing)."""
    import shutil

    from trtdeploy.deploy_card import card_path_for

    if card_path_for(onnx_path) != card:
        shutil.copyfile(card, card_path_for(onnx_path))
    return onnx_path


def convert(fixture: Path, out: Path, nms: str = "efficient") -> Path:
    """create-onnx of the fixture (reused when ``out`` exists)."""
    if not out.exists():
        from tfod_trt.create_onnx import CreateOnnxOptions, create_onnx

        create_onnx(
            CreateOnnxOptions(
                saved_model=fixture / "saved_model", label_map=fixture / "label_map.pbtxt", output=out, nms=nms
            )
        )
    return out


def write_fp16(onnx_path: Path, out: Path) -> Path:
    import onnx

    if out.exists():
        return out

    from trtdeploy.engine.fp16 import convert_to_fp16

    fp16, _ = convert_to_fp16(onnx.load(str(onnx_path)))
    onnx.save(fp16, str(out))
    return out


def write_int8_variants(onnx_path: Path, card_path: Path, images: list[Path], work: Path, methods: list[str]) -> dict[str, Path]:
    """One CPU calibration pass (histograms kept), then one Q/DQ ONNX per range method, plus
    "entropy, no saturation rule": TensorRT's KL search alone, as before the fix in
    calibration.ranges (what the shapes SSD lost 0.072 mAP with)."""
    from calibration import PreprocessSpec, calibrate_onnx, write_qdq_onnx
    from calibration.ranges import CalibrationMethod, amax_from, entropy_bin

    spec = PreprocessSpec.from_card_dict(json.loads(card_path.read_text()))
    outputs = {f"INT8 {m}": work / f"model_int8_{m}.onnx" for m in methods}
    outputs["INT8 entropy, no saturation rule"] = work / "model_int8_entropy_kl_only.onnx"
    if all(p.exists() for p in outputs.values()):  # a --work folder keeps them: delete one to redo
        return outputs
    start = time.perf_counter()
    result = calibrate_onnx(onnx_path, images, spec, CalibrationMethod.ENTROPY)
    print(f"calibrated on {result.num_images} images in {time.perf_counter() - start:.0f} s")
    hists = result.histograms
    for method in methods:
        amax = {n: amax_from(h, CalibrationMethod(method)) for n, h in hists.items()}
        write_qdq_onnx(onnx_path, outputs[f"INT8 {method}"], amax)
    kl_only = {n: min((entropy_bin(h.counts) + 0.5) * h.bin_width, h.max) if h.range else 1e-8 for n, h in hists.items()}
    write_qdq_onnx(onnx_path, outputs["INT8 entropy, no saturation rule"], kl_only)
    return outputs


def write_modelopt(onnx_path: Path, card_path: Path, images: list[Path], out: Path, python: str) -> Path:
    """NVIDIA ModelOpt's ONNX quantiser with its own entropy calibration (CPU execution provider,
    float32 kept where it does not quantize) on the same images, run by ``python`` (ModelOpt
    needs numpy 2 and torch: keep it in its own venv). ``onnx_path`` must have no plugin node
    (ModelOpt calibrates the whole graph with ONNX Runtime): the ``--nms none`` conversion."""
    import subprocess

    from calibration import ImageBatcher, PreprocessSpec

    if out.exists():
        return out
    spec = PreprocessSpec.from_card_dict(json.loads(card_path.read_text()))
    data = out.with_suffix(".calib.npy")
    np.save(data, np.concatenate(list(ImageBatcher(images, spec, 8))))
    script = (
        "import sys, numpy; from modelopt.onnx.quantization import quantize; "
        "quantize(sys.argv[1], quantize_mode='int8', calibration_data=numpy.load(sys.argv[2]), "
        "calibration_method='entropy', calibration_eps=['cpu'], high_precision_dtype='fp32', output_path=sys.argv[3])"
    )
    subprocess.run([python, "-c", script, str(onnx_path), str(data), str(out)], check=True)
    data.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--calib-images", type=int, default=500)
    parser.add_argument("--variants", default="entropy,minmax,percentile", help="comma-separated range methods")
    parser.add_argument("--modelopt", metavar="PYTHON", help="also NVIDIA ModelOpt's quantiser, run by this Python")
    args = parser.parse_args()

    from tests.calibration.shapes_generator import write_shapes_jpegs
    from tests.data import fixtures_root

    fixture = fixtures_root() / FIXTURE
    val = fixture / "val"
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        fp32 = convert(fixture, work / "model.onnx")
        card = fp32.with_suffix(".deploy.json")
        images = write_shapes_jpegs(work / "calib", args.calib_images)
        models = {"FP32": fp32, "FP16": write_fp16(fp32, work / "model_fp16.onnx")}
        models.update(write_int8_variants(fp32, card, images, work, args.variants.split(",")))
        cards = dict.fromkeys(models, card)
        if args.modelopt:
            # ModelOpt runs the whole graph in ONNX Runtime: give it the --nms none conversion; the
            # runner then applies the same EfficientNMS reference outside the graph
            raw = convert(fixture, work / "model_none.onnx", nms="none")
            raw_card = raw.with_suffix(".deploy.json")
            models["FP32, --nms none"] = raw
            models["INT8 ModelOpt, --nms none"] = write_modelopt(
                raw, raw_card, images, work / "model_int8_modelopt.onnx", args.modelopt
            )
            cards.update(dict.fromkeys(["FP32, --nms none", "INT8 ModelOpt, --nms none"], raw_card))
        from trtdeploy.evaluation import evaluate_model

        rows = {}
        for name, path in models.items():
            rows[name] = evaluate_model(with_card(path, cards[name]), val, val / "instances_val.json")
        base = rows["FP32"]["AP"]
        print(f"{'model':<34} {'mAP':>6} {'mAP50':>6} {'mAP75':>6} {'delta':>7}")
        for name, row in rows.items():
            print(f"{name:<34} {row['AP']:6.3f} {row['AP50']:6.3f} {row['AP75']:6.3f} {row['AP'] - base:+7.3f}")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
