"""File writes of this package: trtdeploy's one implementation (trtdeploy.files, a leaf module),
so calibration caches, sidecars, Q/DQ ONNX files and tensorfiles get the same mode as every other
output (0666 minus the umask, 0644 usually): a DeepStream service running as another user must be
able to read ``int8-calib-file`` (issue 10)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from trtdeploy.files import atomic_path, sha256_file, write_text_atomic


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary file next to ``path``, renamed over it only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        yield tmp


def save_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def file_digest(path: Path) -> str:
    """sha256 of a file, hex."""
    return sha256_file(path)
