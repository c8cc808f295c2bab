"""Checks forecast tuples on their way into the store, at the one place every writer passes.

SQLite would store a string in a REAL column without a word, and a crossed quantile would reach
applications as a nonsensical interval, so each row is checked here, once, while it streams past
(no copy of the set is held in memory). The hot path is a few identity checks per value; anything
that is not already a plain ``str``/``date``/``int``/``float`` (numpy scalars, pandas Timestamps)
goes through a slower path that converts it or names the row and column it cannot accept.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from inference.store.base import FORECAST_COLUMNS, ForecastDataError

MAX_ID_LENGTH = 128
_INF = float("inf")


class RowChecker:
    """Validates and normalises rows chunk by chunk, and keeps the set's summary as it goes."""

    def __init__(self) -> None:
        self.rows = 0
        self.series: set[tuple[str, str]] = set()
        self.start: date | None = None
        self.end: date | None = None

    def check(
        self, chunk: Sequence[tuple[Any, ...]], tenant: str, set_id: str, *, iso_dates: bool
    ) -> list[tuple[Any, ...]]:
        """Rows of ``chunk`` as ``(tenant, set_id, *FORECAST_COLUMNS)``; dates as ISO text if asked."""
        out: list[tuple[Any, ...]] = []
        append = out.append
        series_add = self.series.add
        last_key: tuple[str, str] | None = None
        start, end, n = self.start, self.end, self.rows
        for row in chunk:
            n += 1
            try:
                store_id, sku, day, horizon, p10, p50, p90, mean = row
            except (TypeError, ValueError):
                raise ForecastDataError(
                    n, None, f"expected {len(FORECAST_COLUMNS)} values in the order "
                    f"{', '.join(FORECAST_COLUMNS)}, got {_show(row)}"
                ) from None  # fmt: skip
            if type(store_id) is not str or not 0 < len(store_id) <= MAX_ID_LENGTH:
                _bad_id(n, "store_id", store_id)
            if type(sku) is not str or not 0 < len(sku) <= MAX_ID_LENGTH:
                _bad_id(n, "sku", sku)
            if type(day) is not date:
                day = _as_date(n, day)
            if type(horizon) is not int:
                horizon = _as_int(n, horizon)
            if horizon < 1:
                raise ForecastDataError(
                    n, "horizon_day", f"must be >= 1 (1 = the first forecast day), got {horizon}"
                )
            if (
                type(p10) is not float
                or type(p50) is not float
                or type(p90) is not float
                or type(mean) is not float
            ):
                p10, p50, p90, mean = (
                    _as_float(n, c, v)
                    for c, v in zip(FORECAST_COLUMNS[4:], (p10, p50, p90, mean), strict=True)
                )
            if not -_INF < p10 <= p50 <= p90 < _INF or not -_INF < mean < _INF:
                _bad_quantiles(n, p10, p50, p90, mean)
            if start is None or day < start:
                start = day
            if end is None or day > end:
                end = day
            key = (store_id, sku)
            if key != last_key:
                series_add(key)
                last_key = key
            stored_day = day.isoformat() if iso_dates else day
            append((tenant, set_id, store_id, sku, stored_day, horizon, p10, p50, p90, mean))
        self.start, self.end, self.rows = start, end, n
        return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad_id(n: int, column: str, value: Any) -> None:
    raise ForecastDataError(
        n, column, f"expected a non-empty string of at most {MAX_ID_LENGTH} characters, got {_show(value)}"
    )


def _as_date(n: int, value: Any) -> date:
    if isinstance(value, datetime):  # includes pandas.Timestamp
        return value.date()
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    raise ForecastDataError(n, "target_date", f"expected a date, got {_show(value)}")


def _as_int(n: int, value: Any) -> int:
    if isinstance(value, bool):
        raise ForecastDataError(n, "horizon_day", f"expected an integer, got {value!r}")
    try:
        return operator.index(value)  # accepts numpy integers, refuses floats
    except TypeError:
        raise ForecastDataError(n, "horizon_day", f"expected an integer, got {_show(value)}") from None


def _as_float(n: int, column: str, value: Any) -> float:
    if isinstance(value, bool | str | bytes) or value is None:
        raise ForecastDataError(n, column, f"expected a number, got {_show(value)}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ForecastDataError(n, column, f"expected a number, got {_show(value)}") from None


def _bad_quantiles(n: int, p10: float, p50: float, p90: float, mean: float) -> None:
    values = f"p10={p10}, p50={p50}, p90={p90}, mean={mean}"
    if not all(-_INF < v < _INF for v in (p10, p50, p90, mean)):
        raise ForecastDataError(n, None, f"forecast values must be finite numbers, got {values}")
    raise ForecastDataError(n, None, f"quantiles must satisfy p10 <= p50 <= p90 (sort them), got {values}")
