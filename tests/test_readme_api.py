"""The README's Python API block names functions that exist: its imports run (without
TensorFlow or TensorRT being imported), and each imported name is callable or a class."""

from __future__ import annotations

import re

from tests.data import REPO


def _api_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_api_imports_resolve():
    imports = [line.split("#")[0].strip() for line in _api_block().splitlines() if line.startswith(("from ", "import "))]
    assert len(imports) >= 10
    namespace: dict = {}
    exec("\n".join(imports), namespace)  # noqa: S102 - our own README
    names = [n.strip() for line in imports if " import " in line for n in line.split(" import ", 1)[1].split(",")]
    for name in names:
        assert callable(namespace[name]), name
