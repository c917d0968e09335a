"""TF2 Object Detection API SSD as a ``trtdeploy.families`` family.

What is SSD-specific lives here or in the modules this one names: the meta-architecture and
feature-extractor check of ``pipeline.config`` (``tfod_trt.pipeline_config``), the cut points,
anchor probe and loop strategy (``tfod_trt.tf_graph``, loaded with TensorFlow only when
converting), the pass lists (``tfod_trt.passes``) and the deploy-card facts (input, in-graph
normalisation, resizer, provenance).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfod_trt.passes import CORE_PASSES, HEAD_PASSES
from tfod_trt.passes.class_scores import first_class_column
from tfod_trt.pipeline_config import SSD_FEATURE_EXTRACTORS, TfodConfig, read_pipeline_config
from tfod_trt.tf_graph import INPUT_NAME, SSD_CUT, FrozenModel
from tfod_trt.tf_graph import convert_core as convert_tf_core
from trtdeploy import __version__
from trtdeploy.deploy_card import DeployCard, InputSpec, Preprocess, Provenance
from trtdeploy.errors import UnsupportedModelError
from trtdeploy.families import Core, ModelSource, register

if TYPE_CHECKING:
    import onnx

    from tfod_trt.create_onnx import Prepared


class SsdFamily:
    key = "tfod_ssd"
    title = "TFOD SSD"
    framework = "tensorflow"
    heads: tuple[str, ...] = ("efficient", "batched", "onnx", "none")  # trtdeploy.nms.NMS_KINDS
    layouts: tuple[str, ...] = ("tfod", "deepstream", "batched", "raw")

    def claims(self, source: ModelSource) -> bool:
        path = Path(source.path)
        return path.is_dir() and any((path / f).is_file() for f in ("saved_model.pb", "saved_model.pbtxt"))

    def recognise(self, source: ModelSource) -> str | None:
        """pipeline.config must describe an SSD with a supported feature extractor; its refusal
        (a Faster R-CNN, an unknown extractor) names what the file holds."""
        if source.config is None:
            return f"{self.title}: {source.path} needs its pipeline.config"
        try:
            self.read_config(source)
        except UnsupportedModelError as exc:
            return str(exc)
        return None

    def read_config(self, source: ModelSource) -> TfodConfig:
        return read_pipeline_config(Path(source.config))  # type: ignore[arg-type]

    def convert_core(self, request: Prepared) -> Core:
        """TensorFlow -> ONNX for the kept part of the network (tfod_trt.tf_graph)."""
        opts, config = request.options, request.config
        batch = None if opts.dynamic_batch else opts.batch

        def check(frozen: FrozenModel) -> None:
            if frozen.score_columns is not None:
                first_class_column(config.num_classes, frozen.score_columns)

        tf_core = convert_tf_core(
            Path(opts.saved_model), batch, request.height, request.width, opts.opset, opts.input_format == "nchw",
            check=check, cut=SSD_CUT,
        )
        facts: dict[str, Any] = {
            "batch": batch,
            "anchors": tf_core.facts.anchors,
            "norm_scale": tf_core.facts.norm_scale,
            "norm_offset": tf_core.facts.norm_offset,
            "box_coder_scales": config.box_coder_scales,
            "num_classes": config.num_classes,
            "num_score_columns": tf_core.facts.num_score_columns,
            "versions": tf_core.versions,
        }
        title = f"{self.title} ({SSD_FEATURE_EXTRACTORS[config.feature_extractor]})"
        return Core(model=tf_core.model, facts=facts, title=title)

    def core_passes(self, request: Prepared) -> Sequence[tuple[str, Any]]:
        return CORE_PASSES

    def head_passes(self, request: Prepared) -> Sequence[tuple[str, Any]]:
        return HEAD_PASSES

    def deploy_card(self, request: Prepared, model: onnx.ModelProto | None, facts: dict[str, Any]) -> DeployCard:
        opts = request.options
        batch = -1 if facts["batch"] is None else facts["batch"]
        h, w = request.height, request.width
        nhwc = opts.input_format == "nhwc"
        return DeployCard(
            input=InputSpec(
                name=model.graph.input[0].name if model is not None else INPUT_NAME,
                shape=[batch, h, w, 3] if nhwc else [batch, 3, h, w],
                layout="NHWC" if nhwc else "NCHW",
            ),
            # The network normalises inside the graph: it takes RGB pixels 0-255 as float.
            preprocess=Preprocess(
                color_order="RGB",
                scale=1.0,
                offsets=[0.0, 0.0, 0.0],
                # keep_aspect_ratio_resizer pads the bottom/right with zero pixels.
                resize="letterbox" if request.config.resizer == "keep_aspect_ratio_resizer" else "stretch",
                pad_corner="top_left",
            ),
            output=facts["output_spec"],
            labels=list(request.labels),
            background=facts["background"],
            nms=request.nms_params,
            provenance=self._provenance(request, facts["versions"]),
        )

    def _provenance(self, request: Prepared, versions: dict[str, str]) -> Provenance:
        import numpy as np
        import onnx

        opts = request.options
        return Provenance(
            framework=self.framework,
            model_family=self.key,
            architecture=request.config.feature_extractor,
            source_files=source_hashes(
                Path(opts.saved_model), request.config.path, Path(opts.label_map) if opts.label_map else None
            ),
            versions={**versions, "onnx": onnx.__version__, "numpy": np.__version__},
            created_by=f"trtdeploy {__version__} create-onnx",
        )


def source_hashes(saved_model: Path, pipeline_config: Path, label_map: Path | None) -> dict[str, str]:
    """sha256 of every input file, keyed by its role, never by a path: ``saved_model/<file>``
    for each file of the saved model folder (graph and weights), ``pipeline.config`` and
    ``label_map``. The keys are the same wherever the inputs and outputs live, so the card is
    reproducible; ``verify --saved-model DIR`` can recompute the ``saved_model/`` entries from DIR."""
    from trtdeploy.files import sha256_file

    saved_model = Path(saved_model)
    files = {
        "saved_model/" + path.relative_to(saved_model).as_posix(): sha256_file(path)
        for path in sorted(saved_model.rglob("*"))
        if path.is_file()
    }
    files["pipeline.config"] = sha256_file(Path(pipeline_config))
    if label_map is not None:
        files["label_map"] = sha256_file(Path(label_map))
    return files


SSD = register(SsdFamily())
