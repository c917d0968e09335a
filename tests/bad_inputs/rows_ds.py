"""Bad inputs for `trtdeploy gen-ds-config` and `trtdeploy check-ds-config` (issue 11 item 4 and
its DeepStream examples, issue 10 items 3 and 4).

The workspace's {onnx} has TFOD outputs (int32 detection_classes, normalised boxes), {engine} is a
fake engine whose sidecar describes {onnx}, {ds_config} a plain nvinfer config of {onnx} whose
model-engine-file is {engine} (where nvinfer saves it: next to the model).
"""

from __future__ import annotations

from tests.bad_inputs.rows import Row
from tests.bad_inputs.setups import edit_json, remove, write

G = "gen-ds-config {onnx}"
OUT = "{ws}/ds"
C = "check-ds-config {ds_config}"

TRITON = 'infer_config {\n  unique_id: 1\n  backend {\n    triton { model_name: "ssd" }\n  }\n}\n'


def _other_model(data: dict) -> None:
    data["onnx_sha256"] = "0" * 64
    data["built_onnx_sha256"] = "0" * 64


# The template config lacks network-input-order=1 although {onnx} is NHWC (a true error that
# check-ds-config reports); every check row adds it, so that each row has exactly its own error.
NHWC = "network-input-order=1\n"


def _config_plus(extra: str = ""):
    def run(ws) -> None:
        path = ws.path("ds_config")
        path.write_text(path.read_text(encoding="utf-8") + NHWC + extra, encoding="utf-8")

    return run


def _config_replace(old: str, new: str):
    def run(ws) -> None:
        path = ws.path("ds_config")
        path.write_text(path.read_text(encoding="utf-8").replace(old, new) + NHWC, encoding="utf-8")

    return run


def _then(*setups):
    def run(ws) -> None:
        for setup in setups:
            setup(ws)

    return run


ROWS = [
    # names become file names in the output folder (issue 11: ../../evil wrote ../../evil_labels.txt)
    Row("ds-gen-name-traversal", f"{G} --name ../../evil -o {OUT}", 2, "--name", absent=[OUT, "{ws}/../../evil_labels.txt"]),
    Row("ds-gen-name-slash", f"{G} --name a/b -o {OUT}", 2, "--name", absent=[OUT]),
    # bad usage exits 2 (issue 11: --arch exited 1)
    Row("ds-gen-arch-unknown", f"gen-ds-config --tao-spec {{text}} --arch banana --onnx {{onnx}} -o {OUT}", 2,
        "banana", absent=[OUT]),
    Row("ds-gen-ds-parser-unknown", f"{G} --ds-parser banana -o {OUT}", 2, "banana", absent=[OUT]),
    # wrong pairs (issue 11 item 3)
    Row("ds-gen-static-batch", f"{G} --batch-size 4 --ds-parser sdk-tfssd -o {OUT}", 2, "static batch of 1",
        absent=[OUT]),
    Row("ds-gen-engine-of-another-model", f"{G} --engine {{engine}} -o {OUT}", 1, "does not belong",
        absent=[OUT], unchanged=["{engine}"], setup=edit_json("{engine}.json", _other_model)),
    Row("ds-gen-engine-missing", f"{G} --engine {{missing}} -o {OUT}", 1, "not found", absent=[OUT]),
    # a parser that would misread the outputs: TfSSD only finds FLOAT detection_classes
    Row("ds-gen-parser-misreads", f"{G} --ds-parser sdk-tfssd -o {OUT}", 1, "detection_classes is int32",
        absent=[OUT]),
    Row("ds-gen-tao-efficientdet-normalised", f"{G} --ds-parser tao-efficientdet -o {OUT}", 1,
        "'tfod' outputs", absent=[OUT]),
    # check-ds-config: what used to say "no errors"
    Row("ds-check-unknown-key", C, 1, "net-scale-factr", setup=_config_plus("net-scale-factr=0.5\n"),
        unchanged=["{ds_config}"]),
    Row("ds-check-duplicate-key", C, 1, "gpu-id is set 2 times", setup=_config_plus("gpu-id=0\n")),
    Row("ds-check-labels-missing", C, 1, "does not exist", setup=_then(_config_plus(), remove("labels.txt"))),
    Row("ds-check-labels-bom", C, 1, "byte-order mark", setup=_then(_config_plus(), write("labels.txt", b"\xef\xbb\xbfcat\ndog\n"))),
    Row("ds-check-labels-trailing-space", C, 1, "trailing whitespace", setup=_then(_config_plus(), write("labels.txt", "cat \ndog\n"))),
    Row("ds-check-nvinferserver", C, 2, "nvinferserver", setup=write("config_infer.txt", TRITON)),
    Row("ds-check-engine-not-where-nvinfer-saves", C, 1, "rebuilt at every start",
        setup=_config_replace("model-engine-file=", "model-engine-file=engines/")),
    Row("ds-check-engine-of-another-model", C, 1, "was not built from onnx-file",
        setup=_then(_config_plus(), edit_json("{engine}.json", _other_model))),
    Row("ds-check-deepstream-unknown", f"{C} --deepstream 7.7", 2, "--deepstream 7.7", setup=_config_plus()),
    Row("ds-check-key-of-later-release", f"{C} --deepstream 6.3", 1, "from DeepStream 9.0 on",
        setup=_config_plus("strongly-typed=1\n")),
    Row("ds-check-plain-config-passes", C, 0, "no errors", setup=_config_plus()),
]
