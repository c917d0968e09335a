"""nvinfer's frame preprocessing, checked on hand-computed pixels.

Expectations come from the DeepStream sources (hiennguyen9874/deepstream-sources, branch 6.3):
gstnvinfer.cpp get_converted_buffer l.1129-1251 (even crop, aspect-ratio arithmetic, black
padding, ratios) and nvdsinfer_conversion.cu l.19-120 (y = scale * (x - mean[c]), planar vs
interleaved, reversed channels for BGR). NVIDIA/DeepStream branch DeepStream-9.0 has the same code:
src/gst-plugins/gst-nvinfer/gstnvinfer.cpp l.1368-1496 and src/utils/nvdsinfer/nvdsinfer_conversion.cu
l.24-292.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trtdeploy.deepstream.nvinfer_preprocess import (
    BILINEAR,
    COLOR_BGR,
    COLOR_RGB,
    ORDER_NCHW,
    ORDER_NHWC,
    Normalization,
    scale_frame,
    scale_geometry,
    to_network_tensor,
)
from trtdeploy.errors import InputError


def test_stretch_uses_the_even_part_of_the_frame() -> None:
    # GST_ROUND_DOWN_2 on the crop width/height (gstnvinfer.cpp l.1131-1132): 641x481 -> 640x480
    g = scale_geometry(641, 481, 300, 300)
    assert (g.src_width, g.src_height) == (640, 480)
    assert (g.dest_width, g.dest_height, g.offset_left, g.offset_top) == (300, 300, 0, 0)
    assert g.ratio_x == 300 / 640 and g.ratio_y == 300 / 480


@pytest.mark.parametrize(
    ("frame", "symmetric", "expect"),
    [
        # landscape 640x480 into 300x300: hdest = 300*480/640 = 225 fits (l.1141-1148)
        ((640, 480), False, (300, 225, 0, 0)),
        # symmetric: offset_top = (300 - 225) / 2 = 37 in integers (l.1218)
        ((640, 480), True, (300, 225, 0, 37)),
        # portrait: hdest = 400 > 300, so wdest = 300*480/640 = 225 (l.1149-1151); offset_left 37 (l.1194)
        ((480, 640), True, (225, 300, 37, 0)),
        # 1000x333 -> even 1000x332: hdest = 99.6 truncated to 99 (double assigned to guint)
        ((1000, 333), False, (300, 99, 0, 0)),
    ],
)
def test_maintain_aspect_ratio_geometry(frame: tuple[int, int], symmetric: bool, expect: tuple[int, ...]) -> None:
    g = scale_geometry(*frame, 300, 300, maintain_aspect_ratio=True, symmetric_padding=symmetric)
    assert (g.dest_width, g.dest_height, g.offset_left, g.offset_top) == expect
    assert g.ratio_x == g.dest_width / g.src_width and g.ratio_y == g.dest_height / g.src_height


def _blocks() -> Image.Image:
    """4x4 image of four 2x2 single-colour blocks: any sampling convention halves it the same way."""
    a = np.zeros((4, 4, 3), np.uint8)
    a[:2, :2] = (255, 0, 0)
    a[:2, 2:] = (0, 255, 0)
    a[2:, :2] = (0, 0, 255)
    a[2:, 2:] = (10, 20, 30)
    return Image.fromarray(a)


def test_scale_halves_blocks() -> None:
    out = scale_frame(_blocks(), scale_geometry(4, 4, 2, 2))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out.tolist() == [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]]


def test_padding_is_black_at_the_bottom_or_centred() -> None:
    wide = Image.fromarray(np.full((2, 4, 3), 200, np.uint8))  # 4 wide, 2 high
    # hdest = 4*2/4 = 2 <= 4: image in rows 0-1, rows 2-3 set to 0 (cudaMemset2DAsync value 0, l.1182-1185)
    bottom = scale_frame(wide, scale_geometry(4, 2, 4, 4, maintain_aspect_ratio=True))
    assert (bottom[:2] == 200).all() and (bottom[2:] == 0).all()
    # symmetric: offset_top = (4-2)/2 = 1: rows 0 and 3 black (l.1218-1235)
    centred = scale_frame(wide, scale_geometry(4, 2, 4, 4, maintain_aspect_ratio=True, symmetric_padding=True))
    assert (centred[0] == 0).all() and (centred[3] == 0).all() and (centred[1:3] == 200).all()


def test_odd_last_column_is_never_seen() -> None:
    a = np.zeros((2, 5, 3), np.uint8)
    a[:, 4] = 255  # only the 5th column is bright; nvinfer scales the 4 even columns
    out = scale_frame(Image.fromarray(a), scale_geometry(5, 2, 4, 2), BILINEAR)
    assert (out == 0).all()


def test_normalisation_rgb_nchw() -> None:
    pixel = np.array([[[10, 20, 30]]], np.uint8)
    x = to_network_tensor(pixel, Normalization(0.5, (1.0, 2.0, 3.0), COLOR_RGB, ORDER_NCHW))
    # planar: channel k at [k, row, col] = 0.5 * (x_k - mean_k)
    assert x.shape == (3, 1, 1) and x.dtype == np.float32
    assert x[:, 0, 0].tolist() == [4.5, 9.0, 13.5]


def test_normalisation_bgr_nhwc() -> None:
    pixel = np.array([[[10, 20, 30]]], np.uint8)
    x = to_network_tensor(pixel, Normalization(0.5, (1.0, 2.0, 3.0), COLOR_BGR, ORDER_NHWC))
    # the R kernels read channel 2-k; the mean is indexed by the OUTPUT channel k
    assert x.shape == (1, 1, 3)
    assert x[0, 0].tolist() == [0.5 * (30 - 1), 0.5 * (20 - 2), 0.5 * (10 - 3)]


def test_padding_after_normalisation_is_minus_scaled_offset() -> None:
    x = to_network_tensor(np.zeros((1, 1, 3), np.uint8), Normalization(2.0, (100.0, 50.0, 0.0)))
    assert x[:, 0, 0].tolist() == [-200.0, -100.0, 0.0]


def test_no_offsets_scales_only_and_wrong_offset_count_is_refused() -> None:
    x = to_network_tensor(np.full((1, 1, 3), 255, np.uint8), Normalization(1 / 255.0))
    assert np.allclose(x, 1.0)
    with pytest.raises(InputError, match="offsets has 2 value"):  # nvdsinfer_context_impl.cpp l.225-230
        to_network_tensor(np.zeros((1, 1, 3), np.uint8), Normalization(1.0, (1.0, 2.0)))
