"""The parser-variant data and ``misreads``: facts read from the parsers' source.

Sources (``git show BRANCH:path`` on full clones):
  SDK = hiennguyen9874/deepstream-sources, sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp
  TAO = NVIDIA-AI-IOT/deepstream_tao_apps, post_processor/nvdsinfer_custombboxparser_tao.cpp
"""

from __future__ import annotations

import re

import pytest

from tests.data import reference_path
from trtdeploy.deepstream import parsers
from trtdeploy.deepstream.parsers import DEFAULT_DS_PARSER, PARSERS, VARIANTS, misreads, variant
from trtdeploy.errors import UsageError

# The demo's old DeepStream layout: EfficientNMS outputs with classes cast to float32, pixel boxes.
OLD_FLOAT_CLASS_LAYOUT = [
    ("num_detections", "int32", ("batch", 1)),
    ("detection_boxes", "float32", ("batch", 100, 4)),
    ("detection_scores", "float32", ("batch", 100)),
    ("detection_classes", "float32", ("batch", 100)),
]
EFFICIENT_NMS_LAYOUT = [(n, "int32" if n == "detection_classes" else d, s) for n, d, s in OLD_FLOAT_CLASS_LAYOUT]


def test_the_proposed_variant_keys_exist_and_name_their_function() -> None:
    expected = {
        "sdk-tfssd": "NvDsInferParseCustomTfSSD",
        "sdk-efficientdet": "NvDsInferParseCustomEfficientDetTAO",
        "tao-efficientdet": "NvDsInferParseCustomEfficientDetTAO",
        "tao-efficientdet-6.2": "NvDsInferParseCustomEfficientDetTAO",
        "batchednms": "NvDsInferParseCustomBatchedNMSTLT",
        "nmstlt": "NvDsInferParseCustomNMSTLT",
        "mrcnn": "NvDsInferParseCustomMrcnnTLTV2",
    }
    for key, func in expected.items():
        assert VARIANTS[key].func == func
    assert "detectnet-builtin" in VARIANTS and VARIANTS["detectnet-builtin"].custom_lib_path is None
    for key, v in VARIANTS.items():
        assert v.key == key
        assert set(v.ships_in) <= {"sdk", "tao_apps", "nvinfer"}
        lib = {"sdk": parsers.SDK_CUSTOM_LIB, "tao_apps": parsers.TAO_CUSTOM_LIB}.get(v.ships_in[0])
        assert v.custom_lib_path == lib


def test_every_fact_cites_a_line_range_inside_its_function() -> None:
    repos = (parsers.SDK_REPO, parsers.TAO_REPO, parsers.DS_REPO)
    for v in VARIANTS.values():
        assert v.facts, v.key
        cites = [f.cite for f in v.facts] + [t.cite for t in v.tensors]
        for c in cites:
            assert c.repo in repos and 1 <= c.first <= c.last, (v.key, c)
            if (c.repo, c.branch, c.path) == (v.cite.repo, v.cite.branch, v.cite.path) and c.first > 100:
                assert v.cite.first <= c.first and c.last <= v.cite.last, (v.key, str(c))
            if c.repo == parsers.DS_REPO:
                # A 9.0 fact lies inside the 9.0 function it is about.
                ranges = [s for s in v.same_in if s.path == c.path]
                assert any(s.first <= c.first and c.last <= s.last for s in ranges), (v.key, str(c))
        for c in (v.cite, *v.same_in):
            assert re.fullmatch(r"[\w./-]+@[\w./-]+:[\w./-]+#L\d+-L\d+", str(c))


def test_efficientnms_parser_is_not_offered() -> None:
    # No SDK branch 5.0-6.3 and no deepstream_tao_apps branch defines NvDsInferParseCustomEfficientNMS.
    assert "NvDsInferParseCustomEfficientNMS" not in PARSERS
    assert all(v.func != "NvDsInferParseCustomEfficientNMS" for v in VARIANTS.values())
    assert parsers.parser_for_deepstream_layout("x1y1x2y2", "int32") is None


def test_the_default_fails_loudly_and_ships_with_deepstream() -> None:
    # The reasons in docs/deepstream-parsers.md: in the SDK's own library, found by name, and only
    # as FLOAT layers (SDK 6.3 L219-L226), so a layout it cannot read is an error, not garbage.
    v = VARIANTS[DEFAULT_DS_PARSER]
    assert v.ships_in == ("sdk",) and v.custom_lib_path == parsers.SDK_CUSTOM_LIB
    assert v.lookup == "name"
    assert all(t.requires_float_layer for t in v.tensors)
    assert misreads(DEFAULT_DS_PARSER, EFFICIENT_NMS_LAYOUT) != []  # int32 classes: refused


def test_old_float_class_layout_is_misread_by_the_tao_apps_parser() -> None:
    # TAO master L494-L495 reads detection_classes as int*.
    (msg,) = misreads("tao-efficientdet", OLD_FLOAT_CLASS_LAYOUT)
    assert msg.startswith("detection_classes is float32 but NvDsInferParseCustomEfficientDetTAO")
    assert "tao4.0_ds6.3ga" in msg and msg.endswith("reads it as int32")
    assert misreads("tao-efficientdet", EFFICIENT_NMS_LAYOUT) == []
    # SDK 6.3 L627 and TAO release/tao3.0_ds6.2ga L344 read the same position as float*.
    for key in ("sdk-efficientdet", "tao-efficientdet-6.2"):
        assert misreads(key, OLD_FLOAT_CLASS_LAYOUT) == []
        (msg,) = misreads(key, EFFICIENT_NMS_LAYOUT)
        assert "detection_classes" in msg and "is int32" in msg and msg.endswith("reads it as float32")
    # TAO release/tao4.0_ds6.2ga L349: int* by position.
    assert misreads("tao-efficientdet-6.2-tao4", EFFICIENT_NMS_LAYOUT) == []


def test_by_position_parsers_report_a_wrong_order() -> None:
    # SDK 6.3 L484-L487: [0] is the int count; here it is the boxes.
    swapped = [
        OLD_FLOAT_CLASS_LAYOUT[1],
        OLD_FLOAT_CLASS_LAYOUT[2],
        OLD_FLOAT_CLASS_LAYOUT[3],
        OLD_FLOAT_CLASS_LAYOUT[0],
    ]
    problems = misreads("batchednms", swapped)
    assert any(p.startswith("detection_boxes (output 0, read as the count) is float32") for p in problems)
    assert any(p.startswith("num_detections (output 3, read as the classes) is int32") for p in problems)
    # The name-based TAO parser does not care about order.
    assert misreads("tao-efficientdet", [EFFICIENT_NMS_LAYOUT[i] for i in (3, 1, 0, 2)]) == []
    # SDK 6.3 L473-L478: exactly 4 outputs.
    (msg,) = misreads("batchednms", OLD_FLOAT_CLASS_LAYOUT[:3])
    assert "exactly 4" in msg


def test_tfssd_needs_float_layers_by_name() -> None:
    tf_float = [
        ("detection_boxes", "float32", (1, 100, 4)),
        ("detection_scores", "tensor(float)", (1, 100)),
        ("detection_classes", "float32", (1, 100)),
        ("num_detections", "int32", (1, 1)),  # not FLOAT: skipped, all rows read (SDK 6.3 L228-L241)
    ]
    assert misreads("sdk-tfssd", tf_float) == []
    int_classes = [*tf_float[:2], ("detection_classes", "int32", (1, 100))]
    (msg,) = misreads("sdk-tfssd", int_classes)
    assert msg.startswith("detection_classes is int32 but NvDsInferParseCustomTfSSD") and "returns false" in msg
    (msg,) = misreads("sdk-tfssd", tf_float[1:])
    assert msg.startswith("detection_boxes is missing")


def test_tao_efficientdet_missing_name_is_a_crash() -> None:
    renamed = [
        ("boxes", "float32", (1, 100, 4)) if n == "detection_boxes" else (n, d, s) for n, d, s in EFFICIENT_NMS_LAYOUT
    ]
    (msg,) = misreads("tao-efficientdet", renamed)
    assert msg.startswith("detection_boxes is missing") and "crash" in msg


def test_unknown_variant_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="sdk-tfssd"):
        variant("efficientnms")


def _config_props(path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def test_tao_apps_reference_configs_match_the_tao_variants() -> None:
    # Real configs of deepstream_tao_apps release/tao5.3_ds7.0ga: every stock parser they name from
    # the TAO library has a tao_apps variant covering that branch, with the library path they use.
    folder = reference_path("deepstream_tao_apps", "release_tao5.3_ds7.0ga", "configs", "nvinfer")
    modelled = {v.func for v in VARIANTS.values()}
    seen = set()
    for path in sorted(folder.rglob("*.txt")):
        props = _config_props(path)
        func = props.get("parse-bbox-func-name") or props.get("parse-bbox-instance-mask-func-name")
        if func not in modelled or props.get("custom-lib-path", "").rsplit("/", 1)[-1] != parsers.TAO_CUSTOM_LIB_NAME:
            continue
        seen.add(func)
        tao = [v for v in VARIANTS.values() if v.func == func and "tao_apps" in v.ships_in]
        assert tao and any("tao:release/tao5.3_ds7.0ga" in v.branches for v in tao), (path.name, func)
        assert props["custom-lib-path"] == parsers.TAO_CUSTOM_LIB
        if func == "NvDsInferParseCustomEfficientDetTAO":
            names = props["output-blob-names"].split(";")
            assert sorted(names) == sorted(t.name for t in VARIANTS["tao-efficientdet"].tensors)
    assert {"NvDsInferParseCustomEfficientDetTAO", "NvDsInferParseCustomBatchedNMSTLT"} <= seen


def test_compatibility_contracts_keep_working() -> None:
    assert (
        parsers.contract_problems("NvDsInferParseCustomTfSSD", "tfod_float", "y1x1y2x2", "normalized", "float32") == []
    )
    assert parsers.contract_problems(
        "NvDsInferParseCustomBatchedNMSTLT", "batched", "y1x1y2x2", "normalized", "float32"
    )
    assert PARSERS["NvDsInferParseCustomMrcnnTLTV2"].instance_mask
    assert PARSERS["NvDsInferParseCustomEfficientDetTAO"].box_units == "pixels"
    assert parsers.parser_for_deepstream_layout("y1x1y2x2", "float32") == "NvDsInferParseCustomEfficientDetTAO"


def test_box_rows_must_have_the_length_the_parser_steps_over() -> None:
    # SDK 6.3 L256-L260 reads box i at [i*4 + 0..3]; L376 NMS rows at [i*7 + 0..6].
    five = [("detection_boxes", "float32", (1, 100, 5)), *OLD_FLOAT_CLASS_LAYOUT[2:]]
    (msg,) = misreads("sdk-tfssd", five)
    assert msg.startswith("detection_boxes has shape [1, 100, 5]") and "rows of 4" in msg
    assert misreads("nmstlt", [("NMS", "float32", (1, 1, 200, 7)), ("NMS_1", "int32", (1, 1, 1, 1))]) == []
    (msg,) = misreads("nmstlt", [("NMS", "float32", (1, 1, 200, 6)), ("NMS_1", "int32", (1, 1, 1, 1))])
    assert "rows of 7" in msg


def test_variants_for_a_config_follow_the_library_file_name() -> None:
    keys = lambda func, lib: [v.key for v in parsers.variants_for_config(func, lib)]  # noqa: E731
    effdet = "NvDsInferParseCustomEfficientDetTAO"
    assert keys(effdet, "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so") == ["sdk-efficientdet"]
    assert keys(effdet, "../../../post_processor/libnvds_infercustomparser_tao.so") == [
        "tao-efficientdet",
        "tao-efficientdet-6.2",
        "tao-efficientdet-6.2-tao4",
    ]
    assert keys("NvDsInferParseCustomNMSTLT", "/x/libnvds_infercustomparser_tao.so") == ["tao-nmstlt"]
    assert keys("NvDsInferParseCustomBatchedNMSTLT", "libnvds_infercustomparser.so") == ["batchednms"]
    assert keys(effdet, "/home/me/libmy_parser.so") == []
    assert keys("", None) == ["detectnet-builtin"]
