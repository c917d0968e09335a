"""Rows for examples of issue 11's "Why" that span commands (gen-ds-config's TAO route, create-onnx's
label maps), kept together so each example of the issue is easy to find."""

from __future__ import annotations

from tests.bad_inputs.rows import Row
from tests.bad_inputs.setups import chain, write

TAO_SSD_SPEC = (
    'ssd_config { arch: "resnet" nlayers: 18 }\n'
    "augmentation_config { output_width: 32 output_height: 32 output_channel: 3 }\n"
    'dataset_config { target_class_mapping { key: "cat" value: "cat" } }\n'
)
EFFICIENTDET_YAML = 'dataset:\n  num_classes: 3\n  image_size: "32,32"\nmodel:\n  input_height: 32\n  input_width: 32\n'
REPEATED_ID_MAP = "item { id: 1 name: 'person' }\nitem { id: 1 name: 'bicycle' }\nitem { id: 2 name: 'car' }\n"



ROWS = [
    # issue 11: "10 internal error exits (e.g. ... --operate-on-class-ids a;b ...)" (gen-ds-config)
    Row("why-ds-gen-operate-on-class-ids-not-numbers",
        "gen-ds-config --tao-spec {ws}/ed.yaml --arch efficientdet --onnx {onnx} --labels {ds_labels} --secondary "
        "--operate-on-class-ids a;b -o {ws}/ds", 2, "--operate-on-class-ids", absent=["{ws}/ds"],
        setup=write("ed.yaml", EFFICIENTDET_YAML)),
    # issue 11: "a text file as --onnx" (gen-ds-config's TAO --onnx)
    Row("why-ds-gen-tao-onnx-is-text",
        "gen-ds-config --tao-spec {ws}/spec.txt --arch ssd --onnx {text} -o {ws}/ds", 1, "not a readable ONNX",
        absent=["{ws}/ds"], unchanged=["{text}"], setup=write("spec.txt", TAO_SSD_SPEC)),
    # issue 11 item 1 (inputs are sacred): the labels file gen-ds-config writes is the --labels it
    # reads: refused even with --force
    Row("why-ds-gen-labels-output-is-the-input",
        "gen-ds-config --tao-spec {ws}/ed.yaml --arch efficientdet --onnx {onnx} --labels {ws}/ds/model_labels.txt "
        "-o {ws}/ds --force", 2, "is an input", unchanged=["{ws}/ds/model_labels.txt"],
        absent=["{ws}/ds/config_infer_primary_model.txt"],
        setup=chain(write("ed.yaml", EFFICIENTDET_YAML), write("ds/model_labels.txt", "cat\ndog\n# kept\n"))),
    # issue 11: "a label map with a repeated id silently shifted every label" -- TFOD keeps the
    # first item of a repeated id (label_map_util.convert_label_map_to_categories), so: a warning
    Row("why-create-onnx-label-map-repeated-id",
        "create-onnx --saved-model {saved_model}/saved_model --label-map {ws}/dup.pbtxt -o {ws}/dup.onnx", 0,
        "appears again", needs=("converted",), setup=write("dup.pbtxt", REPEATED_ID_MAP)),
]
