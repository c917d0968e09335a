"""Preprocessing against a slow, obviously-correct reference on real photos; the batcher."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from calibration import CalibrationError, ImageBatcher, PreprocessSpec
from calibration.preprocess import RESAMPLE

MODES = {
    "stretch_rgb_nchw": PreprocessSpec(24, 40, scale=1 / 127.5, offsets=(127.5, 127.5, 127.5)),
    "letterbox_bgr_nhwc_tao": PreprocessSpec(
        32,
        32,
        layout="NHWC",
        color_order="BGR",
        offsets=(103.939, 116.779, 123.68),
        resize="letterbox",
        resample="bicubic",
    ),
    "letterbox_topleft_fp16": PreprocessSpec(
        30,
        20,
        scale=1 / 255,
        resize="letterbox",
        pad_corner="top_left",
        pad_color=(114, 114, 114),
        resample="nearest",
        dtype="float16",
    ),
    "gray_lanczos": PreprocessSpec(
        28, 28, color_order="GRAY", scale=1 / 255, offsets=(0.5,), pad_color=(0,), resample="lanczos"
    ),
    "uint8_nhwc": PreprocessSpec(20, 36, layout="NHWC", dtype="uint8", resample="hamming"),
    # TFOD SSD's deploy card: float pixels 0-255, NHWC (one lookup table shared by all channels)
    "float_pixels_nhwc": PreprocessSpec(22, 34, layout="NHWC"),
    "letterbox_pad_colour_box": PreprocessSpec(
        26,
        26,
        scale=0.017507,
        offsets=(123.675, 116.28, 103.53),
        resize="letterbox",
        pad_color=(128, 0, 255),
        resample="box",
    ),
}


def reference_tensor(path: Path, spec: PreprocessSpec) -> np.ndarray:
    """Pixel by pixel, straight from the documented formulas."""
    image = ImageOps.exif_transpose(Image.open(path))
    image = image.convert("L" if spec.color_order == "GRAY" else "RGB")
    W, H = spec.width, spec.height
    w, h = image.size
    if spec.resize == "stretch":
        nw, nh, left, top = W, H, 0, 0
    else:
        r = min(W / w, H / h)
        nw, nh = max(1, min(W, round(w * r))), max(1, min(H, round(h * r)))
        left, top = ((W - nw) // 2, (H - nh) // 2) if spec.pad_corner == "center" else (0, 0)
    resized = image.resize((nw, nh), RESAMPLE[spec.resample])
    channels = spec.channels
    out = np.zeros(spec.shape(1)[1:], spec.dtype)
    for y in range(H):
        for x in range(W):
            if top <= y < top + nh and left <= x < left + nw:
                pixel = resized.getpixel((x - left, y - top))
                pixel = (pixel,) if channels == 1 else tuple(pixel)
            else:
                pixel = spec.pad_color
            if spec.color_order == "BGR":
                pixel = pixel[::-1]
            for c in range(channels):
                value = pixel[c] if spec.dtype == "uint8" else spec.scale * (float(pixel[c]) - spec.offsets[c])
                if spec.layout == "NCHW":
                    out[c, y, x] = value
                else:
                    out[y, x, c] = value
    return out


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_mode_matches_reference_exactly(mode: str, photo_jpegs: list[Path]) -> None:
    spec = MODES[mode]
    offset = sorted(MODES).index(mode) * 30
    for path in photo_jpegs[offset : offset + 40]:
        ours = spec.tensor(spec.load(path))
        ref = reference_tensor(path, spec)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        assert np.array_equal(ours, ref), f"{mode} differs on {path.name}"


def test_batcher_gives_reference_tensors_for_all_photos(photo_jpegs: list[Path]) -> None:
    spec = MODES["stretch_rgb_nchw"]
    batches = list(ImageBatcher(photo_jpegs, spec, batch_size=16))
    assert [len(b) for b in batches] == [16] * 12 + [8]
    stacked = np.concatenate(batches)
    for i in range(0, len(photo_jpegs), 9):  # the reference is slow: every 9th photo
        assert np.array_equal(stacked[i], reference_tensor(photo_jpegs[i], spec))


def test_batcher_keeps_order_and_drops_last(photo_jpegs: list[Path]) -> None:
    spec = MODES["letterbox_bgr_nhwc_tao"]
    paths = photo_jpegs[:23]
    direct = np.stack([spec.tensor(spec.load(p)) for p in paths])
    batcher = ImageBatcher(paths, spec, batch_size=5, workers=3, drop_last=True)
    assert len(batcher) == 4 and batcher.num_images == 20
    out = list(batcher)
    assert [b.shape for b in out] == [(5, 32, 32, 3)] * 4
    assert np.array_equal(np.concatenate(out), direct[:20])
    assert np.array_equal(np.concatenate(list(ImageBatcher(paths, spec, 5))), direct)


def test_batcher_keeps_at_most_prefetch_batches_in_flight(photo_jpegs: list[Path], monkeypatch) -> None:
    """Counted where work is handed to the decode threads (synchronously, in the consumer's
    thread), not by waiting for the threads: no timing in the assertion."""
    import calibration.batcher as batcher_module

    submitted: list[Path] = []

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            submitted.append(args[0])
            return super().submit(fn, *args, **kwargs)

    assert batcher_module.ThreadPoolExecutor is ThreadPoolExecutor, "the batcher no longer uses a thread pool"
    monkeypatch.setattr(batcher_module, "ThreadPoolExecutor", CountingPool)
    iterator = iter(ImageBatcher(photo_jpegs[:40], MODES["stretch_rgb_nchw"], batch_size=4, prefetch=2))
    next(iterator)
    assert len(submitted) == 12  # the batch the consumer holds + 2 in flight
    next(iterator)
    assert len(submitted) == 16
    assert sum(len(b) for b in iterator) == 32
    assert submitted == photo_jpegs[:40]  # each image once, in order


def test_batcher_errors_name_the_file(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(CalibrationError, match="bad.jpg"):
        list(ImageBatcher([photo_jpegs[0], bad], MODES["stretch_rgb_nchw"], batch_size=2))
    with pytest.raises(CalibrationError, match="fewer than one batch"):
        ImageBatcher(photo_jpegs[:3], MODES["stretch_rgb_nchw"], batch_size=4, drop_last=True)


def test_fast_decode_is_close_to_exact_and_decodes_smaller(tmp_path: Path, photo_jpegs: list[Path]) -> None:
    spec = PreprocessSpec(300, 300, scale=1 / 127.5, offsets=(127.5,) * 3)
    paths = [p for p in photo_jpegs if Image.open(p).size == (640, 480)][:12]
    assert paths
    # 640x480 for a 300x300 target: decoded at 1/2 (320x240 >= 0.75 of the target)
    assert spec.load(paths[0], fast_decode=True).size == (320, 240)
    assert spec.load(paths[0]).size == (640, 480)
    exact = np.concatenate(list(ImageBatcher(paths, spec, 4)))
    fast = np.concatenate(list(ImageBatcher(paths, spec, 4, fast_decode=True)))
    assert exact.shape == fast.shape and not np.array_equal(exact, fast)
    assert np.abs(exact - fast).mean() < 0.05  # values span [-1, 1]
    # a PNG has no draft mode: identical
    png = tmp_path / "a.png"
    Image.open(paths[0]).save(png)
    assert np.array_equal(spec.tensor(spec.load(png, fast_decode=True)), spec.tensor(spec.load(png)))


def test_spec_from_deploy_card_dict() -> None:
    from trtdeploy.deploy_card import DeployCard, InputSpec, OutputSpec, Preprocess

    card = DeployCard(
        input=InputSpec("image", [-1, 3, 544, 960], "NCHW"),
        preprocess=Preprocess("BGR", 1.0, [103.939, 116.779, 123.68], "letterbox", [0, 0, 0], "top_left", "bicubic"),
        output=OutputSpec("efficient", "tfod", ["a"], 1),
        labels=["car"],
    )
    spec = PreprocessSpec.from_card_dict(card.to_dict())
    assert (spec.height, spec.width, spec.layout, spec.color_order) == (544, 960, "NCHW", "BGR")
    assert spec.offsets == (103.939, 116.779, 123.68) and spec.resize == "letterbox"
    assert spec.pad_corner == "top_left" and spec.resample == "bicubic" and spec.dtype == "float32"
    nhwc = PreprocessSpec.from_card_dict({"input": {"shape": [1, 300, 300, 3], "layout": "NHWC"}, "preprocess": {}})
    assert (nhwc.height, nhwc.width, nhwc.shape(2)) == (300, 300, (2, 300, 300, 3))
    with pytest.raises(CalibrationError, match="lacks the input/preprocess"):
        PreprocessSpec.from_card_dict({"input": {}})


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"layout": "CHW"}, "layout"),
        ({"resize": "crop"}, "resize mode"),
        ({"resample": "cubic"}, "resample filter"),
        ({"offsets": (1.0,)}, "1 offsets for 3 channels"),
        ({"pad_color": (300, 0, 0)}, "pad colour"),
        ({"dtype": "uint8", "scale": 0.5}, "raw pixels"),
        ({"height": -1}, "positive"),
    ],
)
def test_invalid_specs_are_refused(kwargs: dict, fragment: str) -> None:
    args = {"height": 10, "width": 10, **kwargs}
    with pytest.raises(CalibrationError, match=fragment):
        PreprocessSpec(**args)
