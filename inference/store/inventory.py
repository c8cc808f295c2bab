"""Inventory recommendations on their way into the store, written with their forecast set.

The rows are loaded while the set is still ``writing`` and keyed by its id, so they become
visible in the same transaction that makes the set current and leave with it (retention, a
failed write, the abandoned-set sweep). Each row is checked here, at the one place every writer
passes: a recommendation for a series the set does not forecast would be advice without a
forecast behind it, and SQLite would happily store text in a REAL column.

Light imports only (no pandas/numpy): the API's Lambda package imports the store.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from inference.store.base import INVENTORY_COLUMNS, ForecastDataError
from inference.store.rows import MAX_ID_LENGTH
from inference.store.tables import inventory_recommendations

_NUMBERS = ("lead_time_demand", "safety_stock", "reorder_point", "order_quantity")


def load_inventory(
    conn: Connection,
    tenant: str,
    set_id: str,
    chunks: Iterable[Sequence[tuple[Any, ...]]],
    series: set[tuple[str, str]],
) -> int:
    """Insert every recommendation of ``chunks`` for the set; returns how many were written."""
    written, seen = 0, set()
    for chunk in chunks:
        rows = []
        for row in chunk:
            written += 1
            checked = _check(written, row, series)
            key = (checked["store_id"], checked["sku"])
            if key in seen:
                raise ForecastDataError(
                    written, None, f"series {key} has a recommendation already", "inventory"
                )
            seen.add(key)
            rows.append({"tenant_id": tenant, "forecast_set_id": set_id, **checked})
        if rows:
            conn.execute(inventory_recommendations.insert(), rows)
    return written


def _check(n: int, row: Sequence[Any], series: set[tuple[str, str]]) -> dict[str, Any]:
    if not isinstance(row, Sequence) or isinstance(row, str) or len(row) != len(INVENTORY_COLUMNS):
        raise ForecastDataError(
            n, None, f"expected {len(INVENTORY_COLUMNS)} values in the order {', '.join(INVENTORY_COLUMNS)}",
            "inventory",
        )  # fmt: skip
    values = dict(zip(INVENTORY_COLUMNS, row, strict=True))
    for column in ("store_id", "sku"):
        if not isinstance(values[column], str) or not 0 < len(values[column]) <= MAX_ID_LENGTH:
            raise ForecastDataError(
                n, column, f"expected a non-empty string, got {values[column]!r}", "inventory"
            )
    if (values["store_id"], values["sku"]) not in series:
        raise ForecastDataError(
            n,
            None,
            f"series ({values['store_id']!r}, {values['sku']!r}) is not forecast in this set",
            "inventory",
        )
    values["lead_time_days"] = _whole(n, values["lead_time_days"])
    level = _number(n, "service_level", values["service_level"])
    if not 0 < level < 1:
        raise ForecastDataError(n, "service_level", f"must be between 0 and 1, got {level}", "inventory")
    values["service_level"] = level
    for column in _NUMBERS:
        number = _number(n, column, values[column])
        if number < 0:
            raise ForecastDataError(n, column, f"must be >= 0, got {number}", "inventory")
        values[column] = number
    on_hand = values["on_hand"]
    values["on_hand"] = None if on_hand is None or _is_nan(on_hand) else _number(n, "on_hand", on_hand)
    risk = values["stockout_risk"]
    if type(risk).__name__ not in ("bool", "bool_"):
        raise ForecastDataError(n, "stockout_risk", f"expected True or False, got {risk!r}", "inventory")
    values["stockout_risk"] = bool(risk)
    return values


def _whole(n: int, value: Any) -> int:
    try:
        days = operator.index(value) if not isinstance(value, bool) else 0
    except TypeError:
        days = 0
    if days < 1:
        raise ForecastDataError(
            n, "lead_time_days", f"expected a whole number >= 1, got {value!r}", "inventory"
        )
    return days


def _number(n: int, column: str, value: Any) -> float:
    if isinstance(value, bool | str | bytes) or value is None:
        raise ForecastDataError(n, column, f"expected a number, got {value!r}", "inventory")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ForecastDataError(n, column, f"expected a number, got {value!r}", "inventory") from None
    if not math.isfinite(number):
        raise ForecastDataError(n, column, f"expected a finite number, got {number}", "inventory")
    return number


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
