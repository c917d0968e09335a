"""Read TAO experiment spec files: protobuf text (via the shared schema-less reader
``trtdeploy.prototext``) and YAML (EfficientDet TF2 and other newer models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtdeploy.errors import InputError
from trtdeploy.files import parse_yaml_text, read_text
from trtdeploy.prototext import Message, parse_text

SpecMessage = Message


def message_at(spec: Message | None, *path: str) -> Message | None:
    """Follow nested blocks; None when any is absent."""
    node = spec
    for name in path:
        node = node.msg(name) if node is not None else None
    return node


def parse_proto_text(text: str, source: str = "spec") -> Message:
    return parse_text(text, source)


def parse_yaml(text: str, source: str = "spec") -> dict[str, Any]:
    data = parse_yaml_text(text, source)
    if not isinstance(data, dict):
        raise InputError(f"{source}: a YAML spec must be a mapping at the top level")
    return data


def load_spec(path: Path) -> Message | dict[str, Any]:
    """Read a spec file: ``.yaml``/``.yml`` as YAML, anything else as protobuf text."""
    path = Path(path)
    text = read_text(path, "TAO spec")
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_yaml(text, str(path))
    return parse_proto_text(text, str(path))
