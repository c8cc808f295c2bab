"""Outages: periods whose sales never arrived, filled from the weeks before instead of read as zero.

Retail exports omit the periods a series sold nothing, so a missing (series, period) is a zero
everywhere else in OrderNimbus (``features.engineering.to_wide``). That is wrong when the data for
a stretch was lost (a till outage, an export that never ran): every member then learns a
collapse in demand that never happened. On the three-month outage of ``benchmarks/dev_windows.py
--only young_tenants`` the ensemble's WAPE was 2.2x AutoETS's. Ingest names such stretches (no
record in any series for a week or more); the tenant says which of them were outages
(``ordernimbus outage add``), since only they know whether the shop was shut.

What a marked outage changes:

- **Training input**: inside the outage, every series that had started before it and has no record
  on a period gets the mean of its own last ``LOOKBACK`` periods before the outage, per weekday for
  daily data (a shop's Saturday is not its Monday). Only data before the outage is used, so a
  backtest window never sees its future through the fill. Records inside the outage are real
  sales and are kept as they are.
- **Scoring**: periods inside an outage have no known truth; backtests, the gate and accuracy
  monitoring leave them out rather than score forecasts against zeros (``covered``).

Outages are stored with the tenant's sales, in the Parquet file's metadata beside the frequency
(``features.lake.SalesLake``), so every reader of the file (the pipeline steps on either runner,
the monitor) sees the same list, and marking one swaps the file atomically like an upload.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.frequency import base, pandas_alias, period, period_unit
from ordernimbus.errors import OrderNimbusError
from ordernimbus.text import ISO_DAY

METADATA_KEY = b"ordernimbus.outages"
# Periods before an outage whose mean fills it: four of each weekday, or eight weeks.
LOOKBACK = {"D": 28, "W": 8}
# The dates an outage may name: sales records, not pandas' limits (2262-04-11 marked once, and
# every later read of the list overflowed in pd.date_range).
EARLIEST, LATEST = pd.Timestamp("1900-01-01"), pd.Timestamp("2199-12-31")


class OutageError(OrderNimbusError):
    title = "Invalid outage"


@dataclass(frozen=True)
class Outage:
    """Dates ``first`` to ``last`` (inclusive) of one store, or of every store when ``store`` is None."""

    first: pd.Timestamp
    last: pd.Timestamp
    store: str | None = None

    @classmethod
    def parse(cls, first: str, last: str, store: str | None = None) -> Outage:
        """From the CLI's or the metadata's ISO dates, refusing what cannot be an outage."""
        if not all(ISO_DAY.match(str(text)) for text in (first, last)):  # 01/03/2025 read as 3 Jan
            raise OutageError(f"outage dates {first!r} to {last!r}: expected YYYY-MM-DD")
        try:
            start, end = pd.Timestamp(first), pd.Timestamp(last)
        except ValueError as exc:
            raise OutageError(f"outage dates {first!r} to {last!r}: expected YYYY-MM-DD ({exc})") from None
        if start.tz is not None or end.tz is not None or start != start.normalize() or end != end.normalize():
            raise OutageError(f"outage dates {first!r} to {last!r}: expected dates (YYYY-MM-DD), not times")
        if end < start:
            raise OutageError(f"outage {first} to {last}: the last date is before the first")
        if start < EARLIEST or end > LATEST:
            raise OutageError(
                f"outage {first} to {last}: expected dates between {EARLIEST.date()} and {LATEST.date()}"
            )
        if store is not None and not store.strip():
            raise OutageError("outage store: expected a store id, got an empty string")
        return cls(start, end, store)

    def label(self) -> str:
        where = f" in store {self.store}" if self.store is not None else ""
        return f"{self.first.date()} to {self.last.date()}{where}"

    def to_json(self) -> dict[str, str | None]:
        return {"first": str(self.first.date()), "last": str(self.last.date()), "store": self.store}


def dumps(outages: Iterable[Outage]) -> bytes:
    return json.dumps([o.to_json() for o in sorted(set(outages), key=_order)]).encode()


def loads(raw: bytes | str | None) -> list[Outage]:
    """Outages from the stored JSON; nothing stored means none."""
    return from_records(json.loads(raw)) if raw else []


def from_records(records: Iterable[dict[str, Any]]) -> list[Outage]:
    """Outages from their ``to_json`` dicts (the pipeline's ``meta.json`` carries them so)."""
    return [Outage.parse(o["first"], o["last"], o.get("store")) for o in records]


def read_outages(path: Path) -> list[Outage]:
    """The outages stored in a tenant's sales file's metadata (``features.lake.SalesLake``)."""
    import pyarrow.parquet as pq

    return loads((pq.read_schema(path).metadata or {}).get(METADATA_KEY))


def _order(o: Outage) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    return (o.first, o.last, o.store or "")


def describe(sales: pd.DataFrame, outage: Outage, freq: str) -> dict[str, Any]:
    """What marking ``outage`` means for ``sales``: its length, the series it fills, the records it keeps."""
    before = _stores(sales, outage)
    started = before.loc[before["date"] < outage.first, ["store_id", "sku"]].drop_duplicates()
    last_sale = sales["date"].max() if len(sales) else None
    return {
        "periods": len(pd.date_range(outage.first, outage.last, freq=pandas_alias(freq))),
        "unit": period_unit(freq),
        "series": len(started),
        "records": int(covered(sales, [outage]).sum()),
        "lookback": LOOKBACK[base(freq)],
        "after_data": bool(last_sale is not None and outage.last > last_sale),
        "last_sale": str(last_sale.date()) if last_sale is not None else None,
    }


def covered(frame: pd.DataFrame, outages: Sequence[Outage]) -> np.ndarray:
    """Which rows of ``frame`` (``store_id`` and ``target_date``, or ``date``) fall inside an outage:
    the periods whose truth is unknown."""
    column = "target_date" if "target_date" in frame.columns else "date"
    inside = np.zeros(len(frame), dtype=bool)
    if not outages or frame.empty:
        return inside
    dates = pd.DatetimeIndex(frame[column])
    stores = frame["store_id"].astype(str).to_numpy()
    for o in outages:
        hit = (dates >= o.first) & (dates <= o.last)
        if o.store is not None:
            hit &= stores == o.store
        inside |= np.asarray(hit)
    return inside


def fill(sales: pd.DataFrame, outages: Sequence[Outage], freq: str) -> tuple[pd.DataFrame, int]:
    """``sales`` with every started series' missing periods inside the outages filled; (frame, rows added).

    Only periods up to the last date of ``sales`` are filled: an outage still going on at the end
    of the data does not extend the history (forecasts start after the last real sale), and a
    build trained ``--until`` a date inside an outage stops there. Outages are filled oldest first,
    so a later outage's lookback may include an earlier one's fill rather than its zeros.
    """
    added = 0
    if sales.empty:
        return sales, 0
    end = sales["date"].max()
    for outage in sorted(outages, key=_order):
        rows = _fill_rows(sales, outage, freq, end)
        if not rows.empty:
            sales = pd.concat([sales, rows], ignore_index=True)
            added += len(rows)
    if added:
        sales = sales.sort_values(["store_id", "sku", "date"], ignore_index=True)
    return sales, added


def _fill_rows(sales: pd.DataFrame, outage: Outage, freq: str, end: pd.Timestamp) -> pd.DataFrame:
    """The rows one outage adds: each started series' lookback mean on its periods without a record."""
    dates = pd.date_range(outage.first, min(outage.last, end), freq=pandas_alias(freq))
    scope = _stores(sales, outage)
    before = scope[scope["date"] < outage.first]
    if before.empty or dates.empty:
        return sales.iloc[:0]
    step = period(freq)
    lookback = LOOKBACK[base(freq)]
    start = outage.first - lookback * step
    recent = before[before["date"] >= start]
    index = pd.date_range(start, outage.first - step, freq=pandas_alias(freq))
    series = before[["store_id", "sku"]].drop_duplicates()
    keys = pd.MultiIndex.from_frame(series)
    wide = (
        recent.pivot_table(index="date", columns=["store_id", "sku"], values="units", aggfunc="sum")
        if len(recent)
        else pd.DataFrame(index=index, columns=keys, dtype=float)
    ).reindex(index=index, columns=keys)
    first_seen = before.groupby(["store_id", "sku"])["date"].min().reindex(keys)
    alive = index.to_numpy()[:, None] >= first_seen.to_numpy()[None, :]  # zero once started, else unknown
    values = np.where(alive, wide.fillna(0.0).to_numpy(dtype=float), np.nan)
    if base(freq) == "D":
        profile = _weekday_means(values, index)
        fills = profile[dates.dayofweek.to_numpy()]  # (outage days x series)
    else:
        fills = np.broadcast_to(_nanmean(values), (len(dates), values.shape[1]))
    grid = pd.DataFrame(
        {
            "store_id": np.tile(series["store_id"].to_numpy(), len(dates)),
            "sku": np.tile(series["sku"].to_numpy(), len(dates)),
            "date": np.repeat(dates.to_numpy(), len(series)),
            "units": fills.reshape(-1),
        }
    )
    grid = grid[grid["units"].notna() & (grid["units"] != 0)]
    seen = sales.loc[covered(sales, [outage]), ["store_id", "sku", "date"]]
    grid = grid.merge(seen.assign(_seen=True), on=["store_id", "sku", "date"], how="left")
    grid = grid[grid["_seen"].isna()].drop(columns="_seen")
    if "tenant_id" in sales.columns and len(sales):
        grid["tenant_id"] = sales["tenant_id"].iloc[0]
    return grid.reindex(columns=sales.columns).astype(
        {c: sales[c].dtype for c in ("store_id", "sku", "date", "units") if c in sales.columns}
    )


def _stores(sales: pd.DataFrame, outage: Outage) -> pd.DataFrame:
    """The rows of the stores ``outage`` covers: one store's, or every store's."""
    return sales if outage.store is None else sales[sales["store_id"].astype(str) == outage.store]


def _weekday_means(values: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
    """(7 x series) mean per weekday; a weekday the lookback has no value for takes the overall mean."""
    overall = _nanmean(values)
    weekdays = index.dayofweek.to_numpy()
    profile = np.tile(overall, (7, 1))
    for day in range(7):
        rows = values[weekdays == day]
        if len(rows):
            mean = _nanmean(rows)
            profile[day] = np.where(np.isnan(mean), overall, mean)
    return profile


def _nanmean(values: np.ndarray) -> np.ndarray:
    counts = np.sum(~np.isnan(values), axis=0)
    sums = np.nansum(values, axis=0)
    return np.divide(sums, counts, out=np.full(values.shape[1], np.nan), where=counts > 0)
