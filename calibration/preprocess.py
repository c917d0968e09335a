"""Turn an image into exactly the tensor the deployed model expects.

The description mirrors trtdeploy's deploy card (``InputSpec`` + ``Preprocess``) without importing
it: build one with ``PreprocessSpec.from_card_dict(card.to_dict())``.

For an image of w x h pixels and a network input of W x H (all arithmetic on 8-bit pixels until
the last step):

1. ``to_8bit``: RGB (or gray ``L`` when color_order is GRAY), EXIF orientation already applied.
2. Resize with the PIL filter ``resample`` (nearest, bilinear, bicubic, lanczos, box, hamming):
   * ``stretch``: to W x H, aspect ratio not kept.
   * ``letterbox``: r = min(W / w, H / h); to nw x nh with nw = max(1, round(w * r)),
     nh = max(1, round(h * r)) (round half to even, Python's ``round``), pasted on a W x H canvas
     filled with ``pad_color`` (8-bit pixel values in the model's colour order) at
     ``center``: left = (W - nw) // 2, top = (H - nh) // 2, or ``top_left``: (0, 0).
3. Colour order: BGR reverses the channels of RGB.
4. ``tensor[c] = scale * (pixel[c] - offsets[c])``, computed in float64 and rounded once to
   ``dtype`` (float32 or float16). ``uint8`` passes pixels through and needs scale 1, offsets 0.
5. Layout NCHW (channels first) or NHWC.

In ``fast_decode`` mode a JPEG may be decoded at 1/2, 1/4 or 1/8 size (DCT scaling) when the
decoded image is still at least ``FAST_DECODE_MIN_FRACTION`` of the resize target in each
dimension; the tensor is then close to, not identical with, the exact one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from calibration.errors import CalibrationError
from calibration.images import open_image, to_8bit

RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
DTYPES = ("float32", "float16", "uint8")
FAST_DECODE_MIN_FRACTION = 0.75


@dataclass(frozen=True)
class PreprocessSpec:
    height: int
    width: int
    layout: str = "NCHW"  # NCHW | NHWC
    color_order: str = "RGB"  # RGB | BGR | GRAY
    scale: float = 1.0
    offsets: tuple[float, ...] = (0.0, 0.0, 0.0)
    resize: str = "stretch"  # stretch | letterbox
    pad_color: tuple[int, ...] = (0, 0, 0)
    pad_corner: str = "center"  # center | top_left
    resample: str = "bilinear"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "offsets", tuple(float(o) for o in self.offsets))
        pad = tuple(self.pad_color)
        if not all(float(p).is_integer() and 0 <= float(p) <= 255 for p in pad):
            raise CalibrationError(f"pad colour {list(pad)} must be 8-bit pixel values 0..255")
        object.__setattr__(self, "pad_color", tuple(int(p) for p in pad))
        checks = [
            (self.layout in ("NCHW", "NHWC"), f"layout {self.layout!r} must be NCHW or NHWC"),
            (self.color_order in ("RGB", "BGR", "GRAY"), f"colour order {self.color_order!r} must be RGB, BGR or GRAY"),
            (self.resize in ("stretch", "letterbox"), f"resize mode {self.resize!r} must be stretch or letterbox"),
            (self.pad_corner in ("center", "top_left"), f"pad corner {self.pad_corner!r} must be center or top_left"),
            (self.resample in RESAMPLE, f"resample filter {self.resample!r} must be one of {', '.join(RESAMPLE)}"),
            (self.dtype in DTYPES, f"dtype {self.dtype!r} must be one of {', '.join(DTYPES)}"),
            (
                self.height > 0 and self.width > 0,
                f"input size {self.width}x{self.height} must be positive (fixed, not -1)",
            ),
            (len(self.offsets) == self.channels, f"{len(self.offsets)} offsets for {self.channels} channels"),
            (
                len(self.pad_color) == self.channels,
                f"{len(self.pad_color)} pad colour values for {self.channels} channels",
            ),
            (math.isfinite(self.scale), f"scale {self.scale} must be finite"),
            (
                self.dtype != "uint8" or (self.scale == 1 and not any(self.offsets)),
                f"a uint8 input takes raw pixels: scale must be 1 and offsets 0 (got {self.scale}, {list(self.offsets)})",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise CalibrationError(message)

    @property
    def channels(self) -> int:
        return 1 if self.color_order == "GRAY" else 3

    def shape(self, batch: int) -> tuple[int, int, int, int]:
        if self.layout == "NCHW":
            return (batch, self.channels, self.height, self.width)
        return (batch, self.height, self.width, self.channels)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["offsets"] = list(self.offsets)
        data["pad_color"] = list(self.pad_color)
        return data

    @classmethod
    def from_card_dict(cls, card: dict[str, Any]) -> PreprocessSpec:
        """From a deploy card as a dict (``DeployCard.to_dict()`` or the JSON file's content)."""
        try:
            inp, pre = card["input"], card["preprocess"]
            layout = inp.get("layout", "NHWC")
            shape = list(inp["shape"])
            height, width = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
            gray = pre.get("color_order", "RGB") == "GRAY"
            return cls(
                height=int(height),
                width=int(width),
                layout=layout,
                color_order=pre.get("color_order", "RGB"),
                scale=float(pre.get("scale", 1.0)),
                offsets=tuple(pre.get("offsets", [0.0] if gray else [0.0, 0.0, 0.0])),
                resize=pre.get("resize", "stretch"),
                pad_color=tuple(pre.get("pad_color", [0] if gray else [0, 0, 0])),
                pad_corner=pre.get("pad_corner", "center"),
                resample=pre.get("resample", "bilinear"),
                dtype=inp.get("dtype", "float32"),
            )
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise CalibrationError(f"deploy card lacks the input/preprocess facts calibration needs: {exc!r}") from exc

    # -- the pipeline -----------------------------------------------------------------------

    def load(self, path: Path, fast_decode: bool = False) -> Image.Image:
        """Open, orient and convert one file to 8-bit (steps 1)."""
        draft = None
        if fast_decode:
            draft = (
                math.ceil(self.width * FAST_DECODE_MIN_FRACTION),
                math.ceil(self.height * FAST_DECODE_MIN_FRACTION),
            )
            if self.resize == "letterbox":
                draft = None  # the draft rule works per dimension; a letterbox target depends on both
        image = open_image(path, draft)
        return to_8bit(image, self.color_order == "GRAY", path)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """Steps 2-3: an 8-bit HxWxC array in the model's colour order."""
        image = to_8bit(image, self.color_order == "GRAY")
        W, H = self.width, self.height
        filt = RESAMPLE[self.resample]
        if self.resize == "stretch":
            resized = image if image.size == (W, H) else image.resize((W, H), filt)
            array = np.asarray(resized)
        else:
            left, top, nw, nh = self.placement(*image.size)
            resized = image if (nw, nh) == image.size else image.resize((nw, nh), filt)
            array = np.empty((H, W, self.channels), np.uint8)
            array[...] = np.asarray(self.pad_color, np.uint8)
            array[top : top + nh, left : left + nw] = np.asarray(resized).reshape(nh, nw, self.channels)
        if array.ndim == 2:
            array = array[:, :, None]
        if self.color_order == "BGR":
            array = array[:, :, ::-1]
        return array

    def placement(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Where an image of ``width`` x ``height`` lands in the network input (step 2):
        (left, top, resized width, resized height); the whole input for ``stretch``. Runners
        map boxes back to the original image through it."""
        W, H = self.width, self.height
        if self.resize == "stretch":
            return 0, 0, W, H
        r = min(W / width, H / height)
        nw, nh = max(1, min(W, round(width * r))), max(1, min(H, round(height * r)))
        left, top = ((W - nw) // 2, (H - nh) // 2) if self.pad_corner == "center" else (0, 0)
        return left, top, nw, nh

    def _lookup(self) -> np.ndarray:
        """Per-channel table pixel -> tensor value: step 4 done once per possible pixel value."""
        table = getattr(self, "_table", None)
        if table is None:
            levels = np.arange(256, dtype=np.float64)
            table = np.stack([(levels - off) * self.scale for off in self.offsets]).astype(self.dtype)
            object.__setattr__(self, "_table", table)
        return table

    def tensor_into(self, image: Image.Image, out: np.ndarray) -> None:
        """Steps 2-5 for one image, written into ``out`` (one sample of the batch array)."""
        array = self.pixels(image)
        if self.dtype == "uint8":
            out[...] = array.transpose(2, 0, 1) if self.layout == "NCHW" else array
            return
        table = self._lookup()
        # mode="clip": uint8 indices are always in range, and the default "raise" mode makes
        # NumPy buffer the output (3x slower). Writing into a strided NHWC channel is slow too,
        # so NHWC goes through contiguous planes, or one lookup when all channels share a table.
        if self.layout == "NCHW":
            for c in range(self.channels):
                np.take(table[c], array[:, :, c], out=out[c], mode="clip")
        elif (table == table[0]).all():
            np.take(table[0], array, out=out, mode="clip")
        else:
            planes = np.empty((self.channels, *array.shape[:2]), self.dtype)
            for c in range(self.channels):
                np.take(table[c], array[:, :, c], out=planes[c], mode="clip")
            out[...] = planes.transpose(1, 2, 0)

    def tensor(self, image: Image.Image) -> np.ndarray:
        """One image as a tensor without the batch axis (CHW or HWC)."""
        out = np.empty(self.shape(1)[1:], self.dtype)
        self.tensor_into(image, out)
        return out

    def load_tensor_into(self, path: Path, out: np.ndarray, fast_decode: bool = False) -> None:
        self.tensor_into(self.load(path, fast_decode), out)
