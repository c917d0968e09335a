"""Where calibration images come from, and how one file becomes an 8-bit RGB or gray image.

Sources: a folder (searched recursively), a list file (one path per line, relative to the list
file; blank lines and ``#`` comments skipped) or a COCO annotation JSON (its ``images[].file_name``
relative to ``image_root``, default the JSON's folder). Accepted extensions: jpg, jpeg, png, bmp.

Order is deterministic: files sorted by their path relative to the source (list and COCO files
keep their own order). ``num`` picks a random subset with ``seed`` and keeps it in that order
unless ``shuffle`` is set.

Pixel formats are converted explicitly (see ``to_8bit``); anything else is refused naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from calibration.errors import CalibrationError
from trtdeploy.files import read_text

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def list_images(
    source: str | Path,
    num: int | None = None,
    seed: int = 0,
    shuffle: bool = False,
    image_root: str | Path | None = None,
) -> list[Path]:
    """Image paths from a folder, list file (.txt) or COCO JSON (.json), sampled deterministically."""
    source = Path(source)
    if source.is_dir():
        paths = sorted(
            (p for p in source.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()),
            key=lambda p: p.relative_to(source).as_posix(),
        )
        if not paths:
            raise CalibrationError(
                f"image folder {source} has no {'/'.join(e[1:] for e in EXTENSIONS)} files (searched recursively)"
            )
    elif source.is_file() and source.suffix.lower() == ".json":
        paths = _coco_paths(source, Path(image_root) if image_root else source.parent)
    elif source.is_file():
        paths = _list_file_paths(source)
    else:
        raise CalibrationError(
            f"calibration image source {source} does not exist (give a folder, list file or COCO JSON)"
        )
    if num is not None:
        if num <= 0:
            raise CalibrationError(f"number of calibration images must be positive, got {num}")
        if num < len(paths):
            picked = np.random.default_rng(seed).choice(len(paths), size=num, replace=False)
            if not shuffle:
                picked = np.sort(picked)
            return [paths[i] for i in picked]
    if shuffle:
        return [paths[i] for i in np.random.default_rng(seed).permutation(len(paths))]
    return paths


def _list_file_paths(list_file: Path) -> list[Path]:
    paths = []
    for number, line in enumerate(read_text(list_file, "image list").splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if "\x00" in entry:
            raise CalibrationError(f"{list_file} line {number}: {entry!r} is not a file name (NUL character)")
        path = Path(entry) if Path(entry).is_absolute() else list_file.parent / entry
        if not path.is_file():
            raise CalibrationError(
                f"{list_file} line {number}: image {entry!r} not found (paths are relative to the list file)"
            )
        if path.suffix.lower() not in EXTENSIONS:
            raise CalibrationError(f"{list_file} line {number}: {entry!r} is not a jpg/jpeg/png/bmp file")
        paths.append(path)
    if not paths:
        raise CalibrationError(f"image list {list_file} names no images")
    return paths


def _coco_paths(json_path: Path, root: Path) -> list[Path]:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        names = [entry["file_name"] for entry in data["images"]]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{json_path} is not valid JSON: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise CalibrationError(f"{json_path} is not a COCO annotation file (no images[].file_name)") from exc
    if not names:
        raise CalibrationError(f"COCO file {json_path} lists no images")
    bad = [n for n in names if not isinstance(n, str) or not n.strip() or "\x00" in n]
    if bad:
        raise CalibrationError(f"{json_path}: images[].file_name {bad[0]!r} is not a file name")
    paths = [root / name for name in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise CalibrationError(
            f"{len(missing)} of {len(paths)} images in {json_path} not found, e.g. {missing[0]}; "
            "pass the image folder as image_root (--image-root)"
        )
    return paths


def open_image(path: Path, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Open an image with its EXIF orientation applied. ``draft_size`` (w, h, after orientation)
    lets the JPEG decoder downscale by 1/2, 1/4 or 1/8 while staying at least that size."""
    try:
        image: Image.Image = Image.open(path)
        if draft_size is not None and image.format == "JPEG":
            w, h = draft_size
            if _orientation(image) in (5, 6, 7, 8):  # rotated 90 degrees: decoder sees w/h swapped
                w, h = h, w
            image.draft(image.mode if image.mode in ("RGB", "L") else None, (max(w, 1), max(h, 1)))
        image.load()
        if _orientation(image) != 1:  # exif_transpose copies even upright images: skip those
            image = ImageOps.exif_transpose(image)
        return image
    except CalibrationError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's ways of saying "broken file"
        raise CalibrationError(f"cannot read image {path}: {exc}") from exc


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block must not stop calibration; the image is still usable
        return 1


def to_8bit(image: Image.Image, gray: bool, source: str | Path = "image") -> Image.Image:
    """Convert to 8-bit ``RGB`` (or ``L`` when ``gray``), explicitly per mode:

    * RGBA, LA, PA, P with transparency: alpha is dropped (pixels keep their colour);
    * P (palette): expanded through the palette; 1 (bilevel): 0/255;
    * CMYK, YCbCr, LAB, HSV: PIL's conversion to RGB;
    * 16-bit (I;16*, I with values <= 65535): value / 257 rounded, i.e. 65535 -> 255;
    * gray from colour: ITU-R 601-2 luma, L = R*299/1000 + G*587/1000 + B*114/1000 (PIL).
    Float ("F") and other modes are refused naming the file.
    """
    mode = image.mode
    target = "L" if gray else "RGB"
    if mode == target:
        return image
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise CalibrationError(
                f"{source}: 32-bit integer pixels outside 0..65535 are not supported; convert to 8-bit"
            )
        eight = ((values * 255 + 32767) // 65535).astype(np.uint8)  # round(v / 257)
        return Image.fromarray(eight, "L").convert(target)
    if mode in ("P", "PA"):
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGB", "L", "1", "RGBA", "LA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        if gray and mode in ("RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
            image = image.convert("RGB")
        if mode == "LA" and not gray:
            image = image.convert("L")
        return image.convert(target)
    raise CalibrationError(f"{source}: pixel mode {mode!r} is not supported for calibration; convert it to 8-bit RGB")
