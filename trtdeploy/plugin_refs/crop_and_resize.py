"""CropAndResizeDynamic (v2) on a CPU, as its CUDA kernel computes it.

Semantics from NVIDIA/TensorRT release/10.16 plugin/common/kernels/cropAndResizeKernel.cu
l.26-107 (``cropAndResizeKernel``) and plugin/cropAndResizePlugin/cropAndResizePlugin.cpp
l.68-86 (output shape), l.182-192 (float32 output), l.213-216 (shapes read):

* inputs: feature map [B,C,H,W] (NCHW), rois [B,N,4] normalised y1,x1,y2,x2 (flattened as
  B*N boxes; box b reads image b // N);
* output [B,N,C,crop_height,crop_width] float32;
* sample (y, x) of a crop: in_y = y1*(H-1) + y*(y2-y1)*(H-1)/(crop_height-1) (the box centre
  0.5*(y1+y2)*(H-1) when crop_height == 1), the same along x; a sample with in_y or in_x
  outside [0, H-1] / [0, W-1] is the extrapolation value 0 (cropAndResizeInference passes
  0.0f, l.141), else bilinear between floor and ceil of in_y and in_x (top row lerped in x,
  bottom row lerped in x, then lerped in y) — TensorFlow's ``CropAndResize`` bilinear mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtdeploy.plugin_refs import Implementation


def sample_positions(start: np.ndarray, end: np.ndarray, size: int, extent: int) -> np.ndarray:
    """[..., size] input coordinates of a crop's samples along one axis (float32, as the kernel)."""
    start = np.asarray(start, np.float32)[..., None]
    end = np.asarray(end, np.float32)[..., None]
    top = np.float32(extent - 1)
    if size > 1:
        step = (end - start) * top / np.float32(size - 1)
        return start * top + np.arange(size, dtype=np.float32) * step
    return np.float32(0.5) * (start + end) * top


def crop_and_resize(features: np.ndarray, rois: np.ndarray, crop_height: int, crop_width: int) -> np.ndarray:
    """features [B,C,H,W], rois [B,N,4] -> crops [B,N,C,crop_height,crop_width] float32."""
    features = np.asarray(features, np.float32)
    batch, depth, height, width = features.shape
    boxes = np.asarray(rois, np.float32).reshape(batch, -1, 4)
    out = np.zeros((batch, boxes.shape[1], depth, crop_height, crop_width), np.float32)
    for b in range(batch):
        image = np.moveaxis(features[b], 0, -1)  # [H,W,C]: a sample's channels are contiguous
        for n, (by1, bx1, by2, bx2) in enumerate(boxes[b]):
            in_y = sample_positions(by1, by2, crop_height, height)
            in_x = sample_positions(bx1, bx2, crop_width, width)
            out[b, n] = np.moveaxis(_bilinear(image, in_y, in_x), -1, 0)
    return out


def _bilinear(image: np.ndarray, in_y: np.ndarray, in_x: np.ndarray) -> np.ndarray:
    """[ch,cw,C] samples of an [H,W,C] image; 0 where a coordinate is outside the image."""
    height, width = image.shape[:2]
    top_y, bottom_y = np.floor(in_y), np.ceil(in_y)
    left_x, right_x = np.floor(in_x), np.ceil(in_x)
    y_lerp = (in_y - top_y)[:, None, None]
    x_lerp = (in_x - left_x)[None, :, None]
    rows = [np.clip(v, 0, height - 1).astype(np.int64) for v in (top_y, bottom_y)]
    cols = [np.clip(v, 0, width - 1).astype(np.int64) for v in (left_x, right_x)]
    (tl, tr), (bl, br) = ((image[r][:, cols[0]], image[r][:, cols[1]]) for r in rows)
    top = tl + (tr - tl) * x_lerp
    bottom = bl + (br - bl) * x_lerp
    crop = top + (bottom - top) * y_lerp
    inside = ((in_y >= 0) & (in_y <= height - 1))[:, None] & ((in_x >= 0) & (in_x <= width - 1))[None, :]
    return np.where(inside[..., None], crop, np.float32(0.0)).astype(np.float32)


def _compute(features: np.ndarray, rois: np.ndarray, **attrs: Any) -> tuple[np.ndarray]:
    return (crop_and_resize(features, rois, int(attrs["crop_height"]), int(attrs["crop_width"])),)


IMPLEMENTATIONS = [
    Implementation(
        "CropAndResizeDynamic",
        "TrtDeployCropAndResizeDynamic",
        ("float32", "float32"),
        ("float32",),
        _compute,
        source="NVIDIA/TensorRT release/10.16 plugin/common/kernels/cropAndResizeKernel.cu l.26-107, "
        "plugin/cropAndResizePlugin/cropAndResizePlugin.cpp l.68-86",
    ),
]
