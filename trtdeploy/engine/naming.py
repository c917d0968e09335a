"""Engine file names that DeepStream's gst-nvinfer looks for.

nvinfer names the engine it builds ``<model file>_b<batch>_<gpu|dla><id>_<fp32|fp16|int8>.engine``
next to the model, keeping the model's extension, e.g. ``resnet18_dashcamnet_pruned.etlt_b1_gpu0_int8.engine``
(see https://docs.savant-ai.io/develop/savant_101/27_working_with_models.html, and the
``*.onnx_b16_gpu0_fp16.engine`` files deepstream_tao_apps users keep in models/). Using the
same name lets nvinfer pick up our engine instead of rebuilding at start-up.
"""

from __future__ import annotations

import re
from pathlib import Path

from trtdeploy.errors import UsageError

PRECISIONS = ("fp32", "fp16", "int8")
# The precision part is any word so that a misspelt label (a hand-written "_in8") can be reported.
ENGINE_NAME = re.compile(
    r"^(?P<model>.+)_b(?P<batch>\d+)_(?P<device>gpu|dla)(?P<index>\d+)_(?P<precision>\w+)\.engine$"
)


def engine_file_name(
    model_file: str, max_batch: int, precision: str, *, gpu_id: int = 0, dla_core: int | None = None
) -> str:
    """``model.onnx``, 4, ``fp16`` -> ``model.onnx_b4_gpu0_fp16.engine``."""
    if precision not in PRECISIONS:
        raise UsageError(f"engine precision label must be fp32, fp16 or int8, got {precision!r}")
    if max_batch < 1:
        raise UsageError(f"max batch must be >= 1, got {max_batch}")
    device = f"dla{dla_core}" if dla_core is not None else f"gpu{gpu_id}"
    return f"{Path(model_file).name}_b{max_batch}_{device}_{precision}.engine"


def default_engine_path(
    onnx_path: Path, max_batch: int, precision: str, *, gpu_id: int = 0, dla_core: int | None = None
) -> Path:
    """The engine next to the ONNX, named as nvinfer would name it."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(engine_file_name(onnx_path.name, max_batch, precision, gpu_id=gpu_id, dla_core=dla_core))


def parse_engine_name(name: str, *, any_precision: bool = False) -> dict[str, str | int] | None:
    """Split a DeepStream-style engine name into its parts (None if it is not one).

    ``any_precision=True`` also splits a name whose precision label is not fp32/fp16/int8
    (``m.onnx_b1_gpu0_in8.engine`` -> precision ``in8``), for checkers that report it.
    """
    match = ENGINE_NAME.match(Path(name).name)
    if not match or (not any_precision and match["precision"] not in PRECISIONS):
        return None
    return {
        "model": match["model"],
        "batch": int(match["batch"]),
        "device": match["device"],
        "index": int(match["index"]),
        "precision": match["precision"],
    }


def sidecar_path(engine_path: Path) -> Path:
    """``x.engine`` -> ``x.engine.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")
