"""Run a TFOD saved model through the runner protocol of ``trtdeploy.runners``.

The saved model has no deploy card; ``saved_model_card`` makes one from the export's
``pipeline.config`` (input size, resizer) and label map, both found next to the
``saved_model/`` folder as ``exporter_main_v2.py`` writes them. The model is fed images already
resized to its input size (float32 RGB 0-255, the export's ``float_image_tensor``), so
TensorFlow and a converted ONNX see the same pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trtdeploy.deploy_card import DeployCard, InputSpec, NmsParams, OutputSpec, Preprocess, Provenance
from trtdeploy.detections import Detections
from trtdeploy.errors import InputError
from trtdeploy.lazy import require
from trtdeploy.runners import CardRunner, Frame

# TFOD's detection_classes are label-map ids: column index + 1 (label_id_offset).
LABEL_ID_OFFSET = 1
OUTPUT_NAMES = ["num_detections", "detection_boxes", "detection_scores", "detection_classes"]
MASK_OUTPUT = "detection_masks"  # Mask R-CNN exports: [B,K,mask_h,mask_w] probabilities in the box's frame
RAW_NAMES = ("raw_detection_boxes", "raw_detection_scores")  # TFOD's raw output names (trtdeploy.exact.TFOD_RAW)


def saved_model_card(saved_model: Path, label_map: Path | None = None) -> DeployCard:
    """A deploy card for running the saved model itself: what create-onnx would record about
    its input and preprocessing, with TFOD's own output tensors (1-based float class ids)."""
    from tfod_trt.pipeline_config import read_label_map
    from trtdeploy.families import ModelSource, find_family

    saved_model = Path(saved_model)
    config_path = saved_model.parent / "pipeline.config"
    if not config_path.is_file():
        raise InputError(f"pipeline.config not found next to {saved_model} (at {config_path}); the saved model's "
                         "input size and resizer come from it")
    source = ModelSource(saved_model, config_path)
    family = find_family(source)  # TFOD SSD or Faster R-CNN: both configs are TfodConfig
    config = family.read_config(source)
    if label_map is None and (saved_model.parent / "label_map.pbtxt").is_file():
        label_map = saved_model.parent / "label_map.pbtxt"
    labels = (read_label_map(label_map, config.num_classes) if label_map
              else [f"class_{i}" for i in range(1, config.num_classes + 1)])
    letterbox = config.resizer == "keep_aspect_ratio_resizer"
    return DeployCard(
        input=InputSpec(name="input_tensor", shape=[1, config.height, config.width, 3], layout="NHWC"),
        # TFOD pads a keep_aspect_ratio_resizer image at the bottom/right (DOMAIN.md s.4b)
        preprocess=Preprocess(resize="letterbox" if letterbox else "stretch", pad_corner="top_left"),
        output=OutputSpec(nms="other", layout="tfod", names=list(OUTPUT_NAMES), num_classes=config.num_classes,
                          class_id_base=LABEL_ID_OFFSET, class_dtype="float32",
                          max_detections=config.max_total_detections),
        labels=labels,
        background="dropped (column 0)" if config.add_background_class else "none",
        nms=NmsParams(score_threshold=config.score_threshold, iou_threshold=config.iou_threshold,
                      max_detections=config.max_total_detections,
                      max_detections_per_class=config.max_detections_per_class),
        provenance=Provenance(framework="tensorflow", model_family=family.key, architecture=config.feature_extractor),
    )


class TfodRunner(CardRunner):
    """The saved model's serving signature, one image at a time (the export's batch may be 1)."""

    def __init__(self, saved_model: Path, label_map: Path | None = None) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
        tf = require("tensorflow")
        self._tf = tf
        self.backend = f"tensorflow {tf.__version__}"
        self.saved_model = Path(saved_model)
        self.name = self.saved_model.name if self.saved_model.name != "saved_model" else self.saved_model.parent.name
        self._label_map = label_map
        self._saved_card: DeployCard | None = None
        try:
            self._model = tf.saved_model.load(str(saved_model))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load saved model {saved_model}: {exc}") from exc
        self._fn = self._model.signatures["serving_default"]
        self._input = next(iter(self._fn.structured_input_signature[1]))

    @property
    def card(self) -> DeployCard:
        # made on first use: verify runs a saved model on ready pixels without needing it
        if self._saved_card is None:
            self._saved_card = saved_model_card(self.saved_model, self._label_map)
        return self._saved_card

    @property
    def static_batch(self) -> int | None:
        return None  # fed one image at a time: any batch

    def infer(self, batch: np.ndarray, names: Sequence[str] = OUTPUT_NAMES) -> dict[str, np.ndarray]:
        """batch: float32 [N,H,W,3] RGB 0-255 -> the signature's outputs ``names`` (by default
        TFOD's four detection outputs; also e.g. ``raw_detection_scores``), stacked."""
        per_image: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for image in np.asarray(batch, np.float32):
            out = self._fn(**{self._input: self._tf.constant(image[None])})
            for name in names:
                per_image[name].append(out[name].numpy()[0])
        return {name: np.stack(values) for name, values in per_image.items()}

    def detections(self, pixels: np.ndarray) -> list[Detections]:
        """pixels: float32 [N,H,W,3] RGB 0-255 (no card needed); a Mask R-CNN export's
        ``detection_masks`` come with them."""
        masked = MASK_OUTPUT in self._fn.structured_outputs
        outputs = self.infer(pixels, [*OUTPUT_NAMES, MASK_OUTPUT] if masked else OUTPUT_NAMES)
        result = []
        for b in range(len(pixels)):
            n = int(outputs["num_detections"][b])
            result.append(
                Detections(
                    outputs["detection_boxes"][b, :n].astype(np.float32),
                    outputs["detection_scores"][b, :n].astype(np.float32),
                    np.rint(outputs["detection_classes"][b, :n]).astype(np.int64) - LABEL_ID_OFFSET,
                    outputs[MASK_OUTPUT][b, :n].astype(np.float32) if masked else None,
                )
            )
        return result

    def detections_placed(self, pixels: np.ndarray, frames: Sequence[Frame]) -> list[Detections]:
        """TFOD on what the letterbox put in each network input, without the padding: TFOD
        resizes and pads a photo itself and clips (and, for Mask R-CNN, crops the masks) in the
        true image area it knows, which a padded input would hide from it. The boxes come back
        normalised on the network input, as the ONNX's are."""
        result = []
        for image, frame in zip(pixels, frames, strict=True):
            inner = image[frame.top:frame.top + frame.resized_height, frame.left:frame.left + frame.resized_width]
            (found,) = self.detections(np.ascontiguousarray(inner)[None])
            scale = np.array([frame.resized_height / frame.net_height, frame.resized_width / frame.net_width] * 2)
            shift = np.array([frame.top / frame.net_height, frame.left / frame.net_width] * 2)
            boxes = (found.boxes.astype(np.float64) * scale + shift).astype(np.float32)
            result.append(Detections(boxes, found.scores, found.classes, found.masks))
        return result


class AutomlRunner(CardRunner):
    """An AutoML EfficientDet saved model as verify's reference: the ``predict`` signature's raw
    heads (the network alone, on our float pixels normalised as the export does), decoded
    against the export's anchors and put through the same hard NMS as our EfficientNMS head
    (``trtdeploy.nms.reference.efficient_nms`` with the deploy card's parameters), boxes clipped
    to the image as our head clips them.

    ``serving_detections`` runs the export's own ``serving_default`` instead (uint8 pixels, its
    resize and its soft-NMS: NonMaxSuppressionV5 gaussian, google/automl efficientdet/tf2/
    postprocess.py nms()), to measure how far the deployed model's detections are from it.
    """

    def __init__(self, saved_model: Path, nms: NmsParams | None = None) -> None:
        from tfod_trt.automl.hparams import read_config
        from tfod_trt.automl.saved_model_proto import read_saved_model

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        tf = require("tensorflow")
        self._tf = tf
        self.backend = f"tensorflow {tf.__version__}"
        self.saved_model = Path(saved_model)
        self.name = self.saved_model.name if self.saved_model.name != "saved_model" else self.saved_model.parent.name
        self.config = read_config(read_saved_model(self.saved_model))
        c = self.config
        self.nms = nms or NmsParams(score_threshold=c.score_threshold, iou_threshold=c.iou_threshold,
                                    max_detections=c.max_total_detections, max_detections_per_class=c.max_total_detections)
        # Graph mode: one session restores the variables once and runs either signature's tensors
        # (tf.saved_model.load re-creates every function object: ~30 s on EfficientDet-D0, this ~5 s).
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        try:
            with self._graph.as_default():
                meta = tf.compat.v1.saved_model.loader.load(self._session, ["serve"], str(saved_model))
        except (OSError, ValueError, RuntimeError, tf.errors.OpError) as exc:
            raise InputError(f"cannot load saved model {saved_model}: {str(exc).splitlines()[0]}") from exc
        self._signatures = meta.signature_def

    def _run(self, key: str, names: Sequence[str], image: np.ndarray) -> list[np.ndarray]:
        sig = self._signatures[key]
        feed = {next(iter(sig.inputs.values())).name: image}
        return list(self._session.run([sig.outputs[n].name for n in names], feed))

    @property
    def card(self) -> DeployCard:
        """The raw contract (decoded boxes and scores, NMS on read with ``nms``): what ``infer``
        returns, read as a `--nms none` graph's outputs are."""
        c = self.config
        return DeployCard(
            input=InputSpec(name="images", shape=[1, c.height, c.width, 3], layout="NHWC"),
            preprocess=Preprocess(resize="letterbox", pad_corner="top_left"),
            output=OutputSpec(nms="none", layout="raw", names=list(RAW_NAMES), num_classes=c.num_classes,
                              max_detections=self.nms.max_detections),
            labels=[f"class_{i}" for i in range(1, c.num_classes + 1)],
            background="none",
            nms=self.nms,
            provenance=Provenance(framework="tensorflow", model_family="automl_efficientdet", architecture="efficientdet"),
        )

    @property
    def static_batch(self) -> int | None:
        return None

    def heads(self, batch: np.ndarray) -> list[np.ndarray]:
        """The predict signature's outputs (class maps, then box maps) for float pixels 0-255."""
        from tfod_trt.automl.hparams import head_outputs

        c = self.config
        names = [n for group in head_outputs(self._signatures["predict"]) for n in group]
        per_image = [self._run("predict", names, ((image[None] - c.mean) / c.std).astype(np.float32))
                     for image in np.asarray(batch, np.float32)]
        return [np.concatenate([outs[i] for outs in per_image]) for i in range(len(names))]

    def infer(self, batch: np.ndarray, names: Sequence[str] = RAW_NAMES) -> dict[str, np.ndarray]:
        """Decoded, unclipped boxes [N,A,4] and sigmoid scores [N,A,C] under TFOD's raw names."""
        from tfod_trt.automl.convert import raw_heads_reference

        boxes, scores = raw_heads_reference(self.config, self.heads(batch))
        found = {"raw_detection_boxes": boxes, "raw_detection_scores": scores}
        return {name: found[name] for name in names}

    def detections(self, pixels: np.ndarray) -> list[Detections]:
        """Our hard NMS (the EfficientNMS reference with the card's parameters, boxes clipped after
        it) on the decoded raw heads: trtdeploy.detections.from_raw_outputs, as for `--nms none`."""
        from trtdeploy.detections import from_raw_outputs

        raw = self.infer(pixels)
        return from_raw_outputs([raw[name] for name in RAW_NAMES], self.card)

    def serving_detections(self, pixels: np.ndarray) -> list[Detections]:
        """The export's serving signature on the same pixels (rounded to uint8, as it takes them)."""
        result = []
        for image in np.asarray(pixels):
            h, w = image.shape[:2]
            boxes, scores, classes, count = self._run(
                "serving_default", ["output_0", "output_1", "output_2", "output_3"],
                np.clip(np.rint(image), 0, 255).astype(np.uint8)[None])
            n = int(count[0])
            result.append(Detections((boxes[0, :n] / np.array([h, w, h, w], np.float32)).astype(np.float32),
                                     scores[0, :n].astype(np.float32), np.rint(classes[0, :n]).astype(np.int64) - 1))
        return result


def saved_model_runner(saved_model: Path, card: DeployCard | None = None) -> CardRunner:
    """verify's TensorFlow side for a saved model of any family we convert: AutoML's raw heads +
    our NMS (the card's parameters) for an AutoML export, the serving signature otherwise."""
    from tfod_trt.automl.hparams import is_automl_export

    if is_automl_export(saved_model):
        return AutomlRunner(saved_model, card.nms if card is not None else None)
    return TfodRunner(saved_model)
