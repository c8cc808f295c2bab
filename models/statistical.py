"""Local statistical forecasters from statsforecast: AutoARIMA (a member) and AutoETS (a baseline).

**Yearly seasonality.** A seasonal ARIMA carries one season: the week for daily data. Retail daily
sales also follow the year (Q4 peaks, summer lulls), which a 7-day SARIMA cannot see and which a
364-period SARIMA cannot afford. So when a series holds two full years, the ARIMA member first takes
the week and the year out with statsforecast's MSTL (STL by LOESS, one season at a time), fits
AutoARIMA to the seasonally adjusted rest (trend + remainder) and adds the seasonal components back
to its forecast. Weekly data with two years gets the same with the 52-week season. Measured on the
Store Item Demand development window (90 days to 2016-12-31, 40 series, never the evaluation
window): WAPE 0.148 with MSTL against 0.212 for the weekly SARIMA. Shorter series keep the plain
seasonal ARIMA over their last year.

**The tenant's season.** A daily tenant with enough two-year series has its week and year estimated
once, pooled over its series (``models.pooled_year``): each series is divided by that factor before
its own decomposition, keeps of its own seasons only what stands above their estimation noise, and
a series too young for a year of its own gets the tenant's. Weekly tenants keep each series' own.

Both are fitted per series. What makes them affordable on a 2-core machine:

- **Search once, refit often.** The expensive part of AutoARIMA is the order search (dozens of
  candidate models per series). It runs once per series, on the first history the model sees (in
  the build pipeline: the earliest backtest cutoff); every later ``fit`` (the other backtest windows
  and the final model) re-estimates the coefficients of the orders found, which costs a few
  milliseconds. AutoETS does the same with its model form (e.g. ``ETS(A,N,A)``).
- **No refit of what the search just fitted.** The search ends with the chosen model fitted to
  the very series the earliest backtest window then forecasts; re-estimating it with the orders
  found gives the same forecast to the last bit (checked on Store Item Demand series, and pinned by
  a test), so ``predict`` on the history of the last ``fit`` uses those fits (held in memory, never
  saved). That was one refit in three backtest windows: 23 s of the ARIMA step's 122 s on Store Item
  Demand with the machine to itself.
- **Later backtest origins keep the coefficients** (ARIMA only, ``roll``): the backtest moves
  the model to each later cutoff with the coefficients the search estimated and only refilters the
  state on the newer history (statsforecast's ``forward``) instead of re-estimating them. Leak-free
  (the coefficients come from data before the earliest cutoff) and cheaper than a refit; the final
  model, and every forecast a saved model makes, still re-estimates on its own history
  (``benchmarks/dev_windows.py --only arima_roll``). AutoETS refits: its forward lost accuracy.
- **A bounded fit window** (the last ``fit_window`` periods: two years of days for ARIMA's MSTL and
  one for AutoETS, three years of weeks), an
  approximated likelihood during the search and small order limits (p, q <= 2; P, Q <= 1). On the
  Store Item Demand data the full default search costs ~4x the time for no gain in backtest WAPE
  (``AutoARIMAForecaster(full_search=True)``).
- **Processes**: series are split into chunks fitted in parallel processes (statsforecast models
  hold the GIL in places).

The saved state is JSON (orders / ETS forms per series and the fallback list), never a pickle:
``load`` + ``predict`` re-estimates coefficients on the history it is given, deterministically, so
a round trip predicts exactly what the fitted model predicted.

Series that are too short for the model (fewer than two seasons plus a few periods) or constant
(all zeros) use a fallback — the seasonal naive forecast — and are recorded per series in
``fallbacks`` (and in the training step's output) so nobody mistakes them for ARIMA fits. Weekly
series short of two years are the exception worth a model: the yearly naive where the tenant's
series repeat their year (``yearly_signal``), a non-seasonal AutoARIMA where they do not or where
there is no year yet to copy (``AutoARIMAForecaster._short``).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from features.engineering import horizon_dates, to_wide
from features.frequency import base, season_length, year_length
from models.base import BaseForecaster, clean_quantiles
from models.metrics import qcol
from models.naive import SeasonalNaive
from models.pooled_year import Pool, PooledYearMSTL, follows, pooled_factor
from models.seasonality import from_first_observation, yearly_signal

SeriesKey = tuple[str, str]


def quantile_levels(quantiles: Sequence[float]) -> list[int]:
    """Two-sided interval levels (in %) whose bounds are the requested quantiles: 0.1/0.9 -> 80."""
    return sorted({round(abs(1 - 2 * q) * 100) for q in quantiles if q != 0.5})


def bound_column(q: float) -> str:
    level = round(abs(1 - 2 * q) * 100)
    return f"{'lo' if q < 0.5 else 'hi'}-{level}"


class _LocalStatModel(BaseForecaster):
    """Shared machinery: per-series spec search, fixed-spec refits, chunked parallel prediction."""

    name: ClassVar[str] = "local"
    # A later backtest origin keeps the search's coefficients and refilters the state (see roll).
    roll_forward: ClassVar[bool] = False

    def __init__(self, fit_window: int | None = None, n_jobs: int | None = None) -> None:
        super().__init__()
        self.fit_window = fit_window
        self.n_jobs = n_jobs
        self.specs: dict[str, Any] = {}  # "store|sku" -> model spec (orders or ETS form)
        self.fallbacks: dict[str, str] = {}  # "store|sku" -> reason
        self.season = 7
        self.year = 364
        # Floor MSTL intervals by the yearly naive's spread (see _widen). Saved with the model, and
        # off for models saved before it existed, so a registered version keeps predicting the same.
        self.floor_intervals = True
        # "store|sku" -> (digest of the series searched, the search's fitted statsforecast model)
        self._fitted: dict[str, tuple[str, Any]] = {}
        # "store|sku" -> a fitted statsforecast model whose coefficients roll carries to later origins
        self._rolled: dict[str, Any] = {}

    # subclasses -------------------------------------------------------------------------
    def default_window(self, freq: str) -> int:
        return 364 if base(freq) == "D" else 156

    def _fit_season(self) -> int:
        """The season the fitted model carries, which sets how short a usable series may be."""
        return self.season

    def _usable(self, y: np.ndarray) -> str | None:
        """Why ``y`` cannot be fitted (it gets the seasonal naive fallback), or None."""
        return _usable(y, self._fit_season())

    def _prepare(self, series: list[tuple[SeriesKey, np.ndarray]], end: pd.Timestamp) -> None:
        """What a subclass estimates from all of a tenant's series (ending on ``end``) before fitting
        or forecasting any."""

    def _prepare_search(self, series: list[tuple[SeriesKey, np.ndarray]]) -> None:
        """What a subclass decides from all of a tenant's series before searching any of them."""

    def _worker_state(self) -> dict[str, Any]:
        """The attributes a worker process's model needs to search and forecast as this one would."""
        return {"season": self.season, "year": self.year}

    def _spec_usable(self, spec: Any, y: np.ndarray) -> bool:
        """Can ``spec`` forecast ``y`` (else the series gets the seasonal naive)?"""
        return self._usable(y) is None

    def _search(self, y: np.ndarray) -> tuple[Any, Any]:
        """(spec, the statsforecast model the search fitted to ``y`` with that spec)."""
        raise NotImplementedError

    def _refit(self, spec: Any, y: np.ndarray) -> Any:
        """A statsforecast model with ``spec``, fitted to ``y``."""
        raise NotImplementedError

    def _predict_fitted(self, fitted: Any, horizon: int, levels: list[int]) -> dict[str, np.ndarray]:
        return dict(fitted.predict(horizon, level=levels or None))

    def _forecast(self, spec: Any, y: np.ndarray, horizon: int, levels: list[int]) -> dict[str, np.ndarray]:
        return self._predict_fitted(self._refit(spec, y), horizon, levels)

    def _forward(
        self, spec: Any, fitted: Any, y: np.ndarray, horizon: int, levels: list[int]
    ) -> dict[str, np.ndarray]:
        """Forecast ``y`` with ``fitted``'s coefficients, its state refiltered on ``y`` (see roll)."""
        raise NotImplementedError

    # protocol ---------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame, freq: str) -> Self:
        """Search a spec for every series that has none yet; keep the specs already found."""
        self._record_training(history, freq)
        self.season = season_length(freq)
        self.year = year_length(freq)
        if self.fit_window is None:
            self.fit_window = self.default_window(freq)
        wide = to_wide(history, freq)
        series = self._series(wide)
        self._prepare(series, wide.index[-1])
        self._prepare_search(series)
        todo = [(k, y) for k, y in series if _key(k) not in self.specs]
        digests = {_key(k): _digest(y) for k, y in todo}
        self._fitted, self._rolled = {}, {}
        if todo:
            found = self._map(_search_chunk, todo)
            for key, spec, reason, fitted in found:
                if spec is None:
                    self.fallbacks[_key(key)] = reason
                else:
                    self.specs[_key(key)] = spec
                    self.fallbacks.pop(_key(key), None)
                    self._fitted[_key(key)] = (digests[_key(key)], fitted)
        return self

    def roll(self, history: pd.DataFrame, freq: str) -> Self:
        """Move a backtest to a later origin: keep the coefficients estimated so far, refilter the state.

        Series the model holds a fit for (the search's, at the earliest cutoff) forecast ``history``
        with those coefficients through statsforecast's ``forward``; series seen for the first time
        are searched as ``fit`` would. Leak-free, since the coefficients come from data before the
        earliest cutoff. Only the backtest rolls: ``fit`` (the final model) lets go of the kept fits,
        and a saved model holds none, so production forecasts re-estimate on their own history.
        """
        if not self.roll_forward:
            return self.fit(history, freq)
        kept = {k: f for k, (_d, f) in self._fitted.items()} | self._rolled
        self.fit(history, freq)
        self._rolled = {k: f for k, f in kept.items() if k in self.specs and k not in self._fitted}
        return self

    def predict(self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]) -> pd.DataFrame:
        wide = to_wide(history, self.freq)
        series = list(self._series(wide))
        self._prepare(series, wide.index[-1])
        levels = quantile_levels(quantiles)
        fitted = getattr(self, "_fitted", {})
        rolled = getattr(self, "_rolled", {})
        results: dict[SeriesKey, dict[str, np.ndarray]] = {}
        jobs = []
        for k, y in series:
            done = fitted.get(_key(k))
            if done is not None and done[0] == _digest(y):  # the search fitted exactly this series
                results[k] = self._predict_fitted(done[1], horizon, levels)
            else:  # refit the spec, or forward a rolled fit
                jobs.append((k, y, self.specs.get(_key(k)), rolled.get(_key(k))))
        results.update(self._map(_forecast_chunk, jobs, horizon=horizon, levels=levels))
        dates = horizon_dates(wide.index[-1], horizon, self.freq)
        naive = SeasonalNaive(lag=self.season).fit(history, self.freq).predict(history, horizon, quantiles)
        spread = self._yearly_spread(history, naive, quantiles, results) if self.floor_intervals else {}
        naive = naive.set_index(["store_id", "sku"])
        frames = []
        for key, _y in series:
            out = results.get(key)
            if out is None:  # fallback series: the seasonal naive forecast
                frames.append(naive.loc[[key]].reset_index())
                continue
            if key in spread:
                out = _widen(out, spread[key], quantiles)
            frame = pd.DataFrame(
                {
                    "store_id": key[0],
                    "sku": key[1],
                    "target_date": dates,
                    "horizon_day": np.arange(1, horizon + 1),
                    "mean": out["mean"],
                }
            )
            for q in quantiles:
                frame[qcol(q)] = out["mean"] if q == 0.5 else out[bound_column(q)]
            frames.append(frame)
        result = pd.concat(frames, ignore_index=True)
        result["target_date"] = pd.to_datetime(result["target_date"])
        cols = ["store_id", "sku", "target_date", "horizon_day", "mean", *(qcol(q) for q in quantiles)]
        return clean_quantiles(result[cols], quantiles, history)

    # helpers ----------------------------------------------------------------------------
    def _yearly_spread(
        self,
        history: pd.DataFrame,
        naive: pd.DataFrame,
        quantiles: Sequence[float],
        results: dict[SeriesKey, dict[str, np.ndarray]],
    ) -> dict[SeriesKey, dict[float, np.ndarray]]:
        """Offsets of the yearly naive's quantiles from its median, for series MSTL decomposed.

        ``naive`` is the season-lag naive forecast ``predict`` already made; for weekly data the
        season is the year, so it is the yearly naive and is not computed again.
        """
        keys = {key for key, out in results.items() if out.get("yearly") is not None}
        if not keys:
            return {}
        horizon = int(naive["horizon_day"].max())
        yearly = (
            naive
            if self.season == self.year
            else SeasonalNaive(lag=self.year).fit(history, self.freq).predict(history, horizon, quantiles)
        )
        spread = {}
        for key, frame in yearly.groupby(["store_id", "sku"], sort=False):
            k = (str(key[0]), str(key[1]))
            if k in keys:
                mid = frame[qcol(0.5)].to_numpy() if 0.5 in quantiles else frame["mean"].to_numpy()
                spread[k] = {q: frame[qcol(q)].to_numpy() - mid for q in quantiles if q != 0.5}
        return spread

    def _series(self, wide: pd.DataFrame) -> list[tuple[SeriesKey, np.ndarray]]:
        """(key, y) per series from its first observation, the last ``fit_window`` periods."""
        values = wide.to_numpy(dtype=float)
        out = []
        for j, key in enumerate(wide.columns):
            y = from_first_observation(values[:, j])
            out.append(((str(key[0]), str(key[1])), y[-(self.fit_window or len(y)) :]))
        return out

    def _map(self, fn: Any, items: list[Any], **kwargs: Any) -> list[Any]:
        if not items:
            return []
        workers = self.n_jobs or min(2, os.cpu_count() or 1)
        chunks = [items[i::workers] for i in range(workers)] if workers > 1 and len(items) >= 16 else [items]
        args = [(type(self), self._worker_state(), chunk, kwargs) for chunk in chunks if chunk]
        if len(args) == 1:
            return fn(args[0])
        # Forked workers inherit the parent's modules: importing statsforecast here once saves each
        # worker of each pool (the search, every backtest window) its own ~3.5 s import.
        import statsforecast.models  # noqa: F401

        with ProcessPoolExecutor(max_workers=len(args)) as pool:
            return [r for part in pool.map(fn, args) for r in part]

    def _save_state(self, path: Path) -> None:
        state = {
            "fit_window": self.fit_window,
            "season": self.season,
            "year": self.year,
            "specs": self.specs,
            "fallbacks": self.fallbacks,
            "floor_intervals": self.floor_intervals,
            **self._extra_state(),
        }
        (path / f"{self.name}.json").write_text(json.dumps(state))

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, path: Path) -> None:
        state = json.loads((path / f"{self.name}.json").read_text())
        self.fit_window, self.season = state["fit_window"], state["season"]
        self.year = state.get("year", 364 if self.season == 7 else 52)
        self.specs = state["specs"]
        self.fallbacks = state["fallbacks"]
        self.floor_intervals = state.get("floor_intervals", False)
        self._load_extra(state)
        self.n_jobs = None
        self._fitted, self._rolled = {}, {}

    def _load_extra(self, state: dict[str, Any]) -> None:
        """What a subclass saved beside the shared state (``_extra_state``)."""


def _widen(
    out: dict[str, np.ndarray], spread: dict[float, np.ndarray], quantiles: Sequence[float]
) -> dict[str, np.ndarray]:
    """Intervals at least as wide as the yearly naive's, around the MSTL forecast.

    MSTL's intervals are the ARIMA's on the seasonally adjusted series: they treat the yearly
    component, averaged from two or three noisy years, as known. Unfloored, p10-p90 covered about
    half of Store Item Demand's newest backtest window for a nominal 0.80 (``benchmarks/
    dev_windows.py --only arima_two_years``). The yearly naive's empirical year-over-year differences
    measure how far a season can move from the last; no decomposed forecast is surer than that.
    """
    widened = dict(out)
    for q in quantiles:
        if q == 0.5:
            continue
        col = bound_column(q)
        floor = out["mean"] + spread[q]
        widened[col] = np.minimum(out[col], floor) if q < 0.5 else np.maximum(out[col], floor)
    return widened


SHORT = "short"  # spec marker: a non-seasonal AutoARIMA for a weekly series short of two years
POOLED = "pooled"  # spec marker: MSTL on the series over the tenant's pooled year (PooledYearMSTL)
SHORT_MIN = 12  # periods a non-seasonal AutoARIMA needs before it beats a naive forecast's guess


def _is_short(spec: Any) -> bool:
    return len(spec) > 5 and spec[5] == SHORT


def _is_pooled(spec: Any) -> bool:
    return len(spec) > 5 and spec[5] == POOLED


def _key(key: SeriesKey) -> str:
    return f"{key[0]}|{key[1]}"


def _digest(y: np.ndarray) -> str:
    """Identity of a series' values: a search's fit is reused only for the same numbers."""
    return hashlib.blake2b(np.ascontiguousarray(y, dtype=float).tobytes(), digest_size=16).hexdigest()


def _usable(y: np.ndarray, season: int) -> str | None:
    if len(y) < 2 * season + 4:
        return f"too short ({len(y)} periods; needs {2 * season + 4})"
    if np.ptp(y[-2 * season :]) == 0 and np.ptp(y) == 0:
        return "constant series"
    return None


def _search_chunk(
    args: tuple[type[_LocalStatModel], dict[str, Any], list[Any], dict[str, Any]],
) -> list[Any]:
    cls, state, items, _ = args
    model = cls.__new__(cls)
    model.__dict__.update(state)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, y in items:
            reason = model._usable(y)
            if reason:
                out.append((key, None, reason, None))
                continue
            try:
                spec, fitted = model._search(y)
                out.append((key, spec, "", fitted))
            except Exception as exc:
                out.append((key, None, f"fit failed: {type(exc).__name__}: {exc}"[:200], None))
    return out


def _forecast_chunk(
    args: tuple[type[_LocalStatModel], dict[str, Any], list[Any], dict[str, Any]],
) -> list[Any]:
    cls, state, items, kwargs = args
    model = cls.__new__(cls)
    model.__dict__.update(state)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, y, spec, rolled in items:
            if spec is None or not model._spec_usable(spec, y):
                continue
            horizon, levels = kwargs["horizon"], kwargs["levels"]
            try:
                if rolled is not None:
                    out.append((key, model._forward(spec, rolled, y, horizon, levels)))
                else:
                    out.append((key, model._forecast(spec, y, horizon, levels)))
            except Exception:
                continue
    return out


class AutoARIMAForecaster(_LocalStatModel):
    """statsforecast AutoARIMA with the weekly season (7 days; 52 weeks for weekly data)."""

    name: ClassVar[str] = "arima"
    roll_forward: ClassVar[bool] = True

    def __init__(
        self,
        fit_window: int | None = None,
        n_jobs: int | None = None,
        full_search: bool = False,
        pooled_year: bool = True,
    ) -> None:
        super().__init__(fit_window, n_jobs)
        self.full_search = full_search
        # The tenant's year-over-year signal, measured where weekly series are too short for a
        # seasonal model (see yearly_signal); None until a fit has measured it.
        self.yearly: dict[str, Any] | None = None
        # Divide daily series by the tenant's pooled week and year before MSTL (models.pooled_year).
        # Saved with the model, and off for models saved before it, so they keep forecasting as approved.
        self.pooled_year = pooled_year
        self._pool: Pool | None = None  # the pooled factor of the history last fitted or forecast

    def _worker_state(self) -> dict[str, Any]:
        return {
            **super()._worker_state(),
            "full_search": getattr(self, "full_search", False),
            "yearly": getattr(self, "yearly", None),
            "_pool": getattr(self, "_pool", None),
        }

    def pooled_series(self) -> int:
        """How many series are fitted on the tenant's pooled season (for the model card)."""
        return sum(1 for spec in self.specs.values() if _is_pooled(spec))

    def _prepare(self, series: list[tuple[SeriesKey, np.ndarray]], end: pd.Timestamp) -> None:
        """The tenant's pooled week and year for this history (None: off, weekly data, or too few
        series with two years).

        Daily only: a weekly tenant's two years are Walmart's whole history at its evaluation cutoff,
        so no window before it could show what pooling does to departments with years of their own.
        """
        self._pool = None
        if getattr(self, "pooled_year", False) and self.season < self.year:
            self._pool = pooled_factor([y for _k, y in series], end, self._stl())

    def _prepare_search(self, series: list[tuple[SeriesKey, np.ndarray]]) -> None:
        """Measure the year-over-year signal; re-search short fits the series have outgrown.

        A non-seasonal fit (``SHORT``) was right for a series while it lacked a year, or while the
        tenant showed no yearly signal; once either changes (a later backtest origin, next month's
        build) the series is searched again and may get the yearly naive or MSTL instead.
        """
        if self.season < self.year:  # daily data: the week is the ARIMA's own season
            return
        self.yearly = yearly_signal([y for _k, y in series], self.year)
        for key, y in series:
            spec = self.specs.get(_key(key))
            if spec is not None and _is_short(spec) and not self._short(y):
                del self.specs[_key(key)]

    def _short(self, y: np.ndarray) -> bool:
        """Does this weekly series get a non-seasonal AutoARIMA rather than the yearly naive?

        A weekly series needs two years for a model of its year (MSTL). Below that the yearly naive
        stands in, which is right for seasonal retail and wrong for demand without a year in it,
        where last year's week is one noisy draw (``benchmarks/dev_windows.py --only yearly_signal``,
        64 weeks, the next 39 or 8 scored: Walmart stores 1-2, WAPE 0.096 for the yearly naive
        against 0.185 for a non-seasonal AutoARIMA; 30 steady products, 0.138 against 0.092). With
        the naive, a tenant of 30 steady products and 70 weeks lost its gate to AutoETS.
        So: non-seasonal when there is no year to copy yet, or when the tenant's series show no
        year-over-year signal (``yearly_signal``); with too few pairs to tell, the naive as before.
        """
        if self.season < self.year or len(y) < SHORT_MIN or self._seasons(y):
            return False  # daily data, too young for any model, or two years: MSTL
        if len(y) < self.year:
            return True
        signal = getattr(self, "yearly", None)
        return signal is not None and signal["seasonal"] is False

    def _spec_usable(self, spec: Any, y: np.ndarray) -> bool:
        return len(y) >= SHORT_MIN if _is_short(spec) else super()._spec_usable(spec, y)

    def _extra_state(self) -> dict[str, Any]:
        return {"yearly": getattr(self, "yearly", None), "pooled_year": getattr(self, "pooled_year", False)}

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.yearly = state.get("yearly")
        self.pooled_year = state.get("pooled_year", False)
        self._pool = None

    def default_window(self, freq: str) -> int:
        """Two years and a season of days (MSTL's yearly component needs two), three years of weeks."""
        return 2 * 364 + 14 if base(freq) == "D" else 156

    def _plain(self, y: np.ndarray) -> np.ndarray:
        """What the plain seasonal ARIMA sees: the last year of days (all of a weekly history)."""
        return y[-364:] if self.season < self.year else y

    def _stl(self) -> dict[str, int]:
        """LOESS jumps for STL's trend and low-pass smoothers: fit every tenth day and interpolate.

        Cleveland et al. suggest jumps of about a tenth of the window; with the year's windows of
        several hundred days that cuts the decomposition from 0.40 s to 0.04 s per series, and the
        yearly component moves by at most 0.34 units on Store Item series selling 20-50 a day
        (``benchmarks/dev_windows.py --only stl``).
        """
        jump = max(1, self.year // 36)
        return {"trend_jump": jump, "low_pass_jump": jump}

    def _usable(self, y: np.ndarray) -> str | None:
        """Two full years suffice where MSTL carries the year (weekly data).

        A seasonal ARIMA(52) wants two seasons and a few periods; MSTL needs only two full cycles
        to separate the year from the trend, so a weekly tenant with exactly two years of history
        (Walmart's dev file at its evaluation cutoff: 104 weeks) gets a seasonal model averaged over
        both years instead of last year's naive.
        """
        if (self._seasons(y) or self._short(y)) and np.ptp(y) != 0:
            return None
        reason = super()._usable(y)
        signal = getattr(self, "yearly", None)
        if reason and reason.startswith("too short") and len(y) >= self.year and signal:
            seasonal = "no signal to tell" if signal["seasonal"] is None else "seasonal"
            reason += f"; the yearly naive (year-over-year signal: {seasonal})"
        return reason

    def _seasons(self, y: np.ndarray) -> list[int]:
        """MSTL seasons for this series: week and year for two years of days, the year for weeks."""
        if len(y) < 2 * self.year + (self.season if self.season < self.year else 0):
            return []
        return [self.season, self.year] if self.season < self.year else [self.year]

    def _search(self, y: np.ndarray) -> tuple[Any, Any]:
        from statsforecast.models import MSTL, AutoARIMA

        limits: dict[str, Any] = (
            {}
            if getattr(self, "full_search", False)
            else {
                "approximation": True,
                "max_p": 2,
                "max_q": 2,
                "max_P": 1,
                "max_Q": 1,
                "nmodels": 20,
            }
        )
        seasons = self._seasons(y)
        fitted: Any
        marker: list[str] = []
        pool = getattr(self, "_pool", None)
        if pool is not None and (self.year in seasons or not seasons) and follows(y, pool):
            # two years: the series' week and year over the tenant's; younger: its week over the
            # tenant's, and the tenant's year, which the series is too young to show
            seasons = seasons or [self.season]
            fitted = PooledYearMSTL(seasons, AutoARIMA(**limits), self._stl(), pool).fit(y)
            arima = fitted.trend_forecaster.model_
            marker = [POOLED]
        elif seasons:
            fitted = MSTL(seasons, trend_forecaster=AutoARIMA(**limits), stl_kwargs=self._stl()).fit(y)
            arima = fitted.trend_forecaster.model_
        elif self._short(y):
            fitted = AutoARIMA(season_length=1, **limits).fit(y)
            p, q, _sp, _sq, _m, d, _sd = (int(v) for v in fitted.model_["arma"])
            coef = fitted.model_["coef"]
            return [[p, d, q], [0, 0, 0], "intercept" in coef, "drift" in coef, [], SHORT], fitted
        else:
            fitted = AutoARIMA(season_length=self.season, **limits).fit(self._plain(y))
            arima = fitted.model_
        p, q, sp, sq, _m, d, sd = (int(v) for v in arima["arma"])
        coef = arima["coef"]
        return [[p, d, q], [sp, sd, sq], "intercept" in coef, "drift" in coef, seasons, *marker], fitted

    def _predict_fitted(self, fitted: Any, horizon: int, levels: list[int]) -> dict[str, np.ndarray]:
        return self._mark(fitted, dict(fitted.predict(horizon, level=levels or None)))

    def _forward(
        self, spec: Any, fitted: Any, y: np.ndarray, horizon: int, levels: list[int]
    ) -> dict[str, np.ndarray]:
        from statsforecast.models import MSTL

        if isinstance(fitted, PooledYearMSTL):
            pool = getattr(self, "_pool", None)
            if pool is None or len(y) < 2 * max(fitted.season_length):  # no pool, or too short for it
                return self._forecast(spec, y, horizon, levels)
            return self._mark(fitted, fitted.forward(y, horizon, level=levels or None, pool=pool))
        seasons = list(fitted.season_length) if isinstance(fitted, MSTL) else []
        if seasons and len(y) < 2 * max(seasons):  # too short for the decomposition it was fitted with
            return self._forecast(spec, y, horizon, levels)
        out = fitted.forward(y if seasons else self._plain(y), horizon, level=levels or None)
        return self._mark(fitted, dict(out))

    def _mark(self, fitted: Any, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from statsforecast.models import MSTL

        own_year = isinstance(fitted, MSTL) or (isinstance(fitted, PooledYearMSTL) and fitted.own_year > 0.5)
        if own_year and self.year in fitted.season_length:  # the series' own (noisy) year is forecast:
            out["yearly"] = np.ones(1)  # marks the series whose intervals _widen floors
        return out

    def _refit(self, spec: Any, y: np.ndarray) -> Any:
        from statsforecast.models import ARIMA, MSTL

        order, seasonal, mean, drift, *rest = spec
        searched = list(rest[0]) if rest else []  # MSTL seasons of the search ([] = plain SARIMA)
        short = _is_short(spec)
        # A history shorter than the search's (a loaded model asked about a shorter series) keeps
        # the seasons it still holds two of.
        seasons = [m for m in searched if len(y) >= 2 * m]
        pool = getattr(self, "_pool", None)
        model = ARIMA(
            order=tuple(order),
            seasonal_order=tuple(seasonal),
            season_length=1 if searched or short else self.season,
            include_mean=bool(mean),
            include_drift=bool(drift),
            # CSS-ML, statsforecast's default: with method="CSS" statsforecast 2.1.1 estimates the
            # same coefficients but forecasts zeros (its state is never filtered), a trap a test pins.
            method="CSS-ML",
        )
        if _is_pooled(spec) and seasons and pool is not None:
            return PooledYearMSTL(seasons, model, self._stl(), pool).fit(y)
        if seasons:  # (a pooled spec without a pooled year in this history: the series' own MSTL)
            return MSTL(seasons, trend_forecaster=model, stl_kwargs=self._stl()).fit(y)
        return model.fit(y if searched or short else self._plain(y))


class AutoETSForecaster(_LocalStatModel):
    """statsforecast AutoETS: the exponential-smoothing baseline.

    ETS supports seasons up to 24 periods, so weekly data (season 52) gets non-seasonal forms;
    the yearly seasonal naive is the seasonal baseline there.
    """

    name: ClassVar[str] = "autoets"

    def _fit_season(self) -> int:
        # Non-seasonal for weekly data, so a year of weeks is plenty (it was held to two years and
        # a month, the seasonal ARIMA's need, and fell back to seasonal naive on all of Walmart).
        return self.season if self.season <= 24 else 1

    def _search(self, y: np.ndarray) -> tuple[Any, Any]:
        from statsforecast.models import AutoETS

        fitted = AutoETS(season_length=self._fit_season()).fit(y)
        error, trend, season = str(fitted.model_["method"])[4:-1].split(",")  # "ETS(A,Ad,N)"
        return [error + trend[0] + season, trend.endswith("d")], fitted

    def _refit(self, spec: Any, y: np.ndarray) -> Any:
        from statsforecast.models import AutoETS

        form, damped = spec
        return AutoETS(season_length=self._fit_season(), model=form, damped=bool(damped)).fit(y)
