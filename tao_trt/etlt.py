"""The clear-text header of a TAO ``.etlt`` file.

Layout: 4-byte little-endian length N, N bytes of the input tensor name, then the encrypted
model. N > 0 means a UFF model (TensorRT >= 10 cannot build it); N = 0 means ONNX inside.
Decrypting needs NVIDIA's optional ``nvidia-eff-tao-encryption``; we only read the header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from trtdeploy.errors import InputError

_MAX_NAME = 4096  # a longer "name" means this is not an .etlt file


@dataclass(frozen=True)
class EtltHeader:
    input_name: str  # empty for ONNX payloads
    payload_offset: int

    @property
    def is_uff(self) -> bool:
        return bool(self.input_name)


def read_etlt_header(path: Path) -> EtltHeader:
    path = Path(path)
    if not path.is_file():
        raise InputError(f".etlt model {path} not found")
    with open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4:
            raise InputError(f"{path} is too short to be an .etlt model")
        (length,) = struct.unpack("<I", head)
        if length > _MAX_NAME:
            raise InputError(f"{path} is not an .etlt model (header name length {length})")
        raw = fh.read(length)
    if len(raw) != length:
        raise InputError(f"{path} is truncated: the header names {length} bytes of input name")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not an .etlt model (input name is not text)") from exc
    return EtltHeader(name, 4 + length)
