"""The tenant's week and year, pooled over its daily series, for the ARIMA member's decomposition.

MSTL estimates a series' yearly component from the two or three years its window holds: each day of
the year is the average of two or three noisy values, and that noise is forecast back as if it
were the season. Products of one shop share most of their week and year (the Christmas peak, the
summer lull, the Saturday rush), so the tenant's series, each scaled to its own level and averaged,
give a seasonal shape nearly free of noise. Each series is divided by that shape and decomposed as
before; what remains of its own seasons is its difference from the tenant's, kept in proportion to
how far it stands above the noise of its estimate (``shrinkage``). A department with a year of its
own keeps it; a product whose year is the shop's gets the shop's without its own noise; a product
too young to show a year gets the shop's (Store Item's newest backtest window: the ARIMA member's
WAPE 0.1198 -> 0.0976, and 0.2003 -> 0.0989 for series cut to 60-700 days; ``benchmarks/
dev_windows.py --only arima_pooled_year,arima_young_series``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

YEAR = 364  # days: the pooled season is daily data's
MIN_SERIES = 8  # series with two years needed before their average is a shape rather than a few draws
# A shape from this many series is as good as from all (each adds 1/n of its noise); M5's 30,490 series
# would otherwise stack a 180 MB window twice.
MAX_SERIES = 2_000
# A series whose stretch of the year over the factor stands this far off its mean (a share of it,
# and standard errors) does not share the tenant's year (``follows``).
MISFIT, MISFIT_Z = 0.5, 5.0
FACTOR_RANGE = (0.1, 10.0)  # a pooled factor outside it would divide a series by (near) nothing
STL_JUMPS = {"trend_jump": YEAR // 36, "low_pass_jump": YEAR // 36}  # the ARIMA member's (its _stl)


@dataclass(frozen=True)
class Pool:
    """The tenant's multiplicative season per day: over the days its two-year series share (``past``,
    ending on the history's last day) and the days after it (``future``)."""

    past: np.ndarray
    future: np.ndarray
    spread: float = 1.0  # the power of the factor a forecast's interval follows (``spread_power``)


def calendar_days(dates: pd.DatetimeIndex) -> np.ndarray:
    """Day of a 365-day calendar year (29 February counts as the 28th): the year's key for a date."""
    leap_late = dates.is_leap_year & (dates.month > 2)
    return np.asarray(dates.dayofyear - leap_late - 1)


def pooled_factor(
    series: Sequence[np.ndarray], end: pd.Timestamp, stl_kwargs: dict[str, Any], ahead: int = 2 * YEAR + 7
) -> Pool | None:
    """The tenant's week and year as one factor per day, from its daily series holding two years; or None.

    Series selling in their last year are scaled to its mean and averaged over the days all of them
    cover (they end on ``end``), so the mix never changes mid-window. MSTL splits the average into
    trend, week and the rest. **The year is kept by calendar date**, each date the mean of its
    years' rest over the trend: a season tied to the calendar (month starts, Christmas) falls a day
    or two later in the week each year, so STL's 364-day cycle blurs a month's step over the days
    it drifted, and copying the season 364 days forward lands it early (Store Item Demand, 2016-10-02
    cutoff: a year-on-364-days forecast ran 14-28 % under on the last three days of November).
    The week stays a 7-day cycle. None with fewer than ``MIN_SERIES`` such series. The pool also
    says how the series' noise grows with the factor (``spread_power``).
    """
    from statsforecast.mstl import mstl

    week, year = 7, YEAR
    scaled = []
    for y in series:
        level = float(np.mean(y[-year:])) if len(y) >= 2 * year else 0.0
        if level > 0:
            scaled.append(y / level)
    if len(scaled) < MIN_SERIES:
        return None
    if len(scaled) > MAX_SERIES:  # evenly spread over the tenant's series, so the same ones each time
        scaled = [scaled[i] for i in np.linspace(0, len(scaled) - 1, MAX_SERIES).astype(int)]
    span = min(len(z) for z in scaled)
    window = np.vstack([z[-span:] for z in scaled])
    shared = window.mean(axis=0)
    parts = mstl(shared, [week, year], stl_kwargs=stl_kwargs)
    trend = parts["trend"].to_numpy()
    weekly = parts[f"seasonal{week}"].to_numpy()
    rest = (shared - trend - weekly) / np.where(trend > 0, trend, np.nan)
    dates = pd.date_range(end=end, periods=span, freq="D")
    keys = calendar_days(dates)
    by_day = pd.Series(rest).groupby(keys).mean().reindex(range(365)).to_numpy()
    future_dates = pd.date_range(end + pd.Timedelta(days=1), periods=ahead, freq="D")
    level = trend[-1] if trend[-1] > 0 else 1.0
    cycle = weekly[-week:]
    past = 1 + weekly / np.where(trend > 0, trend, np.nan) + by_day[keys]
    future = 1 + cycle[np.arange(ahead) % week] / level + by_day[calendar_days(future_dates)]
    past, future = (np.clip(np.nan_to_num(f, nan=1.0), *FACTOR_RANGE) for f in (past, future))
    return Pool(past, future, spread_power(window, past))


def wide_pool(values: np.ndarray, end: pd.Timestamp) -> Pool | None:
    """``pooled_factor`` of a (day x series) matrix ending on ``end``, each series from its first
    non-missing day (the global members, XGBoost and DeepAR, hold their histories wide)."""
    series = []
    for y in np.asarray(values, dtype=float).T:
        seen = np.isfinite(y)
        series.append(np.nan_to_num(y[int(np.argmax(seen)) :]) if seen.any() else np.zeros(0))
    return pooled_factor(series, end, STL_JUMPS)


def spread_power(scaled: np.ndarray, factor: np.ndarray, bands: int = 5) -> float:
    """How the series' noise grows with the tenant's factor: the power of the factor an interval's
    width follows. 0.5 for Poisson counts (spread grows with the square root of the level), 1 for
    noise in proportion to it.

    The ARIMA's intervals are on the series over the factor, one width for the whole year, and were
    scaled back by the factor itself: Store Item's counts then covered 0.74 of an autumn window
    (low season, too narrow) and 0.81 of a summer one. Measured within series: differences a week
    apart (the week cancels), their variance in five bands of the factor, regressed in logs on the
    band's mean factor with each series' own intercept; half the slope, within 0 and 1. 1 (the
    factor itself) when the factor hardly moves or too few series sell in every band.
    """
    diffs = scaled[:, 7:] - scaled[:, :-7]
    level = (factor[7:] + factor[:-7]) / 2
    if float(np.std(np.log(level))) < 0.05:
        return 1.0
    band = np.digitize(level, np.quantile(level, np.linspace(0, 1, bands + 1)[1:-1]))
    used = [k for k in range(bands) if (band == k).sum() >= 14]
    if len(used) < 2:
        return 1.0
    means = np.log([level[band == k].mean() for k in used])
    with np.errstate(divide="ignore"):
        spreads = np.log(np.column_stack([np.var(diffs[:, band == k], axis=1) for k in used]))
    spreads = spreads[np.isfinite(spreads).all(axis=1)]
    if len(spreads) < MIN_SERIES:
        return 1.0
    x = means - means.mean()
    slope = float(((spreads - spreads.mean(axis=1, keepdims=True)) @ x).sum() / (len(spreads) * (x @ x)))
    return float(np.clip(slope / 2, 0.0, 1.0))


def cover(factor: np.ndarray, year: int, length: int) -> np.ndarray:
    """The factor for the last ``length`` periods of a series ending where the factor ends: periods
    before its span take the same period of its first year."""
    index = np.arange(len(factor) - length, len(factor))
    return factor[np.where(index >= 0, index, index % year)]


def follows(y: np.ndarray, pool: Pool, block: int = 28) -> bool:
    """Whether a series with a year of its own shares the tenant's: the test it must pass to be
    fitted on the tenant's factor.

    The pool is the average shape of the tenant's series, and they need not share one: beside six
    Christmas products, whose December lifts the shop's factor severalfold, a steady product divided
    by it showed a December trough its own (shrunk) year could not undo, and its ARIMA forecast
    December at three times its sales (``tests/unit/test_pooled_year.py``). So the series over the
    factor is averaged in ``block``-period stretches of the year (counted back from its last period,
    its years averaged): a series that shares the factor is flat there up to noise. It does not
    share it when a stretch stands off the series' mean by more than ``MISFIT`` of it and by more
    than ``MISFIT_Z`` standard errors, so a slow mover's noisy months never send it off the
    tenant's year. A series younger than a year shows no year to compare: it takes the tenant's.
    """
    y = np.asarray(y, dtype=float)
    if len(y) < YEAR:
        return True
    x = y / cover(pool.past, YEAR, len(y))
    mean = float(x.mean())
    if mean <= 0:
        return True
    stretch = (np.arange(len(x)) - len(x)) % YEAR // block
    groups = pd.Series(x).groupby(stretch)
    off = np.abs(groups.mean().to_numpy() - mean)
    error = groups.std(ddof=1).to_numpy() / np.sqrt(groups.count().to_numpy())
    return not bool(np.any((off > MISFIT * mean) & (off > MISFIT_Z * error)))


def ahead(pool: Pool, h: int) -> np.ndarray:
    """The factor for the ``h`` days after the history; past the future's span, its last year again."""
    index = np.arange(h)
    last = len(pool.future)
    return pool.future[np.where(index < last, index, last - YEAR + (index - last) % YEAR)]


def components(parts: pd.DataFrame, seasons: Sequence[int]) -> list[np.ndarray]:
    """MSTL's seasonal components in ``seasons`` order (one season's column is plain "seasonal")."""
    if len(seasons) == 1:
        return [parts["seasonal"].to_numpy()]
    return [parts[f"seasonal{m}"].to_numpy() for m in seasons]


@functools.lru_cache(maxsize=64)
def noise_ratios(
    length: int, seasons: tuple[int, ...], stl: tuple[tuple[str, Any], ...]
) -> tuple[float, ...]:
    """What the decomposition makes of pure noise: each seasonal component's variance over the
    remainder's, for white noise of this length (three fixed draws, so it is deterministic)."""
    from statsforecast.mstl import mstl

    rng = np.random.default_rng(0)
    ratios = np.zeros(len(seasons))
    for _ in range(3):
        parts = mstl(rng.standard_normal(length), list(seasons), stl_kwargs=dict(stl))
        rest = float(np.var(parts["remainder"].to_numpy()))
        ratios += [float(np.var(own)) / rest / 3 for own in components(parts, seasons)]
    return tuple(float(r) for r in ratios)


def shrinkage(own: np.ndarray, remainder: np.ndarray, noise_ratio: float) -> float:
    """How much of a series' own seasonal difference from the tenant's to keep, 0 to 1 (James-Stein).

    On pure noise a seasonal component's variance is ``noise_ratio`` times the remainder's: the
    decomposition's estimate of a season is an average of a few noisy cycles. Only what exceeds that
    is the series' own; the share kept is ``1 - noise / observed``.
    """
    spread = float(np.var(own))
    if spread <= 0:
        return 0.0
    return float(np.clip(1 - noise_ratio * float(np.var(remainder)) / spread, 0.0, 1.0))


class PooledYearMSTL:
    """MSTL on a series divided by the tenant's year, its own year shrunk; forecast times the factor.

    Quacks like statsforecast's MSTL where the ARIMA member uses it: ``fit``, ``predict``, ``forward``
    and ``trend_forecaster.model_``.
    """

    def __init__(
        self, seasons: list[int], trend_forecaster: Any, stl_kwargs: dict[str, Any], pool: Pool
    ) -> None:
        self.season_length = list(seasons)
        self.trend_forecaster = trend_forecaster
        self.stl_kwargs = stl_kwargs
        self.pool = pool
        self.kept: list[float] = []  # per season, the share of the series' own component kept
        self._cycles: list[np.ndarray] = []

    @property
    def own_year(self) -> float:
        """The share of its own year the series keeps (0 for a series too young to show one)."""
        return self.kept[-1] if YEAR in self.season_length and self.kept else 0.0

    def _adjusted(self, y: np.ndarray, pool: Pool) -> np.ndarray:
        """``y`` over the tenant's factor, less its own seasons (each shrunk); keeps their last cycles."""
        from statsforecast.mstl import mstl

        x = np.asarray(y, dtype=float) / cover(pool.past, YEAR, len(y))
        parts = mstl(x, self.season_length, stl_kwargs=self.stl_kwargs)
        rest = parts["remainder"].to_numpy()
        null = noise_ratios(len(x), tuple(self.season_length), tuple(sorted(self.stl_kwargs.items())))
        owns = components(parts, self.season_length)
        self.kept = [shrinkage(own, rest, ratio) for own, ratio in zip(owns, null, strict=True)]
        seasonal = [own * kept for own, kept in zip(owns, self.kept, strict=True)]
        self._cycles = [s[-m:] for s, m in zip(seasonal, self.season_length, strict=True)]
        return x - np.sum(seasonal, axis=0)

    def _reseason(self, out: dict[str, np.ndarray], h: int, pool: Pool) -> dict[str, np.ndarray]:
        steps = np.arange(h)
        seasonal = np.sum([cycle[steps % len(cycle)] for cycle in self._cycles], axis=0)
        scale = ahead(pool, h)
        middle = (np.asarray(out["mean"]) + seasonal) * scale
        width = scale**pool.spread
        return {k: middle + (np.asarray(v) - np.asarray(out["mean"])) * width for k, v in out.items()}

    def fit(self, y: np.ndarray) -> Self:
        self.trend_forecaster = self.trend_forecaster.new().fit(self._adjusted(y, self.pool))
        return self

    def predict(self, h: int, level: list[int] | None = None) -> dict[str, np.ndarray]:
        return self._reseason(dict(self.trend_forecaster.predict(h, level=level)), h, self.pool)

    def forward(
        self, y: np.ndarray, h: int, level: list[int] | None = None, pool: Pool | None = None
    ) -> dict[str, np.ndarray]:
        """The fitted coefficients on a newer history (and the tenant's pooled season for it)."""
        pool = self.pool if pool is None else pool
        out = self.trend_forecaster.forward(self._adjusted(y, pool), h, level=level)
        return self._reseason(dict(out), h, pool)
