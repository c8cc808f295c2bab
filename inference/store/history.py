"""Recent actuals per series in ``sales_history``, so the API can chart history beside a forecast.

The forecast pipeline upserts the recent actuals each time it publishes a set (the whole year for a
series it has not stored yet, the last weeks otherwise; see pipelines/steps/publish.py), and
monitoring may upsert actuals as they arrive; both go through :func:`upsert_history`. An upsert
overwrites a day's units (late corrections win; unchanged rows are left alone, so a re-run writes
only what changed) and, given ``keep_since``, drops the tenant's
rows older than that in the same transaction, so the table stays a rolling window. The write is
one transaction: a crash leaves the previous history whole.

Light imports only (no pandas/numpy): the API's Lambda package imports the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from inference.store.base import ForecastDataError
from inference.store.rows import MAX_ID_LENGTH
from inference.store.tables import sales_history
from ordernimbus.tenancy import validate_tenant

HISTORY_COLUMNS = ("store_id", "sku", "date", "units", "unit_price")
_STAGE_SQLITE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS sales_history_stage (store_id TEXT, sku TEXT, date TEXT, "
    "units REAL, unit_price REAL)"
)
# "WHERE true" tells SQLite's parser that ON CONFLICT belongs to the INSERT, not to a join.
_MERGE_SQLITE = (
    "INSERT INTO sales_history (tenant_id, store_id, sku, date, units, unit_price) "
    "SELECT ?, store_id, sku, date, units, unit_price FROM sales_history_stage WHERE true "
    "ON CONFLICT (tenant_id, store_id, sku, date) DO UPDATE SET units = excluded.units, "
    "unit_price = excluded.unit_price WHERE sales_history.units IS NOT excluded.units "
    "OR sales_history.unit_price IS NOT excluded.unit_price"
)
_COUNT_STAGE = (
    "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT store_id, sku, date "
    "FROM sales_history_stage) AS k) "
    "FROM sales_history_stage"
)
_PG_STAGE = (
    "CREATE TEMPORARY TABLE sales_history_stage (store_id varchar(128), sku varchar(128), date date, "
    "units float8, unit_price float8) ON COMMIT DROP"
)
_PG_MERGE = (
    "INSERT INTO sales_history (tenant_id, store_id, sku, date, units, unit_price) "
    "SELECT %s, store_id, sku, date, units, unit_price FROM sales_history_stage "
    "ON CONFLICT (tenant_id, store_id, sku, date) DO UPDATE SET units = EXCLUDED.units, "
    "unit_price = EXCLUDED.unit_price WHERE (sales_history.units, sales_history.unit_price) "
    "IS DISTINCT FROM (EXCLUDED.units, EXCLUDED.unit_price)"
)


@dataclass(frozen=True)
class HistoryWrite:
    rows: int
    deleted: int


def upsert_history(
    engine: Engine,
    tenant: str,
    chunks: Iterable[Sequence[tuple[Any, ...]]],
    *,
    keep_since: date | None = None,
) -> HistoryWrite:
    """Upsert rows ``(store_id, sku, date, units, unit_price)``; drop rows before ``keep_since``."""
    validate_tenant(tenant)
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                rows = _load_postgres(conn, tenant, chunks)
            else:
                rows = _load_sqlite(conn, tenant, chunks)
            deleted = 0
            if keep_since is not None:
                h = sales_history.c
                gone = conn.execute(sales_history.delete().where(h.tenant_id == tenant, h.date < keep_since))
                deleted = gone.rowcount or 0
    return HistoryWrite(rows=rows, deleted=deleted)


def history_state(engine: Engine, tenant: str) -> tuple[date | None, set[tuple[str, str]]]:
    """The tenant's latest stored day and the series it holds (to write only what is new)."""
    validate_tenant(tenant)
    h = sales_history.c
    with engine.connect() as conn:
        latest = conn.execute(sa.select(sa.func.max(h.date)).where(h.tenant_id == tenant)).scalar()
        series = conn.execute(sa.select(h.store_id, h.sku).where(h.tenant_id == tenant).distinct()).all()
    if isinstance(latest, str):  # SQLite hands back text for an aggregate over a DATE column
        latest = date.fromisoformat(latest)
    return latest, {(r[0], r[1]) for r in series}


def read_history(
    engine: Engine,
    tenant: str,
    store_id: str,
    sku: str,
    *,
    start: date | None = None,
    end: date | None = None,
) -> list[tuple[date, float, float | None]]:
    """``(date, units, unit_price)`` of one series in date order."""
    validate_tenant(tenant)
    h = sales_history.c
    stmt = sa.select(h.date, h.units, h.unit_price).where(
        h.tenant_id == tenant, h.store_id == store_id, h.sku == sku
    )
    if start is not None:
        stmt = stmt.where(h.date >= start)
    if end is not None:
        stmt = stmt.where(h.date <= end)
    with engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(stmt.order_by(h.date))]


def _load_sqlite(conn: Connection, tenant: str, chunks: Iterable[Sequence[tuple[Any, ...]]]) -> int:
    """Stage in a temp table, refuse repeated keys, then one INSERT .. ON CONFLICT from it."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cur, n = raw.cursor(), 0
    try:
        cur.execute(_STAGE_SQLITE)
        cur.execute("DELETE FROM sales_history_stage")
        for chunk in chunks:
            checked = [_check(n + i + 1, row, iso=True) for i, row in enumerate(chunk)]
            cur.executemany("INSERT INTO sales_history_stage VALUES (?, ?, ?, ?, ?)", checked)
            n += len(checked)
        _refuse_duplicates(cur.execute(_COUNT_STAGE).fetchone(), n)
        cur.execute(_MERGE_SQLITE, (tenant,))
        cur.execute("DELETE FROM sales_history_stage")
    finally:
        cur.close()
    return n


def _load_postgres(conn: Connection, tenant: str, chunks: Iterable[Sequence[tuple[Any, ...]]]) -> int:
    """COPY into a transaction-scoped stage table, refuse repeated keys, then one INSERT .. ON CONFLICT."""
    raw = conn.connection.driver_connection
    assert raw is not None
    n = 0
    with raw.cursor() as cur:
        cur.execute(_PG_STAGE)
        with cur.copy("COPY sales_history_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["varchar", "varchar", "date", "float8", "float8"])
            for chunk in chunks:
                for row in chunk:
                    n += 1
                    copy.write_row(_check(n, row, iso=False))
        _refuse_duplicates(cur.execute(_COUNT_STAGE).fetchone(), n)
        cur.execute(_PG_MERGE, (tenant,))
    return n


def _refuse_duplicates(counts: Any, n: int) -> None:
    total, distinct = counts or (0, 0)
    if total != distinct:
        raise ForecastDataError(
            n, None, f"{total - distinct} (store_id, sku, date) key(s) appear more than once; "
            "each day of a series may be given once", "history",
        )  # fmt: skip


def _check(n: int, row: Sequence[Any], *, iso: bool) -> tuple[Any, ...]:
    try:
        store_id, sku, day, units, price = row
    except (TypeError, ValueError):
        raise ForecastDataError(n, None, f"expected {', '.join(HISTORY_COLUMNS)}", "history") from None
    for column, value in (("store_id", store_id), ("sku", sku)):
        if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
            raise ForecastDataError(n, column, f"expected a non-empty string, got {value!r}", "history")
    if isinstance(day, datetime):
        day = day.date()
    elif not isinstance(day, date):
        raise ForecastDataError(n, "date", f"expected a date, got {day!r}", "history")
    units = _finite(n, "units", units)
    price = (
        None
        if price is None or (isinstance(price, float) and math.isnan(price))
        else _finite(n, "unit_price", price)
    )
    if price is not None and price < 0:
        raise ForecastDataError(n, "unit_price", f"must be >= 0, got {price}", "history")
    return (store_id, sku, day.isoformat() if iso else day, units, price)


def _finite(n: int, column: str, value: Any) -> float:
    if isinstance(value, bool | str | bytes) or value is None:
        raise ForecastDataError(n, column, f"expected a number, got {value!r}", "history")
    number = float(value)
    if not math.isfinite(number):
        raise ForecastDataError(n, column, f"expected a finite number, got {number}", "history")
    return number
