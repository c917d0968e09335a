"""Google AutoML EfficientDet saved models as a ``trtdeploy.families`` family.

Recognised by the export's signatures (AutoML's ``predict`` signature with the raw heads; no
pipeline.config), its facts read from the saved_model.pb by ``tfod_trt.automl.hparams`` (no
TensorFlow), converted by ``tfod_trt.automl.convert``. The core ends in the same
``raw_box_encodings`` / ``raw_box_scores`` as a cut TFOD SSD, so the SSD passes finish it: AutoML
decodes boxes with the same centre-size rule as TFOD's faster_rcnn_box_coder with scales 1
(google/automl efficientdet/tf2/anchors.py decode_box_outputs: ycenter = ty * ha + ycenter_a,
h = exp(th) * ha, ...), and its anchors are given normalised (pixel anchors / input size, which
scales the decoded boxes the same way), so every TFOD SSD head and output contract applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfod_trt.automl.hparams import TITLE, AutomlConfig, read_config
from tfod_trt.automl.saved_model_proto import read_saved_model
from tfod_trt.passes import CORE_PASSES, HEAD_PASSES
from trtdeploy import __version__
from trtdeploy.deploy_card import DeployCard, InputSpec, Preprocess, Provenance
from trtdeploy.errors import InputError, UnsupportedModelError
from trtdeploy.families import Core, ModelSource, register

if TYPE_CHECKING:
    import onnx

    from tfod_trt.create_onnx import Prepared

INPUT_NAME = "input_tensor"  # the name the SSD passes give the image input (tfod_trt/passes/name_io.py)


class AutomlFamily:
    key = "automl_efficientdet"
    title = TITLE
    framework = "tensorflow"
    heads: tuple[str, ...] = ("efficient", "batched", "onnx", "none")
    layouts: tuple[str, ...] = ("tfod", "deepstream", "batched", "raw")

    def __init__(self) -> None:
        self._configs: dict[tuple[str, float], AutomlConfig] = {}

    def claims(self, source: ModelSource) -> bool:
        return (Path(source.path) / "saved_model.pb").is_file()

    def recognise(self, source: ModelSource) -> str | None:
        try:
            self.read_config(source)
        except (UnsupportedModelError, InputError) as exc:
            return str(exc) if str(exc).startswith(TITLE) else f"{TITLE}: {exc}"
        return None

    def read_config(self, source: ModelSource) -> AutomlConfig:
        """The export's facts, read once per saved_model.pb (recognise and prepare both ask)."""
        pb = Path(source.path) / "saved_model.pb"
        key = (str(pb.resolve()), pb.stat().st_mtime if pb.exists() else 0.0)
        if key not in self._configs:
            self._configs[key] = read_config(read_saved_model(Path(source.path)))
        return self._configs[key]

    def convert_core(self, request: Prepared) -> Core:
        from tfod_trt.automl.convert import convert_core

        opts, config = request.options, request.config
        batch = None if opts.dynamic_batch else opts.batch
        if (request.height, request.width) != (config.height, config.width):
            raise InputError(
                f"{TITLE}: this export takes {config.height}x{config.width} images (its anchors are built for that size), "
                f"not --input-size {request.height}x{request.width}; re-export with another image_size to change it"
            )
        model, versions = convert_core(Path(opts.saved_model), config, batch, opts.opset, opts.input_format == "nchw")
        facts: dict[str, Any] = {
            "batch": batch,
            "anchors": config.normalized_anchors,
            "box_coder_scales": [1.0, 1.0, 1.0, 1.0],  # AutoML's deltas are not scaled (anchors.py)
            "num_classes": config.num_classes,
            "num_score_columns": config.num_classes,  # sigmoid classes, no background column
            "versions": versions,
        }
        hp = config.hparams
        title = f"{TITLE} ({config.height}x{config.width}, levels {hp['min_level']}-{hp['max_level']})"
        return Core(model=model, facts=facts, title=title)

    def core_passes(self, request: Prepared) -> Sequence[tuple[str, Any]]:
        return CORE_PASSES

    def head_passes(self, request: Prepared) -> Sequence[tuple[str, Any]]:
        return HEAD_PASSES

    def deploy_card(self, request: Prepared, model: onnx.ModelProto | None, facts: dict[str, Any]) -> DeployCard:
        import numpy as np
        import onnx

        opts, config = request.options, request.config
        batch = -1 if facts["batch"] is None else facts["batch"]
        h, w = request.height, request.width
        nhwc = opts.input_format == "nhwc"
        saved_model = Path(opts.saved_model)
        files = {"saved_model/" + p.relative_to(saved_model).as_posix(): _sha(p)
                 for p in sorted(saved_model.rglob("*")) if p.is_file()}
        if opts.label_map:
            files["label_map"] = _sha(Path(opts.label_map))
        return DeployCard(
            input=InputSpec(
                name=model.graph.input[0].name if model is not None else INPUT_NAME,
                shape=[batch, h, w, 3] if nhwc else [batch, 3, h, w],
                layout="NHWC" if nhwc else "NCHW",
            ),
            # The graph normalises ((pixel - mean) / std inside): it takes RGB pixels 0-255 as float.
            # AutoML letterboxes: resize keeping the aspect ratio, pad bottom/right AFTER normalising
            # with 0, i.e. with the mean colour (efficientdet/dataloader.py resize_and_crop_image).
            preprocess=Preprocess(color_order="RGB", scale=1.0, offsets=[0.0, 0.0, 0.0], resize="letterbox",
                                  pad_corner="top_left", pad_color=[float(round(v)) for v in config.mean]),
            output=facts["output_spec"],
            labels=list(request.labels),
            background=facts["background"],
            nms=request.nms_params,
            provenance=Provenance(
                framework=self.framework, model_family=self.key,
                architecture=f"efficientdet {h}x{w} " + " ".join(f"{k}={v}" for k, v in config.hparams.items()),
                source_files=files,
                versions={**facts["versions"], "onnx": onnx.__version__, "numpy": np.__version__},
                created_by=f"trtdeploy {__version__} create-onnx",
            ),
        )


def _sha(path: Path) -> str:
    from trtdeploy.files import sha256_file

    return sha256_file(path)


AUTOML = register(AutomlFamily())
