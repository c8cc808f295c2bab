"""Known-future calendar covariates: date parts, pay-day flags, public holidays and retail events.

Everything here is a function of the date (and the store's country) alone, so a calendar row is as
valid for a date five years out as for yesterday. Holidays come from the ``holidays`` package, one
calendar per country; a store whose id names a country (Online Retail's stores *are* countries)
gets that country's calendar, any other store the tenant's default country.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from features.frequency import base, pandas_alias

# Days-to / days-since a holiday are capped: beyond a month the distance carries no signal.
HOLIDAY_DISTANCE_CAP = 30
# Store ids that are country names in common exports but not in the holidays package's registry.
_ALIASES = {"eire": "IE", "usa": "US", "uk": "GB", "rsa": "ZA", "czech_republic": "CZ", "korea": "KR"}


def daily_columns() -> tuple[str, ...]:
    return (
        "month",
        "week_of_year",
        "day_of_week",
        "day_of_month",
        "day_of_year",
        "is_month_start",
        "is_month_end",
        "is_payday",
        "is_holiday",
        "is_event",
        "days_to_holiday",
        "days_since_holiday",
    )


def weekly_columns() -> tuple[str, ...]:
    return ("month", "week_of_year", "is_payday", "is_holiday", "is_event")


def calendar_columns(freq: str) -> tuple[str, ...]:
    return daily_columns() if base(freq) == "D" else weekly_columns()


@lru_cache(maxsize=512)
def country_code(name: str | None) -> str | None:
    """The ISO alpha-2 code a store id or country names ('United Kingdom', 'EIRE', 'FRA', 'fr'), or None."""
    if not name:
        return None
    from holidays import registry

    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if key in _ALIASES:
        return _ALIASES[key]
    for module, entry in registry.COUNTRIES.items():
        alpha2, alpha3 = entry[1], entry[2]
        if key in (module, alpha2.lower(), alpha3.lower()):
            return alpha2
    return None


@lru_cache(maxsize=256)
def holiday_dates(country: str | None, first_year: int, last_year: int) -> pd.DatetimeIndex:
    """Public holidays (observed days included) of ``country`` in the given years."""
    if not country:
        return pd.DatetimeIndex([])
    import holidays

    cal = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    return pd.DatetimeIndex(sorted(pd.Timestamp(d) for d in cal))


@lru_cache(maxsize=64)
def event_dates(first_year: int, last_year: int) -> pd.DatetimeIndex:
    """Retail events that are not public holidays but move demand in most markets."""
    days: list[pd.Timestamp] = []
    for year in range(first_year, last_year + 1):
        nov = pd.date_range(f"{year}-11-01", f"{year}-11-30", freq="D")
        thanksgiving = nov[nov.dayofweek == 3][3]  # fourth Thursday of November
        days += [
            pd.Timestamp(f"{year}-02-14"),
            pd.Timestamp(f"{year}-10-31"),
            pd.Timestamp(f"{year}-12-24"),
            pd.Timestamp(f"{year}-12-31"),
            thanksgiving + pd.Timedelta(days=1),  # Black Friday
            thanksgiving + pd.Timedelta(days=4),
        ]  # Cyber Monday
    return pd.DatetimeIndex(sorted(days))


def calendar_frame(dates: pd.DatetimeIndex, freq: str, country: str | None) -> pd.DataFrame:
    """One int16 row per date: the calendar columns of ``freq`` for a store in ``country``."""
    dates = pd.DatetimeIndex(dates).normalize()
    years = (int(dates.year.min()) - 1, int(dates.year.max()) + 1) if len(dates) else (2000, 2000)
    holidays = holiday_dates(country, *years)
    events = event_dates(*years)
    frame = pd.DataFrame(index=dates)
    frame["month"] = dates.month
    frame["week_of_year"] = dates.isocalendar().week.to_numpy().astype(int)
    if base(freq) == "D":
        frame["day_of_week"] = dates.dayofweek
        frame["day_of_month"] = dates.day
        frame["day_of_year"] = dates.dayofyear
        frame["is_month_start"] = (dates.day <= 3).astype(int)
        frame["is_month_end"] = (dates.days_in_month - dates.day < 3).astype(int)
        # Semi-monthly and month-end pay days (US, UK and most of the EU pay on these).
        frame["is_payday"] = ((dates.day == 1) | (dates.day == 15) | dates.is_month_end).astype(int)
        frame["is_holiday"] = dates.isin(holidays).astype(int)
        frame["is_event"] = dates.isin(events).astype(int)
        frame["days_to_holiday"] = _distance(dates, holidays, forward=True)
        frame["days_since_holiday"] = _distance(dates, holidays, forward=False)
    else:  # a week carries the flag if any of its days does
        alias = pandas_alias(freq)
        period = dates.to_period(alias)
        month_edges = pd.date_range(dates.min() - pd.Timedelta(days=7), dates.max() + pd.Timedelta(days=7))
        paydays = month_edges[(month_edges.day == 1) | (month_edges.day == 15)]
        frame["is_payday"] = period.isin(paydays.to_period(alias)).astype(int)
        frame["is_holiday"] = period.isin(holidays.to_period(alias)).astype(int)
        frame["is_event"] = period.isin(events.to_period(alias)).astype(int)
    return frame.astype("int16")


def _distance(dates: pd.DatetimeIndex, marks: pd.DatetimeIndex, forward: bool) -> np.ndarray:
    """Days to the next (or since the previous) date in ``marks``, capped at HOLIDAY_DISTANCE_CAP."""
    if len(marks) == 0:
        return np.full(len(dates), HOLIDAY_DISTANCE_CAP)
    day = dates.to_numpy().astype("datetime64[D]").astype(np.int64)
    mark = marks.to_numpy().astype("datetime64[D]").astype(np.int64)
    if forward:
        pos = np.searchsorted(mark, day, side="left")
        gap = np.where(pos < len(mark), mark[np.minimum(pos, len(mark) - 1)] - day, HOLIDAY_DISTANCE_CAP)
    else:
        pos = np.searchsorted(mark, day, side="right") - 1
        gap = np.where(pos >= 0, day - mark[np.maximum(pos, 0)], HOLIDAY_DISTANCE_CAP)
    return np.minimum(gap, HOLIDAY_DISTANCE_CAP)
