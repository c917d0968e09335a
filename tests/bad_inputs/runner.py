"""Run one command line through the real entry point (``run_app``) in-process, and the checks
every row shares: exit code, exactly one ``error:`` line naming the problem, no traceback."""

from __future__ import annotations

import importlib
import pkgutil
import shlex
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from tests.bad_inputs.rows import Row


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    def error_lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.lstrip().lower().startswith(("error:", "internal error:"))]


def run_cli(args: list[str]) -> Outcome:
    """``trtdeploy ARGS`` through trtdeploy.cli.common.run_app, as the console script runs it."""
    from trtdeploy.cli.common import run_app
    from trtdeploy.cli.main import app

    runner = CliRunner()
    code = 0
    with runner.isolation() as streams:
        try:
            run_app(app, args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    return Outcome(code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))


def check_outcome(row: Row, outcome: Outcome) -> None:
    where = f"row {row.id}: trtdeploy {row.args}\n--- output ---\n{outcome.text}"
    assert "Traceback" not in outcome.text, where
    assert "internal error" not in outcome.text.lower(), where
    assert outcome.code == row.code, f"exit {outcome.code}, expected {row.code}; {where}"
    if row.code == 0:
        assert row.message.lower() in outcome.text.lower(), where
        return
    errors = outcome.error_lines()
    assert len(errors) == 1, f"expected exactly one error: line, got {len(errors)}; {where}"
    assert row.message.lower() in errors[0].lower(), f"error line lacks {row.message!r}; {where}"


def split_args(filled: str) -> list[str]:
    return shlex.split(filled)


def collect_rows() -> list[Row]:
    """ROWS of every rows_*.py module in this folder (ids must be unique)."""
    folder = Path(__file__).parent
    rows: list[Row] = []
    for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if info.name.startswith("rows_"):
            module = importlib.import_module(f"tests.bad_inputs.{info.name}")
            rows.extend(getattr(module, "ROWS", []))
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise ValueError(f"duplicate bad-input row id {row.id!r}")
        seen.add(row.id)
    return rows
