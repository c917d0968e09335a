"""Make the PyPI `tensorrt-stubs` usable by mypy, without copying them into this repo.

`pip install --no-deps tensorrt-stubs==10.13.0.35.1` (its metadata pins the full `tensorrt`
wheel, hence --no-deps) puts `tensorrt/__init__.pyi` and `tensorrt_bindings/*.pyi` straight
into site-packages. Three problems, fixed here on a copy written to a folder for MYPYPATH:

1. No `py.typed` and no `-stubs` suffix, so mypy ignores the folders (PEP 561) and, with
   `ignore_missing_imports`, silently types all of TensorRT as Any. Fix: put them on MYPYPATH.
2. Generated signatures that are not valid Python: parameters named `in` (a keyword), and
   `add_scale_nd(..., power: Weights = None, channel_axis: int)` (a required parameter after
   defaults). Fix: rename `in` to `in_`; give `channel_axis` a default.
3. Types that do not resolve: `X = None` defaults on non-Optional parameters (-> `X | None`),
   `...` and `capsule` used as types (-> Any), `typing_extensions` used but not imported, and
   the module variable `bool: DataType` shadowing the builtin in every `-> bool`
   (-> `builtins.bool`).
4. `Dims` parameters accept any int sequence at run time and `Dims` iterates like a tuple;
   the stubs say neither. Fix: `Dims | Sequence[int]` parameters and a `Dims.__iter__`.

What is left (self-type quirks of pybind11-stubgen inside the stubs) is silenced per module
by `typings/mypy-tensorrt.ini` (`ignore_errors` for `tensorrt.*`), which does not change
how our code is checked against them.

Also note: the installed `tensorrt/` folder makes `import tensorrt` succeed as an empty
namespace package; trtdeploy treats a module without `__file__` as not installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

STUB_PACKAGES = ("tensorrt", "tensorrt_bindings")

_KEYWORD_PARAM = re.compile(r"(?<=[(,\s])in(?=\s*:)")
_REQUIRED_AFTER_DEFAULT = re.compile(r"(channel_axis: int)\)")
_NONE_DEFAULT = re.compile(r"(\w+): ([A-Za-z_][\w.\[\], ]*?) = None(?=[,)])")
_BOOL = re.compile(r"(?<=[\[: ])bool\b(?!\s*=)")
_ELLIPSIS_TYPE = re.compile(r"(?<=: )\.\.\.(?=[,)])|(?<=-> )\.\.\.(?=:)")
_DIMS_PARAM = re.compile(r"(\w+): Dims(?=[,)])")
# What the generated module lacks at the top (used names, and `bool` made unambiguous).
_HEADER = "import builtins\nimport typing_extensions\ncapsule: typing.TypeAlias = typing.Any\n"


def _fix_def(line: str) -> str:
    line = _KEYWORD_PARAM.sub("in_", line)
    line = _REQUIRED_AFTER_DEFAULT.sub(r"\1 = ...)", line)
    line = _NONE_DEFAULT.sub(
        lambda m: m.group(0) if "None" in m.group(2) else f"{m.group(1)}: {m.group(2)} | None = None", line
    )
    line = _ELLIPSIS_TYPE.sub("typing.Any", line)
    # The TensorRT API converts any sequence of ints to Dims (pybind implicit conversion).
    line = _DIMS_PARAM.sub(r"\1: Dims | typing.Sequence[int]", line)
    return _BOOL.sub("builtins.bool", line)


def fix_stub_text(text: str) -> str:
    """Apply the fixes listed in the module docstring to one generated .pyi file."""
    lines: list[str] = []
    in_dims = False
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("def "):
            line = _fix_def(line)
        elif re.match(r"^\s+\w+: bool\b", line):  # attribute annotations in classes
            line = _BOOL.sub("builtins.bool", line)
        if line.startswith("class "):
            in_dims = line.startswith("class Dims:")
        if in_dims and stripped.startswith("def __len__(self)"):
            # Dims iterates like a tuple (pybind __getitem__/__len__); say so for mypy.
            lines.append("    def __iter__(self) -> typing.Iterator[int]:")
            lines.append("        ...")
            in_dims = False
        lines.append(line)
        if line == "import typing":
            lines.append(_HEADER.rstrip("\n"))
    return "\n".join(lines) + "\n"


def find_installed_stubs(site_packages: Path) -> Path | None:
    """The site-packages folder holding tensorrt/__init__.pyi from tensorrt-stubs, or None."""
    marker = site_packages / "tensorrt" / "__init__.pyi"
    return site_packages if marker.is_file() and (site_packages / "tensorrt_bindings").is_dir() else None


def write_fixed_stubs(site_packages: Path, out_dir: Path) -> Path:
    """Copy the stub packages from ``site_packages`` into ``out_dir`` with the fixes applied."""
    for package in STUB_PACKAGES:
        for stub in sorted((site_packages / package).glob("*.pyi")):
            target = out_dir / package / stub.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(fix_stub_text(stub.read_text(encoding="utf-8")), encoding="utf-8")
    return out_dir


if __name__ == "__main__":  # python typings/fix_tensorrt_stubs.py SITE_PACKAGES OUT_DIR
    print(write_fixed_stubs(Path(sys.argv[1]), Path(sys.argv[2])))
