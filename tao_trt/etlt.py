"""The clear-text header of a TAO ``.etlt`` file.

Layout: 4-byte little-endian length N, N bytes of the input tensor name, then the encrypted
model. N > 0 means a UFF model (TensorRT >= 10 cannot build it); N = 0 means ONNX inside (TAO's
exporter empties the name for ONNX "so that the etlt aligns with onnx etlt format":
NVIDIA/tao_tensorflow1_backend main, nvidia_tao_tf1/cv/common/export/keras_exporter.py l.332-334).
Decrypting needs NVIDIA's optional ``nvidia-eff-tao-encryption`` (``tao_trt.decrypt``).

TAO writes the length with ``struct.pack("<i", len(name))`` (NVIDIA/tao_tensorflow1_backend main,
nvidia_tao_tf1/cv/detectnet_v2/inferencer/tests/test_trt_inferencer.py l.131; read back with
``"<i"`` in internal/export/calibrator_app.py l.68); a negative length reads here as a huge
unsigned one, i.e. "not an .etlt".
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
        if not head:
            raise InputError(f"{path} is empty (0 bytes), not an .etlt model")
        if len(head) < 4:
            raise InputError(f"{path} is too short to be an .etlt model ({len(head)} bytes)")
        (length,) = struct.unpack("<I", head)
        if length > _MAX_NAME:
            # An ONNX file starts 0x08 (ir_version, field 1): a common mix-up worth naming.
            hint = "; it looks like an ONNX file: pass it with --onnx" if head[0] == 0x08 else ""
            raise InputError(f"{path} is not an .etlt model (header name length {length}){hint}")
        raw = fh.read(length)
    if len(raw) != length:
        raise InputError(f"{path} is truncated: the header names {length} bytes of input name")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not an .etlt model (input name is not text)") from exc
    return EtltHeader(name, 4 + length)
