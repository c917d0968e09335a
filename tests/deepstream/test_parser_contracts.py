"""The parser-variant data and ``misreads``: facts read from the parsers' source.

Sources (``git show BRANCH:path`` on full clones):
  SDK = hiennguyen9874/deepstream-sources, sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp
  TAO = NVIDIA-AI-IOT/deepstream_tao_apps, post_processor/nvdsinfer_custombboxparser_tao.cpp
  DS  = NVIDIA/DeepStream, branch DeepStream-9.0: src/utils/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp,
        src/apps/tao_apps/post_processor/nvdsinfer_custombboxparser_tao.cpp,
        src/utils/nvdsinfer/nvdsinfer_context_impl_output_parsing.cpp
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.data import reference_path
from trtdeploy import contracts
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
    # So no parser reads EfficientNMS_TRT's own x1,y1,x2,y2 order: every EfficientNMS-made contract a
    # DeepStream parser reads has y1,x1,y2,x2 boxes (the contract registry answers who reads what).
    read = [c for c in contracts.for_head("efficient") if c.ds_readers]
    assert read and all(c.box_format == "y1x1y2x2" for c in read)


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
    # The stock parser of pixel y1,x1,y2,x2 EfficientNMS outputs with float32 classes (SDK 6.3 L607-L672,
    # tao3.0_ds6.2ga L325-L396), and of the NMS_TRT / BatchedNMS layouts, as the registry gives them.
    pixel_float = {
        VARIANTS[key].func
        for c in contracts.for_head("efficient")
        if (c.box_format, c.box_units, c.class_dtype) == ("y1x1y2x2", "pixels", "float32")
        for key in c.ds_readers
    }
    assert pixel_float == {"NvDsInferParseCustomEfficientDetTAO"}
    assert VARIANTS[contracts.contract("nms_trt").ds_readers[0]].func == "NvDsInferParseCustomNMSTLT"
    batched = contracts.contract_for_output("batched", box_format="x1y1x2y2")
    assert [VARIANTS[k].func for k in batched.ds_readers] == ["NvDsInferParseCustomBatchedNMSTLT"]


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


# Which DeepStream releases each variant's body was read in and found the same, from our reading of
# the sources (module docstring of parsers.py): SDK branches of hiennguyen9874/deepstream-sources,
# deepstream_tao_apps release/..._dsX.Yga branches, and NVIDIA/DeepStream@DeepStream-9.0.
_SDK_5_TO_63 = {"5.0", "6.0", "6.0.1", "6.1", "6.1.1", "6.2", "6.3"}
_TAO_63_TO_80 = {"6.3", "6.4", "7.0", "7.1", "8.0"}
EXPECTED_COVERAGE = {
    "sdk-tfssd": _SDK_5_TO_63 | {"9.0"},
    "sdk-efficientdet": {"6.1", "6.1.1", "6.2", "6.3", "9.0"},
    "tao-efficientdet": _TAO_63_TO_80 | {"9.0"},
    "tao-efficientdet-6.2": {"6.1.1", "6.2"},
    "tao-efficientdet-6.2-tao4": {"6.2"},
    "batchednms": (_SDK_5_TO_63 - {"5.0"}) | _TAO_63_TO_80 | {"9.0"},
    "nmstlt": (_SDK_5_TO_63 - {"5.0"}) | {"9.0"},
    "tao-nmstlt": {"6.1.1", "6.2"} | _TAO_63_TO_80 | {"9.0"},
    "mrcnn": (_SDK_5_TO_63 - {"5.0"}) | _TAO_63_TO_80 | {"9.0"},
    "detectnet-builtin": (_SDK_5_TO_63 - {"5.0"}) | {"9.0"},
}


def test_the_default_covers_every_public_sdk_release_including_90() -> None:
    v = VARIANTS[DEFAULT_DS_PARSER]
    for release in sorted(_SDK_5_TO_63 | {"9.0"}):
        assert v.covers(release), release
    # No SDK source of 7.x/8.x is public: the default claims nothing there.
    assert not v.covers("7.0") and not v.covers("8.0")
    assert "9.0" in v.releases and "7.x/8.x" in v.releases
    assert [c.repo for c in v.same_in] == [parsers.DS_REPO]


def test_release_coverage_of_every_variant() -> None:
    assert set(EXPECTED_COVERAGE) == set(VARIANTS)
    for key, expected in EXPECTED_COVERAGE.items():
        assert set(VARIANTS[key].deepstream_releases) == expected, key


def test_every_variant_read_in_90_cites_each_of_its_90_libraries() -> None:
    # sdk -> the SDK library source, tao_apps -> DeepStream 9.0's copy of deepstream_tao_apps'
    # post_processor, nvinfer -> nvinfer's own output parsing.
    file_of = {
        "sdk": parsers.DS_PARSER_FILE,
        "tao_apps": parsers.DS_TAO_PARSER_FILE,
        "nvinfer": parsers.DS_NVINFER_FILE,
    }
    for v in VARIANTS.values():
        cited = {c.path for c in v.same_in if (c.repo, c.branch) == (parsers.DS_REPO, parsers.DS_BRANCH)}
        if v.covers("9.0"):
            assert cited == {file_of[where] for where in v.ships_in}, v.key
        else:
            assert not v.same_in, v.key


def test_efficientdet_on_90_depends_on_the_library_as_before() -> None:
    # A DeepStream 9.0 config naming NvDsInferParseCustomEfficientDetTAO still means float32 classes
    # by position (SDK library, 9.0 L715-L784) or int32 classes by name (tao_apps copy, 9.0 L466-L530).
    effdet = "NvDsInferParseCustomEfficientDetTAO"
    on_90 = lambda lib: [v.key for v in parsers.variants_for_config(effdet, lib) if v.covers("9.0")]  # noqa: E731
    assert on_90(parsers.SDK_CUSTOM_LIB) == ["sdk-efficientdet"]
    assert on_90(parsers.TAO_CUSTOM_LIB) == ["tao-efficientdet"]
    assert misreads("sdk-efficientdet", OLD_FLOAT_CLASS_LAYOUT) == []
    assert misreads("tao-efficientdet", OLD_FLOAT_CLASS_LAYOUT) != []


# ----- checks against the public sources themselves, when a clone is on this machine -----------
# The sources are not project data: these tests read bare git clones named <owner>+<name>/repo under
# $TRTDEPLOY_SOURCE_MIRRORS (default /work/.mirror) and skip when one is absent.


def _mirror_file(repo: str, branch: str, path: str) -> list[str]:
    root = Path(os.environ.get("TRTDEPLOY_SOURCE_MIRRORS", "/work/.mirror"))
    git_dir = root / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir() or shutil.which("git") is None:
        pytest.skip(f"no clone of {repo} at {git_dir} (set TRTDEPLOY_SOURCE_MIRRORS)")
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{branch}:{path}"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.skip(f"{repo}@{branch}:{path} not in the clone: {out.stderr.strip()}")
    return out.stdout.split("\n")


def _code(text: str) -> str:
    """C source without comments and whitespace."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"\s+", "", text)


def _function(lines: list[str], name: str) -> str:
    """The definition of ``name`` (signature to closing brace), found by brace matching."""
    text = "\n".join(lines)
    code = re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", lambda m: " " * len(m.group(0)), text, flags=re.S))
    for m in re.finditer(re.escape(name) + r"\s*\(", code):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        body = re.match(r"\s*\{", code[i:])
        if body is None:
            continue  # a declaration
        depth, j = 0, i + body.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            if depth == 0:
                return code[m.start() : j + 1]
            j += 1
    raise AssertionError(f"{name} not defined")


def _without_90_change(code: str) -> str:
    # The one 9.0 change (parsers.py docstring): value-initialised objects, explicit rotation_angle = 0.
    code = re.sub(r"(NvDsInferObjectDetectionInfo(?:res|object))\{\};", r"\1;", code)
    return re.sub(r"(?:res|object)\.rotation_angle=0\.0f;", "", code)


def _older_copy(v, path: str) -> tuple[str, str, str]:
    """The (repo, branch, path) of the pre-9.0 copy that a 9.0 file's function was compared with."""
    return {
        parsers.DS_PARSER_FILE: (parsers.SDK_REPO, "6.3", parsers.SDK_PARSER_FILE),
        parsers.DS_NVINFER_FILE: (parsers.SDK_REPO, "6.3", parsers.SDK_NVINFER_FILE),
        parsers.DS_TAO_PARSER_FILE: (parsers.TAO_REPO, "master", parsers.TAO_PARSER_FILE),
    }[path]


@pytest.mark.parametrize("key", [k for k, v in VARIANTS.items() if v.same_in])
def test_90_citations_are_the_whole_function_and_its_body_is_the_older_one(key: str) -> None:
    v = VARIANTS[key]
    for c in v.same_in:
        lines = _mirror_file(c.repo, c.branch, c.path)
        cited = "\n".join(lines[c.first - 1 : c.last])
        # The range is the definition: it starts with the signature and ends at the closing brace.
        assert v.func in "\n".join(lines[c.first - 1 : c.first + 1]), (key, str(c))
        definition = _code(_function(lines[c.first - 1 :], v.func))
        assert _code(cited) in ('extern"C"bool' + definition, "bool" + definition), (key, str(c))
        older = _function(_mirror_file(*_older_copy(v, c.path)), v.func)
        assert _without_90_change(definition) == _code(older), (key, str(c))


def test_the_body_comparison_can_fail() -> None:
    # tao3.0_ds6.2ga's EfficientDetTAO reads float classes by position: not the 9.0 tao_apps body.
    (c,) = VARIANTS["tao-efficientdet"].same_in
    lines = _mirror_file(c.repo, c.branch, c.path)
    old = _mirror_file(parsers.TAO_REPO, "release/tao3.0_ds6.2ga", parsers.TAO_PARSER_FILE)
    func = "NvDsInferParseCustomEfficientDetTAO"
    assert _without_90_change(_code(_function(lines, func))) != _code(_function(old, func))


def test_90_facts_quote_their_lines() -> None:
    # Code in backquotes in a 9.0 fact is on the cited lines; the header has the new field.
    header = _mirror_file(parsers.DS_REPO, parsers.DS_BRANCH, parsers.DS_HEADER_FILE)
    f = parsers.ROTATION_ANGLE_FIELD
    assert "floatrotation_angle;" in _code("\n".join(header[f.first - 1 : f.last]))
    checked = 0
    for v in VARIANTS.values():
        for fact in v.facts:
            if fact.cite.repo != parsers.DS_REPO:
                continue
            lines = _mirror_file(fact.cite.repo, fact.cite.branch, fact.cite.path)
            cited = _code("\n".join(lines[fact.cite.first - 1 : fact.cite.last]))
            for quoted in re.findall(r"`([^`]+)`", fact.text):
                assert _code(quoted) in cited, (v.key, quoted, str(fact.cite))
                checked += 1
    assert checked >= 6


def test_a_fact_table_line_is_a_rule_and_its_source_lines() -> None:
    facts = parsers._facts("sdk", """
        L613-L618 returns false
        ds-tao L512 sets $ROT
    """)
    assert [(f.text, str(f.cite)) for f in facts] == [
        ("returns false", f"{parsers.SDK_REPO}@6.3:{parsers.SDK_PARSER_FILE}#L613-L618"),
        (f"sets {parsers._ROT}", f"{parsers.DS_REPO}@DeepStream-9.0:{parsers.DS_TAO_PARSER_FILE}#L512-L512"),
    ]
    with pytest.raises(ValueError, match="not a fact line"):
        parsers._facts("sdk", "613-618 no L prefix")
