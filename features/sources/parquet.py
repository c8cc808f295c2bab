"""Parquet files, read batch by batch with pyarrow (the shared data sets are Parquet).

Columns keep their Parquet types; dates stored as ``date32`` arrive as datetime64 so the converter
takes its fast path instead of parsing text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from features.sources.base import Progress, RawChunk, SourceInfo, check_header, file_error, report_progress
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
        self.rows_total = self._file.metadata.num_rows
        self.info = SourceInfo("parquet", {"row_groups": self._file.num_row_groups})

    def chunks(self) -> Iterator[RawChunk]:
        total = self.path.stat().st_size
        start = 0
        try:
            for batch in self._file.iter_batches(batch_size=self.chunk_rows):
                frame = batch.to_pandas(date_as_object=False)
                frame.columns = self.columns
                rows = np.arange(start + 1, start + len(frame) + 1, dtype=np.int64)
                start += len(frame)
                yield RawChunk(frame, rows)
                report_progress(self.progress, total * start // max(self.rows_total, 1), total)
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise file_error(self.name, f"the Parquet file is corrupt ({exc})") from None
        report_progress(self.progress, total, total)
