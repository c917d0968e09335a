"""Write the README's generated tables from the capability matrix (trtdeploy.capabilities).

Each table lives between ``<!-- generated:NAME -->`` and ``<!-- end:NAME -->`` in README.md
(NAME: a key of ``trtdeploy.capabilities.GENERATED_SECTIONS``); everything else is untouched.

    python docs/gen_support_table.py           # rewrite README.md's tables
    python docs/gen_support_table.py --check   # exit 1 when README.md differs from the matrix
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated:{re.escape(name)} -->\n)(.*?)(<!-- end:{re.escape(name)} -->)", re.S)


def rendered(text: str) -> str:
    """``text`` (the README) with every generated table replaced by the matrix's."""
    from trtdeploy.capabilities import GENERATED_SECTIONS

    for name, make in GENERATED_SECTIONS.items():
        pattern = _block(name)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no '<!-- generated:{name} -->' ... '<!-- end:{name} -->' block")
        table = make()
        text = pattern.sub(lambda m, table=table: m.group(1) + table + m.group(3), text)
    return text


def sections(text: str) -> dict[str, str]:
    """The generated tables as they stand in ``text``, by name."""
    from trtdeploy.capabilities import GENERATED_SECTIONS

    found = {}
    for name in GENERATED_SECTIONS:
        match = _block(name).search(text)
        found[name] = match.group(2) if match else ""
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when README.md is out of date")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    new = rendered(text)
    if args.check:
        if new != text:
            print("README.md's support tables differ from trtdeploy.capabilities: run python docs/gen_support_table.py")
            return 1
        return 0
    if new != text:
        tmp = README.with_name(README.name + ".tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(README)
    print(f"{README.name}: {'updated' if new != text else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
