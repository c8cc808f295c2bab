"""Which weeks a check compares, and the dense per-series panel it compares them on.

The current window is the latest weeks of actuals that arrived after training. The reference is
taken from the training window, one year (364 days: same weekdays) earlier when the training data
reaches back that far. Retail demand is seasonal, so comparing October with the August–September
just before it would call every autumn a drift; comparing it with last October does not.
Without a year of history the reference is the end of the training window, and the summary says
so (expect seasonal false alarms then).

Each window also has a *level* window: the same number of periods just before it ends its run-up
(the end of training for the current window, the same dates a year earlier for the reference).
Dividing a series' units by its level gives an index that a year's growth, or a level change the
model has already been trained on, leaves alone, while a change after training moves it.

Retail exports omit days without sales, so the lake has no row for them. The panel puts them back:
every series from its first sale on gets one row per period, with 0 units where the lake has none.
Periods the tenant marked as outages are not such zeros: their sales were lost. ``drift_panels``
leaves them out of the window they fall in *and* the matching periods out of the window it is
compared with, so an outage is neither a collapse of demand nor a change in the weekday mix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.frequency import base, pandas_alias, period
from features.outages import Outage, covered

YEAR = pd.Timedelta(days=364)
MIN_WEEKLY_PERIODS = 4  # a two-point weekly window would make every test meaningless
MIN_CURRENT_PERIODS = {"D": 7, "W": 2}
YEAR_OVER_YEAR = "year-over-year"
END_OF_TRAINING = "end of training"

Span = tuple[pd.Timestamp, pd.Timestamp]


@dataclass(frozen=True)
class Windows:
    current: Span
    reference: Span
    current_level: Span  # the end of training
    reference_level: Span  # a year before that, or the reference itself (end-of-training alignment)
    alignment: str  # YEAR_OVER_YEAR or END_OF_TRAINING

    def as_dict(self) -> dict[str, str]:
        return {
            "current": _span(self.current),
            "reference": _span(self.reference),
            "current_level": _span(self.current_level),
            "reference_level": _span(self.reference_level),
            "alignment": self.alignment,
        }


def _span(span: Span) -> str:
    return f"{span[0].date()}..{span[1].date()}"


def choose_windows(
    last_date: pd.Timestamp,
    train_start: pd.Timestamp,
    train_end: pd.Timestamp,
    freq: str,
    current_weeks: int,
) -> Windows | None:
    """The windows of a check, or None when too little has arrived since training to compare."""
    one = period(freq)
    periods = current_weeks * 7 if base(freq) == "D" else max(current_weeks, MIN_WEEKLY_PERIODS)
    current_start = max(last_date - (periods - 1) * one, train_end + one)
    n = (last_date - current_start) // one + 1
    if n < MIN_CURRENT_PERIODS[base(freq)]:
        return None
    current = (current_start, last_date)
    level = (max(train_end - (n - 1) * one, train_start), train_end)
    if level[0] - YEAR >= train_start and last_date - YEAR <= train_end:
        return Windows(current, _back(current), level, _back(level), YEAR_OVER_YEAR)
    return Windows(current, level, level, level, END_OF_TRAINING)


def _back(span: Span) -> Span:
    return span[0] - YEAR, span[1] - YEAR


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


def drift_panels(
    sales: pd.DataFrame, windows: Windows, freq: str, outages: Sequence[Outage] = ()
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The reference, current, reference-level and current-level panels of one check.

    A marked outage's periods have no truth: they leave the window they fall in, and so do the
    same series' periods at the same place in the window compared with it (364 days apart when
    the windows are a year apart, so both keep the same weekdays). Five lost days of one store of
    Store Item's 20-series cut, at each of the 20 places they fit in two current weeks, made the
    target's PSI exceed its floor 16 times read as zeros, 11 times filled with the build's weekday
    means (a mean has none of real sales' day-to-day spread), and twice dropped in pairs, both
    within 0.03 of the floor (``tests/monitoring/test_monitor_drift.py``).
    """
    starts = first_sales(sales)
    reference, current, reference_level, current_level = (
        dense_panel(sales, starts, *span, freq)
        for span in (windows.reference, windows.current, windows.reference_level, windows.current_level)
    )
    if outages:
        shift = windows.current[0] - windows.reference[0]
        reference, current = _without_outages(reference, current, outages, shift)
        shift = windows.current_level[0] - windows.reference_level[0]
        reference_level, current_level = _without_outages(reference_level, current_level, outages, shift)
    return reference, current, reference_level, current_level


def _without_outages(
    reference: pd.DataFrame, current: pd.DataFrame, outages: Sequence[Outage], shift: pd.Timedelta
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both panels without the outages' rows and their counterparts ``shift`` apart in the other."""
    keys = ["store_id", "sku", "date"]
    in_reference, in_current = covered(reference, outages), covered(current, outages)
    moved_on = reference.loc[in_reference, keys].assign(date=lambda f: f["date"] + shift)
    moved_back = current.loc[in_current, keys].assign(date=lambda f: f["date"] - shift)

    def keep(panel: pd.DataFrame, inside: np.ndarray, counterparts: pd.DataFrame) -> pd.DataFrame:
        paired = panel[keys].merge(counterparts.drop_duplicates(), on=keys, how="left", indicator=True)
        return panel[~inside & (paired["_merge"] == "left_only").to_numpy()].reset_index(drop=True)

    return keep(reference, in_reference, moved_back), keep(current, in_current, moved_on)
