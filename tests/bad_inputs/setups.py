"""Small workspace edits for rows' ``setup`` (each returns a callable taking the Workspace)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.bad_inputs.workspace import Workspace

Setup = Callable[[Workspace], None]


def write(relative: str, content: str | bytes) -> Setup:
    """Write ``content`` to ``{ws}/relative`` (placeholders allowed in ``relative``)."""

    def run(ws: Workspace) -> None:
        path = _abs(ws, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return run


def symlink(relative: str, target_key: str) -> Setup:
    """``{ws}/relative`` -> the workspace file named by ``target_key`` (e.g. "onnx")."""

    def run(ws: Workspace) -> None:
        os.symlink(ws.path(target_key), ws.root / relative)

    return run


def copy(target_key: str, relative: str) -> Setup:
    def run(ws: Workspace) -> None:
        source = ws.path(target_key)
        if source.is_dir():
            shutil.copytree(source, ws.root / relative)
        else:
            shutil.copy2(source, ws.root / relative)

    return run


def remove(relative: str) -> Setup:
    def run(ws: Workspace) -> None:
        path = _abs(ws, relative)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()

    return run


def edit_json(relative: str, edit: Callable[[dict], None]) -> Setup:
    def run(ws: Workspace) -> None:
        path = _abs(ws, relative)
        data = json.loads(path.read_text(encoding="utf-8"))
        edit(data)
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    return run


def chain(*setups: Setup) -> Setup:
    def run(ws: Workspace) -> None:
        for setup in setups:
            setup(ws)

    return run


def _abs(ws: Workspace, relative: str) -> Path:
    filled = ws.fill(relative)
    return Path(filled) if Path(filled).is_absolute() else ws.root / filled
