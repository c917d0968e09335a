"""infer: boxes mapped back to the original image (stretch, letterbox), TSV = JSON = drawn pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.inference.tiny_model import write_tiny_detector
from trtdeploy.cli.main import app
from trtdeploy.drawing import FRAME, PALETTE, line_width
from trtdeploy.runners import open_runner

LABELS = ["cat", "dog", "bird"]
# y1, x1, y2, x2 normalised on the 64x64 network input; kept apart so no drawing overlaps another
BOXES = [[0.30, 0.10, 0.70, 0.40], [0.35, 0.55, 0.65, 0.90]]
SCORES = [0.9, 0.6]
CLASSES = [1, 2]


@pytest.mark.parametrize(
    ("resize", "corner", "expected"),
    [
        # 200x100 image stretched to 64x64: x * 200, y * 100
        ("stretch", "center", [[20.0, 30.0, 80.0, 70.0], [110.0, 35.0, 180.0, 65.0]]),
        # letterbox: r = min(64/200, 64/100) = 0.32 -> 64x32 pasted at top 16 (centre): the network
        # y is (y*64 - 16) / 32 * 100 and x is x*64 / 64 * 200
        ("letterbox", "center", [[20.0, 10.0, 80.0, 90.0], [110.0, 20.0, 180.0, 80.0]]),
        # top-left letterbox (TFOD's padding): y is y*64 / 32 * 100, clipped to the image's 100 rows
        ("letterbox", "top_left", [[20.0, 60.0, 80.0, 100.0], [110.0, 70.0, 180.0, 100.0]]),
    ],
)
def test_boxes_map_back_to_original_pixels(tmp_path, resize, corner, expected):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS, resize=resize, pad_corner=corner)
    runner = open_runner(model)
    tensor, frames = runner.prepare([Image.new("RGB", (200, 100), (90, 90, 90))])
    dets = runner.read(runner.infer(tensor))[0]
    np.testing.assert_allclose(frames[0].to_pixels(dets.boxes), expected, atol=1e-3)


def _images(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    # a light and a dark image, both 200x100 with mild noise (no palette colour occurs in them)
    for name, level in (("light.png", 225), ("dark.jpg", 25)):
        pixels = np.clip(level + rng.integers(-8, 9, (100, 200, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / name)
    return folder


def _band(row: np.ndarray, colour) -> list[int]:
    return [int(x) for x in np.nonzero((row == np.array(colour)).all(axis=1))[0]]


def test_infer_tsv_json_and_drawn_boxes_agree(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS, resize="letterbox")
    images = _images(tmp_path / "images")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", str(model), "--images", str(images), "-o", str(out), "-t", "0.5"])
    assert result.exit_code == 0, result.output
    assert "2 images, 4 detections" in result.output

    rows = [line.split("\t") for line in (out / "detections.tsv").read_text().splitlines()]
    assert rows[0] == ["image", "class_id", "label", "score", "x1", "y1", "x2", "y2"]
    assert len(rows) == 5
    line = line_width(200, 100)
    for stem in ("light", "dark"):
        document = json.loads((out / f"{stem}.json").read_text())
        assert (document["width"], document["height"]) == (200, 100)
        tsv = [r for r in rows[1:] if r[0].endswith(f"{stem}.png") or r[0].endswith(f"{stem}.jpg")]
        assert len(tsv) == len(document["detections"]) == 2
        picture = np.asarray(Image.open(out / f"{stem}.png").convert("RGB"))
        for det, row in zip(document["detections"], tsv, strict=True):
            assert [int(row[1]), row[2]] == [det["class_id"], det["label"]] == [det["class_id"], LABELS[det["class_id"]]]
            assert float(row[3]) == pytest.approx(det["score"], abs=1e-6)
            assert [float(v) for v in row[4:]] == det["box"]
            x1, y1, x2, y2 = (round(v) for v in det["box"])
            colour = PALETTE[det["class_id"] % len(PALETTE)]
            # the middle row of the box crosses its two vertical edges: colour bands of `line`
            # pixels whose outer columns are x1 and x2, framed by one dark pixel on both sides
            middle = picture[(y1 + y2) // 2]
            assert _band(middle, colour) == [*range(x1, x1 + line), *range(x2 - line + 1, x2 + 1)]
            for x in (x1 - 1, x1 + line, x2 - line, x2 + 1):
                assert tuple(middle[x]) == FRAME
            # and the middle column crosses the bottom edge at y2 (the top one carries the label tag)
            column = picture[:, (x1 + x2) // 2]
            assert _band(column, colour)[-line:] == list(range(y2 - line + 1, y2 + 1))
            assert tuple(column[y2 + 1]) == FRAME


def test_infer_refuses_to_overwrite_without_force(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS)
    images = _images(tmp_path / "images")
    out = tmp_path / "out"
    args = ["infer", str(model), "--images", str(images), "-o", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    before = (out / "light.png").read_bytes()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "--force" in again.output
    assert (out / "light.png").read_bytes() == before
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0


def test_infer_static_batch_mismatch_is_one_error_line(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS)
    images = _images(tmp_path / "images")
    result = CliRunner().invoke(app, ["infer", str(model), "--images", str(images), "-o", str(tmp_path / "o"),
                                      "--batch", "2"])
    assert result.exit_code == 1
    assert "static batch of 1" in result.output and "Traceback" not in result.output


def test_infer_keeps_images_of_the_same_name_apart(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS)
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (50, 40), (10, 10, 10)).save(images / "a.png")
    Image.new("RGB", (80, 30), (240, 240, 240)).save(images / "a.jpg")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", str(model), "--images", str(images), "-o", str(out)])
    assert result.exit_code == 0, result.output
    sizes = {json.loads((out / f"a_{ext}.json").read_text())["width"] for ext in ("png", "jpg")}
    assert sizes == {50, 80}


def test_a_static_batch_pads_the_last_batch_and_drops_the_padding(tmp_path):
    model = write_tiny_detector(tmp_path / "m.onnx", BOXES, SCORES, CLASSES, LABELS, batch=2)
    images = tmp_path / "images"
    images.mkdir()
    for i, size in enumerate(((50, 40), (80, 30), (64, 64))):
        Image.new("RGB", size, (30 * i, 40, 50)).save(images / f"im{i}.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["infer", str(model), "--images", str(images), "-o", str(out), "-t", "0.5"])
    assert result.exit_code == 0, result.output
    rows = (out / "detections.tsv").read_text().splitlines()[1:]
    assert len(rows) == 6  # 3 images x 2 detections, none from the padding image
    for i, (w, h) in enumerate(((50, 40), (80, 30), (64, 64))):
        document = json.loads((out / f"im{i}.json").read_text())
        assert (document["width"], document["height"]) == (w, h)
        # stretch: x1 of the first box is 0.10 * the image's own width
        assert document["detections"][0]["box"][0] == pytest.approx(0.10 * w, abs=0.01)
