"""Read what we need from a saved_model.pb without TensorFlow: its signatures and, in the
graph's function library, the constants some ops read.

A saved model is a ``SavedModel`` protobuf (tensorflow/core/protobuf/saved_model.proto):
``meta_graphs`` (2) -> ``MetaGraphDef`` with ``meta_info_def`` (1, ``tags`` 4), ``graph_def``
(2) and ``signature_def`` (5, a map); ``SignatureDef`` has ``inputs`` (1) and ``outputs`` (2),
maps of ``TensorInfo`` (``name`` 1, ``dtype`` 2, ``tensor_shape`` 3). ``GraphDef.library`` (2)
holds ``FunctionDef``s (``signature`` 1 -> OpDef ``name`` 1; ``node_def`` 3 -> NodeDef ``name`` 1,
``op`` 2, ``input`` 3, ``attr`` 5); a Const's value is the ``AttrValue.tensor`` (8) TensorProto
(``dtype`` 1, ``tensor_shape`` 2, ``tensor_content`` 4, ``float_val`` 5, ``int_val`` 7).
Field numbers from tensorflow/core/framework/{graph,function,node_def,attr_value,tensor,
tensor_shape,types}.proto and tensorflow/core/protobuf/{saved_model,meta_graph}.proto.

Reading these few fields by hand keeps recognising a model fast and TensorFlow-free (a
create-onnx that refuses a model must not pay for importing TensorFlow); the big ``graph_def``
is skipped by length unless its functions are asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trtdeploy.errors import InputError

# tensorflow/core/framework/types.proto DataType values
DT_FLOAT, DT_INT32, DT_UINT8, DT_INT64 = 1, 3, 4, 9
DTYPE_NAMES = {DT_FLOAT: "float32", DT_INT32: "int32", DT_UINT8: "uint8", DT_INT64: "int64"}
_NUMPY = {DT_FLOAT: np.float32, DT_INT32: np.int32, DT_UINT8: np.uint8, DT_INT64: np.int64}


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes | memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of one message: varints as int, length-delimited as a view."""
    view = memoryview(buf)
    pos, end = 0, len(view)
    while pos < end:
        key, pos = _varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(view, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(view, pos)
            yield number, view[pos:pos + size]
            pos += size
        elif wire == 1:
            yield number, int.from_bytes(view[pos:pos + 8], "little")
            pos += 8
        elif wire == 5:
            yield number, int.from_bytes(view[pos:pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"protobuf wire type {wire} not supported")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: int | memoryview) -> str:
    return bytes(value).decode("utf-8", "replace") if isinstance(value, memoryview) else str(value)


def _shape(buf: memoryview) -> list[int] | None:
    """TensorShapeProto -> dims (-1 unknown), None for an unknown rank."""
    dims: list[int] = []
    for number, value in fields(buf):
        if number == 3 and value:
            return None
        if number == 2 and isinstance(value, memoryview):
            size = next((_signed(v) for n, v in fields(value) if n == 1 and isinstance(v, int)), 0)
            dims.append(size)
    return dims


@dataclass(frozen=True)
class TensorInfo:
    name: str  # graph tensor, e.g. "serving_default_images:0"
    dtype: str  # "float32", "uint8", ... ("dtype<N>" for others)
    shape: list[int] | None  # -1 = unknown dim; None = unknown rank


@dataclass
class Signature:
    inputs: dict[str, TensorInfo] = field(default_factory=dict)
    outputs: dict[str, TensorInfo] = field(default_factory=dict)


def _tensor_info(buf: memoryview) -> TensorInfo:
    name, dtype, shape = "", 0, None
    for number, value in fields(buf):
        if number == 1:
            name = _text(value)
        elif number == 2 and isinstance(value, int):
            dtype = value
        elif number == 3 and isinstance(value, memoryview):
            shape = _shape(value)
    return TensorInfo(name, DTYPE_NAMES.get(dtype, f"dtype{dtype}"), shape)


def _map_entry(buf: memoryview) -> tuple[str, memoryview]:
    key, val = "", memoryview(b"")
    for number, value in fields(buf):
        if number == 1:
            key = _text(value)
        elif number == 2 and isinstance(value, memoryview):
            val = value
    return key, val


@dataclass
class SavedModelProto:
    """The 'serve' meta graph of a saved_model.pb: its signatures, and its graph bytes."""

    path: Path
    signatures: dict[str, Signature]
    graph_def: memoryview

    def functions(self, containing: bytes = b"") -> Iterator[tuple[str, list[NodeDef]]]:
        """(name, nodes) of each library function whose bytes contain ``containing``."""
        for number, value in fields(self.graph_def):
            if number != 2 or not isinstance(value, memoryview):
                continue
            for fnum, function in fields(value):
                if fnum != 1 or not isinstance(function, memoryview) or containing not in bytes(function):
                    continue
                name, nodes = "", []
                for n, part in fields(function):
                    if n == 1 and isinstance(part, memoryview):
                        name = next((_text(v) for k, v in fields(part) if k == 1), "")
                    elif n == 3 and isinstance(part, memoryview):
                        nodes.append(_node_def(part))
                yield name, nodes


@dataclass
class NodeDef:
    name: str
    op: str
    inputs: list[str]
    value: memoryview | None  # a Const's TensorProto

    def array(self) -> np.ndarray | None:
        """A Const's value (float32/int32/int64/uint8), None for other nodes and dtypes."""
        return None if self.value is None else tensor_array(self.value)


def _node_def(buf: memoryview) -> NodeDef:
    name, op, inputs, value = "", "", [], None
    for number, part in fields(buf):
        if number == 1:
            name = _text(part)
        elif number == 2:
            op = _text(part)
        elif number == 3:
            inputs.append(_text(part))
        elif number == 5 and isinstance(part, memoryview):
            key, attr = _map_entry(part)
            if key == "value":
                value = next((v for n, v in fields(attr) if n == 8 and isinstance(v, memoryview)), None)
    return NodeDef(name, op, inputs, value if op == "Const" else None)


def tensor_array(buf: memoryview) -> np.ndarray | None:
    dtype, shape, content = 0, [], None
    floats: list[float] = []
    ints: list[int] = []
    for number, value in fields(buf):
        if number == 1 and isinstance(value, int):
            dtype = value
        elif number == 2 and isinstance(value, memoryview):
            shape = _shape(value) or []
        elif number == 4 and isinstance(value, memoryview):
            content = bytes(value)
        elif number == 5:  # float_val: packed (a view) or one fixed32
            if isinstance(value, memoryview):
                floats.extend(np.frombuffer(bytes(value), "<f4").tolist())
            else:
                floats.append(float(np.frombuffer(value.to_bytes(4, "little"), "<f4")[0]))
        elif number in (7, 10):  # int_val / int64_val: packed or one varint
            if isinstance(value, memoryview):
                pos, view = 0, value
                while pos < len(view):
                    v, pos = _varint(view, pos)
                    ints.append(_signed(v))
            else:
                ints.append(_signed(value))
    np_dtype = _NUMPY.get(dtype)
    if np_dtype is None:
        return None
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        return np.frombuffer(content, np.dtype(np_dtype).newbyteorder("<")).astype(np_dtype).reshape(shape)
    values = floats if dtype == DT_FLOAT else ints
    if not values:
        return np.zeros(shape, np_dtype)
    if len(values) < count:  # TensorFlow stores a repeated last value once
        values = values + [values[-1]] * (count - len(values))
    return np.asarray(values, np_dtype).reshape(shape)


def read_saved_model(saved_model: Path) -> SavedModelProto:
    """The 'serve' meta graph of ``saved_model/saved_model.pb`` (InputError when unreadable)."""
    path = Path(saved_model) / "saved_model.pb"
    try:
        data = memoryview(path.read_bytes())
        for number, meta in fields(data):
            if number != 2 or not isinstance(meta, memoryview):
                continue
            tags: list[str] = []
            signatures: dict[str, Signature] = {}
            graph = memoryview(b"")
            for n, part in fields(meta):
                if n == 1 and isinstance(part, memoryview):
                    tags = [_text(v) for k, v in fields(part) if k == 4]
                elif n == 2 and isinstance(part, memoryview):
                    graph = part
                elif n == 5 and isinstance(part, memoryview):
                    key, sig = _map_entry(part)
                    signature = Signature()
                    for k, entry in fields(sig):
                        if k in (1, 2) and isinstance(entry, memoryview):
                            name, info = _map_entry(entry)
                            (signature.inputs if k == 1 else signature.outputs)[name] = _tensor_info(info)
                    signatures[key] = signature
            if "serve" in tags or not tags:
                return SavedModelProto(path, signatures, graph)
    except (OSError, ValueError, IndexError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    return SavedModelProto(path, {}, memoryview(b""))
