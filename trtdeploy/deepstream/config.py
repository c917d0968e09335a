"""The nvinfer configuration as data, its two file forms (INI and DeepStream >= 6.2 YAML),
label files, and reading an existing config back for check-ds-config."""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

from trtdeploy.errors import InputError

# Enumerations of gst-nvinfer (DeepStream plugin guide, Gst-nvinfer configuration table).
NETWORK_MODES = {"fp32": 0, "int8": 1, "fp16": 2}
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
    """The YAML form nvinfer reads since DeepStream 6.2: the INI groups become mappings."""
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

    @property
    def properties(self) -> dict[str, str]:
        return self.sections.get(PROPERTY, {})

    @property
    def class_attrs(self) -> dict[str, str]:
        return self.sections.get(CLASS_ATTRS_ALL, {})

    def resolve(self, value: str) -> Path:
        """nvinfer resolves relative paths against the config file's folder."""
        path = Path(value)
        return path if path.is_absolute() else self.path.parent / path


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
    crlf = b"\r\n" in raw
    if path.suffix.lower() in (".yml", ".yaml"):
        sections = _read_yaml(text, path)
    else:
        sections = _read_ini(text, path)
    if PROPERTY not in sections:
        raise InputError(f"config {path} has no [property] group; is it an nvinfer config?")
    if any(
        k in sections[PROPERTY]
        for k in ("network-input-shape", "processing-width", "target-unique-ids")
    ):
        raise InputError(f"config {path} is an nvdspreprocess config, not an nvinfer one")
    return LoadedConfig(path, sections, crlf)


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


def _read_yaml(text: str, path: Path) -> dict[str, dict[str, str]]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise InputError(f"config {path}{where} is not valid YAML") from exc
    if not isinstance(data, dict):
        raise InputError(f"config {path} is not a YAML mapping")
    sections: dict[str, dict[str, str]] = {}
    for name, body in data.items():
        if isinstance(body, dict):
            sections[str(name)] = {str(k): _yaml_text(v) for k, v in body.items()}
    return sections


def _yaml_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def read_label_lines(path: Path) -> tuple[list[str], list[str]]:
    """Label lines as nvinfer sees them (CR kept, blank lines skipped) and format problems."""
    raw = path.read_bytes()
    problems = []
    if b"\r" in raw:
        problems.append(
            f"labels file {path} has CRLF line endings; nvinfer keeps the '\\r' in the label text: save it with LF"
        )
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    blanks = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if blanks:
        problems.append(
            f"labels file {path} has blank line(s) {blanks}; nvinfer skips them, which shifts the class ids "
            "after them: remove them"
        )
    return [line for line in lines if line.strip()], problems
