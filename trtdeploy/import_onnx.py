"""import-onnx: an AutoML EfficientDet ONNX made with tf2onnx's efficientdet tutorial, made
DeepStream-ready without going back to TensorFlow.

The tutorial (onnx/tensorflow-onnx tutorials/efficientdet.ipynb) converts AutoML's whole saved
model; its ONNX takes uint8 images of any size (AutoML resizes and pads inside) and gives one
``detections`` tensor [B, K, 7]: per row image id, the box, score, and class (1-based, "the coco
label"), sorted by score, padded after the last detection with score 0 (today's AutoML) or -1e5
(google/automl efficientdet anchors.py, _DUMMY_DETECTION_SCORE). No stock DeepStream parser reads
that, and TensorRT cannot bind a uint8 input ("Unsupported ONNX data type: UINT8").

Two passes (run by trtdeploy.graph_passes, checked after each) fix both:

* ``float_input``: the image input becomes float32 RGB 0-255 [B,H,W,3] at a fixed size (the
  network's input size, given with --input-size when the ONNX leaves it open); where the graph
  cast the uint8 pixels to float first (AutoML does, before normalising) those casts are
  dropped, otherwise a Cast to uint8 is kept inside the graph;
* ``detections_to_contract``: the rows become one of our output contracts
  (trtdeploy.contracts): the ``tfod`` tensors, or those a DeepStream parser variant reads, so
  gen-ds-config names a stock parser.

The box columns differ between AutoML versions: the tutorial documents ymin, xmin, ymax, xmax
(``y1x1y2x2``, the default); AutoML's TF2 generate_detections_from_nms_output stacks xmin, ymin,
xmax, ymax (``x1y1x2y2``, tf2/postprocess.py); its TF1 _generate_detections_tf writes y, x,
height, width (``yxhw``, anchors.py). The ONNX does not say which, so --box-format does.
Boxes are in input pixels (AutoML scales them back to the image it was given; at the fixed
input size that is the network input).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trtdeploy import __version__, contracts
from trtdeploy.errors import InputError, UnsupportedModelError, UsageError
from trtdeploy.log import get_logger

if TYPE_CHECKING:
    import onnx
    import onnx_graphsurgeon as gs

    from trtdeploy.deploy_card import DeployCard
    from trtdeploy.graph_passes import PassContext

log = get_logger("import_onnx")

TITLE = "tf2onnx efficientdet tutorial ONNX"
FAMILY_KEY = "automl_efficientdet_tf2onnx"
DETECTIONS = "detections"
BOX_FORMATS = ("y1x1y2x2", "x1y1x2y2", "yxhw")
OUTPUT_LAYOUTS = ("tfod", "deepstream")


@dataclass
class ImportOnnxOptions:
    model: Path
    output: Path
    labels: Path | None = None  # one label per line (nvinfer's labels.txt form)
    num_classes: int | None = None  # without labels: class_1..class_N
    input_size: tuple[int, int] | None = None  # (height, width) when the ONNX leaves it open
    output_layout: str | None = None  # None: deepstream (the point of importing)
    ds_parser: str | None = None  # a DeepStream parser variant; None: the default one
    box_format: str = "y1x1y2x2"  # the order of detection[1:5]
    class_id_base: int = 1  # detection[6] of the first label (AutoML: 1)
    force: bool = False


@dataclass
class ImportOnnxResult:
    onnx_path: Path
    card_path: Path
    card: DeployCard
    seconds: float


def choose_contract(output_layout: str | None, ds_parser: str | None) -> contracts.OutputContract:
    """The output contract the rows are rewritten into; UsageError for a bad combination."""
    from trtdeploy.deploy_card import default_ds_parser

    if output_layout is not None and output_layout not in OUTPUT_LAYOUTS:
        raise UsageError(f"--output-layout {output_layout!r} is not one of {', '.join(OUTPUT_LAYOUTS)}")
    if ds_parser is not None and output_layout == "tfod":
        raise UsageError(f"--ds-parser {ds_parser} is the DeepStream output; drop --output-layout tfod")
    if output_layout == "tfod":
        return contracts.contract("tfod")
    shaped = contracts.ds_contracts()
    key = ds_parser or default_ds_parser()
    if key not in shaped:
        raise UsageError(f"--ds-parser {key!r} is not one of {', '.join(shaped)}")
    contract = shaped[key]
    if contract.reader != "nms" or "efficient" not in contract.heads:
        usable = [k for k, c in shaped.items() if c.reader == "nms" and "efficient" in c.heads]
        raise UsageError(f"--ds-parser {key} does not read NMS detections rows can become; use one of {', '.join(usable)}")
    return contract


def check_options(options: ImportOnnxOptions) -> contracts.OutputContract:
    if options.box_format not in BOX_FORMATS:
        raise UsageError(f"--box-format {options.box_format!r} is not one of {', '.join(BOX_FORMATS)}")
    if options.num_classes is not None and options.num_classes < 1:
        raise UsageError(f"--num-classes must be >= 1, got {options.num_classes}")
    if options.labels is None and options.num_classes is None:
        raise UsageError("the ONNX does not say how many classes the model has: pass --labels FILE or --num-classes N")
    if options.input_size is not None and min(options.input_size) < 32:
        raise UsageError(f"--input-size {options.input_size[0]}x{options.input_size[1]} is too small")
    return choose_contract(options.output_layout, options.ds_parser)


def read_labels(path: Path, num_classes: int | None) -> list[str]:
    """One label per non-empty line (a label map .pbtxt is not read here: convert it first)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file {path} not found")
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not labels:
        raise InputError(f"labels file {path} has no labels")
    if num_classes is not None and len(labels) != num_classes:
        raise UsageError(f"{path} has {len(labels)} labels but --num-classes is {num_classes}")
    return labels


def find_detections(graph: gs.Graph) -> gs.Variable:
    """The tutorial's ``detections`` [B,K,7] output (by name, or the one rank-3 output of width 7)."""
    named = [t for t in graph.outputs if t.name.split(":")[0] == DETECTIONS]
    shaped = [t for t in graph.outputs if t.shape is not None and len(t.shape) == 3 and t.shape[-1] == 7]
    found = named or shaped
    if len(found) != 1 or found[0].shape is None or len(found[0].shape) != 3 or found[0].shape[-1] != 7:
        outputs = ", ".join(f"{t.name} {t.shape}" for t in graph.outputs)
        raise UnsupportedModelError(
            f"{TITLE}: expected one output 'detections' [B,K,7] (image id, box, score, class), found {outputs or 'none'}"
        )
    if not isinstance(found[0].shape[1], int):
        raise UnsupportedModelError(f"{TITLE}: {found[0].name} has no fixed number of rows {found[0].shape}")
    return found[0]


def float_input(graph: gs.Graph, ctx: PassContext) -> None:
    import onnx_graphsurgeon as gs

    if len(graph.inputs) != 1:
        raise UnsupportedModelError(f"{TITLE}: expected one image input, found {[t.name for t in graph.inputs]}")
    image = graph.inputs[0]
    shape = list(image.shape or [])
    if len(shape) != 4 or shape[3] != 3:
        raise UnsupportedModelError(f"{TITLE}: input {image.name} {image.shape} is not an NHWC RGB image [B,H,W,3]")
    hw = ctx.facts.get("input_size")
    if hw is None:
        if not all(isinstance(d, int) and d > 0 for d in shape[1:3]):
            raise UsageError(
                f"{TITLE}: input {image.name} {shape} leaves the image size open (AutoML resizes inside); pass "
                "--input-size HxW, the network's own size (efficientdet-d0: 512x512)"
            )
        hw = (shape[1], shape[2])
    ctx.facts["input_hw"] = tuple(int(v) for v in hw)
    ctx.facts["uint8_input"] = image.dtype == np.uint8
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else "batch"
    ctx.facts["batch"] = batch if isinstance(batch, int) else None
    if image.dtype == np.float32:
        image.shape = [batch, *ctx.facts["input_hw"], 3]
        return
    if image.dtype != np.uint8:
        raise UnsupportedModelError(f"{TITLE}: input {image.name} is {image.dtype}, not uint8 or float32 pixels")
    pixels = gs.Variable(image.name, dtype=np.float32, shape=[batch, *ctx.facts["input_hw"], 3])
    image.name = image.name + "/uint8"
    consumers = list(image.outputs)
    to_float = [n for n in consumers if n.op == "Cast" and n.attrs.get("to") == 1]  # TensorProto.FLOAT
    if consumers and len(to_float) == len(consumers):
        # The graph's first step was uint8 -> float: it reads the float pixels directly now.
        for cast in to_float:
            for consumer in list(cast.outputs[0].outputs):
                consumer.inputs = [pixels if t is cast.outputs[0] else t for t in consumer.inputs]
            graph.outputs = [pixels if t is cast.outputs[0] else t for t in graph.outputs]
            cast.outputs.clear()
        ctx.facts["input_cast"] = "the graph's uint8 -> float32 cast removed (the input is float32 pixels)"
    else:
        graph.nodes.insert(0, gs.Node("Cast", name="import/to_uint8", attrs={"to": 2}, inputs=[pixels], outputs=[image]))
        ctx.facts["input_cast"] = "float32 input cast to uint8 inside the graph"
    graph.inputs = [pixels]


def detections_to_contract(graph: gs.Graph, ctx: PassContext) -> None:
    from trtdeploy.graph_passes import add_node, const
    from trtdeploy.nms.heads import to_deepstream

    det = find_detections(graph)
    contract: contracts.OutputContract = ctx.facts["contract"]
    batch, k = det.shape[0], int(det.shape[1])
    batch = batch if isinstance(batch, int) else "batch"
    height, width = ctx.facts["input_hw"]

    def column(index: int, name: str) -> gs.Variable:
        (out,) = add_node(graph, "Gather", [det, const(f"{name}/index", np.int64(index))], name,
                          dtypes=[np.float32], attrs={"axis": 2})
        return out

    (rows4,) = add_node(graph, "Slice", [det, const("import/box/start", [1]), const("import/box/end", [5]),
                                         const("import/box/axis", [2])], "import/box/columns", dtypes=[np.float32])
    box_format = ctx.facts["box_format"]
    if box_format == "x1y1x2y2":
        (rows4,) = add_node(graph, "Gather", [rows4, const("import/box/yx", np.array([1, 0, 3, 2], np.int64))],
                            "import/box/y1x1y2x2", dtypes=[np.float32], attrs={"axis": 2})
    elif box_format == "yxhw":  # y, x, height, width -> y1, x1, y1 + h, x1 + w
        (corner,) = add_node(graph, "Slice", [rows4, const("import/box/s0", [0]), const("import/box/e2", [2]),
                                              const("import/box/ax", [2])], "import/box/corner", dtypes=[np.float32])
        (far,) = add_node(graph, "Add", [corner, add_node(graph, "Slice", [
            rows4, const("import/box/s2", [2]), const("import/box/e4", [4]), const("import/box/ax2", [2])],
            "import/box/size", dtypes=[np.float32])[0]], "import/box/far", dtypes=[np.float32])
        (rows4,) = add_node(graph, "Concat", [corner, far], "import/box/corners", dtypes=[np.float32],
                            attrs={"axis": 2})
    scale = const("import/box/pixels", np.array([height, width, height, width], np.float32))
    (boxes,) = add_node(graph, "Div", [rows4, scale], "import/boxes", dtypes=[np.float32])
    scores = column(5, "import/scores")
    (zero_based,) = add_node(graph, "Sub", [column(6, "import/class_ids"),
                                            const("import/class_base", np.float32(ctx.facts["class_id_base"]))],
                             "import/class_zero_based", dtypes=[np.float32])
    (classes,) = add_node(graph, "Cast", [zero_based], "import/classes", dtypes=[np.int32], attrs={"to": 6})
    # Rows are sorted by score and padded with score 0 or -1e5: the count is the rows scoring above 0.
    (valid,) = add_node(graph, "Greater", [scores, const("import/zero", np.float32(0.0))], "import/valid",
                        dtypes=[np.bool_])
    (valid_i,) = add_node(graph, "Cast", [valid], "import/valid_int", dtypes=[np.int32], attrs={"to": 6})
    if (graph.opset or 13) >= 13:  # ReduceSum takes its axes as an input from opset 13 on
        (count,) = add_node(graph, "ReduceSum", [valid_i, const("import/axes", np.array([1], np.int64))],
                            "import/count", dtypes=[np.int32], attrs={"keepdims": 1})
    else:  # the tutorial converts at opset 12
        (count,) = add_node(graph, "ReduceSum", [valid_i], "import/count", dtypes=[np.int32],
                            attrs={"keepdims": 1, "axes": [1]})
    nms_names = contracts.TFOD_NAMES if not contract.ds_parser else tuple(f"nms/{n}" for n in contracts.TFOD_NAMES)
    tensors = []
    for name, tensor, dtype, shape in zip(nms_names, (count, boxes, scores, classes),
                                          (np.int32, np.float32, np.float32, np.int32),
                                          ([batch, 1], [batch, k, 4], [batch, k], [batch, k]), strict=True):
        out = gs_variable(name, dtype, shape)
        graph.nodes.append(gs_node("Identity", f"import/{name}", [tensor], [out]))
        tensors.append(out)
    if contract.ds_parser:
        tensors = to_deepstream(graph, tensors, (height, width), batch, k, contract)
    graph.outputs = tensors
    ctx.facts["max_detections"] = k


def gs_variable(name: str, dtype: Any, shape: list[Any]) -> gs.Variable:
    import onnx_graphsurgeon as gs

    return gs.Variable(name, dtype=dtype, shape=shape)


def gs_node(op: str, name: str, inputs: list[Any], outputs: list[Any]) -> gs.Node:
    import onnx_graphsurgeon as gs

    return gs.Node(op, name=name, inputs=inputs, outputs=outputs)


PASSES = [("float_input", float_input), ("detections_to_contract", detections_to_contract)]


def nms_settings(model: onnx.ModelProto, k: int) -> tuple[float, float]:
    """(score, IoU threshold) of the graph's own NonMaxSuppression, when its inputs are constants;
    AutoML's defaults (tf2/postprocess.py nms(): iou 0.5; no score floor) otherwise."""
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    found = set()
    for node in model.graph.node:
        if node.op_type == "NonMaxSuppression" and len(node.input) >= 5:
            iou, score = consts.get(node.input[3]), consts.get(node.input[4])
            if iou is not None and score is not None and iou.size == 1 and score.size == 1:
                found.add((float(np.float32(score.item())), float(np.float32(iou.item()))))
    if len(found) == 1:
        score_value, iou_value = found.pop()
        return float(str(np.float32(score_value))), float(str(np.float32(iou_value)))
    return 0.0, 0.5


def make_card(options: ImportOnnxOptions, model: onnx.ModelProto, facts: dict[str, Any], labels: list[str],
              source: onnx.ModelProto) -> DeployCard:
    import onnx

    from trtdeploy.deploy_card import DeployCard, InputSpec, NmsParams, OutputSpec, Preprocess, Provenance
    from trtdeploy.files import sha256_file

    contract: contracts.OutputContract = facts["contract"]
    height, width = facts["input_hw"]
    batch = facts["batch"] if facts["batch"] is not None else -1
    k = facts["max_detections"]
    score, iou = nms_settings(source, k)
    return DeployCard(
        input=InputSpec(name=model.graph.input[0].name, shape=[batch, height, width, 3], layout="NHWC"),
        # AutoML normalises inside the graph and letterboxes (aspect kept, padded bottom/right).
        preprocess=Preprocess(color_order="RGB", scale=1.0, offsets=[0.0, 0.0, 0.0], resize="letterbox",
                              pad_corner="top_left"),
        output=OutputSpec(
            nms="other", layout=contract.layout, names=list(contract.names), num_classes=len(labels),
            box_format=contract.box_format, box_units=contract.box_units, class_dtype=contract.class_dtype,
            max_detections=k, count_dtype=contract.count_dtype, ds_parser=contract.ds_parser, contract=contract.key,
        ),
        labels=labels,
        background="none (AutoML predicts no background class)",
        nms=NmsParams(score_threshold=score, iou_threshold=iou, max_detections=k, max_detections_per_class=k),
        provenance=Provenance(
            framework="tensorflow", model_family=FAMILY_KEY,
            architecture=f"AutoML EfficientDet (tf2onnx tutorial export, detections {options.box_format}; "
                         f"{facts.get('input_cast', '')})",
            source_files={"onnx": sha256_file(Path(options.model))},
            versions={"onnx": onnx.__version__, "numpy": np.__version__},
            created_by=f"trtdeploy {__version__} import-onnx",
        ),
    )


def import_onnx(options: ImportOnnxOptions) -> ImportOnnxResult:
    """Rewrite a tutorial-style ONNX into our contract and write it with its deploy card."""
    import onnx

    from trtdeploy import families
    from trtdeploy.deploy_card import card_path_for
    from trtdeploy.files import check_output
    from trtdeploy.graph_passes import PassContext, run_passes

    start = time.perf_counter()
    contract = check_options(options)
    model_path, output = Path(options.model), Path(options.output)
    if not model_path.is_file():
        raise InputError(f"ONNX file {model_path} not found")
    inputs = [model_path, Path(options.labels) if options.labels else None]
    for out in (output, card_path_for(output)):
        check_output(out, options.force, inputs=inputs)
    labels = (read_labels(Path(options.labels), options.num_classes) if options.labels
              else [f"class_{i}" for i in range(1, int(options.num_classes or 0) + 1)])
    try:
        source = onnx.load(str(model_path))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others; one line for the user
        raise InputError(f"cannot read {model_path} as ONNX: {exc}") from exc
    ctx = PassContext(family=TITLE, facts={"contract": contract, "input_size": options.input_size,
                                           "box_format": options.box_format, "class_id_base": options.class_id_base})
    model = run_passes(source, PASSES, ctx)
    card = make_card(options, model, ctx.facts, labels, source)
    card.validate("imported deploy card")
    families.write_model(model, card, output)
    seconds = time.perf_counter() - start
    log.info("wrote %s and %s (%s) in %.1f s", output, card_path_for(output).name, contract.key, seconds)
    return ImportOnnxResult(output, card_path_for(output), card, seconds)
