"""Schema-less reader for protobuf text files (TFOD pipeline.config, TAO experiment specs).

We do not have the .proto schemas, so we lex with protobuf's own text tokenizer and build
a tree of :class:`Message` objects. Every field is kept as a list because any field may be
repeated; scalar values are ``int``, ``float``, ``bool`` (only for the literals true/false),
``str`` (quoted strings) or :class:`Enum` (bare identifiers such as ``SIGMOID``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from trtdeploy.errors import InputError
from trtdeploy.files import read_text


class Enum(str):
    """A bare identifier value (an enum constant in the schema we do not have)."""


@dataclass
class Message:
    fields: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, key: str, value: Any) -> None:
        self.fields.setdefault(key, []).append(value)

    def has(self, key: str) -> bool:
        return key in self.fields

    def all(self, key: str) -> list[Any]:
        return list(self.fields.get(key, []))

    def get(self, key: str, default: Any = None) -> Any:
        """The last value of ``key`` (protobuf semantics for a repeated singular field)."""
        values = self.fields.get(key)
        return values[-1] if values else default

    def msg(self, key: str) -> Message | None:
        value = self.get(key)
        return value if isinstance(value, Message) else None

    def path(self, dotted: str, default: Any = None) -> Any:
        """``msg.path("model.ssd.num_classes")``."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Message) or not node.has(part):
                return default
            node = node.get(part)
        return node

    def which(self, *keys: str) -> str | None:
        """The first of ``keys`` present (for oneof-style choices)."""
        return next((k for k in keys if k in self.fields), None)

    def to_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            return v.to_dict() if isinstance(v, Message) else (str(v) if isinstance(v, Enum) else v)

        # one value: the value itself; several or none (an empty list `key: []`): a list
        return {k: plain(vs[0]) if len(vs) == 1 else [plain(v) for v in vs] for k, vs in self.fields.items()}


def parse_text(text: str, source: str = "<text>") -> Message:
    """Parse protobuf text; raises InputError with line:column on malformed input."""
    tokenizer = text_format.Tokenizer(text.splitlines())
    try:
        message = _parse_fields(tokenizer, closing=None)
    except text_format.ParseError as exc:
        raise InputError(f"{source}: malformed protobuf text: {exc}") from exc
    return message


def parse_file(path: Path, what: str = "file") -> Message:
    return parse_text(read_text(path, what), source=str(path))


def _error(tok: text_format.Tokenizer, what: str) -> text_format.ParseError:
    # Tokenizer lines/columns are 0-based; people count from 1.
    return text_format.ParseError(f"{tok._line + 1}:{tok._column + 1}: {what}")


def _parse_fields(tok: text_format.Tokenizer, closing: str | None) -> Message:
    message = Message()
    while True:
        if closing is None and tok.AtEnd():
            return message
        if closing is not None:
            if tok.AtEnd():
                raise _error(tok, f"expected '{closing}' before the end of the file")
            if tok.TryConsume(closing):
                return message
        try:
            name = tok.ConsumeIdentifierOrNumber()
        except text_format.ParseError:
            raise _error(tok, f"expected a field name, found {tok.token!r}") from None
        if tok.TryConsume(":"):
            if tok.token in ("{", "<"):
                _add_message(tok, message, name)
            elif tok.TryConsume("["):
                _parse_list(tok, message, name)
            else:
                message.add(name, _parse_scalar(tok))
        elif tok.token in ("{", "<"):
            _add_message(tok, message, name)
        else:
            raise _error(tok, f"expected ':' or '{{' after field {name!r}, found {tok.token!r}")
        # Separators between fields are optional.
        if not tok.TryConsume(","):
            tok.TryConsume(";")


def _add_message(tok: text_format.Tokenizer, message: Message, name: str) -> None:
    close = "}" if tok.TryConsume("{") else (tok.Consume("<") or ">")
    message.add(name, _parse_fields(tok, closing=close))


def _parse_list(tok: text_format.Tokenizer, message: Message, name: str) -> None:
    if tok.TryConsume("]"):
        message.fields.setdefault(name, [])
        return
    while True:
        if tok.token in ("{", "<"):
            _add_message(tok, message, name)
        else:
            message.add(name, _parse_scalar(tok))
        if tok.TryConsume("]"):
            return
        if not tok.TryConsume(","):
            raise _error(tok, f"expected ',' or ']' in the list {name!r}, found {tok.token!r}")


def _parse_scalar(tok: text_format.Tokenizer) -> Any:
    token = tok.token
    if not token:
        raise _error(tok, "expected a value, found the end of the file")
    if token[0] in "'\"":
        return tok.ConsumeString()  # adjacent strings are concatenated by the tokenizer
    if token in ("true", "True", "t"):
        tok.NextToken()
        return True
    if token in ("false", "False", "f"):
        tok.NextToken()
        return False
    if token[0].isdigit() or token[0] in "-+.":
        text = token
        tok.NextToken()
        try:
            if text.lower().startswith(("0x", "-0x")):
                return int(text, 16)
            if any(c in text for c in ".eE") and not text.lower().startswith(("0x", "-0x")) or text.lower() in (
                "inf",
                "-inf",
                "nan",
            ):
                return float(text.rstrip("fF"))
            return int(text)
        except ValueError:
            try:
                return float(text.rstrip("fF"))
            except ValueError:
                raise text_format.ParseError(f"bad number {text!r}") from None
    if token[0].isalpha() or token[0] == "_":
        tok.NextToken()
        return Enum(token)
    raise _error(tok, f"unexpected {token!r}")
