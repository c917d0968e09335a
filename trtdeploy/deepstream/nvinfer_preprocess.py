"""gst-nvinfer's preprocessing of a full frame, on the CPU: scale, pad, normalise, lay out.

Every step follows the DeepStream sources: the community mirror hiennguyen9874/deepstream-sources,
branch 6.3 (the same code in 6.0-6.3), and NVIDIA's NVIDIA/DeepStream, branch DeepStream-9.0, whose
src/gst-plugins/gst-nvinfer and src/utils/nvdsinfer hold the same code for every step below
(compared token by token; "9.0 l." gives its lines):

* gstnvinfer.cpp ``get_converted_buffer`` (lines 1117-1273; 9.0 l.1362-1515): the frame is
  cropped to an EVEN width and height (``GST_ROUND_DOWN_2``, l.1131-1132; 9.0 l.1370-1371); with
  maintain-aspect-ratio the scaled size is ``hdest = net_w * src_h / src_w`` (truncated to an
  integer) when it fits, else ``wdest = net_h * src_w / src_h`` (l.1141-1152; 9.0 l.1380-1391); the
  rest of the network-size surface is set to 0 (black) with ``cudaMemset2DAsync`` — at the
  right/bottom, or split in two around the image with symmetric-padding, the left/top share being
  ``(net - dest) / 2`` in integers (l.1169-1242; 9.0 l.1408-1487); the scale ratios kept for
  mapping boxes back are ``dest / src`` (l.1250-1251; 9.0 l.1495-1496). A full frame is scaled
  whole (9.0 l.1768-1772).
* The scaled surface holds 8-bit pixels (RGB/RGBA/GRAY8). nvdsinfer_conversion.cu then writes
  ``y = scale * (x - mean[c])`` as float (``NvDsInferConvert_C*To{P,L}3*Float`` kernels, l.19-120;
  9.0 l.24-292): P3 = planar (network-input-order 0, NCHW), L3 = interleaved (1, NHWC); the ``R``
  kernels read the channels reversed (BGR models). nvdsinfer_context_impl.cpp l.298-426 (9.0
  l.352-486) picks the kernel from model-color-format and network-input-order; l.222-248 (9.0
  l.262-294) builds the mean buffer from ``offsets`` and refuses a count that differs from the
  channel count.
* Scaling filter: nvinfer defaults to ``NvBufSurfTransformInter_Default`` (gstnvinfer.cpp l.414;
  9.0 l.440), which nvbufsurftransform.h (l.88-89; 9.0 includes/nvbufsurftransform.h l.104-105)
  documents as "GPU-Nearest, VIC-Nearest"; ``scaling-filter`` selects another
  (gstnvinfer_property_parser.cpp l.455-474; 9.0 l.503-520).

Where this is approximate: NvBufSurfTransform is closed source, so its exact sampling grid and
rounding are unknown. We scale with Pillow (nearest / bilinear / bicubic / box / Lanczos), which
can put a pixel one source pixel off, or round a value by one level, compared to the GPU. docs/ds-run.md
gives the measured effect on the detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from trtdeploy.errors import InputError, UnsupportedModelError

# scaling-filter values (nvbufsurftransform.h l.76-89; 9.0 l.92-106) -> the Pillow filter that comes closest.
NEAREST, BILINEAR, ALGO1, ALGO2, ALGO3, ALGO4, DEFAULT_FILTER = range(7)
_PIL_FILTERS = {
    NEAREST: Image.Resampling.NEAREST,
    BILINEAR: Image.Resampling.BILINEAR,
    ALGO1: Image.Resampling.BICUBIC,  # "GPU-Cubic"
    ALGO2: Image.Resampling.BOX,  # "GPU-Super" (super-sampling)
    ALGO3: Image.Resampling.LANCZOS,  # "GPU-Lanzos"
    ALGO4: Image.Resampling.NEAREST,  # "GPU-Ignored": the GPU falls back to its default
    DEFAULT_FILTER: Image.Resampling.NEAREST,  # "GPU-Nearest"
}
FILTER_NAMES = {
    NEAREST: "nearest", BILINEAR: "bilinear", ALGO1: "cubic", ALGO2: "super", ALGO3: "lanczos",
    ALGO4: "nearest (GPU ignores Algo4)", DEFAULT_FILTER: "nearest (default)",
}

# model-color-format (gstnvinfer_property_parser.cpp l.729-748; 9.0 l.840-860)
COLOR_RGB, COLOR_BGR, COLOR_GRAY = 0, 1, 2
# network-input-order (gstnvinfer_property_parser.cpp l.941-958; 9.0 l.1062-1079)
ORDER_NCHW, ORDER_NHWC = 0, 1


@dataclass(frozen=True)
class ScaleGeometry:
    """How one frame maps onto the network input (what nvinfer keeps per frame)."""

    frame_width: int
    frame_height: int
    src_width: int  # the frame width rounded down to even: the part nvinfer scales
    src_height: int
    dest_width: int  # size of the scaled image inside the network input
    dest_height: int
    offset_left: int  # padding before the image (symmetric-padding only)
    offset_top: int
    ratio_x: float  # dest / src, as nvinfer divides boxes by it
    ratio_y: float
    net_width: int
    net_height: int


def scale_geometry(
    frame_width: int,
    frame_height: int,
    net_width: int,
    net_height: int,
    maintain_aspect_ratio: bool = False,
    symmetric_padding: bool = False,
) -> ScaleGeometry:
    """nvinfer's scaling arithmetic for a full frame (gstnvinfer.cpp l.1129-1251; 9.0 l.1368-1496)."""
    src_w = frame_width - frame_width % 2  # GST_ROUND_DOWN_2
    src_h = frame_height - frame_height % 2
    if src_w < 2 or src_h < 2:
        raise InputError(f"a {frame_width}x{frame_height} frame is too small for nvinfer (needs 2x2 or more)")
    offset_left = offset_top = 0
    if maintain_aspect_ratio:
        hdest = net_width * src_h / float(src_w)
        wdest = net_height * src_w / float(src_h)
        if hdest <= net_height:
            dest_w, dest_h = net_width, int(hdest)  # the C code assigns a double to guint: truncation
        else:
            dest_w, dest_h = int(wdest), net_height
        if dest_w == 0 or dest_h == 0:
            raise InputError(
                f"a {frame_width}x{frame_height} frame scales to {dest_w}x{dest_h} inside {net_width}x{net_height} "
                "with maintain-aspect-ratio: nothing left to infer on"
            )
        if symmetric_padding:
            offset_left = (net_width - dest_w) // 2
            offset_top = (net_height - dest_h) // 2
    else:
        dest_w, dest_h = net_width, net_height
    return ScaleGeometry(
        frame_width, frame_height, src_w, src_h, dest_w, dest_h, offset_left, offset_top,
        dest_w / float(src_w), dest_h / float(src_h), net_width, net_height,
    )


def scale_frame(image: Image.Image, geometry: ScaleGeometry, scaling_filter: int = DEFAULT_FILTER) -> np.ndarray:
    """The network-size 8-bit RGB surface nvinfer infers on: uint8 [net_h, net_w, 3]."""
    if scaling_filter not in _PIL_FILTERS:
        raise InputError(f"scaling-filter={scaling_filter} is not one of 0-6 (nvbufsurftransform.h)")
    g = geometry
    rgb = image.convert("RGB")
    if rgb.size != (g.frame_width, g.frame_height):
        raise InputError(f"image is {rgb.size[0]}x{rgb.size[1]} but the geometry is for {g.frame_width}x{g.frame_height}")
    crop = rgb.crop((0, 0, g.src_width, g.src_height))
    scaled = np.asarray(crop.resize((g.dest_width, g.dest_height), _PIL_FILTERS[scaling_filter]), np.uint8)
    surface = np.zeros((g.net_height, g.net_width, 3), np.uint8)  # the black padding
    surface[g.offset_top : g.offset_top + g.dest_height, g.offset_left : g.offset_left + g.dest_width] = scaled
    return surface


@dataclass(frozen=True)
class Normalization:
    """The [property] keys of the tensor conversion, with nvinfer's defaults.

    net-scale-factor defaults to 1.0 (nvdsinfer_context_impl.cpp NvDsInferContext_ResetInitParams,
    l.1980; 9.0 l.2437); model-color-format to RGB (gstnvinfer_property_parser.cpp l.532; 9.0 l.580);
    network-input-order to NCHW (nvdsinfer_context_impl.cpp l.1978; 9.0 l.2435); no offsets means no
    mean subtraction.
    """

    scale: float = 1.0
    offsets: tuple[float, ...] = ()
    color_format: int = COLOR_RGB
    input_order: int = ORDER_NCHW


def to_network_tensor(surface: np.ndarray, norm: Normalization) -> np.ndarray:
    """uint8 RGB [H,W,3] -> float32 [C,H,W] (NCHW) or [H,W,C] (NHWC): scale * (x - offsets[c])."""
    if norm.color_format == COLOR_RGB:
        pixels = surface
    elif norm.color_format == COLOR_BGR:
        pixels = surface[..., ::-1]  # the "R" kernels read channel 2 - k
    elif norm.color_format == COLOR_GRAY:
        # nvinfer converts the frame to GRAY8 in NvBufSurfTransform (closed source); ITU-R 601 luma
        # as Pillow computes it is our approximation.
        pixels = np.asarray(Image.fromarray(surface).convert("L"), np.uint8)[..., None]
    else:
        raise InputError(f"model-color-format={norm.color_format} is not 0 (RGB), 1 (BGR) or 2 (GRAY)")
    channels = pixels.shape[-1]
    x = pixels.astype(np.float32)
    if norm.offsets:
        if len(norm.offsets) != channels:
            # nvdsinfer_context_impl.cpp l.225-230 (9.0 l.267-273): "Number of offsets(%d) not equal to number
            # of input channels"
            raise InputError(
                f"offsets has {len(norm.offsets)} value(s) but the model takes {channels} channel(s); "
                "nvinfer refuses this config"
            )
        x = np.float32(norm.scale) * (x - np.asarray(norm.offsets, np.float32))
    else:
        x = np.float32(norm.scale) * x
    if norm.input_order == ORDER_NCHW:
        x = x.transpose(2, 0, 1)
    elif norm.input_order != ORDER_NHWC:
        raise UnsupportedModelError(f"network-input-order={norm.input_order} is not 0 (NCHW) or 1 (NHWC)")
    return np.ascontiguousarray(x, np.float32)
