"""Pure, vectorised feature transforms for daily and weekly retail series.

The frame is pivoted once to a dense (period x series) matrix so every lag and rolling statistic is
a single C-level pass over all series at once, then stacked back to long format. A feature at
period ``t`` only uses the target up to ``t - 1`` (everything is shifted by one period first), so a
feature row is exactly what was knowable the morning of its own date: the point-in-time rule that
makes the offline store safe for training. Calendar, price and promotion columns are *known-future*
covariates (AutoGluon's term): they describe the target period itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.frequency import base, pandas_alias

_HOLIDAY_YEARS = range(1990, 2040)


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to compute; its ``version`` tags feature records and model artifacts."""

    freq: str = "D"
    lags: tuple[int, ...] = (*range(1, 29), 364)
    windows: tuple[int, ...] = (7, 28, 91)
    stats: tuple[str, ...] = ("mean", "std", "min", "max")
    country: str | None = "US"
    covariates: tuple[str, ...] = field(default=())

    @classmethod
    def for_freq(cls, freq: str, country: str | None = "US") -> FeatureSpec:
        if base(freq) == "W":
            return cls(freq=freq, lags=(*range(1, 14), 26, 52), windows=(4, 13, 52), country=country)
        return cls(freq=freq, country=country)

    @property
    def version(self) -> str:
        import hashlib

        text = repr((self.freq, self.lags, self.windows, self.stats, self.country, self.covariates))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def target_features(self) -> list[str]:
        cols = [f"lag_{k}" for k in self.lags]
        cols += [f"roll_{s}_{w}" for w in self.windows for s in self.stats]
        return [*cols, "periods_since_sale", "zero_run", "zero_share"]


def to_wide(sales: pd.DataFrame, freq: str, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Units as a dense (period x series) matrix: NaN before a series starts, 0 for a missing period after.

    Missing periods after a series' first sale are no-sale periods (retail exports omit zero rows).
    """
    end = pd.Timestamp(end) if end is not None else sales["date"].max()
    index = pd.date_range(sales["date"].min(), end, freq=pandas_alias(freq))
    wide = sales.pivot_table(index="date", columns=["store_id", "sku"], values="units", aggfunc="sum")
    wide = wide.reindex(index)
    started = wide.notna().cumsum() > 0
    return wide.fillna(0.0).where(started).astype("float32")


def target_features(wide: pd.DataFrame, spec: FeatureSpec) -> dict[str, pd.DataFrame]:
    """Lags, rolling statistics and intermittency features, each a frame shaped like ``wide``."""
    past = wide.shift(1)
    out: dict[str, pd.DataFrame] = {f"lag_{k}": wide.shift(k) for k in spec.lags}
    for w in spec.windows:
        roll = past.rolling(w, min_periods=1)
        for stat in spec.stats:
            out[f"roll_{stat}_{w}"] = getattr(roll, stat)()
    sold = (past > 0).astype("float32").where(past.notna())
    out["periods_since_sale"] = _periods_since(sold)
    out["zero_run"] = _zero_run(past)
    out["zero_share"] = (past == 0).astype("float32").where(past.notna()).rolling(
        spec.windows[1], min_periods=1
    ).mean()
    return out


def calendar_features(dates: pd.DatetimeIndex, spec: FeatureSpec) -> pd.DataFrame:
    """Known-future calendar covariates of each period, including public holidays of the country."""
    frame = pd.DataFrame(index=dates)
    frame["month"] = dates.month
    frame["week_of_year"] = dates.isocalendar().week.to_numpy().astype(int)
    if base(spec.freq) == "D":
        frame["day_of_week"] = dates.dayofweek
        frame["day_of_month"] = dates.day
        frame["day_of_year"] = dates.dayofyear
        frame["is_month_start"] = (dates.day <= 3).astype(int)  # pay-day effect
    holidays = _holiday_dates(spec.country)
    if base(spec.freq) == "D":
        frame["is_holiday"] = dates.normalize().isin(holidays).astype(int)
    else:  # the week contains a holiday
        week_of = pd.DatetimeIndex(holidays).to_period(pandas_alias(spec.freq))
        frame["is_holiday"] = dates.to_period(pandas_alias(spec.freq)).isin(week_of).astype(int)
    return frame.astype("int16")


def build_features(
    sales: pd.DataFrame,
    spec: FeatureSpec,
    horizon: int = 0,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Long feature frame: one row per series x period (plus ``horizon`` future periods with NaN units).

    Columns: store_id, sku, date, units, target features, calendar features, known-future covariates
    (price, promotion, numeric extras: carried forward into the future periods), and categorical codes.
    """
    wide = to_wide(sales, spec.freq, end)
    if horizon:
        future = pd.date_range(wide.index[-1], periods=horizon + 1, freq=pandas_alias(spec.freq))[1:]
        wide = pd.concat([wide, pd.DataFrame(np.nan, index=future, columns=wide.columns, dtype="float32")])
    feats = target_features(wide, spec)
    alive = wide.notna().cummax()  # from a series' first period on, future periods included
    long = _stack(wide, "units", alive)
    for name, frame in feats.items():
        long[name] = _stack(frame, name, alive)[name].to_numpy()
    cal = calendar_features(pd.DatetimeIndex(long["date"].unique()).sort_values(), spec)
    long = long.join(cal, on="date")
    long = _add_covariates(long, sales, spec)
    long["store_code"] = stable_code(long["store_id"])
    long["sku_code"] = stable_code(long["sku"])
    return long


def _add_covariates(long: pd.DataFrame, sales: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Price, promotion and extra numeric columns of the target period; unknown future carried forward."""
    extra = [c for c in _covariate_columns(sales) if c in sales.columns]
    if not extra:
        return long
    cov = sales[["store_id", "sku", "date", *extra]]
    long = long.merge(cov, on=["store_id", "sku", "date"], how="left")
    long[extra] = long.groupby(["store_id", "sku"], sort=False)[extra].ffill()
    if "unit_price" in extra:
        grouped = long.groupby(["store_id", "sku"], sort=False)["unit_price"]
        ref = grouped.transform(lambda s: s.shift(1).rolling(spec.windows[1], min_periods=1).mean())
        long["relative_price"] = (long["unit_price"] / ref).astype("float32")
        long["price_change"] = (long["unit_price"] / grouped.shift(1) - 1).astype("float32")
    return long


def _covariate_columns(sales: pd.DataFrame) -> list[str]:
    skip = {"tenant_id", "store_id", "sku", "date", "units", "revenue", "channel"}
    return [c for c in sales.columns if c not in skip and pd.api.types.is_numeric_dtype(sales[c])]


def _stack(wide: pd.DataFrame, name: str, alive: pd.DataFrame) -> pd.DataFrame:
    values = wide.to_numpy()
    mask = alive.to_numpy()
    rows, cols = np.nonzero(mask.T)  # series-major order: each series' periods contiguous
    keys = wide.columns
    return pd.DataFrame(
        {
            "store_id": keys.get_level_values(0).to_numpy()[rows],
            "sku": keys.get_level_values(1).to_numpy()[rows],
            "date": wide.index.to_numpy()[cols],
            name: values[cols, rows],
        }
    )


def _periods_since(sold: pd.DataFrame) -> pd.DataFrame:
    """Periods since the last period with a sale (counting from the series' first period if none)."""
    arr = sold.to_numpy()
    n = arr.shape[0]
    idx = np.arange(n, dtype="float32")[:, None]
    last_sale = np.where(arr == 1, idx, np.nan)
    last_sale = pd.DataFrame(last_sale).ffill().to_numpy()
    first = np.where(~np.isnan(arr), idx, np.nan)
    first = pd.DataFrame(first).bfill().iloc[0].to_numpy()[None, :]
    since = idx - np.where(np.isnan(last_sale), first - 1, last_sale)
    return pd.DataFrame(np.where(np.isnan(arr), np.nan, since), index=sold.index, columns=sold.columns)


def _zero_run(past: pd.DataFrame) -> pd.DataFrame:
    """Length of the run of zero periods ending at the previous period."""
    zero = (past == 0).to_numpy()
    run = np.zeros(zero.shape, dtype="float32")
    for i in range(1, zero.shape[0]):
        run[i] = np.where(zero[i], run[i - 1] + 1, 0)
    run[0] = zero[0]
    return pd.DataFrame(np.where(past.isna(), np.nan, run), index=past.index, columns=past.columns)


def _holiday_dates(country: str | None) -> pd.DatetimeIndex:
    if not country:
        return pd.DatetimeIndex([])
    import holidays

    cal = holidays.country_holidays(country, years=_HOLIDAY_YEARS)
    return pd.DatetimeIndex(sorted(pd.Timestamp(d) for d in cal))


def stable_code(ids: pd.Series) -> np.ndarray:
    """A per-id integer that is the same in every process and every chunk of series (CRC32)."""
    import zlib

    uniques = pd.unique(ids)
    codes = {u: zlib.crc32(str(u).encode()) % (1 << 24) for u in uniques}
    return ids.map(codes).to_numpy(dtype="int32")


def horizon_dates(last: pd.Timestamp, horizon: int, freq: str) -> pd.DatetimeIndex:
    """The ``horizon`` periods after ``last``."""
    return pd.date_range(last, periods=horizon + 1, freq=pandas_alias(freq))[1:]


def feature_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    skip = {"store_id", "sku", "date", "units", "tenant_id", *exclude}
    return [c for c in frame.columns if c not in skip]
