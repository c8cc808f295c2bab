"""Frequency of a tenant's data, detected once at ingest and stored with it.

Seasonal periods, horizons and backtest windows all count periods of this frequency.
"""

from __future__ import annotations

import pandas as pd

from ordernimbus.errors import OrderNimbusError

SEASON = {"D": 7, "W": 52}
YEAR = {"D": 364, "W": 52}


class FrequencyError(OrderNimbusError):
    title = "Unsupported frequency"


# Where the lake keeps a tenant's frequency: its sales file's Parquet metadata (features.lake).
FREQUENCY_KEY = b"ordernimbus.frequency"


def detect_frequency(sales: pd.DataFrame) -> str:
    """'D' for daily data, 'W-<DAY>' for weekly data anchored on a weekday (pandas aliases)."""
    dates = pd.DatetimeIndex(sales["date"].drop_duplicates()).sort_values()
    if len(dates) < 2:
        return "D"
    step = pd.Series(dates).diff().dropna().dt.days
    typical = int(step.mode().iloc[0])
    if typical == 7 and (step % 7 == 0).all():
        anchor = dates[0].day_name()[:3].upper()
        return f"W-{anchor}"
    if typical in (1, 2, 3):  # daily with closed days (weekends, holidays)
        return "D"
    if typical == 7:
        odd = sorted({int(s) for s in step if s % 7})[:5]
        raise FrequencyError(
            f"the dates are mostly 7 days apart, but some are {odd} days apart: weekly data must fall on one "
            "weekday (and daily data must not have weekly gaps throughout)"
        )
    raise FrequencyError(
        f"dates are {typical} days apart most often; OrderNimbus forecasts daily or weekly data"
    )


def base(freq: str) -> str:
    """'D' or 'W' from a pandas alias such as 'W-FRI'."""
    return "W" if freq.startswith("W") else "D"


def pandas_alias(freq: str) -> str:
    """The pandas offset alias to build date ranges with: 'D', or the anchored weekly alias as stored."""
    return freq if base(freq) == "W" else "D"


def period(freq: str) -> pd.Timedelta:
    """One period of ``freq``: a day or a week."""
    return pd.Timedelta(days=7 if base(freq) == "W" else 1)


def period_unit(freq: str) -> str:
    """The plural word for periods of ``freq`` in messages: 'days' or 'weeks'."""
    return "weeks" if base(freq) == "W" else "days"


def season_length(freq: str) -> int:
    return SEASON[base(freq)]


def year_length(freq: str) -> int:
    return YEAR[base(freq)]
