"""A TAO model (+ its spec) as a trtdeploy deploy card, plus the DeepStream hints it needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tao_trt.etlt import read_etlt_header
from tao_trt.facts import ARCH_FACTS, TaoFacts, facts_from_spec
from tao_trt.spec import load_spec
from trtdeploy import __version__
from trtdeploy.deepstream.generate import DsModelHints
from trtdeploy.deploy_card import (
    DeployCard,
    InputSpec,
    NmsParams,
    OutputSpec,
    Preprocess,
    Provenance,
)
from trtdeploy.errors import InputError, UsageError
from trtdeploy.files import sha256_file
from trtdeploy.log import get_logger

log = get_logger("tao")


@dataclass
class TaoModel:
    card: DeployCard
    hints: DsModelHints
    model_path: Path
    facts: TaoFacts


def _onnx_io(path: Path) -> tuple[str, list[int], list[str]] | None:
    """Input name, input shape (-1 dynamic) and output names of an ONNX file, if readable."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several types for a bad file
        raise InputError(f"{path} is not a readable ONNX model: {exc}") from exc
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InputError(f"{path} has {len(inputs)} inputs; TAO detectors have one")
    dims = [
        d.dim_value if d.HasField("dim_value") else -1 for d in inputs[0].type.tensor_type.shape.dim
    ]
    return inputs[0].name, dims, [o.name for o in model.graph.output]


def arch_hints(arch: str, label_lines: list[str] | None = None) -> DsModelHints:
    """The DeepStream facts beyond the deploy card that every model of a TAO architecture
    shares (tao_trt.facts.ARCH_FACTS), with a classifier's label lines."""
    shared = ARCH_FACTS[arch]
    return DsModelHints(
        network_type=shared.network_type,
        cluster_mode=shared.cluster_mode,
        parse_func=shared.parse_func or None,
        builtin_parser=shared.parse_func == "",
        label_lines=label_lines if shared.network_type == "classifier" else None,
        extra=dict(shared.extra),
    )


def hints_from_facts(facts: TaoFacts) -> DsModelHints:
    return arch_hints(facts.arch, facts.labels)


def check_onnx(facts: TaoFacts, onnx_path: Path) -> tuple[str, int, list[str]]:
    """(input name, batch (-1 dynamic), output names) of a TAO ONNX, refusing an input size
    other than the spec's; outputs other than the architecture's are the file's (with a warning)."""
    if not Path(onnx_path).is_file():
        raise InputError(f"ONNX model {onnx_path} not found")
    io = _onnx_io(Path(onnx_path))
    if io is None:
        return "Input", -1, list(facts.output_names)
    input_name, shape, actual = io
    hw = (shape[1], shape[2]) if facts.input_layout == "NHWC" else (shape[2], shape[3])
    if len(shape) == 4 and all(v > 0 for v in hw) and hw != (facts.height, facts.width):
        raise InputError(
            f"the spec says input {facts.height}x{facts.width} but {onnx_path} takes {hw[0]}x{hw[1]}; "
            "pass the spec the model was trained with"
        )
    batch = shape[0] if shape and shape[0] > 0 else -1
    missing = [n for n in facts.output_names if n not in actual]
    if missing:
        log.warning("%s has outputs %s, not the %s %s expects; using the file's", onnx_path, actual, facts.arch, missing)
    return input_name, batch, actual


def tao_card(
    facts: TaoFacts, input_name: str, batch: int, output_names: list[str], source_files: dict[str, str],
    created_by: str = f"trtdeploy {__version__}",
) -> DeployCard:
    """The deploy card of a TAO model: the spec's facts with the model file's I/O."""
    c, h, w = facts.channels, facts.height, facts.width
    shape = [batch, h, w, c] if facts.input_layout == "NHWC" else [batch, c, h, w]
    labels = (
        facts.labels
        if facts.network_type != "classifier"
        else [n for line in facts.labels for n in line.split(";")]
    )
    return DeployCard(
        input=InputSpec(name=input_name, shape=shape, layout=facts.input_layout),  # type: ignore[arg-type]
        preprocess=Preprocess(
            color_order=facts.color,  # type: ignore[arg-type]
            scale=facts.scale,
            offsets=list(facts.offsets),
            resize=facts.resize,  # type: ignore[arg-type]
            pad_corner="top_left",
        ),
        output=OutputSpec(
            nms=facts.nms,  # type: ignore[arg-type]
            layout=facts.layout,
            names=list(output_names),
            num_classes=len(labels),
            box_format=facts.box_format,
            box_units=facts.box_units,
            class_dtype=facts.class_dtype,
            max_detections=facts.top_k,
            ds_parser=ARCH_FACTS[facts.arch].ds_parser,
        ),
        labels=labels,
        background=ARCH_FACTS[facts.arch].background,
        nms=NmsParams(
            score_threshold=facts.score_threshold,
            iou_threshold=facts.iou_threshold,
            max_detections=facts.top_k,
        ),
        provenance=Provenance(
            framework="tao",
            model_family=f"tao_{facts.arch}",
            architecture=facts.arch,
            source_files=source_files,
            created_by=created_by,
        ),
    )


def import_tao_model(
    spec_path: Path,
    arch: str,
    onnx_path: Path | None = None,
    etlt_path: Path | None = None,
    key: str | None = None,
    labels_file: Path | None = None,
) -> TaoModel:
    """Facts from the spec, checked against the model file, as a deploy card."""
    if (onnx_path is None) == (etlt_path is None):
        raise UsageError("pass exactly one of --onnx or --etlt")
    if etlt_path is not None and not key:
        raise UsageError("--etlt needs --key (the key the model was exported with)")
    facts = facts_from_spec(load_spec(spec_path), arch, labels_file)
    hints = hints_from_facts(facts)
    model_path = Path(onnx_path or etlt_path)  # type: ignore[arg-type]
    input_name, batch, output_names = "Input", -1, list(facts.output_names)
    if onnx_path is not None:
        input_name, batch, output_names = check_onnx(facts, Path(onnx_path))
    else:
        header = read_etlt_header(Path(etlt_path))  # type: ignore[arg-type]
        hints.tlt_key = key
        if header.is_uff:
            input_name = header.input_name
            hints.uff_input_blob = header.input_name
            log.warning(
                "%s holds a UFF model: TensorRT >= 10 (DeepStream >= 7) cannot build it", etlt_path
            )
    sources = {str(spec_path): sha256_file(Path(spec_path)), str(model_path): sha256_file(model_path)}
    card = tao_card(facts, input_name, batch, output_names, sources)
    card.validate(str(model_path))
    return TaoModel(card, hints, model_path, facts)
