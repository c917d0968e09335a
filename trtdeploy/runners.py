"""Runners with one protocol: images in, the output contract's tensors and ``Detections`` out.

Every runner (TensorFlow saved model in ``tfod_trt.runner``, ONNX Runtime here, TensorRT in
``trtdeploy.runners_trt``) has

* ``card``: the deploy card that says how to preprocess and how to read the outputs;
* ``prepare(images)``: PIL images of any size -> (model input batch, one ``Frame`` per image),
  through the calibration package's preprocessing (the one implementation of stretch and
  letterbox); the frames map boxes back to the original images;
* ``infer(batch)``: the model input -> the output tensors by name;
* ``read(outputs)``: the output tensors -> one ``Detections`` per image (normalised y1,x1,y2,x2
  on the network input, 0-based classes into the card's labels);
* ``detections(pixels)``: float RGB 0-255 ``[N,H,W,3]`` already at the model's input size ->
  ``Detections`` (what ``verify`` feeds both sides).

``open_runner(path)`` picks the runner from what ``path`` is: a saved model folder, an ``.onnx``
with its deploy card, or an ``.engine`` with its sidecar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from trtdeploy.deploy_card import DeployCard, card_path_for
from trtdeploy.detections import Detections
from trtdeploy.errors import InputError

if TYPE_CHECKING:
    from PIL import Image

    from calibration import PreprocessSpec


@dataclass(frozen=True)
class Frame:
    """One original image and where the preprocessing put it in the network input."""

    width: int  # original image size
    height: int
    left: int  # the resized image's place in the network input (PreprocessSpec.placement)
    top: int
    resized_width: int
    resized_height: int
    net_width: int
    net_height: int

    def to_pixels(self, boxes: np.ndarray) -> np.ndarray:
        """Normalised y1,x1,y2,x2 on the network input [N,4] -> x1,y1,x2,y2 in original-image
        pixels, clipped to the image (letterbox padding removed, stretch undone)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        sx = self.width / self.resized_width
        sy = self.height / self.resized_height
        x1 = (boxes[:, 1] * self.net_width - self.left) * sx
        y1 = (boxes[:, 0] * self.net_height - self.top) * sy
        x2 = (boxes[:, 3] * self.net_width - self.left) * sx
        y2 = (boxes[:, 2] * self.net_height - self.top) * sy
        out = np.stack([x1, y1, x2, y2], axis=1)
        return np.clip(out, 0.0, np.array([self.width, self.height, self.width, self.height], np.float64))


class Runner(Protocol):
    name: str

    @property
    def card(self) -> DeployCard: ...

    def prepare(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, list[Frame]]: ...

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...

    def read(self, outputs: dict[str, np.ndarray]) -> list[Detections]: ...

    def detections(self, pixels: np.ndarray) -> list[Detections]: ...


def preprocess_spec(card: DeployCard) -> PreprocessSpec:
    """The calibration package's preprocessing for a deploy card."""
    from calibration import CalibrationError, PreprocessSpec

    try:
        return PreprocessSpec.from_card_dict(card.to_dict())
    except CalibrationError as exc:
        raise InputError(f"deploy card preprocessing: {exc}") from exc


def frame_for(spec: PreprocessSpec, width: int, height: int) -> Frame:
    left, top, nw, nh = spec.placement(width, height)
    return Frame(width, height, left, top, nw, nh, spec.width, spec.height)


def prepare_images(spec: PreprocessSpec, images: Sequence[Image.Image]) -> tuple[np.ndarray, list[Frame]]:
    """PIL images -> the model input batch and the frames that map boxes back."""
    batch = np.empty(spec.shape(len(images)), spec.dtype)
    frames = []
    for i, image in enumerate(images):
        spec.tensor_into(image, batch[i])
        frames.append(frame_for(spec, *image.size))
    return batch, frames


def to_input_tensor(images: np.ndarray, card: DeployCard) -> np.ndarray:
    """RGB 0-255 [N,H,W,3] at the model's input size -> the model input, through the
    calibration package's preprocessing (colour order, scale*(x - offsets), layout, dtype)."""
    from PIL import Image

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise InputError(f"images must be RGB [N,H,W,3], got shape {list(images.shape)}")
    pixels = np.rint(images)
    if images.dtype != np.uint8 and (np.abs(pixels - images).max(initial=0) > 0 or pixels.min(initial=0) < 0
                                     or pixels.max(initial=0) > 255):
        raise InputError("images must hold 8-bit pixel values 0..255 (as decoded from an image file)")
    spec = preprocess_spec(card)
    if images.shape[1:3] != (spec.height, spec.width):
        raise InputError(f"images are {images.shape[2]}x{images.shape[1]}; the model takes {spec.width}x{spec.height}")
    batch, _ = prepare_images(spec, [Image.fromarray(p.astype(np.uint8)) for p in pixels])
    return batch


class CardRunner:
    """What every runner shares: preprocessing from the card and the contract's reader."""

    _card: DeployCard
    name: str = "model"
    backend: str = ""

    @property
    def card(self) -> DeployCard:
        return self._card

    def prepare(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, list[Frame]]:
        spec = getattr(self, "_spec", None)
        if spec is None:
            spec = preprocess_spec(self.card)
            self._spec = spec
        return prepare_images(spec, images)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def read(self, outputs: dict[str, np.ndarray]) -> list[Detections]:
        return read_contract(outputs, self.card)

    def detections(self, pixels: np.ndarray) -> list[Detections]:
        return self.read(self.infer(to_input_tensor(pixels, self.card)))

    def detections_placed(self, pixels: np.ndarray, frames: Sequence[Frame]) -> list[Detections]:
        """``detections`` of pixels that the preprocessing placed as ``frames`` say. A runner that
        resizes inside (TFOD's serving signature) overrides it to see what it would see on the
        photo; the others run the network input as it is."""
        return self.detections(pixels)

    @property
    def static_batch(self) -> int | None:
        batch = self.card.input.shape[0]
        return None if batch == -1 else batch


def read_contract(outputs: dict[str, np.ndarray], card: DeployCard) -> list[Detections]:
    """The card's output tensors (by name) -> Detections per image."""
    missing = [name for name in card.output.names if name not in outputs]
    if missing:
        raise InputError(f"the model's outputs lack {missing} that the deploy card names; got {sorted(outputs)}")
    ordered = [outputs[name] for name in card.output.names]
    return card.output.output_contract.read(ordered, card)  # the output contract's reader (trtdeploy.contracts)


class OnnxRuntimeRunner(CardRunner):
    """ONNX Runtime on the CPU; TensorRT plugin NMS nodes run through trtdeploy's CPU references.
    FP16-converted and Q/DQ ONNX run the same way (their inputs and outputs stay float32)."""

    def __init__(self, onnx_path: Path, card: DeployCard, optimize: bool = True) -> None:
        """``optimize=False``: ONNX Runtime without its graph optimisations (verify measures the
        float32 noise against it)."""
        from trtdeploy.nms import make_session

        self._card = card
        self.name = Path(onnx_path).name
        self.session = make_session(Path(onnx_path), optimize=optimize)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.backend = f"onnxruntime {version('onnxruntime')} ({', '.join(self.session.get_providers())})"

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        static = self.static_batch
        if static is not None and batch.shape[0] != static:
            raise InputError(f"the ONNX has a static batch of {static}; got {batch.shape[0]} images")
        try:
            outputs = self.session.run(None, {self.input_name: batch})
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's pybind errors share no base class we can name
            message = " ".join(str(exc).split())
            raise InputError(f"ONNX Runtime could not run {self.name}: {message[:300]}") from exc
        return dict(zip(self.output_names, outputs, strict=True))

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Pixels at the model's size (as ``detections`` takes) -> raw outputs by name."""
        return self.infer(to_input_tensor(images, self.card))


def open_runner(path: Path) -> CardRunner:
    """A runner for a saved model folder, an ONNX (deploy card next to it) or a TensorRT engine
    (sidecar next to it)."""
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model").is_dir() and not (path / "saved_model.pb").is_file():
            path = path / "saved_model"
        if not any((path / f).is_file() for f in ("saved_model.pb", "saved_model.pbtxt")):
            raise InputError(f"{path} is a folder but not a TensorFlow saved model (no saved_model.pb)")
        from tfod_trt.runner import TfodRunner

        return TfodRunner(path)
    if not path.is_file():
        raise InputError(f"model {path} not found")
    if path.suffix == ".onnx":
        card_path = card_path_for(path)
        if not card_path.is_file():
            raise InputError(f"no deploy card {card_path.name} next to {path.name}: make the ONNX with create-onnx "
                             "(or import-tao), which writes it")
        return OnnxRuntimeRunner(path, DeployCard.load(card_path))
    if path.suffix in (".engine", ".plan", ".trt"):
        from trtdeploy.runners_trt import TensorRtRunner

        return TensorRtRunner(path)
    raise InputError(f"{path.name}: not a saved model folder, .onnx or .engine; give one of those")
