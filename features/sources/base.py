"""What every tabular reader hands to the ingestion: raw chunks that remember their file rows.

Readers never type or rename anything: they only decode bytes into cells, so that a problem found
later can still quote the user's value and point at the user's row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.errors import ContractError, Problem

Progress = Callable[[int, int], None]
# The dates pandas can hold (nanoseconds since 1970), in whole days. A typed date outside them, such
# as Excel's open-end sentinel 9999-12-31, is handed on as text, so it is refused like the same
# date in a CSV instead of overflowing in the converter.
EARLIEST_DATE, LATEST_DATE = datetime(1677, 9, 22), datetime(2262, 4, 11)


@dataclass(frozen=True)
class RawChunk:
    """Cells as read (text for CSV, Python values for Excel, typed columns for Parquet)."""

    frame: pd.DataFrame
    rows: np.ndarray  # the row number a user sees for each record of ``frame``


@dataclass
class SourceInfo:
    """How the file was read; copied into the quality report so a user can check our guesses."""

    format: str
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # guesses a user should check, for the report


class TabularSource(Protocol):
    name: str
    columns: list[str]
    info: SourceInfo

    def chunks(self) -> Iterator[RawChunk]: ...


def file_error(name: str, message: str, row: int | None = None, column: str | None = None) -> ContractError:
    """A problem with the whole file (or one place in it) that stops the upload in any mode."""
    return ContractError([Problem(name, row, column, message)])


def check_header(name: str, header: list[str]) -> list[str]:
    """Header names as given, with blanks named and duplicates refused.

    A repeated column name makes any mapping ambiguous (which 'date' is the date?), so it is an
    error rather than something to guess around as pandas' ``date.1`` renaming would.
    """
    seen: dict[str, int] = {}
    names: list[str] = []
    for position, raw in enumerate(header, start=1):
        text = "" if raw is None else str(raw).strip()
        if not text:
            text = f"_unnamed_{position}"
        if text in seen:
            raise file_error(
                name,
                f"the header names column {text!r} twice (columns {seen[text]} and {position}); "
                "rename one of them so the mapping is unambiguous",
                row=1,
                column=text,
            )
        seen[text] = position
        names.append(text)
    if all(n.startswith("_unnamed_") for n in names):
        raise file_error(name, "the first row is empty: expected a header row with column names", row=1)
    return names


def report_progress(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(min(done, total), total)


def date_cell(value: Any) -> Any:
    """``value``, or its text when it is a date pandas cannot hold (see ``LATEST_DATE``)."""
    if not isinstance(value, date):
        return value
    stamp = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    if EARLIEST_DATE <= stamp.replace(tzinfo=None) < LATEST_DATE:
        return value
    return stamp.date().isoformat() if stamp.time() == datetime.min.time() else stamp.isoformat(sep=" ")
