"""The row format of the bad-input suite (issue 11): one row per bad input.

A row is a command line after ``trtdeploy`` with ``{placeholders}`` for files of a per-test
workspace (see ``workspace.PLACEHOLDERS``), the exit code it must end with, a fragment the
``error:`` line must contain (case-insensitive), files that must NOT exist afterwards and files
that must be unchanged byte for byte afterwards. ``setup`` edits the workspace before the run
(e.g. writes a corrupt file); ``needs`` names expensive inputs (``"converted"``: a model
converted from the bundled saved model, which makes the row ``tf``/``slow``); ``marks`` are extra
pytest marks (e.g. ``xfail`` for a row whose fix is pending).

Each ``rows_*.py`` module in this folder defines ``ROWS: list[Row]``; ``test_rows.py`` collects
them all. Example::

    Row("calib-retarget-unknown-version",
        "calib retarget {cache} --trt-version 99.99.99 -o {ws}/new.cache",
        2, "not a TensorRT release", absent=["{ws}/new.cache"], unchanged=["{cache}"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.bad_inputs.workspace import Workspace

EXPENSIVE = ("converted",)  # needs that make a row tf + slow


@dataclass(frozen=True)
class Row:
    id: str
    args: str  # after `trtdeploy`; shlex-split after the placeholders are filled in
    code: int  # expected exit code (2 bad usage, 1 failure, 0 success)
    message: str  # fragment of the `error:` line (or of the output when code is 0)
    absent: Sequence[str] = ()  # paths that must not exist afterwards
    unchanged: Sequence[str] = ()  # paths whose bytes must be identical afterwards
    setup: Callable[[Workspace], None] | None = None
    needs: Sequence[str] = ()
    marks: Sequence[Any] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(EXPENSIVE)
        if unknown:
            raise ValueError(f"row {self.id}: unknown needs {sorted(unknown)}")


def rows_with(marks: Sequence[Any], rows: Sequence[Row]) -> list[Row]:
    """The same rows with extra pytest marks (e.g. a shared xfail)."""
    from dataclasses import replace

    return [replace(row, marks=(*row.marks, *marks)) for row in rows]
