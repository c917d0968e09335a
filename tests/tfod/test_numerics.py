"""Numerical drift of the converted network: raw per-anchor class scores (before NMS) of the
ONNX core in ONNX Runtime against the saved model's serving signature (the reference `verify`
uses), on real photos resized to the input size so both see the same pixels.

Only fixtures whose float32 noise floor is well below the bound are asserted here. On
ssd_mobilenet_v2_320x320 (and, marginally, the 0.35 5-class model) the TensorFlow reference is
itself 1e-4..3e-4 away from a float64 evaluation of the same graph, and TensorFlow differs from
itself by as much between oneDNN on/off or grappler on/off, so no conversion can bring the
drift below 1e-4 there. ``test_float32_noise_floor`` keeps that claim checked against a float64
evaluation of the converted graph.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.tfod.conftest import NUM_IMAGES, fixture_dir

pytestmark = [pytest.mark.slow, pytest.mark.tf]

SCORE_BOUND = 1e-4
NUM_PHOTOS = 4


def _tf_raw_scores(saved_model, pixels: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    key = next(iter(signature.structured_input_signature[1]))
    return np.concatenate(
        [signature(**{key: tf.constant(image[None])})["raw_detection_scores"].numpy() for image in pixels]
    )


def _as_float64(model):
    """The same ONNX graph computing in float64: initializers, constants, I/O and casts."""
    import onnx
    from onnx import TensorProto, numpy_helper

    wide = onnx.ModelProto()
    wide.CopyFrom(model)
    tensors = list(wide.graph.initializer) + [
        a.t for n in wide.graph.node for a in n.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR
    ]
    for tensor in tensors:
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name))
    for info in [*wide.graph.input, *wide.graph.output, *wide.graph.value_info]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            info.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in wide.graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
    return wide


@pytest.mark.parametrize(
    ("name", "size", "mode"),
    [
        ("ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8", 320, "stretch"),
        ("ssd_efficientdet_d0_512x512_coco17_tpu-8", 512, "letterbox"),
    ],
)
def test_raw_scores_match_serving_signature(name, size, mode):
    import onnxruntime as ort

    from tfod_trt.tf_graph import INPUT_NAME, convert_core
    from trtdeploy.sample_images import resize_for_model, sample_photos

    saved_model = fixture_dir(name) / "saved_model"
    core = convert_core(saved_model, None, size, size, 17, False)
    pixels = np.stack([resize_for_model(img, size, size, mode) for _, img in sample_photos(NUM_PHOTOS)])

    session = ort.InferenceSession(core.model.SerializeToString(), providers=["CPUExecutionProvider"])
    _, onnx_scores = session.run(None, {INPUT_NAME + ":0": pixels.astype(np.float32)})

    tf_scores = _tf_raw_scores(saved_model, pixels)

    assert onnx_scores.shape == tf_scores.shape
    # lively fixtures: the scores must actually vary, or the bound would be vacuous
    assert tf_scores.max() > 0.5 and tf_scores.std() > 0.01
    drift = float(np.abs(onnx_scores - tf_scores).max())
    assert drift <= SCORE_BOUND, f"{name}: max per-anchor score drift {drift:.3g} > {SCORE_BOUND}"


@pytest.mark.parametrize("name", ["ssd_mobilenet_v2_320x320_coco17_tpu-8", "ssd_mobilenet_v2_035_5class_300"])
def test_float32_noise_floor(name):
    """Why test_verify_fixtures exempts two fixtures from the 1e-4 score bound, checked: a float64
    evaluation of our converted network (ONNX's NumPy reference evaluator) is the exact value.
    On the 320x320 COCO model TensorFlow's float32 scores are further than 1e-4 from it, and our
    ONNX in ONNX Runtime is closer to it than TensorFlow is. On the 0.35 5-class model each side is
    within 1e-4 of it, but the two float32 errors are independent and their difference exceeds
    1e-4. If this ever fails, revisit the exemptions."""
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    from tfod_trt.tf_graph import INPUT_NAME, convert_core
    from trtdeploy.sample_images import resize_for_model, sample_photos

    saved_model = fixture_dir(name) / "saved_model"
    core = convert_core(saved_model, None, 300, 300, 17, False)
    photos = sample_photos(NUM_IMAGES)  # the photos of the verify matrix
    pixels = np.stack([resize_for_model(img, 300, 300, "stretch") for _, img in photos]).astype(np.float32)
    feed = INPUT_NAME + ":0"
    session = ort.InferenceSession(core.model.SerializeToString(), providers=["CPUExecutionProvider"])
    evaluator = ReferenceEvaluator(_as_float64(core.model))
    ours = np.concatenate([session.run(None, {feed: image[None]})[1] for image in pixels])
    exact = np.concatenate([evaluator.run(None, {feed: image[None].astype(np.float64)})[1] for image in pixels])
    tf_scores = _tf_raw_scores(saved_model, pixels)
    assert exact.shape == ours.shape == tf_scores.shape and exact.dtype == np.float64
    assert tf_scores.max() > 0.5 and tf_scores.std() > 0.01  # lively: the errors are not vacuous
    tf_error = float(np.abs(tf_scores - exact).max())
    our_error = float(np.abs(ours - exact).max())
    between = float(np.abs(tf_scores - ours).max())
    assert between > SCORE_BOUND, f"ONNX and TensorFlow are only {between:.3g} apart: the bound is reachable"
    if name.startswith("ssd_mobilenet_v2_320x320"):
        assert tf_error > SCORE_BOUND and our_error < tf_error, (tf_error, our_error)
    else:
        assert tf_error <= SCORE_BOUND and our_error <= SCORE_BOUND, (tf_error, our_error)
