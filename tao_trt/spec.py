"""Read TAO experiment spec files: protobuf text (no schema at hand) and YAML.

TAO 4/5 TF1 models (SSD, YOLO, FasterRCNN, UNet, ...) use protobuf text: ``#`` comments,
single or double quotes, bare enums, ``key: {`` or ``key {`` blocks, repeated keys and
``[a, b]`` lists. We have no .proto schema, so we lex with protobuf's own text tokenizer
(``google.protobuf.text_format.Tokenizer``) and build a generic tree; the per-architecture
code in ``tao_trt.facts`` knows which fields matter. Newer models (EfficientDet TF2) use YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtdeploy.errors import InputError

Scalar = str | int | float | bool


@dataclass
class SpecMessage:
    """One ``{ ... }`` block: every field keeps all its values (fields may repeat)."""

    fields: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        self.fields.setdefault(name, []).append(value)

    def get(self, name: str, default: Any = None) -> Any:
        """The last value of ``name`` (protobuf's rule for a repeated singular field)."""
        values = self.fields.get(name)
        return values[-1] if values else default

    def get_all(self, name: str) -> list[Any]:
        return list(self.fields.get(name, []))

    def message(self, *path: str) -> SpecMessage | None:
        """Follow nested blocks; None when any is absent."""
        node: SpecMessage | None = self
        for name in path:
            node = node.get(name) if node is not None else None
            if not isinstance(node, SpecMessage):
                return None
        return node

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            return value.to_dict() if isinstance(value, SpecMessage) else value

        return {k: [plain(v) for v in vs] if len(vs) > 1 else plain(vs[0]) for k, vs in self.fields.items()}


def parse_proto_text(text: str, source: str = "spec") -> SpecMessage:
    """Parse protobuf text into a SpecMessage; errors name ``source:line:column``."""
    from google.protobuf import text_format

    tokenizer = text_format.Tokenizer(text.splitlines())
    reader = _ProtoTextReader(tokenizer, source)
    return reader.read_message(top_level=True)


class _ProtoTextReader:
    def __init__(self, tokenizer: Any, source: str) -> None:
        self.tok = tokenizer
        self.source = source

    def error(self, what: str) -> InputError:
        # The tokenizer keeps 0-based positions of the current token; editors count from 1.
        line = getattr(self.tok, "_line", -1) + 1
        column = getattr(self.tok, "_column", -1) + 1
        found = "end of file" if self.tok.AtEnd() else repr(self.tok.token)
        return InputError(f"{self.source}:{line}:{column}: {what}, found {found}")

    def read_message(self, top_level: bool = False) -> SpecMessage:
        message = SpecMessage()
        closers = ("}", ">")
        while True:
            if self.tok.AtEnd():
                if top_level:
                    return message
                raise self.error("expected '}' to close a block")
            if not top_level and self.tok.token in closers:
                self.tok.NextToken()
                return message
            name = self.tok.token
            if not (name[:1].isalpha() or name[:1] == "_"):
                raise self.error("expected a field name")
            self.tok.NextToken()
            if self.tok.TryConsume(":"):
                value = self.read_value()
            elif self.tok.token in ("{", "<"):
                value = self.read_value()
            else:
                raise self.error(f"expected ':' or '{{' after field {name!r}")
            message.add(name, value)
            # Fields may be separated by ',' or ';' in text format.
            if not self.tok.TryConsume(","):
                self.tok.TryConsume(";")

    def read_value(self) -> Any:
        if self.tok.TryConsume("{") or self.tok.TryConsume("<"):
            return self.read_message()
        if self.tok.TryConsume("["):
            items: list[Any] = []
            while not self.tok.TryConsume("]"):
                items.append(self.read_value())
                if not self.tok.TryConsume(","):
                    if self.tok.TryConsume("]"):
                        break
                    raise self.error("expected ',' or ']' in a list")
            return items
        return self.read_scalar()

    def read_scalar(self) -> Scalar:
        if self.tok.AtEnd():
            raise self.error("expected a value")
        token = self.tok.token
        if token[:1] in ("'", '"'):
            return self.tok.ConsumeString()  # joins adjacent literals, handles escapes
        negative = self.tok.TryConsume("-")
        token = self.tok.token
        if self.tok.AtEnd() or token in ("{", "}", "[", "]", ":", ",", "<", ">"):
            raise self.error("expected a value")
        self.tok.NextToken()
        value = _convert(token)
        if negative:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(f"'-' before non-number {token!r}")
            value = -value
        return value


def _convert(token: str) -> Scalar:
    if token in ("true", "True", "t"):
        return True
    if token in ("false", "False", "f"):
        return False
    try:
        return int(token, 16) if token.lower().startswith("0x") else int(token)
    except ValueError:
        pass
    try:
        return float(token[:-1] if token[-1:] in ("f", "F") and token[:-1] else token)
    except ValueError:
        return token  # an enum name


def parse_yaml(text: str, source: str = "spec") -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{source}{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{source}: a YAML spec must be a mapping at the top level")
    return data


def load_spec(path: Path) -> SpecMessage | dict[str, Any]:
    """Read a spec file: ``.yaml``/``.yml`` as YAML, anything else as protobuf text."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"TAO spec {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"TAO spec {path} is not UTF-8 text: {exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_yaml(text, str(path))
    return parse_proto_text(text, str(path))
