"""Forecast store entities and port. Importable without pandas (the API's Lambda package has none).

A forecast set is every forecast of one run for one tenant. It is written in full while invisible,
then made current in one transaction; readers only ever see complete sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from ordernimbus.errors import NotFoundError, OrderNimbusError

FORECAST_COLUMNS = (
    "store_id",
    "sku",
    "target_date",
    "horizon_day",
    "p10",
    "p50",
    "p90",
    "mean",
)
# One recommendation per series of a set (inference/inventory.py computes them from the quantiles).
INVENTORY_COLUMNS = (
    "store_id",
    "sku",
    "lead_time_days",
    "service_level",
    "lead_time_demand",
    "safety_stock",
    "reorder_point",
    "order_quantity",
    "on_hand",
    "stockout_risk",
)


@dataclass(frozen=True)
class ForecastSet:
    set_id: str
    tenant_id: str
    model_version: int
    generated_at: datetime
    rows: int
    series: int
    start_date: date | None
    end_date: date | None
    status: str  # "writing" | "complete"
    is_current: bool
    metadata: dict[str, Any]
    completed_at: datetime | None = None


@dataclass(frozen=True)
class ForecastRow:
    tenant_id: str
    store_id: str
    sku: str
    target_date: date
    horizon_day: int
    p10: float
    p50: float
    p90: float
    mean: float
    model_version: int
    forecast_set_id: str
    generated_at: datetime


@dataclass(frozen=True)
class Page:
    rows: list[ForecastRow]
    next_cursor: str | None
    # The set the rows were read from, in the same snapshot (so metadata and rows always agree).
    forecast_set: ForecastSet | None = None


class ForecastStoreError(OrderNimbusError):
    """A forecast store request that cannot be served as asked (bad parameter, bad rows)."""

    title = "Forecast store request refused"


class ForecastDataError(ForecastStoreError):
    """A forecast row that breaks the record contract; names the row (1-based across chunks) and column."""

    title = "Invalid forecast rows"

    def __init__(self, row: int, column: str | None, message: str, what: str = "forecast") -> None:
        self.row = row
        self.column = column
        where = f"{what} row {row}" + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")


class InvalidCursorError(ForecastStoreError):
    """A pagination cursor that is malformed or was issued for another tenant, set or filter."""

    title = "Invalid pagination cursor"


class ForecastSetNotFoundError(NotFoundError, ForecastStoreError):
    """No complete forecast set for this tenant (or not this set id): nothing to serve yet."""

    title = "Forecast set not found"


class ForecastStore(Protocol):
    def write_set(
        self,
        tenant: str,
        model_version: int,
        chunks: Iterable[Sequence[tuple[Any, ...]]],
        metadata: dict[str, Any] | None = None,
        inventory: Iterable[Sequence[tuple[Any, ...]]] | None = None,
    ) -> ForecastSet:
        """Write every chunk (tuples in FORECAST_COLUMNS order) and the set's inventory
        recommendations (INVENTORY_COLUMNS order), then make the set current atomically."""
        ...

    def current_set(self, tenant: str) -> ForecastSet | None: ...

    def list_sets(self, tenant: str) -> list[ForecastSet]: ...

    def query(
        self,
        tenant: str,
        *,
        store_id: str | None = None,
        sku: str | None = None,
        start: date | None = None,
        end: date | None = None,
        limit: int = 100,
        cursor: str | None = None,
        set_id: str | None = None,
    ) -> Page: ...

    def ping(self) -> None:
        """Raise if the backing database cannot be reached (readiness probes)."""
        ...
