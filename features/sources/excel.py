"""Excel workbooks (.xlsx / .xlsm), first visible worksheet, streamed row by row with openpyxl.

Read-only mode keeps memory flat for large sheets; ``data_only`` returns the values Excel last
computed, so a formula cell arrives as its result and never as formula text. Legacy .xls files are
refused with a hint rather than half-read. Hidden sheets (lookups, old data) are never read: the
sheet read is the one a user sees first on opening the workbook.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.sources.base import (
    Progress,
    RawChunk,
    SourceInfo,
    check_header,
    date_cell,
    file_error,
    report_progress,
)

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ExcelSource:
    """The first visible worksheet; the header is its first non-empty row."""

    def __init__(self, path: Path, name: str, progress: Progress | None, chunk_rows: int = 50_000) -> None:
        self.path, self.name, self.progress, self.chunk_rows = path, name, progress, chunk_rows
        self.sha256 = sha256_of(path)
        self._check_signature()
        workbook = self._open()
        try:
            sheet = _first_visible(workbook)
            self.sheet = sheet.title
            others = [s.title for s in workbook.worksheets if s is not sheet and s.sheet_state == "visible"]
            self.header_row, header = _find_header(sheet.iter_rows(values_only=True))
        finally:
            workbook.close()
        if header is None:
            raise file_error(name, f"worksheet {self.sheet!r} is empty: expected a header row and data rows")
        self.columns = check_header(name, list(header))
        self.info = SourceInfo("xlsx", {"sheet": self.sheet, "header_row": self.header_row})
        if others:
            self.info.warnings.append(
                f"the workbook has {len(others) + 1} visible sheets; read only the first, {self.sheet!r} "
                f"(not {', '.join(map(repr, others))}): move the sales sheet first if that is wrong"
            )

    def _check_signature(self) -> None:
        with open(self.path, "rb") as handle:
            head = handle.read(4)
        if not head:
            raise file_error(self.name, "the file is empty (0 bytes): expected an .xlsx workbook")
        if head == OLE_MAGIC:
            raise file_error(
                self.name,
                "this is a legacy Excel 97-2003 (.xls) workbook: save it as .xlsx or CSV and upload again",
            )
        if head != ZIP_MAGIC:
            raise file_error(self.name, "not an Excel .xlsx workbook (an .xlsx file is a ZIP archive)")

    def _open(self) -> Any:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            return openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise file_error(
                self.name, f"the workbook cannot be opened, it is truncated or corrupt ({exc})"
            ) from None

    def chunks(self) -> Iterator[RawChunk]:
        total = self.path.stat().st_size
        workbook = self._open()
        try:
            sheet = workbook[self.sheet]
            last = sheet.max_row or 0
            width = len(self.columns)
            buffer: list[tuple[Any, ...]] = []
            numbers: list[int] = []
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                if number <= self.header_row:
                    continue
                buffer.append(_fit(values, width))
                numbers.append(number)
                if len(buffer) >= self.chunk_rows:
                    yield self._chunk(buffer, numbers)
                    report_progress(self.progress, total * number // max(last, number), total)
                    buffer, numbers = [], []
            if buffer:
                yield self._chunk(buffer, numbers)
        except (zipfile.BadZipFile, KeyError, EOFError) as exc:
            raise file_error(self.name, f"the workbook is truncated or corrupt ({exc})") from None
        finally:
            workbook.close()
        report_progress(self.progress, total, total)

    def _chunk(self, buffer: list[tuple[Any, ...]], numbers: list[int]) -> RawChunk:
        frame = pd.DataFrame.from_records(buffer, columns=self.columns)
        return RawChunk(frame.astype(object), np.asarray(numbers, dtype=np.int64))


def _first_visible(workbook: Any) -> Any:
    """The first worksheet not hidden; the first of all if every one is (Excel itself forbids that)."""
    visible = [s for s in workbook.worksheets if s.sheet_state == "visible"]
    return (visible or workbook.worksheets)[0]


def _find_header(rows: Iterator[tuple[Any, ...]]) -> tuple[int, tuple[Any, ...] | None]:
    for number, values in enumerate(rows, start=1):
        if any(v is not None and str(v).strip() for v in values):
            last = max(i for i, v in enumerate(values) if v is not None and str(v).strip())
            return number, values[: last + 1]
        if number > 100:
            break
    return 0, None


def _fit(values: tuple[Any, ...], width: int) -> tuple[Any, ...]:
    """The row cut or padded to the header's width, dates pandas cannot hold as text."""
    if len(values) > width:
        values = values[:width]
    elif len(values) < width:
        values = values + (None,) * (width - len(values))
    return tuple(date_cell(v) for v in values)
