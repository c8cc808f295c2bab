"""Parquet files, read batch by batch with pyarrow (the shared data sets are Parquet).

Columns keep their Parquet types; dates stored as ``date32`` arrive as datetime64 so the converter
takes its fast path instead of parsing text. Two kinds of cell have no place in a sales table and
are dealt with here: lists, records and maps (one value per cell is expected; the file is refused
naming the column) and dates past what pandas can hold (handed on as text, refused per cell).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from features.sources.base import (
    EARLIEST_DATE,
    LATEST_DATE,
    Progress,
    RawChunk,
    SourceInfo,
    check_header,
    file_error,
    report_progress,
)
from features.sources.excel import sha256_of

PARQUET_MAGIC = b"PAR1"


class ParquetSource:
    """Rows are 1-based record numbers (a Parquet file has no header line)."""

    def __init__(self, path: Path, name: str, progress: Progress | None, chunk_rows: int = 200_000) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path, self.name, self.progress, self.chunk_rows = path, name, progress, chunk_rows
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(-4 if path.stat().st_size >= 8 else 0, 2)
            tail = handle.read(4)
        if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
            raise file_error(
                name, "not a complete Parquet file (the PAR1 markers at its start and end are missing)"
            )
        self.sha256 = sha256_of(path)
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise file_error(name, f"the Parquet file cannot be read ({exc})") from None
        self.columns = check_header(name, list(self._file.schema_arrow.names))
        for column, kind in zip(self.columns, self._file.schema_arrow.types, strict=True):
            if pa.types.is_nested(kind):
                raise file_error(
                    name,
                    f"the column holds {kind} values (a list or record in each cell): expected one text, "
                    "number or date per cell; flatten the column or drop it and upload again",
                    column=column,
                )
        self.rows_total = self._file.metadata.num_rows
        self.info = SourceInfo("parquet", {"row_groups": self._file.num_row_groups})

    def chunks(self) -> Iterator[RawChunk]:
        total = self.path.stat().st_size
        start = 0
        try:
            for batch in self._file.iter_batches(batch_size=self.chunk_rows):
                frame = batch.to_pandas(date_as_object=False)
                frame.columns = self.columns
                _dates_out_of_range_as_text(frame)
                rows = np.arange(start + 1, start + len(frame) + 1, dtype=np.int64)
                start += len(frame)
                yield RawChunk(frame, rows)
                report_progress(self.progress, total * start // max(self.rows_total, 1), total)
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise file_error(self.name, f"the Parquet file is corrupt ({exc})") from None
        report_progress(self.progress, total, total)


def _dates_out_of_range_as_text(frame: pd.DataFrame) -> None:
    """Timestamps pandas cannot hold in nanoseconds (2500-01-01 in ``timestamp[ms]``) become text.

    pyarrow keeps a column's unit, so such a value arrives intact and would only overflow in the
    converter; as text it is refused for its row and column like the same date in a CSV.
    """
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_datetime64_any_dtype(values):
            continue
        wall = values.dt.tz_localize(None) if values.dt.tz is not None else values
        outside = ((wall < EARLIEST_DATE) | (wall >= LATEST_DATE)).to_numpy()
        if outside.any():
            cells = values.where(~outside).astype(object)
            cells[outside] = np.datetime_as_string(wall.to_numpy()[outside], unit="auto")
            frame[column] = cells
