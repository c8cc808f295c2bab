"""One record per store x SKU x date: transaction lines summed, daily rows de-duplicated.

Transaction lines (an invoice column, times of day, Shopify orders) are summed per day: returns
and cancellations carry negative quantities and net off against that day's sales, revenue is summed
with its sign, and the day's ``unit_price`` is the price that reproduces the day's sales revenue:
Σ (quantity x price) / Σ quantity over lines with a positive quantity and a positive price (each
line's price weighted by its quantity, so a line selling 100 units counts 100 times). Returns and
zero-price lines (free samples, postage corrections) are left out of the price because they say
nothing about what a unit sold for.

Files that are already daily (or weekly) must not be summed: two rows for the same key are either a
repeated export (identical: one is kept, the report counts them) or a contradiction (different
values: an error naming both rows, since we cannot know which one is right).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import RECORD_KEY

KEY = list(RECORD_KEY)
_SUMS = ("units", "revenue", "_revenue_n", "_sale_units", "_sale_value", "_lines")


def partial_daily(lines: pd.DataFrame) -> pd.DataFrame:
    """Per-chunk daily sums; :func:`finish_daily` combines the chunks' partials."""
    frame = lines[KEY].copy()
    units = lines["units"]
    frame["units"] = units
    has_value = "revenue" in lines or "unit_price" in lines
    value = lines["revenue"] if "revenue" in lines else units * lines.get("unit_price", np.nan)
    if has_value:
        frame["revenue"] = value
        frame["_revenue_n"] = value.notna().astype(np.int64)
        sale = ((units > 0) & (value > 0)).to_numpy()
        frame["_sale_units"] = units.where(sale, 0.0)
        frame["_sale_value"] = value.where(sale, 0.0)
    frame["_lines"] = 1
    aggregations: dict[str, tuple[str, str]] = {c: (c, "sum") for c in _SUMS if c in frame}
    if "channel" in lines:
        frame["channel"] = lines["channel"]
        aggregations |= {"_channel_min": ("channel", "min"), "_channel_max": ("channel", "max")}
    if "on_promotion" in lines:
        frame["on_promotion"] = lines["on_promotion"]
        aggregations["on_promotion"] = ("on_promotion", "max")
    grouped = frame.groupby(KEY, sort=False, dropna=False).agg(**aggregations)  # type: ignore[call-overload]
    return grouped.reset_index()


def finish_daily(partials: list[pd.DataFrame]) -> pd.DataFrame:
    """The canonical daily frame from all partials (revenue stays empty when no line had one)."""
    if not partials:
        return pd.DataFrame(columns=[*KEY, "units"])
    frame = pd.concat(partials, ignore_index=True)
    aggregations: dict[str, tuple[str, str]] = {c: (c, "sum") for c in _SUMS if c in frame}
    if "_channel_min" in frame:
        aggregations |= {"_channel_min": ("_channel_min", "min"), "_channel_max": ("_channel_max", "max")}
    if "on_promotion" in frame:
        aggregations["on_promotion"] = ("on_promotion", "max")
    daily = frame.groupby(KEY, sort=True).agg(**aggregations).reset_index()  # type: ignore[call-overload]
    if "_sale_units" in daily:
        with np.errstate(divide="ignore", invalid="ignore"):
            price = daily["_sale_value"] / daily["_sale_units"]
        daily["unit_price"] = price.where(daily["_sale_units"] > 0)
        daily["revenue"] = daily["revenue"].where(daily["_revenue_n"] > 0)
    if "_channel_min" in daily:
        same = daily["_channel_min"] == daily["_channel_max"]
        daily["channel"] = daily["_channel_min"].where(same, "mixed").where(daily["_channel_min"].notna())
    return daily.drop(columns=[c for c in daily.columns if c.startswith("_")])


def deduplicate_daily(lines: pd.DataFrame) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """Drop exact repeats of a record; return (records, repeats dropped, conflicting rows).

    The conflicts frame holds every row whose key appears with different values, with the file row
    of the first row it contradicts, so the error can name both.
    """
    values = [c for c in lines.columns if not c.startswith("_")]
    repeated = lines.duplicated(subset=values, keep="first").to_numpy()
    unique = lines.loc[~repeated]
    clash = unique.duplicated(subset=KEY, keep=False).to_numpy()
    conflicts = unique.loc[clash, ["_row", *KEY]].copy()
    if not conflicts.empty:
        first = conflicts.groupby(KEY, sort=False)["_row"].transform("min")
        conflicts["first_row"] = first.to_numpy()
    return unique.loc[~clash], int(repeated.sum()), conflicts
