"""Crop-and-resize: the CropAndResizeDynamic CPU reference and the standard-op (GridSample) crop,
against TensorFlow's CropAndResize and against each other, on hand-made inputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from trtdeploy.plugin_refs.crop_and_resize import crop_and_resize
from trtdeploy.rewrites.crop_and_resize import add_crop_and_resize


def _inputs(seed: int = 0, batch: int = 2, boxes: int = 7, low: float = -0.3, high: float = 1.3):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((batch, 5, 9, 11)).astype(np.float32)
    rois = np.sort(rng.uniform(low, high, (batch, boxes, 2, 2)), axis=2).transpose(0, 1, 3, 2).reshape(batch, boxes, 4)
    rois = rois[..., [0, 2, 1, 3]].astype(np.float32)  # y1,x1,y2,x2 with y1<y2, x1<x2
    return features, rois


def test_reference_on_a_hand_computed_crop():
    """A 2x2 crop of a 3x3 ramp at [0, 0, 0.5, 1] samples rows 0 and 1, columns 0 and 2."""
    features = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    rois = np.array([[[0.0, 0.0, 0.5, 1.0], [0.25, 0.25, 0.25, 0.25], [-0.5, 0.0, 1.0, 1.0]]], np.float32)
    crops = crop_and_resize(features, rois, 2, 2)
    assert crops.shape == (1, 3, 1, 2, 2)
    assert crops[0, 0, 0].tolist() == [[0.0, 2.0], [3.0, 5.0]]
    assert np.allclose(crops[0, 1, 0], 2.0)  # a point box: every sample at (0.5, 0.5) -> 0.5*3 + 0.5
    # y starts at -1 (outside): that sample row is 0; the other row at y = 2 (last row)
    assert crops[0, 2, 0].tolist() == [[0.0, 0.0], [6.0, 8.0]]


def _standard_op_crop(features, rois, crop_h, crop_w, extrapolation):
    import onnxruntime as ort

    f = gs.Variable("features", dtype=np.float32, shape=list(features.shape))
    r = gs.Variable("rois", dtype=np.float32, shape=["batch", rois.shape[1], 4])
    graph = gs.Graph(inputs=[f, r], opset=17)
    out = add_crop_and_resize(graph, f, r, crop_h, crop_w, extrapolation)
    out.dtype = np.float32
    graph.outputs = [out]
    model = gs.export_onnx(graph)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"features": features, "rois": rois})[0]


@pytest.mark.parametrize(("crop_h", "crop_w"), [(4, 3), (1, 5)])
def test_standard_op_crop_matches_the_plugin_reference(crop_h, crop_w):
    features, rois = _inputs()
    expected = crop_and_resize(features, rois, crop_h, crop_w)
    got = _standard_op_crop(features, rois, crop_h, crop_w, "sample")
    assert got.shape == expected.shape
    # float32 rounding of the sample position only (GridSample maps the grid back to pixels)
    assert np.abs(got - expected).max() < 1e-5
    assert (expected == 0).sum() > 10  # boxes reach outside the map: the extrapolated samples are checked too


def test_neighbor_extrapolation_is_tfod_matmul_crop():
    """Inside the map both modes agree; outside, ``neighbor`` keeps the in-map neighbours'
    weighted values (TFOD's matmul_crop_and_resize) where ``sample`` gives 0."""
    features, rois = _inputs(seed=1)
    inside_rois = np.clip(rois, 0.0, 1.0)
    sample = _standard_op_crop(features, inside_rois, 4, 3, "sample")
    neighbor = _standard_op_crop(features, inside_rois, 4, 3, "neighbor")
    assert np.abs(sample - neighbor).max() < 1e-5
    outside = _standard_op_crop(features, rois, 4, 3, "neighbor")
    zeroed = _standard_op_crop(features, rois, 4, 3, "sample")
    assert np.abs(outside - zeroed).max() > 1e-2


@pytest.mark.tf
@pytest.mark.slow
def test_reference_is_tensorflow_crop_and_resize():
    import tensorflow as tf

    features, rois = _inputs(seed=2)
    batch, num = rois.shape[:2]
    expected = tf.image.crop_and_resize(np.moveaxis(features, 1, -1), rois.reshape(-1, 4),
                                        np.repeat(np.arange(batch), num), (4, 3)).numpy()
    expected = np.moveaxis(expected.reshape(batch, num, 4, 3, -1), -1, 2)
    assert np.array_equal(crop_and_resize(features, rois, 4, 3), expected)
