"""Errors of the data layer: every problem names where it is (file, row, column) and what was expected."""

from __future__ import annotations

from dataclasses import dataclass

from ordernimbus.errors import OrderNimbusError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as the input allows.

    ``row`` counts data rows from 1 as a spreadsheet user sees them (the header is row 1, so the
    first data row of a CSV is row 2); ``None`` when the problem concerns the whole file.
    """

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


class ContractError(OrderNimbusError):
    """Input that does not satisfy the canonical contract; carries the first problems found."""

    title = "Input rejected"
    status = 422

    def __init__(self, problems: list[Problem], total: int | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        shown = "\n".join(f"  - {p}" for p in problems)
        more = f"\n  ... and {self.total - len(problems)} more" if self.total > len(problems) else ""
        super().__init__(f"{self.total} problem(s) in the input:\n{shown}{more}")
