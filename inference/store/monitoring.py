"""Monitoring's rows in the store: realised accuracy per check, and every retraining decision.

Both tables are keyed by tenant first, so each query starts from the tenant and an index serves it.

- ``accuracy`` (one row per check x level x key): ``level`` is ``total``, ``store`` or ``sku``;
  a ``sku`` row is one series (store_id, sku); the key columns a level does not use hold ``""``
  (the empty string can never be a real id: ids are 1-128 characters). A check's rows are written
  in one transaction, so a reader sees all of a check or none of it.
- ``monitor_decisions`` (one row per check): whether the policy said retrain, which rules fired
  and why (``reasons``), what happened (``action``), the run it started, the newest actual date
  the check saw (``actuals_through``, the next check's watermark) and the evidence (``details``).

Recent actuals for charts live in ``sales_history``, written through inference/store/history.py.
Light imports only (no pandas): the API's Lambda package imports the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inference.store.base import ForecastStoreError
from inference.store.engine import create_engine_for
from inference.store.migrations import migrate
from inference.store.rows import MAX_ID_LENGTH
from inference.store.tables import accuracy, monitor_decisions
from ordernimbus.tenancy import validate_tenant

Level = Literal["total", "store", "sku"]
LEVELS: tuple[Level, ...] = ("total", "store", "sku")
ACTIONS = ("none", "starting", "started", "debounced", "failed")
ALL = ""  # the key value of a level that does not use the column (store_id/sku of a total row)


@dataclass(frozen=True)
class AccuracyRow:
    """Accuracy of one key over the scored days of one check (metrics None when undefined)."""

    level: Level
    store_id: str
    sku: str
    forecast_set_id: str
    model_version: int
    start_date: date
    end_date: date
    n: int
    wape: float | None
    bias: float | None
    pinball: float | None
    coverage: float | None
    check_id: str = ""
    checked_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """One check's outcome: ``retrain`` is the policy's answer, ``action`` what was done about it."""

    tenant_id: str
    check_id: str
    checked_at: datetime
    origin: str
    retrain: bool
    action: str
    reasons: list[dict[str, Any]]
    run_id: str | None = None
    model_version: int | None = None
    actuals_through: date | None = None
    details: dict[str, Any] = field(default_factory=dict)


class MonitoringStore:
    """Accuracy rows and decisions on the forecast store's database (SQLite or PostgreSQL)."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        if engine is None and url is None:
            raise ForecastStoreError("MonitoringStore needs a database URL or an engine")
        self._owns_engine = engine is None
        self.engine = engine if engine is not None else create_engine_for(str(url))
        migrate(self.engine)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    # -- accuracy ------------------------------------------------------------------------------

    def write_accuracy(
        self, tenant: str, check_id: str, checked_at: datetime, rows: Iterable[AccuracyRow]
    ) -> int:
        """Insert every row of one check in one transaction; returns the number of rows."""
        validate_tenant(tenant)
        _check_id(check_id)
        values = [_accuracy_values(tenant, check_id, checked_at, i + 1, r) for i, r in enumerate(rows)]
        if not values:
            return 0
        with self.engine.begin() as conn:
            conn.execute(accuracy.insert(), values)
        return len(values)

    def accuracy_series(
        self,
        tenant: str,
        level: Level = "total",
        store_id: str = ALL,
        sku: str = ALL,
        *,
        since: datetime | None = None,
        limit: int = 365,
    ) -> list[AccuracyRow]:
        """One key's accuracy across checks, oldest first (the newest ``limit`` checks)."""
        validate_tenant(tenant)
        _check_level(level)
        a = accuracy.c
        stmt = sa.select(accuracy).where(
            a.tenant_id == tenant, a.level == level, a.store_id == store_id, a.sku == sku
        )
        if since is not None:
            stmt = stmt.where(a.checked_at >= since)
        stmt = stmt.order_by(a.checked_at.desc(), a.check_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = [_to_accuracy(r) for r in conn.execute(stmt).mappings()]
        return rows[::-1]

    def accuracy_of_check(self, tenant: str, check_id: str, level: Level | None = None) -> list[AccuracyRow]:
        """Every row of one check (optionally one level), in (level, store_id, sku) order."""
        validate_tenant(tenant)
        a = accuracy.c
        stmt = sa.select(accuracy).where(a.tenant_id == tenant, a.check_id == check_id)
        if level is not None:
            _check_level(level)
            stmt = stmt.where(a.level == level)
        with self.engine.connect() as conn:
            found = conn.execute(stmt.order_by(a.level, a.store_id, a.sku)).mappings()
            return [_to_accuracy(r) for r in found]

    # -- decisions -----------------------------------------------------------------------------

    def record_decision(self, decision: Decision) -> None:
        validate_tenant(decision.tenant_id)
        _check_id(decision.check_id)
        _check_action(decision.action)
        values = asdict(decision)
        values["reasons"] = _json(values["reasons"], "reasons")
        values["details"] = _json(values["details"], "details")
        with self.engine.begin() as conn:
            conn.execute(monitor_decisions.insert().values(**values))

    def update_decision(
        self,
        tenant: str,
        check_id: str,
        *,
        action: str,
        run_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record what became of a triggered retraining (the run id, or why it failed)."""
        validate_tenant(tenant)
        _check_action(action)
        d = monitor_decisions.c
        values: dict[str, Any] = {"action": action}
        if run_id is not None:
            values["run_id"] = run_id
        if details is not None:
            values["details"] = _json(details, "details")
        with self.engine.begin() as conn:
            done = conn.execute(
                monitor_decisions.update()
                .where(d.tenant_id == tenant, d.check_id == check_id)
                .values(**values)
            )
        if done.rowcount != 1:
            raise ForecastStoreError(f"tenant {tenant!r} has no monitoring check {check_id!r}")

    def decisions(self, tenant: str, limit: int = 20) -> list[Decision]:
        """The tenant's newest decisions, newest first."""
        validate_tenant(tenant)
        d = monitor_decisions.c
        stmt = (
            sa.select(monitor_decisions)
            .where(d.tenant_id == tenant)
            .order_by(d.checked_at.desc(), d.check_id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_to_decision(r) for r in conn.execute(stmt).mappings()]

    def last_decision(self, tenant: str) -> Decision | None:
        found = self.decisions(tenant, limit=1)
        return found[0] if found else None

    def decision(self, tenant: str, check_id: str) -> Decision | None:
        validate_tenant(tenant)
        d = monitor_decisions.c
        stmt = sa.select(monitor_decisions).where(d.tenant_id == tenant, d.check_id == check_id)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return _to_decision(row) if row is not None else None


def forecasts_between(
    engine: Engine, tenant: str, set_id: str, start: date, end: date
) -> list[tuple[str, str, date, int, float, float, float, float]]:
    """Rows ``(store_id, sku, target_date, horizon_day, p10, p50, p90, mean)`` of one set in a date range.

    Monitoring scores every series at once, so this reads the range in one statement instead of
    paging through :meth:`SqlForecastStore.query`.
    """
    from inference.store.tables import forecasts

    validate_tenant(tenant)
    f = forecasts.c
    stmt = sa.select(f.store_id, f.sku, f.target_date, f.horizon_day, f.p10, f.p50, f.p90, f["mean"]).where(
        f.tenant_id == tenant, f.forecast_set_id == set_id, f.target_date >= start, f.target_date <= end
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]  # type: ignore[misc]


def _accuracy_values(
    tenant: str, check_id: str, checked_at: datetime, n: int, row: AccuracyRow
) -> dict[str, Any]:
    where = f"accuracy row {n}"
    _check_level(row.level, where)
    needs = {"total": (), "store": ("store_id",), "sku": ("store_id", "sku")}[row.level]
    for column in ("store_id", "sku"):
        value = getattr(row, column)
        if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
            raise ForecastStoreError(
                f"{where}: {column} must be a string of at most {MAX_ID_LENGTH} characters"
            )
        if (column in needs) != (value != ALL):
            raise ForecastStoreError(
                f"{where}: a {row.level!r} row needs {', '.join(needs) or 'no key'}; "
                f"{column}={value!r} does not fit (use '' for a column the level does not use)"
            )
    if row.start_date > row.end_date:
        raise ForecastStoreError(f"{where}: start_date {row.start_date} is after end_date {row.end_date}")
    if row.n < 0:
        raise ForecastStoreError(f"{where}: n must be >= 0, got {row.n}")
    values = asdict(row)
    values.update(tenant_id=tenant, check_id=check_id, checked_at=checked_at)
    for metric in ("wape", "bias", "pinball", "coverage"):
        values[metric] = _metric(values[metric])
    return values


def _metric(value: float | None) -> float | None:
    """NaN or infinity (a WAPE over zero actuals) is stored as NULL: undefined, not a number."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _json(value: Any, name: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False, default=str))
    except (TypeError, ValueError) as exc:
        raise ForecastStoreError(f"decision {name} must be JSON-serialisable without NaN: {exc}") from None


def _check_level(level: str, where: str = "level") -> None:
    if level not in LEVELS:
        raise ForecastStoreError(f"{where}: level must be one of {', '.join(LEVELS)}, got {level!r}")


def _check_action(action: str) -> None:
    if action not in ACTIONS:
        raise ForecastStoreError(f"decision action must be one of {', '.join(ACTIONS)}, got {action!r}")


def _check_id(check_id: str) -> None:
    if not isinstance(check_id, str) or not 0 < len(check_id) <= 36:
        raise ForecastStoreError(f"check_id must be 1-36 characters, got {check_id!r}")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _to_accuracy(row: sa.RowMapping) -> AccuracyRow:
    return AccuracyRow(
        level=row["level"],
        store_id=row["store_id"],
        sku=row["sku"],
        forecast_set_id=row["forecast_set_id"],
        model_version=row["model_version"],
        start_date=row["start_date"],
        end_date=row["end_date"],
        n=row["n"],
        wape=row["wape"],
        bias=row["bias"],
        pinball=row["pinball"],
        coverage=row["coverage"],
        check_id=row["check_id"],
        checked_at=_utc(row["checked_at"]),
    )


def _to_decision(row: sa.RowMapping) -> Decision:
    return Decision(
        tenant_id=row["tenant_id"],
        check_id=row["check_id"],
        checked_at=_utc(row["checked_at"]),
        origin=row["origin"],
        retrain=bool(row["retrain"]),
        action=row["action"],
        reasons=list(row["reasons"] or []),
        run_id=row["run_id"],
        model_version=row["model_version"],
        actuals_through=row["actuals_through"],
        details=dict(row["details"] or {}),
    )
