"""The nvinfer configuration as data, its two file forms (INI and DeepStream >= 6.1 YAML),
label files, and reading an existing config back for check-ds-config."""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from trtdeploy.errors import InputError, UsageError

# Enumerations of gst-nvinfer (DeepStream plugin guide, Gst-nvinfer configuration table).
# network-mode is NvDsInferNetworkMode: FP32, INT8, FP16 in every 5.0-6.3 release
# (hiennguyen9874/deepstream-sources@6.3:sources/includes/nvdsinfer_context.h#L115-L119, the same
# on branches 5.0 ... 6.2); NVIDIA/DeepStream@DeepStream-9.0:includes/nvdsinfer_context.h#L127-L133
# adds NvDsInferNetworkMode_BEST = 3, which both config parsers accept
# (src/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp#L705-L722,
# gstnvinfer_yaml_parser.cpp#L549-L563) while 6.3's reject it: "Error. Invalid value for
# 'network-mode'" and the config fails to load (6.3 gstnvinfer_property_parser.cpp#L647-L663).
# BEST builds with kINT8 and kFP16 when int8-calib-file names a readable cache, else it falls
# back to FP16 (9.0 src/utils/nvdsinfer/nvdsinfer_model_builder.cpp#L1026-L1058, and L419-L454
# for custom engine libraries; calibrator from the file: nvdsinfer_context_impl.cpp#L2209-L2215),
# and the engine it saves is named ``..._best.engine`` (nvdsinfer_func_utils.cpp#L207-L222,
# nvdsinfer_model_builder.cpp#L613-L616). No 7.x/8.0 source is public: 9.0 is the first release
# read that has it.
NETWORK_MODES = {"fp32": 0, "int8": 1, "fp16": 2, "best": 3}
NETWORK_MODE_SINCE = {"fp32": "5.0", "int8": "5.0", "fp16": "5.0", "best": "9.0"}
CALIBRATED_MODES = ("int8", "best")  # the modes that read int8-calib-file
NETWORK_TYPES = {
    "detector": 0,
    "classifier": 1,
    "segmentation": 2,
    "instance_segmentation": 3,
    "other": 100,
}
COLOR_FORMATS = {"RGB": 0, "BGR": 1, "GRAY": 2}
INPUT_ORDERS = {"NCHW": 0, "NHWC": 1}

PROPERTY = "property"
CLASS_ATTRS_ALL = "class-attrs-all"
CLASS_ATTRS_PREFIX = "class-attrs-"

# Keys gst-nvinfer reads, per release, taken from the parser source itself (the keys compared
# with g_strcmp0 in gst_nvinfer_parse_props / gst_nvinfer_parse_other_attribute for [property],
# and in gst_nvinfer_parse_class_attrs for [class-attrs-*]); any other key only makes nvinfer
# print "Unknown or legacy key specified" / "Unknown key" and is ignored.
# Sources: hiennguyen9874/deepstream-sources branches 5.0 ... 6.3,
# sources/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp (6.3: lines 81-277 class attrs,
# 291-496 and 498-1137 property; "Unknown key" at 276, "Unknown or legacy key" at 481), and
# NVIDIA/DeepStream branch DeepStream-9.0, src/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp
# (lines 312 and 529). No source of 7.0-8.0 is public; the API reference pages of their
# gstnvinfer_property_parser.h list the same key names, so 7.x/8.0 are checked against the union.
_KEYS_5_0 = frozenset(
    "batch-size classifier-async-mode classifier-threshold cluster-mode custom-lib-path "
    "custom-network-config enable-dbscan enable-dla engine-create-func-name filter-out-class-ids "
    "force-implicit-batch-dim gie-unique-id gpu-id infer-dims input-dims input-object-max-height "
    "input-object-max-width input-object-min-height input-object-min-width int8-calib-file interval "
    "is-classifier labelfile-path layer-device-precision maintain-aspect-ratio mean-file "
    "model-color-format model-engine-file model-file net-scale-factor network-mode network-type "
    "num-detected-classes offsets onnx-file operate-on-class-ids operate-on-gie-id output-blob-names "
    "output-instance-mask output-io-formats output-tensor-meta parse-bbox-func-name "
    "parse-bbox-instance-mask-func-name parse-classifier-func-name process-mode proto-file "
    "scaling-compute-hw scaling-filter secondary-reinfer-interval segmentation-threshold "
    "tlt-encoded-model tlt-model-key uff-file uff-input-blob-name uff-input-dims uff-input-order "
    "use-dla-core workspace-size".split()
)
# Keys each release added to [property] (none was removed from 5.0 to 9.0).
_ADDED = {
    "6.0": "classifier-type input-tensor-from-meta network-input-order segmentation-output-order "
    "symmetric-padding tensor-meta-pool-size",
    "6.1": "",
    "6.1.1": "",
    "6.2": "crop-objects-to-roi-boundary",
    "6.3": "auto-inc-mem max-gpu-mem-per",
    "9.0": "disable-output-host-copy dump-input-tensor dump-output-tensor dynamic-properties "
    "ip-tensor-file op-tensor-files overwrite-input-tensor overwrite-output-tensor "
    "parse-segmentation-func-name raw-output-file-write stabilize-buffer-count strongly-typed "
    "warmup-engine",
}
DEEPSTREAM_RELEASES = ("5.0", *_ADDED)  # releases whose parser source was read
# gst-nvinfer reads a .yml/.yaml config (gst_nvinfer_parse_config_file_yaml) from DeepStream 6.1 on:
# hiennguyen9874/deepstream-sources@6.1:sources/gst-plugins/gst-nvinfer/gstnvinfer.cpp#L458-L465
# (the suffix test; gstnvinfer_yaml_parser.cpp first appears on that branch, and its Makefile
# L18 and L37 build it and link yaml-cpp), while 5.0, 6.0 and 6.0.1 have neither the file nor the
# test; NVIDIA/DeepStream@DeepStream-9.0 gstnvinfer.cpp#L513-L522 is the same.
YAML_SINCE = "6.1"


def _property_keys() -> dict[str, frozenset[str]]:
    table, keys = {"5.0": _KEYS_5_0}, set(_KEYS_5_0)
    for release, added in _ADDED.items():
        keys |= set(added.split())
        table[release] = frozenset(keys)
    return table


PROPERTY_KEYS: dict[str, frozenset[str]] = _property_keys()
ALL_PROPERTY_KEYS = PROPERTY_KEYS["9.0"]
# The same in every release read (5.0-9.0).
CLASS_ATTR_KEYS = frozenset(
    "bg-color border-color dbscan-min-score detected-max-h detected-max-w detected-min-h "
    "detected-min-w eps group-threshold minBoxes nms-iou-threshold post-cluster-threshold "
    "pre-cluster-threshold roi-bottom-offset roi-top-offset threshold topk".split()
)
# Legacy INI keys the YAML parser (gstnvinfer_yaml_parser.cpp, 6.1-9.0) does not read.
YAML_UNREAD_PROPERTY_KEYS = frozenset({"enable-dbscan", "input-dims", "is-classifier", "uff-input-dims"})
YAML_UNREAD_CLASS_ATTR_KEYS = frozenset({"threshold"})
# [property] keys that hold a file path, resolved by get_absolute_file_path.
PATH_KEYS = (
    "labelfile-path",
    "model-engine-file",
    "int8-calib-file",
    "mean-file",
    "custom-lib-path",
    "model-file",
    "proto-file",
    "uff-file",
    "tlt-encoded-model",
    "onnx-file",
)


def first_release_with(key: str) -> str | None:
    """The first DeepStream release (of those read) whose nvinfer reads ``key``."""
    return next((r for r in DEEPSTREAM_RELEASES if key in PROPERTY_KEYS[r]), None)


def _release_tuple(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def release_reads_mode(release: str, mode_name: str) -> bool:
    """Does DeepStream ``release`` (e.g. "6.3", "6.0.1") accept network-mode ``mode_name``?"""
    return _release_tuple(release) >= _release_tuple(NETWORK_MODE_SINCE[mode_name])


def release_reads_yaml(release: str) -> bool:
    """Does DeepStream ``release`` (e.g. "6.3", "6.0.1") read YAML nvinfer configs?"""
    return _release_tuple(release) >= _release_tuple(YAML_SINCE)


def mode_help() -> str:
    """The network-mode values as help text: 'fp32 (0), int8 (1), fp16 (2), best (3, DeepStream >= 9.0)'."""
    return ", ".join(
        f"{name} ({value}{'' if NETWORK_MODE_SINCE[name] == DEEPSTREAM_RELEASES[0] else f', DeepStream >= {NETWORK_MODE_SINCE[name]}'})"
        for name, value in NETWORK_MODES.items()
    )



@dataclass
class NvInferConfig:
    """Ordered ``[property]`` and ``[class-attrs-all]`` keys (string values) plus label lines.

    ``labels`` holds the label file's lines: one class per line for detectors and
    segmentation, one ``;``-separated line per output layer for classifiers.
    """

    properties: dict[str, str] = field(default_factory=dict)
    class_attrs: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    other_sections: dict[str, dict[str, str]] = field(default_factory=dict)
    parser_variant: str | None = None  # the parsers.VARIANTS key the parser keys were chosen as

    def set(self, key: str, value: object) -> None:
        self.properties[key] = format_value(value)


def format_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value) if value != int(value) else f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ";".join(
            format_value(v) if not isinstance(v, float) or v != int(v) else str(int(v))
            for v in value
        )
    return str(value)


def render_ini(config: NvInferConfig, header: str = "") -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines.append(f"[{PROPERTY}]")
    lines += [f"{k}={v}" for k, v in config.properties.items()]
    if config.class_attrs:
        lines += ["", f"[{CLASS_ATTRS_ALL}]"]
        lines += [f"{k}={v}" for k, v in config.class_attrs.items()]
    return "\n".join(lines) + "\n"


def render_yaml(config: NvInferConfig, header: str = "") -> str:
    """The YAML form nvinfer reads since DeepStream 6.1 (YAML_SINCE): the INI groups become mappings."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines.append(f"{PROPERTY}:")
    lines += [f"  {k}: {_yaml_scalar(v)}" for k, v in config.properties.items()]
    if config.class_attrs:
        lines += ["", f"{CLASS_ATTRS_ALL}:"]
        lines += [f"  {k}: {_yaml_scalar(v)}" for k, v in config.class_attrs.items()]
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: str) -> str:
    """Plain when YAML reads it back as the same text or number, else double-quoted."""
    import yaml

    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        loaded = None
    if value and (
        loaded == value
        or (
            isinstance(loaded, (int, float))
            and not isinstance(loaded, bool)
            and str(loaded) == value
        )
    ):
        return value
    if isinstance(loaded, (int, float)) and not isinstance(loaded, bool):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_labels(lines: list[str]) -> str:
    """LF only, no blank lines (nvinfer skips them, which shifts every later class id)."""
    return "".join(f"{line}\n" for line in lines)


@dataclass
class LoadedConfig:
    """A config file read back: sections of raw string values, and where it lives."""

    path: Path
    sections: dict[str, dict[str, str]]
    crlf: bool = False
    duplicates: list[str] = field(default_factory=list)  # one line per key given more than once
    yaml: bool = False

    @property
    def properties(self) -> dict[str, str]:
        return self.sections.get(PROPERTY, {})

    @property
    def class_attrs(self) -> dict[str, str]:
        return self.sections.get(CLASS_ATTRS_ALL, {})

    def resolve(self, value: str) -> Path:
        return nvinfer_path(self.path, value)


def nvinfer_path(config_path: Path, value: str) -> Path:
    """The path nvinfer opens for a file named in its config.

    gst-nvinfer's get_absolute_file_path (hiennguyen9874/deepstream-sources 6.3,
    sources/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp lines 30-77; the same in
    NVIDIA/DeepStream DeepStream-9.0 src/gst-plugins/gst-nvinfer/gstnvinfer_property_parser.cpp
    lines 43-93, and in gstnvinfer_yaml_parser.cpp): an absolute path is realpath()ed; a
    relative one is appended to the folder of the config file's realpath() (not the working
    directory) and realpath()ed; a file that does not exist keeps the unresolved text.
    """
    if value.startswith("/"):
        return Path(os.path.realpath(value)) if os.path.exists(value) else Path(value)
    joined = os.path.join(os.path.dirname(os.path.realpath(config_path)), value)
    return Path(os.path.realpath(joined)) if os.path.exists(joined) else Path(joined)


def same_file_path(a: Path, b: Path) -> bool:
    """Whether two nvinfer paths name the same file (``..`` and symlinks resolved)."""
    return os.path.realpath(a) == os.path.realpath(b)


_TRITON = re.compile(r"^\s*(infer_config|input_control|output_control)\s*\{", re.MULTILINE)


def read_config(path: Path) -> LoadedConfig:
    """Read an nvinfer config in INI (GKeyFile) or YAML form."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config {path} not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"config {path} is not UTF-8 text: {exc}") from exc
    if _TRITON.search(text):
        # nvinferserver's protobuf-text config (infer_config { backend { triton ... } }), see
        # hiennguyen9874/deepstream-sources 6.3 sources/gst-plugins/gst-nvinferserver/
        # nvdsinferserver_plugin.proto (message PluginControl: infer_config, input_control,
        # output_control): a different plugin with a different schema.
        raise UsageError(
            f"config {path} is a gst-nvinferserver (Triton) config, which check-ds-config does not check; "
            "it checks gst-nvinfer configs ([property] key files or YAML)"
        )
    crlf = b"\r\n" in raw
    is_yaml = path.suffix.lower() in (".yml", ".yaml")
    if is_yaml:
        sections, duplicates = _read_yaml(text, path)
    else:
        sections = _read_ini(text, path)
        duplicates = _ini_duplicates(text)
    if PROPERTY not in sections:
        raise InputError(f"config {path} has no [property] group; is it an nvinfer config?")
    if any(
        k in sections[PROPERTY]
        for k in ("network-input-shape", "processing-width", "target-unique-ids")
    ):
        raise InputError(f"config {path} is an nvdspreprocess config, not an nvinfer one")
    return LoadedConfig(path, sections, crlf, duplicates, is_yaml)


def _ini_duplicates(text: str) -> list[str]:
    """Keys given twice in a group. GKeyFile keeps both lines but looks keys up in a hash table
    that the later line replaced, so the LAST value wins (GLib gkeyfile.c,
    g_key_file_add_key_value_pair: g_hash_table_replace; e.g. arkime/arkime
    thirdparty/glib-2.56.2/glib/gkeyfile.c). A repeated [group] continues the same group."""
    seen: dict[tuple[str, str], list[int]] = {}
    group = ""
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            group = stripped[1 : stripped.find("]")] if "]" in stripped else stripped[1:]
            continue
        if "=" in stripped:
            key = stripped.split("=", 1)[0].rstrip()
            seen.setdefault((group, key), []).append(number)
    return [
        f"[{group}] {key} is set {len(lines)} times (lines {', '.join(map(str, lines))}); nvinfer uses only "
        f"the last one (line {lines[-1]}): keep one"
        for (group, key), lines in seen.items()
        if len(lines) > 1
    ]


def _read_ini(text: str, path: Path) -> dict[str, dict[str, str]]:
    # GKeyFile: '#' comments only at line start, '=' separates, whitespace around values stripped.
    parser = configparser.ConfigParser(
        delimiters=("=",),
        comment_prefixes=("#",),
        inline_comment_prefixes=None,
        strict=False,
        interpolation=None,
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text.replace("\r\n", "\n"), source=str(path))
    except configparser.Error as exc:
        raise InputError(
            f"config {path} is not a valid key file: {str(exc).splitlines()[0]}"
        ) from exc
    return {name: {k: v.strip() for k, v in parser[name].items()} for name in parser.sections()}


def _read_yaml(text: str, path: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    import yaml

    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise InputError(f"config {path}{where} is not valid YAML") from exc
    except (ValueError, OverflowError, RecursionError) as exc:  # PyYAML's int('') on `0x_`
        raise InputError(f"config {path} is not valid YAML: a value PyYAML cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"config {path} is not a YAML mapping")
    sections: dict[str, dict[str, str]] = {}
    for name, body in data.items():
        if isinstance(body, dict):
            sections[str(name)] = {str(k): _yaml_text(v) for k, v in body.items()}
    return sections, _yaml_duplicates(root)


def _yaml_duplicates(root: object) -> list[str]:
    """Keys given twice in a group (PyYAML keeps the last; which one nvinfer's yaml-cpp loop
    applies is not something to rely on)."""
    import yaml

    out: list[str] = []
    if not isinstance(root, yaml.MappingNode):
        return out
    for group_node, body in root.value:
        if not isinstance(body, yaml.MappingNode):
            continue
        lines: dict[str, list[int]] = {}
        for key_node, _ in body.value:
            lines.setdefault(str(key_node.value), []).append(key_node.start_mark.line + 1)
        out += [
            f"{group_node.value}: {key} is set {len(found)} times (lines {', '.join(map(str, found))}): keep one"
            for key, found in lines.items()
            if len(found) > 1
        ]
    return out


def _yaml_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def read_label_lines(path: Path) -> tuple[list[str], list[str]]:
    """Label lines as nvinfer reads them, and format problems.

    nvinfer's InferPostprocessor::parseLabelsFile (hiennguyen9874/deepstream-sources 6.3,
    sources/libs/nvdsinfer/nvdsinfer_context_impl.cpp lines 472-503; NVIDIA/DeepStream branch
    DeepStream-9.0, src/utils/nvdsinfer/nvdsinfer_context_impl.cpp lines 546-582, the same code)
    reads lines with std::getline(..., '\\n'), skips only EMPTY lines (``line.empty()``) and keeps
    every other byte: a '\\r', a UTF-8 byte-order mark or trailing spaces become part of the label
    text, and a line holding only '\\r' (a blank line of a CRLF file) is a label.
    """
    raw = path.read_bytes()
    problems = []
    if raw.startswith(b"\xef\xbb\xbf"):
        problems.append(
            f"labels file {path} starts with a UTF-8 byte-order mark; nvinfer keeps it in the first label: "
            "save the file without BOM"
        )
    if b"\r" in raw:
        problems.append(
            f"labels file {path} has CRLF line endings; nvinfer keeps the '\\r' in the label text: save it with LF"
        )
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    blanks = [i + 1 for i, line in enumerate(lines) if line == ""]
    if blanks:
        problems.append(
            f"labels file {path} has blank line(s) {blanks}; nvinfer skips them, which shifts the class ids "
            "after them: remove them"
        )
    spaces = [i + 1 for i, line in enumerate(lines) if line != "" and not line.strip()]
    if spaces:
        problems.append(
            f"labels file {path} has line(s) {spaces} holding only whitespace; nvinfer makes each a label "
            "(only empty lines are skipped): remove them"
        )
    trailing = [
        i + 1 for i, line in enumerate(lines) if line.strip() and line.rstrip("\r") != line.rstrip("\r").rstrip()
    ]
    if trailing:
        problems.append(
            f"labels file {path} has trailing whitespace on line(s) {trailing}; nvinfer keeps it in the label "
            "text: remove it"
        )
    # the labels nvinfer ends up with, '\r' included
    return [line for line in lines if line != ""], problems
