"""Read queries of the API over the operations tables (sales history, accuracy, inventory advice).

Every function takes the tenant first and every statement filters on it before anything else, so
the tenant-leading primary keys serve them and no query can reach another tenant's rows. Writers
live elsewhere (the forecast pipeline writes inventory advice and recent sales with each set;
monitoring appends accuracy checks); this module only reads, with SQLAlchemy Core, so the Lambda
package can import it.

Accuracy rows follow :mod:`inference.store.monitoring` (which writes them and also serves one
key's accuracy over time): ``level`` is ``total``, ``store`` or ``sku``, and the key columns a
level does not use hold the empty string, which the API shows as null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inference.store.tables import accuracy, inventory_recommendations, sales_history
from ordernimbus.tenancy import validate_tenant

Level = Literal["total", "store", "sku"]
MAX_HISTORY_DAYS = 3660


@dataclass(frozen=True)
class Check:
    check_id: str
    checked_at: datetime


def sales(
    engine: Engine, tenant: str, store_id: str, sku: str, *, start: date | None, end: date | None, limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` days of one series within [start, end], oldest first."""
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
        rows = conn.execute(stmt.order_by(h.date.desc()).limit(limit)).mappings().all()
    return [dict(r) for r in reversed(rows)]


def latest_check(engine: Engine, tenant: str, check_id: str | None = None) -> Check | None:
    """The newest accuracy check of the tenant (or ``check_id``), None when there is none."""
    validate_tenant(tenant)
    a = accuracy.c
    stmt = sa.select(a.check_id, sa.func.max(a.checked_at).label("at")).where(a.tenant_id == tenant)
    if check_id is not None:
        stmt = stmt.where(a.check_id == check_id)
    stmt = stmt.group_by(a.check_id).order_by(sa.desc("at"), a.check_id.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return Check(row.check_id, utc(row.at)) if row is not None else None


def accuracy_rows(
    engine: Engine,
    tenant: str,
    check_id: str,
    level: Level,
    *,
    store_id: str | None,
    sku: str | None,
    after: Sequence[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """One check's rows at ``level`` in (store_id, sku) order, after the cursor key, ``limit`` + 1."""
    validate_tenant(tenant)
    a = accuracy.c
    stmt = sa.select(accuracy).where(a.tenant_id == tenant, a.check_id == check_id, a.level == level)
    stmt = _key_filters(stmt, a.store_id, a.sku, store_id, sku, after)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt.order_by(a.store_id, a.sku).limit(limit + 1)).mappings()]


def total_accuracy_of_set(engine: Engine, tenant: str, set_id: str) -> dict[str, Any] | None:
    """The newest total-level accuracy row scored against forecast set ``set_id``."""
    validate_tenant(tenant)
    a = accuracy.c
    stmt = (
        sa.select(accuracy)
        .where(a.tenant_id == tenant, a.level == "total", a.forecast_set_id == set_id)
        .order_by(a.checked_at.desc(), a.check_id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def inventory(
    engine: Engine,
    tenant: str,
    set_id: str,
    *,
    store_id: str | None,
    sku: str | None,
    at_risk_only: bool,
    after: Sequence[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Recommendations of forecast set ``set_id`` in (store_id, sku) order, ``limit`` + 1 rows."""
    validate_tenant(tenant)
    r = inventory_recommendations.c
    stmt = sa.select(inventory_recommendations).where(r.tenant_id == tenant, r.forecast_set_id == set_id)
    if at_risk_only:
        stmt = stmt.where(r.stockout_risk.is_(True))
    stmt = _key_filters(stmt, r.store_id, r.sku, store_id, sku, after)
    with engine.connect() as conn:
        return [dict(x) for x in conn.execute(stmt.order_by(r.store_id, r.sku).limit(limit + 1)).mappings()]


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything is stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _key_filters(  # noqa: PLR0917 - a private helper over one statement
    stmt: sa.Select[Any],
    store_col: sa.ColumnElement[str],
    sku_col: sa.ColumnElement[str],
    store_id: str | None,
    sku: str | None,
    after: Sequence[str] | None,
) -> sa.Select[Any]:
    if store_id is not None:
        stmt = stmt.where(store_col == store_id)
    if sku is not None:
        stmt = stmt.where(sku_col == sku)
    if after is not None:
        last = sa.tuple_(sa.literal(after[0], sa.String), sa.literal(after[1], sa.String))
        stmt = stmt.where(sa.tuple_(store_col, sku_col) > last)
    return stmt
