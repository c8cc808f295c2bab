"""A forecast set as a file for users who want files: CSV or Parquet, streamed, written then swapped.

Both formats carry the forecast record of DESIGN.md §4 (``EXPORT_COLUMNS``). Rows stream from one
snapshot of the store in batches, so memory stays at one batch for any set size, and the target
appears only once complete (a temp file beside it, then an atomic rename): a crash or a bad path
never leaves half a file where the last good export was. CSV identifiers that a spreadsheet would
run as a formula are prefixed with a quote; Parquet keeps typed columns and the set's metadata.

pyarrow is imported only for Parquet, so the store stays importable without it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inference.store.base import ForecastSet, ForecastSetNotFoundError, ForecastStoreError
from inference.store.sql import SqlForecastStore
from ordernimbus.atomic import user_target

ExportFormat = Literal["csv", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet")
EXPORT_COLUMNS = (
    "store_id",
    "sku",
    "target_date",
    "horizon_day",
    "p10",
    "p50",
    "p90",
    "mean",
    "model_version",
    "forecast_set_id",
    "generated_at",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    forecast_set: ForecastSet
    rows: int
    format: ExportFormat


def export_set(
    store: SqlForecastStore,
    tenant: str,
    out: Path,
    fmt: str = "csv",
    *,
    set_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_rows: int = 20_000,
) -> ExportResult:
    """Write the tenant's current set (or ``set_id``) to ``out``; ``progress(done, total)`` per batch."""
    if fmt not in FORMATS:
        raise ForecastStoreError(f"export format {fmt!r} is not supported: use one of {', '.join(FORMATS)}")
    chosen = store.current_set(tenant) if set_id is None else _complete_set(store, tenant, set_id)
    if chosen is None:
        raise ForecastSetNotFoundError(
            f"tenant {tenant!r} has no forecast set yet: run "
            f"`ordernimbus pipeline run forecast --tenant {tenant}`"
        )
    user_target(out, f"forecast.{fmt}")
    batches = _counted(store.iter_set(tenant, chosen.set_id, batch_rows), chosen.rows, progress)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        rows = _write_csv(tmp, chosen, batches) if fmt == "csv" else _write_parquet(tmp, chosen, batches)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(path=out, forecast_set=chosen, rows=rows, format=fmt)  # type: ignore[arg-type]


def _complete_set(store: SqlForecastStore, tenant: str, set_id: str) -> ForecastSet:
    for found in store.list_sets(tenant):
        if found.set_id == set_id and found.status == "complete":
            return found
    raise ForecastSetNotFoundError(
        f"tenant {tenant!r} has no complete forecast set {set_id!r}; list them with the API's /v1/forecasts "
        "or omit --set-id for the current one"
    )


def _counted(
    batches: Iterator[list[tuple[Any, ...]]], total: int, progress: Callable[[int, int], None] | None
) -> Iterator[list[tuple[Any, ...]]]:
    done = 0
    for batch in batches:
        yield batch
        done += len(batch)
        if progress is not None:
            progress(done, total)


def safe_cell(text: str) -> str:
    """Neutralise spreadsheet formula injection in identifiers written to CSV."""
    return f"'{text}" if text[:1] in _FORMULA_START else text


def _write_csv(path: Path, fs: ForecastSet, batches: Iterator[list[tuple[Any, ...]]]) -> int:
    tail = (fs.model_version, fs.set_id, fs.generated_at.isoformat())
    rows = 0
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for batch in batches:
            writer.writerows(
                (safe_cell(r[0]), safe_cell(r[1]), r[2].isoformat(), *r[3:], *tail) for r in batch
            )
            rows += len(batch)
    return rows


def _write_parquet(path: Path, fs: ForecastSet, batches: Iterator[list[tuple[Any, ...]]]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("store_id", pa.string()),
            ("sku", pa.string()),
            ("target_date", pa.date32()),
            ("horizon_day", pa.int32()),
            ("p10", pa.float64()),
            ("p50", pa.float64()),
            ("p90", pa.float64()),
            ("mean", pa.float64()),
            ("model_version", pa.int32()),
            ("forecast_set_id", pa.string()),
            ("generated_at", pa.timestamp("us", tz="UTC")),
        ],
        metadata={b"ordernimbus.forecast_set": json.dumps(_set_metadata(fs)).encode()},
    )
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in batches:
            columns = list(zip(*batch, strict=True))
            n = len(batch)
            arrays = [pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)]
            arrays += [
                pa.array([fs.model_version] * n, pa.int32()),
                pa.array([fs.set_id] * n, pa.string()),
                pa.array([fs.generated_at] * n, pa.timestamp("us", tz="UTC")),
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            rows += n
    return rows


def _set_metadata(fs: ForecastSet) -> dict[str, Any]:
    return {
        "set_id": fs.set_id,
        "tenant_id": fs.tenant_id,
        "model_version": fs.model_version,
        "generated_at": fs.generated_at.isoformat(),
        "rows": fs.rows,
        "series": fs.series,
        "metadata": fs.metadata,
    }
