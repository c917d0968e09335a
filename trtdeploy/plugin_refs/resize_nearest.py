"""ResizeNearest_TRT (TAO EfficientDet legacy exports, YOLO/RetinaNet FPN upsampling) on a CPU.

NVIDIA/TensorRT release/10.16 plugin/resizeNearestPlugin/resizeNearestPlugin.cpp l.109-127: the
last two dims become ``int(d * scale)``, the others are kept; the kernel
(plugin/common/kernels/maskRCNNKernels.cu l.2911-2930) reads, for output pixel (oy, ox),
input pixel (``int(oy / scale)``, ``int(ox / scale)``) with float32 division: nearest with
floor of the asymmetric source coordinate. float32 only (supportsFormat l.221-224).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtdeploy.plugin_refs import Implementation


def source_indices(out_size: int, scale: float) -> np.ndarray:
    """int(o / scale) for o in 0..out_size-1, divided in float32 as the kernel does."""
    return (np.arange(out_size, dtype=np.float32) / np.float32(scale)).astype(np.int64)


def resize_nearest(x: np.ndarray, **attrs: Any) -> tuple[np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    scale = float(attrs["scale"])
    if x.ndim < 2 or scale <= 0:
        raise ValueError(f"ResizeNearest_TRT needs a tensor of rank >= 2 and scale > 0, got {x.shape}, {scale}")
    out_h, out_w = int(x.shape[-2] * np.float32(scale)), int(x.shape[-1] * np.float32(scale))
    rows, cols = source_indices(out_h, scale), source_indices(out_w, scale)
    return (np.ascontiguousarray(x[..., rows, :][..., :, cols]),)


IMPLEMENTATIONS = [
    Implementation(
        "ResizeNearest_TRT",
        "TrtDeployResizeNearest",
        ("float32",),
        ("float32",),
        resize_nearest,
        source="NVIDIA/TensorRT release/10.16 plugin/resizeNearestPlugin/resizeNearestPlugin.cpp l.109-127, "
        "plugin/common/kernels/maskRCNNKernels.cu l.2911-2930",
    )
]
