"""Regenerate the README's `infer` picture: the trained shapes fixture, converted to ONNX, on
three of its validation images, drawn by `trtdeploy infer`, side by side in one PNG.

Examples:
    python examples/make_readme_picture.py                      # -> docs/images/infer_example.png
    python examples/make_readme_picture.py --onnx build/demo/trained.onnx -o build/demo/infer_example.png --force
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRTDEPLOY_TEST_DATA", REPO.parent / "shared"))
FIXTURE = DATA / "fixtures" / "ssd_mobilenet_v2_035_shapes_256"
# a light, a dark and a textured background (looked at when the picture was first made)
IMAGES = ("val_00000.jpg", "val_00026.jpg", "val_00002.jpg")
GAP = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", type=Path, help="the fixture already converted by create-onnx (else converted here)")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "images" / "infer_example.png")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--force", action="store_true", help="overwrite the output")
    args = parser.parse_args()

    from trtdeploy.errors import TrtDeployError
    from trtdeploy.files import atomic_path, check_output
    from trtdeploy.inference import infer_images
    from trtdeploy.runners import open_runner

    try:
        check_output(args.output, args.force)
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = args.onnx
            if onnx_path is None:
                from tfod_trt.create_onnx import CreateOnnxOptions, create_onnx

                onnx_path = Path(tmp) / "trained.onnx"
                create_onnx(CreateOnnxOptions(saved_model=FIXTURE / "saved_model", output=onnx_path,
                                              label_map=FIXTURE / "label_map.pbtxt"))
            images = Path(tmp) / "images"
            images.mkdir()
            for name in IMAGES:
                (images / name).write_bytes((FIXTURE / "val" / name).read_bytes())
            out = Path(tmp) / "out"
            summary = infer_images(open_runner(onnx_path), images, out, args.threshold)
            drawn = [Image.open(out / f"{Path(name).stem}.png").convert("RGB") for name in IMAGES]
            width = sum(d.width for d in drawn) + GAP * (len(drawn) - 1)
            canvas = Image.new("RGB", (width, max(d.height for d in drawn)), (255, 255, 255))
            x = 0
            for picture in drawn:
                canvas.paste(picture, (x, 0))
                x += picture.width + GAP
            args.output.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(args.output) as target:
                canvas.save(target, format="PNG", optimize=True)
    except TrtDeployError as exc:
        sys.exit(f"error: {exc}")
    print(f"wrote {args.output}: {summary.images} images, {summary.detections} detections (score >= {args.threshold})")


if __name__ == "__main__":
    main()
