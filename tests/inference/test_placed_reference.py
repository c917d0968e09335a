"""verify's TensorFlow side sees a letterboxed photo as TFOD would: the unpadded image, its
boxes brought back to the network input's frame (tfod_trt.runner.TfodRunner.detections_placed).
TensorFlow is not needed: the runner's network is replaced by a fake that reports what it saw."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tfod_trt.runner import TfodRunner
from trtdeploy.detections import Detections
from trtdeploy.sample_images import place_for_model, resize_for_model


class _Seen(TfodRunner):
    def __init__(self) -> None:  # no saved model: detections() is the fake below
        self.seen: list[tuple[int, int]] = []

    def detections(self, pixels: np.ndarray) -> list[Detections]:
        # a box over the whole image it was given, and one over its top-left quarter, with a mask
        self.seen.append(pixels.shape[1:3])
        boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5]], np.float32)
        return [Detections(boxes, np.array([0.9, 0.8], np.float32), np.array([1, 2]), np.ones((2, 3, 3), np.float32))]


def test_letterboxed_photo_is_run_unpadded_and_boxes_map_to_the_network_input():
    photo = Image.new("RGB", (400, 300), (200, 10, 10))  # landscape: padded at the bottom of 640x640
    pixels = resize_for_model(photo, 640, 640, "letterbox")
    frame = place_for_model(photo, 640, 640, "letterbox")
    assert (frame.left, frame.top, frame.resized_width, frame.resized_height) == (0, 0, 640, 480)
    assert pixels[479].max() > 0 and pixels[480:].max() == 0  # the padding place_for_model describes

    runner = _Seen()
    (found,) = runner.detections_placed(pixels[None], [frame])
    assert runner.seen == [(480, 640)]  # TFOD got the photo's area, not the padding
    np.testing.assert_allclose(found.boxes, [[0, 0, 0.75, 1.0], [0, 0, 0.375, 0.5]], rtol=0, atol=1e-7)
    assert found.masks is not None and found.masks.shape == (2, 3, 3)  # masks are in the box's frame: kept
    # and back in the photo's pixels through the same frame, the whole photo
    np.testing.assert_allclose(frame.to_pixels(found.boxes[:1]), [[0, 0, 400, 300]], atol=1e-3)


def test_stretched_input_is_run_as_it_is():
    photo = Image.new("RGB", (400, 300), (10, 200, 10))
    pixels = resize_for_model(photo, 320, 320, "stretch")
    runner = _Seen()
    (found,) = runner.detections_placed(pixels[None], [place_for_model(photo, 320, 320, "stretch")])
    assert runner.seen == [(320, 320)]
    np.testing.assert_allclose(found.boxes[0], [0, 0, 1, 1], atol=1e-7)
