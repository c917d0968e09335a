"""The bad-input suite (issue 11): every row of every rows_*.py, run through the real entry point.

Per row: the workspace is a fresh copy; the command must exit with the row's code and print
exactly one ``error:`` line containing the row's fragment, no traceback; files listed as absent
must not exist and files listed as unchanged keep their bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_inputs.rows import EXPENSIVE, Row
from tests.bad_inputs.runner import check_outcome, collect_rows, run_cli, split_args
from tests.bad_inputs.workspace import Workspace, add_converted, snapshot

ROWS = collect_rows()


def _param(row: Row) -> object:
    marks = list(row.marks)
    if any(need in EXPENSIVE for need in row.needs):
        marks += [pytest.mark.tf, pytest.mark.slow]
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(row) for row in ROWS])
def test_bad_input(row: Row, workspace: Workspace, request: pytest.FixtureRequest) -> None:
    if "converted" in row.needs:
        from tests.data import BUNDLED_MODEL

        add_converted(workspace, request.getfixturevalue("converted_model"))
        workspace.saved_model = BUNDLED_MODEL
    if row.setup is not None:
        row.setup(workspace)
    unchanged = [Path(workspace.fill(p)) for p in row.unchanged]
    before = snapshot(unchanged)
    # rows without needs=converted are not marked tf: tests/conftest.py fails them if they use
    # TensorFlow, so their refusals provably come before the expensive part
    outcome = run_cli(split_args(workspace.fill(row.args)))
    check_outcome(row, outcome)
    for path in row.absent:
        filled = Path(workspace.fill(path))
        assert not filled.exists(), f"row {row.id}: {filled} exists but must not"
    assert snapshot(unchanged) == before, f"row {row.id}: an input changed: {[str(p) for p in unchanged]}"


def test_at_least_80_rows() -> None:
    assert len(ROWS) >= 80, f"only {len(ROWS)} bad-input rows"
