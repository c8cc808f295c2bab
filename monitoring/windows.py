"""Which weeks a check compares, and the dense per-series panel it compares them on.

The current window is the latest weeks of actuals that arrived after training. The reference is
taken from the training window, one year (364 days: same weekdays) earlier when the training data
reaches back that far. Retail demand is seasonal, so comparing October with the August–September
just before it would call every autumn a drift; comparing it with last October does not.
Without a year of history the reference is the end of the training window, and the summary says
so (expect seasonal false alarms then).

Retail exports omit days without sales, so the lake has no row for them. The panel puts them back:
every series from its first sale on gets one row per period, with 0 units where the lake has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.frequency import base, pandas_alias

YEAR = pd.Timedelta(days=364)
MIN_WEEKLY_PERIODS = 4  # a two-point weekly window would make every test meaningless
MIN_CURRENT_PERIODS = {"D": 7, "W": 2}
YEAR_OVER_YEAR = "year-over-year"
END_OF_TRAINING = "end of training"


@dataclass(frozen=True)
class Windows:
    current_start: pd.Timestamp
    current_end: pd.Timestamp
    reference_start: pd.Timestamp
    reference_end: pd.Timestamp
    alignment: str  # YEAR_OVER_YEAR or END_OF_TRAINING

    def as_dict(self) -> dict[str, str]:
        return {
            "current": f"{self.current_start.date()}..{self.current_end.date()}",
            "reference": f"{self.reference_start.date()}..{self.reference_end.date()}",
            "alignment": self.alignment,
        }


def step(freq: str) -> pd.Timedelta:
    return pd.Timedelta(days=7 if base(freq) == "W" else 1)


def choose_windows(
    last_date: pd.Timestamp,
    train_start: pd.Timestamp,
    train_end: pd.Timestamp,
    freq: str,
    current_weeks: int,
) -> Windows | None:
    """The windows of a check, or None when too little has arrived since training to compare."""
    one = step(freq)
    periods = current_weeks * 7 if base(freq) == "D" else max(current_weeks, MIN_WEEKLY_PERIODS)
    current_start = max(last_date - (periods - 1) * one, train_end + one)
    n = (last_date - current_start) // one + 1
    if n < MIN_CURRENT_PERIODS[base(freq)]:
        return None
    ref_start, ref_end = current_start - YEAR, last_date - YEAR
    if ref_start >= train_start and ref_end <= train_end:
        return Windows(current_start, last_date, ref_start, ref_end, YEAR_OVER_YEAR)
    ref_start = max(train_end - (n - 1) * one, train_start)
    return Windows(current_start, last_date, ref_start, train_end, END_OF_TRAINING)


def first_sales(sales: pd.DataFrame) -> pd.Series:
    """Each series' first date in the lake: a series exists from then on."""
    return sales.groupby(["store_id", "sku"], sort=False)["date"].min()


def dense_panel(
    sales: pd.DataFrame,
    starts: pd.Series,
    start: pd.Timestamp,
    end: pd.Timestamp,
    freq: str,
    *,
    covariates: tuple[str, ...] = ("unit_price", "on_promotion"),
) -> pd.DataFrame:
    """One row per live series x period in [start, end]: store_id, sku, date, units, covariates.

    ``starts`` is :func:`first_sales` of the whole lake (so a series that sold before the window
    but not in it is a run of zeros, not absent). Covariates are the lake's values, NaN on days
    without a row (a price is only known for days it was recorded).
    """
    dates = pd.date_range(start, end, freq=pandas_alias(freq))
    live = starts[starts <= end]
    if live.empty or dates.empty:
        return _empty()
    grid = pd.DataFrame(
        {
            "store_id": live.index.get_level_values(0).repeat(len(dates)),
            "sku": live.index.get_level_values(1).repeat(len(dates)),
            "date": np.tile(dates.to_numpy(), len(live)),
            "_first": live.to_numpy().repeat(len(dates)),
        }
    )
    grid = grid[grid["date"] >= grid["_first"]].drop(columns="_first")
    kept = [c for c in covariates if c in sales.columns]
    window = sales.loc[
        (sales["date"] >= start) & (sales["date"] <= end), ["store_id", "sku", "date", "units", *kept]
    ]
    panel = grid.merge(window, on=["store_id", "sku", "date"], how="left")
    panel["units"] = panel["units"].fillna(0.0).astype(float)
    return panel.reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "store_id": pd.Series(dtype=str),
            "sku": pd.Series(dtype=str),
            "date": pd.Series(dtype="datetime64[ns]"),
            "units": pd.Series(dtype=float),
        }
    )
