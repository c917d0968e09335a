"""Calibration data pipeline speed, and CPU calibration time.

Generates N JPEGs (640x480) from scikit-image's bundled photos (trtdeploy.sample_images) into a temporary folder, then
prints images/s of a plain sequential PIL loader (open, convert, resize, to float, transpose)
and of calibration.ImageBatcher in exact and fast-decode modes. With an ONNX path it also times
CPU calibration (entropy) of that model on the same images.

Examples:
    python benchmarks/calibration.py
    python benchmarks/calibration.py --images 500 --size 300 build/ssd/model.onnx
    python benchmarks/calibration.py build/ssd/model.onnx --card build/ssd/model.deploy.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
from PIL import Image

# This script is named like the package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from trtdeploy.sample_images import write_photo_jpegs  # noqa: E402


def sequential(paths: list[Path], size: int) -> float:
    start = time.perf_counter()
    for path in paths:
        image = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)
        _ = (array - 127.5) / 127.5
    return len(paths) / (time.perf_counter() - start)


def batched(paths: list[Path], size: int, fast: bool, batch: int) -> float:
    from calibration import ImageBatcher, PreprocessSpec

    spec = PreprocessSpec(height=size, width=size, scale=1 / 127.5, offsets=(127.5,) * 3)
    start = time.perf_counter()
    count = sum(len(b) for b in ImageBatcher(paths, spec, batch_size=batch, fast_decode=fast))
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", nargs="?", help="ONNX model to calibrate on the CPU (optional)")
    parser.add_argument("--card", help="deploy card of the ONNX (default <model>.deploy.json if present)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--size", type=int, default=300, help="square network input size for the loaders")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best is printed)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photo_jpegs(Path(tmp), args.images, sizes=((640, 480),))
        print(f"{len(paths)} JPEGs 640x480 -> {args.size}x{args.size}, {os.cpu_count()} CPUs")
        sequential(paths[:20], args.size)  # warm the page cache and PIL
        # Interleaved rounds, best of each: other processes on a shared machine come and go.
        rates: dict[str, list[float]] = {"sequential": [], "exact": [], "fast": []}
        for _ in range(args.rounds):
            rates["sequential"].append(sequential(paths, args.size))
            rates["exact"].append(batched(paths, args.size, False, args.batch))
            rates["fast"].append(batched(paths, args.size, True, args.batch))
        base = max(rates["sequential"])
        print(f"best of {args.rounds} interleaved rounds (load average now {os.getloadavg()[0]:.1f})")
        print(f"sequential PIL loader:  {base:8.1f} images/s")
        for key, label in (("exact", "exact      "), ("fast", "fast-decode")):
            rate = max(rates[key])
            print(f"batcher {label}:   {rate:8.1f} images/s  ({rate / base:.2f}x; median {median(rates[key]):.1f})")
        if args.onnx:
            from calibration import PreprocessSpec, calibrate_onnx

            card = Path(args.card) if args.card else Path(args.onnx).with_name(Path(args.onnx).stem + ".deploy.json")
            if card.is_file():
                spec = PreprocessSpec.from_card_dict(json.loads(card.read_text()))
            else:
                spec = PreprocessSpec(height=args.size, width=args.size, layout="NHWC")
            start = time.perf_counter()
            result = calibrate_onnx(args.onnx, paths, spec, method="entropy", batch_size=args.batch)
            took = time.perf_counter() - start
            print(
                f"CPU entropy calibration of {Path(args.onnx).name} on {len(paths)} images: {took:.1f} s "
                f"({len(result.amax)} tensors)"
            )


if __name__ == "__main__":
    main()
