"""TAO architectures as ``trtdeploy.families`` families (registered on import; no TensorRT).

A TAO export is already the final graph (TAO 5 writes ``.onnx`` with its NMS plugin head), so
a TAO family converts nothing and has no passes: what it adds is the deploy card the spec's
facts make (``tao_trt.facts``: labels rule, preprocessing, outputs) and the DeepStream facts
beyond the card (``ds_hints``), found again from the card's ``provenance.model_family``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tao_trt.facts import ARCH_FACTS, TaoFacts, facts_from_spec
from tao_trt.importer import arch_hints, check_onnx, tao_card
from tao_trt.spec import load_spec
from trtdeploy import __version__, contracts
from trtdeploy.families import Core, ModelSource, register
from trtdeploy.files import sha256_file

if TYPE_CHECKING:
    import onnx

    from trtdeploy.deepstream.generate import DsModelHints
    from trtdeploy.deploy_card import DeployCard


@dataclass
class TaoRequest:
    source: ModelSource
    facts: TaoFacts


# The TensorRT plugins a TAO export holds besides its NMS head's (trtdeploy.capabilities counts
# the head's own plugin), for the exporters whose graphs were read: the SSD/DSSD/RetinaNet and
# YOLO ONNX exporters write only their NMS plugin (NVIDIA/tao_tensorflow1_backend@d700902,
# nvidia_tao_tf1/cv/ssd/export/onnx_exporter.py, cv/retinanet/export/onnx_exporter.py,
# cv/yolo_v3/export/yolov3_exporter.py, cv/yolo_v4/export/yolov4_exporter.py; restated in
# tests/tao/tao_graphs.py), EfficientDet without legacy_plugins only EfficientNMS_TRT. An
# architecture not listed declares None: its plugins are not known, and the capability matrix
# says "unknown" where that matters (TAO FasterRCNN's ProposalDynamic and CropAndResizeDynamic,
# MaskRCNN's, are not declared yet: doing so changes the README support table).
EXPORT_PLUGIN_OPS: dict[str, tuple[str, ...]] = {
    arch: () for arch in ("ssd", "dssd", "retinanet", "yolo_v3", "yolo_v4", "yolo_v4_tiny", "efficientdet")
}
# TAO's boxes are x1,y1,x2,y2 (TaoFacts.box_format) unless the arch is shaped for a parser variant.
_TAO_BOX_FORMAT = "x1y1x2y2"


class TaoFamily:
    framework = "tao"
    own_head = True  # the export carries its head (trtdeploy.capabilities reads this)

    def __init__(self, arch: str) -> None:
        self.arch = arch
        self.key = f"tao_{arch}"
        self.title = f"TAO {arch}"
        shared = ARCH_FACTS[arch]
        self.heads: tuple[str, ...] = (shared.nms,)
        self.layouts: tuple[str, ...] = (shared.layout,)
        # The one output contract its exports have, as its deploy card stores it (tao_trt.facts).
        box_format = "" if shared.ds_parser else _TAO_BOX_FORMAT
        self.contracts: tuple[str, ...] = (contracts.contract_for_output(shared.layout, shared.ds_parser, box_format).key,)
        self.plugin_ops: tuple[str, ...] | None = EXPORT_PLUGIN_OPS.get(arch)

    def claims(self, source: ModelSource) -> bool:
        return source.arch == self.arch

    def recognise(self, source: ModelSource) -> str | None:
        path = Path(source.path)
        if source.config is None:
            return f"{self.title}: needs the spec the model was trained with"
        if path.suffix.lower() == ".etlt":
            return (
                f"{self.title}: {path} is an encrypted .etlt; pass it to import-tao with --etlt and its --key "
                "(--onnx takes a TAO 5 .onnx export)"
            )
        if path.suffix.lower() != ".onnx":
            return f"{self.title}: {path} is not an .onnx file (found suffix {path.suffix or 'none'!r})"
        return None

    def read_config(self, source: ModelSource) -> TaoRequest:
        return TaoRequest(source, facts_from_spec(load_spec(Path(source.config)), self.arch, source.labels))  # type: ignore[arg-type]

    def convert_core(self, request: TaoRequest) -> Core:
        import onnx

        return Core(model=onnx.load(str(request.source.path)), title=self.title)

    def core_passes(self, request: TaoRequest) -> Sequence[tuple[str, Any]]:
        return []  # the export is final

    def head_passes(self, request: TaoRequest) -> Sequence[tuple[str, Any]]:
        return []  # TAO exports carry their NMS head (ARCH_FACTS[arch].nms)

    def deploy_card(self, request: TaoRequest, model: onnx.ModelProto | None, facts: dict[str, Any]) -> DeployCard:
        """The card of the TAO ONNX (``model`` is not needed: the I/O is read from the file)."""
        source = request.source
        input_name, batch, outputs = check_onnx(request.facts, Path(source.path))
        # Keyed by role, not by path, so the card is the same wherever the files live.
        files = {"spec": Path(source.config), "onnx": Path(source.path), "labels": source.labels}  # type: ignore[arg-type]
        hashes = {role: sha256_file(Path(path)) for role, path in files.items() if path is not None}
        return tao_card(request.facts, input_name, batch, outputs, hashes, f"trtdeploy {__version__} import-tao")

    def ds_hints(self, card: DeployCard, model_path: Path | None = None) -> DsModelHints:
        return arch_hints(self.arch, _label_lines(card, model_path))


def _label_lines(card: DeployCard, model_path: Path | None) -> list[str]:
    """A classifier's labels file: one ';'-joined line per output. The card holds the labels
    flat; the outputs' class counts (from the ONNX, when readable) split them per output."""
    sizes = _output_classes(model_path) if model_path is not None else None
    if not sizes or sum(sizes) != len(card.labels):
        return [";".join(card.labels)]
    lines, start = [], 0
    for size in sizes:
        lines.append(";".join(card.labels[start : start + size]))
        start += size
    return lines


def _output_classes(model_path: Path) -> list[int] | None:
    try:
        import onnx

        graph = onnx.load(str(model_path), load_external_data=False).graph
    except Exception:  # noqa: BLE001 - an unreadable model just means "one line"
        return None
    dims = [list(o.type.tensor_type.shape.dim) for o in graph.output]
    if not all(d and d[-1].HasField("dim_value") for d in dims):
        return None
    return [int(d[-1].dim_value) for d in dims]


FAMILIES = {arch: register(TaoFamily(arch)) for arch in ARCH_FACTS}
