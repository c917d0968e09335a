"""Numerical drift of the converted network: raw per-anchor class scores (before NMS) of the
ONNX core in ONNX Runtime against the saved model's serving signature (the reference `verify`
uses), on real photos resized to the input size so both see the same pixels.

Only fixtures whose float32 noise floor is well below the bound are asserted here. On
ssd_mobilenet_v2_320x320 (and, marginally, the 0.35 5-class model) the TensorFlow reference is
itself 1e-4..3e-4 away from a float64 evaluation of the same graph, and TensorFlow differs from
itself by as much between oneDNN on/off or grappler on/off, so no conversion can bring the
drift below 1e-4 there (see the numerics note in the report of this change).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.tfod.conftest import fixture_dir

pytestmark = [pytest.mark.slow, pytest.mark.tf]

SCORE_BOUND = 1e-4
NUM_PHOTOS = 4


@pytest.mark.parametrize(
    ("name", "size", "mode"),
    [
        ("ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8", 320, "stretch"),
        ("ssd_efficientdet_d0_512x512_coco17_tpu-8", 512, "letterbox"),
    ],
)
def test_raw_scores_match_serving_signature(name, size, mode):
    import onnxruntime as ort
    import tensorflow as tf

    from tfod_trt.tf_graph import INPUT_NAME, convert_core
    from trtdeploy.sample_images import resize_for_model, sample_photos

    saved_model = fixture_dir(name) / "saved_model"
    core = convert_core(saved_model, None, size, size, 17, False)
    pixels = np.stack([resize_for_model(img, size, size, mode) for _, img in sample_photos(NUM_PHOTOS)])

    session = ort.InferenceSession(core.model.SerializeToString(), providers=["CPUExecutionProvider"])
    _, onnx_scores = session.run(None, {INPUT_NAME + ":0": pixels.astype(np.float32)})

    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    key = next(iter(signature.structured_input_signature[1]))
    tf_scores = np.concatenate(
        [signature(**{key: tf.constant(image[None])})["raw_detection_scores"].numpy() for image in pixels]
    )

    assert onnx_scores.shape == tf_scores.shape
    # lively fixtures: the scores must actually vary, or the bound would be vacuous
    assert tf_scores.max() > 0.5 and tf_scores.std() > 0.01
    drift = float(np.abs(onnx_scores - tf_scores).max())
    assert drift <= SCORE_BOUND, f"{name}: max per-anchor score drift {drift:.3g} > {SCORE_BOUND}"
