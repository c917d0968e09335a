"""Bad inputs for `trtdeploy create-onnx` (issue 11: inputs never overwritten, every option
checked before the conversion; issue 10: --ds-parser combinations).

Every row runs on a fake export in the workspace (``{ws}/export/saved_model/saved_model.pb``,
empty, next to the bundled model's pipeline.config): all of these refusals come before
TensorFlow loads, which the suite's TensorFlow guard enforces (these rows are not marked tf).
"""

from __future__ import annotations

from tests.bad_inputs.rows import Row
from tests.bad_inputs.setups import Setup, chain, symlink, write
from tests.bad_inputs.workspace import Workspace

SM = "{ws}/export/saved_model"
CO = "create-onnx --saved-model " + SM
OUT = "{ws}/m.onnx"
CARD = "{ws}/m.deploy.json"
NEW = [OUT, CARD]  # outputs a refused row must not leave behind


def export(ws: Workspace) -> None:
    """A folder that looks like a TFOD export up to the point TensorFlow would read it."""
    from tests.data import BUNDLED_MODEL

    (ws.root / "export" / "saved_model").mkdir(parents=True, exist_ok=True)
    (ws.root / "export" / "saved_model" / "saved_model.pb").write_bytes(b"")
    (ws.root / "export" / "pipeline.config").write_bytes((BUNDLED_MODEL / "pipeline.config").read_bytes())


def link_saved_model(ws: Workspace) -> None:
    (ws.root / "sm_link").symlink_to(ws.root / "export" / "saved_model", target_is_directory=True)


def with_export(*more: Setup) -> Setup:
    return chain(export, *more)


def label_map(text: str) -> Setup:
    return with_export(write("{ws}/bad_map.pbtxt", text))


def row(id: str, args: str, code: int, message: str, setup: Setup | None = None, **kw) -> Row:
    return Row(f"create-onnx-{id}", args, code, message, setup=setup or export, **kw)


ROWS = [
    # inputs are sacred (real paths, with --force too)
    row("output-is-the-label-map", CO + " --label-map {label_map} -o {label_map} --force", 2, "is an input",
        unchanged=["{label_map}"]),
    row("output-symlink-to-the-label-map", CO + " --label-map {label_map} -o {ws}/link.onnx --force", 2,
        "is an input", unchanged=["{label_map}"], setup=with_export(symlink("link.onnx", "label_map"))),
    row("output-is-the-pipeline-config", CO + " -o {ws}/export/pipeline.config --force", 2, "is an input",
        unchanged=["{ws}/export/pipeline.config"]),
    row("card-would-be-the-label-map", CO + " --label-map {ws}/m.deploy.json -o " + OUT + " --force", 2,
        "is an input", absent=[OUT], unchanged=[CARD],
        setup=with_export(write("{ws}/m.deploy.json", "item { id: 1 name: 'cat' }\n"))),
    row("output-inside-the-saved-model", CO + " -o " + SM + "/m.onnx", 2, "inside the input saved model folder",
        absent=[SM + "/m.onnx"]),
    row("output-inside-the-saved-model-via-a-symlink", CO + " -o {ws}/sm_link/m.onnx", 2,
        "inside the input saved model folder", absent=[SM + "/m.onnx"], setup=with_export(link_saved_model)),
    row("output-is-saved-model-pb", CO + " -o " + SM + "/saved_model.pb --force", 2, "is inside the input",
        unchanged=[SM + "/saved_model.pb"]),
    row("debug-dir-inside-the-saved-model", CO + " -o " + OUT + " --debug-dir " + SM + "/debug", 2,
        "inside the input saved model folder", absent=[*NEW, SM + "/debug"]),
    row("output-is-a-folder", CO + " -o {dir} --force", 2, "is a folder", unchanged=["{dir}"]),
    row("output-exists", CO + " -o {onnx}", 1, "exists", unchanged=["{onnx}"]),
    row("output-in-proc", CO + " -o /proc/trtdeploy-test/m.onnx", 1, "/proc/trtdeploy-test"),
    # options checked before the conversion (issue 11: --opset 12 was refused after 15 s)
    row("nms-onnx-opset-12", CO + " -o " + OUT + " --nms onnx --opset 12", 2, "--opset 13", absent=NEW),
    row("opset-too-low", CO + " -o " + OUT + " --opset 9", 2, "--opset 9 is not supported", absent=NEW),
    row("opset-too-high", CO + " -o " + OUT + " --opset 19", 2, "--opset 19 is not supported", absent=NEW),
    row("batch-zero", CO + " -o " + OUT + " --batch 0", 2, "--batch must be >= 1", absent=NEW),
    row("batch-negative", CO + " -o " + OUT + " --batch -3", 2, "--batch must be >= 1", absent=NEW),
    row("batch-and-dynamic-batch", CO + " -o " + OUT + " --batch 2 --dynamic-batch", 2, "exclude each other",
        absent=NEW),
    row("score-threshold-above-1", CO + " -o " + OUT + " --score-threshold 1.5", 2, "--score-threshold", absent=NEW),
    row("score-threshold-nan", CO + " -o " + OUT + " --score-threshold nan", 2, "--score-threshold", absent=NEW),
    row("iou-threshold-negative", CO + " -o " + OUT + " --iou-threshold -0.1", 2, "--iou-threshold", absent=NEW),
    row("max-detections-zero", CO + " -o " + OUT + " --max-detections 0", 2, "--max-detections", absent=NEW),
    row("batched-more-than-4096", CO + " -o " + OUT + " --nms batched --max-detections 5000", 2, "4096",
        absent=NEW),
    row("nms-unknown", CO + " -o " + OUT + " --nms fast", 2, "--nms 'fast'", absent=NEW),
    row("output-layout-unknown", CO + " -o " + OUT + " --output-layout yolo", 2, "--output-layout 'yolo'",
        absent=NEW),
    row("input-format-unknown", CO + " -o " + OUT + " --input-format hwc", 2, "--input-format", absent=NEW),
    row("input-size-malformed", CO + " -o " + OUT + " --input-size 300", 2, "--input-size", absent=NEW),
    # DeepStream parser variants (issue 10 item 3)
    row("ds-parser-unknown", CO + " -o " + OUT + " --ds-parser tfssd", 2, "--ds-parser 'tfssd'", absent=NEW),
    row("ds-parser-vs-nms", CO + " -o " + OUT + " --ds-parser batchednms --nms efficient", 2, "--nms batched",
        absent=NEW),
    row("ds-parser-vs-nms-none", CO + " -o " + OUT + " --ds-parser sdk-tfssd --nms none", 2,
        "--nms efficient or onnx", absent=NEW),
    row("ds-parser-vs-tfod-layout", CO + " -o " + OUT + " --ds-parser sdk-tfssd --output-layout tfod", 2,
        "drop --output-layout tfod", absent=NEW),
    row("deepstream-without-nms", CO + " -o " + OUT + " --output-layout deepstream --nms none", 2,
        "needs an NMS head", absent=NEW),
    # broken inputs
    row("saved-model-missing", "create-onnx --saved-model {missing} -o " + OUT, 1, "not found", absent=NEW),
    row("saved-model-is-a-file", "create-onnx --saved-model {text} -o " + OUT, 1, "not a TensorFlow saved model",
        absent=NEW),
    row("pipeline-config-missing", CO + " -o " + OUT, 1, "pipeline.config not found",
        absent=NEW, setup=with_export(lambda ws: (ws.root / "export" / "pipeline.config").unlink())),
    row("pipeline-config-faster-rcnn", CO + " -o " + OUT, 1, "Faster R-CNN", absent=NEW,
        setup=with_export(write("{ws}/export/pipeline.config", "model { faster_rcnn { num_classes: 2 } }\n"))),
    row("label-map-missing", CO + " --label-map {missing} -o " + OUT, 1, "not found", absent=NEW),
    # label maps as TFOD's label_map_util reads them (object_detection/utils/label_map_util.py)
    row("label-map-id-0-not-background", CO + " --label-map {ws}/bad_map.pbtxt -o " + OUT, 1,
        "reserved for the background", absent=NEW, setup=label_map("item { id: 0 name: 'cat' }\n")),
    row("label-map-negative-id", CO + " --label-map {ws}/bad_map.pbtxt -o " + OUT, 1, "negative", absent=NEW,
        setup=label_map("item { id: -2 name: 'cat' }\n")),
    row("label-map-id-beyond-num-classes", CO + " --label-map {ws}/bad_map.pbtxt -o " + OUT, 1,
        "outside 1..5", absent=NEW, setup=label_map("item { id: 1 name: 'a' }\nitem { id: 9 name: 'b' }\n")),
    row("label-map-item-without-id", CO + " --label-map {ws}/bad_map.pbtxt -o " + OUT, 1, "needs an id",
        absent=NEW, setup=label_map("item { name: 'a' }\n")),
    row("label-map-empty", CO + " --label-map {ws}/bad_map.pbtxt -o " + OUT, 1, "no 'item", absent=NEW,
        setup=label_map("# nothing\n")),
]
