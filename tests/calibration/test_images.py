"""Image sources, deterministic sampling, pixel-format conversion and EXIF orientation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibration import CalibrationError, list_images
from calibration.images import open_image, to_8bit


def _touch_images(folder: Path, names: list[str]) -> list[Path]:
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
        paths.append(path)
    return paths


def test_folder_is_recursive_sorted_and_filters_extensions(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["b.jpg", "a/z.PNG", "a/b/c.bmp", "c.jpeg"])
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "d.gif").write_bytes(b"GIF89a")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a/b/c.bmp", "a/z.PNG", "b.jpg", "c.jpeg"]


def test_empty_folder_and_missing_source_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="has no jpg/jpeg/png/bmp files"):
        list_images(tmp_path / "empty")
    with pytest.raises(CalibrationError, match="does not exist"):
        list_images(tmp_path / "nope")


def test_list_file_relative_paths_comments_and_missing_entries(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["imgs/1.jpg", "imgs/2.png"])
    listing = tmp_path / "calib.txt"
    listing.write_text("# calibration set\nimgs/2.png\n\nimgs/1.jpg\n")
    assert [p.name for p in list_images(listing)] == ["2.png", "1.jpg"]  # list order kept
    listing.write_text("imgs/1.jpg\nimgs/missing.jpg\n")
    with pytest.raises(CalibrationError, match=r"line 2: image 'imgs/missing.jpg' not found"):
        list_images(listing)


def test_coco_json_with_image_root(tmp_path: Path) -> None:
    _touch_images(tmp_path / "val2017", ["000001.jpg", "000002.jpg"])
    ann = tmp_path / "annotations" / "instances_val2017.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps({"images": [{"id": 2, "file_name": "000002.jpg"}, {"id": 1, "file_name": "000001.jpg"}]}))
    with pytest.raises(CalibrationError, match="--image-root"):
        list_images(ann)
    assert [p.name for p in list_images(ann, image_root=tmp_path / "val2017")] == ["000002.jpg", "000001.jpg"]
    ann.write_text(json.dumps({"categories": []}))
    with pytest.raises(CalibrationError, match="not a COCO annotation file"):
        list_images(ann)


def test_sampling_is_deterministic_and_shuffle_changes_order(tmp_path: Path) -> None:
    _touch_images(tmp_path, [f"{i:02d}.jpg" for i in range(30)])
    a = list_images(tmp_path, num=10, seed=3)
    assert a == list_images(tmp_path, num=10, seed=3)
    assert a != list_images(tmp_path, num=10, seed=4)
    assert a == sorted(a)  # a subset in folder order
    shuffled = list_images(tmp_path, num=10, seed=3, shuffle=True)
    assert sorted(shuffled) == a and shuffled != a
    everything = list_images(tmp_path, shuffle=True, seed=1)
    assert sorted(everything) == list_images(tmp_path) and everything != sorted(everything)
    assert len(list_images(tmp_path, num=100)) == 30
    with pytest.raises(CalibrationError, match="must be positive"):
        list_images(tmp_path, num=0)


def test_pixel_modes_are_converted_explicitly(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    base = Image.fromarray(rgb, "RGB")
    # RGBA: alpha dropped, colours kept
    rgba = Image.fromarray(np.dstack([rgb, np.full((6, 7), 7, np.uint8)]), "RGBA")
    assert np.array_equal(np.asarray(to_8bit(rgba, gray=False)), rgb)
    # palette: expanded through the palette
    pal = base.quantize(16)
    assert np.array_equal(np.asarray(to_8bit(pal, gray=False)), np.asarray(pal.convert("RGB")))
    # gray -> RGB replicates; RGB -> gray is ITU-R 601-2 luma
    gray = Image.fromarray(rgb[:, :, 0], "L")
    assert np.array_equal(np.asarray(to_8bit(gray, gray=False)), np.repeat(rgb[:, :, :1], 3, axis=2))
    f = rgb.astype(np.float64)
    luma = (f[..., 0] * 299 + f[..., 1] * 587 + f[..., 2] * 114) / 1000
    assert np.abs(np.asarray(to_8bit(base, gray=True)).astype(float) - luma).max() <= 1.0
    # CMYK via PIL
    cmyk = base.convert("CMYK")
    assert np.array_equal(np.asarray(to_8bit(cmyk, gray=False)), np.asarray(cmyk.convert("RGB")))
    # 16-bit: value / 257, rounded (65535 -> 255, 257 -> 1, 128 -> 0, 129 -> 1)
    sixteen = np.array([[0, 128, 129, 257, 32896, 65535]], np.uint16)
    img16 = Image.fromarray(sixteen)
    assert img16.mode.startswith("I")
    assert np.asarray(to_8bit(img16, gray=True)).tolist() == [[0, 0, 1, 1, 128, 255]]
    path = tmp_path / "deep.png"
    img16.save(path)
    assert np.asarray(to_8bit(open_image(path), gray=True)).tolist() == [[0, 0, 1, 1, 128, 255]]
    # float images are refused naming the file
    with pytest.raises(CalibrationError, match=r"weird\.tif: pixel mode 'F'"):
        to_8bit(Image.new("F", (2, 2)), gray=False, source="weird.tif")


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # white band on the left of the stored image
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    shown = np.asarray(open_image(path))
    assert shown.shape[:2] == (40, 20)  # width and height swapped
    assert shown[:10].mean() > 200 and shown[-10:].mean() < 50  # left band is now on top
    # the fast-decode draft path honours the rotation: asked for >= 10x20 as displayed, the
    # decoder halves the stored 40x20 image, then it is rotated
    assert np.asarray(open_image(path, draft_size=(10, 20))).shape[:2] == (20, 10)
    assert np.asarray(open_image(path, draft_size=(11, 20))).shape[:2] == (40, 20)


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(CalibrationError, match="broken.jpg"):
        open_image(bad)
