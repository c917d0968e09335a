"""Output files: never overwrite without force, never write over an input, never leave a
half-written file; all outputs get the same mode (0666 minus the umask: 0644 usually)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from trtdeploy.errors import InputError, OutputExistsError, UsageError


def check_output(path: Path, force: bool, inputs: Iterable[Path | None] = ()) -> None:
    """Refuse an output that is one of ``inputs`` (even with force), a folder, an existing file
    without force, and an output folder we cannot create or write to (tried with a temporary
    file, so it holds for root and for /proc too)."""
    path = Path(path)
    check_not_input(path, inputs)
    if path.is_dir():
        raise UsageError(f"output {path} is a folder; give a file name")
    if (path.exists() or path.is_symlink()) and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write to output folder {folder}: {exc.strerror or exc}") from exc
    os.close(fd)
    os.unlink(probe)


def check_not_input(output: Path, inputs: Iterable[Path | None], what: str = "output") -> None:
    """Inputs are sacred: refuse an output whose real path (symlinks resolved) is one of the
    input files. Pass the files a command actually reads (e.g. the listed images, not only
    their folder)."""
    target = _real(Path(output))
    for given in inputs:
        if given is None:
            continue
        source = _real(Path(given))
        if target == source:
            raise UsageError(
                f"{what} {output} is an input of this command ({given}); write it somewhere else "
                "(inputs are never overwritten, not even with --force)"
            )


def check_same_outputs(paths: Iterable[Path | None]) -> None:
    """Refuse two outputs of one command that are the same file."""
    seen: dict[Path, Path] = {}
    for path in paths:
        if path is None:
            continue
        real = _real(Path(path))
        if real in seen:
            raise UsageError(f"outputs {seen[real]} and {path} are the same file; give each its own path")
        seen[real] = Path(path)


def check_output_name(name: str, what: str = "--name") -> str:
    """A name that becomes part of output file names: no folders, no '..', nothing hidden."""
    if not name or name.strip() != name or name in (".", "..") or ".." in name:
        raise UsageError(f"{what} {name!r} is not a plain file name (no '..', no leading/trailing spaces)")
    bad = [c for c in name if c in "/\\:\0" or ord(c) < 32]
    if bad or name.startswith((".", "-")):
        raise UsageError(
            f"{what} {name!r} is not a plain file name: use letters, digits, '_', '-' and '.' "
            "(no path separators; outputs stay in the output folder)"
        )
    return name


def _real(path: Path) -> Path:
    # realpath resolves symlinks of the existing part and keeps the rest, so a not-yet-written
    # output compares correctly with inputs reached through a symlinked folder
    return Path(os.path.realpath(path))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in the target folder; rename it to ``path`` only on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text with LF line endings, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_text(path: Path, what: str) -> str:
    """A UTF-8 input file's text; InputError naming ``what`` when missing or not text."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text ({exc.reason})") from exc


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a file; InputError naming ``what`` when missing or corrupt."""
    try:
        data = json.loads(read_text(path, what))
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path} is corrupt (not valid JSON: {exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{what} {path} is corrupt (not a JSON object)")
    return data


def parse_yaml_text(text: str, source: str) -> Any:
    """``yaml.safe_load`` with every failure as one InputError line naming ``source`` and, where
    PyYAML knows it, line:column. PyYAML raises ValueError, not YAMLError, for some scalars it
    takes for numbers (``0x_``, ``0b_``)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{source}{where}: invalid YAML: {problem}") from exc
    except (ValueError, OverflowError, RecursionError) as exc:
        raise InputError(f"{source}: invalid YAML: a value PyYAML cannot read ({exc})") from exc
