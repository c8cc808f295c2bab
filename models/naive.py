"""Seasonal naive: the baseline every model must beat, and the fallback for series too short to fit.

Its quantiles come from the series' own empirical seasonal differences (y_t - y_{t-m}), widened
with sqrt(k) for the k-th season ahead: the random-walk-in-seasons error model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from features.engineering import horizon_dates, to_wide
from features.frequency import season_length, year_length
from models.base import BaseForecaster, clean_quantiles
from models.metrics import qcol


class SeasonalNaive(BaseForecaster):
    name: ClassVar[str] = "seasonal_naive"

    def __init__(self, lag: int | None = None, residual_window: int = 365, yearly: bool = False) -> None:
        super().__init__()
        self.lag = lag
        self.yearly = yearly
        self.residual_window = residual_window

    def fit(self, history: pd.DataFrame, freq: str) -> Self:
        self._record_training(history, freq)
        self.lag = self.lag or (year_length(freq) if self.yearly else season_length(freq))
        return self

    def predict(self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]) -> pd.DataFrame:
        lag = self.lag or season_length(self.freq)
        wide = to_wide(history, self.freq)
        values = wide.to_numpy(dtype=float)
        steps = np.arange(1, horizon + 1)
        k = np.ceil(steps / lag).astype(int)
        src = len(values) - 1 - (lag * k - steps)  # row index of y_{T+h-lag*k}
        point = np.where(src[:, None] >= 0, values[np.clip(src, 0, None)], np.nan)
        fallback = _by_column(np.nanmean, values[-lag:])  # too-short series: the last season's mean
        point = np.where(np.isnan(point), fallback[None, :], point)
        point = np.nan_to_num(point)
        diffs = values[lag:] - values[:-lag]
        recent = diffs[-self.residual_window :] if len(diffs) else np.zeros((1, values.shape[1]))
        out = _frame(wide, horizon_dates(wide.index[-1], horizon, self.freq), point, "mean")
        widen = np.sqrt(k)[:, None]
        for q in quantiles:
            offset = np.nan_to_num(_by_column(np.nanquantile, recent, q)) - (
                np.nan_to_num(_by_column(np.nanmedian, recent)) if q != 0.5 else 0.0
            )
            out[qcol(q)] = (point + offset[None, :] * widen).T.ravel()
        if 0.5 in quantiles:
            out[qcol(0.5)] = point.T.ravel()
        return clean_quantiles(out, quantiles, history)

    def _save_state(self, path: Path) -> None:
        (path / "naive.json").write_text(
            json.dumps({"lag": self.lag, "residual_window": self.residual_window})
        )

    def _load_state(self, path: Path) -> None:
        state = json.loads((path / "naive.json").read_text())
        self.lag, self.residual_window = state["lag"], state["residual_window"]


def _by_column(stat: Callable[..., np.ndarray], a: np.ndarray, *args: float) -> np.ndarray:
    """``stat(a, *args, axis=0)`` over the columns that hold a number, NaN for the rest.

    A series younger than the lag has no seasonal difference yet (an all-NaN column); numpy's nan
    statistics warn on every such column, which filled Walmart's build logs with noise.
    """
    out = np.full(a.shape[1], np.nan)
    some = np.isfinite(a).any(axis=0)
    if some.any():
        out[some] = stat(a[:, some], *args, axis=0)
    return out


def _frame(wide: pd.DataFrame, dates: pd.DatetimeIndex, values: np.ndarray, column: str) -> pd.DataFrame:
    """Long forecast frame from an (horizon x series) array, series-major."""
    n_h, n_s = values.shape
    return pd.DataFrame(
        {
            "store_id": np.repeat(wide.columns.get_level_values(0).to_numpy(), n_h),
            "sku": np.repeat(wide.columns.get_level_values(1).to_numpy(), n_h),
            "target_date": np.tile(dates.to_numpy(), n_s),
            "horizon_day": np.tile(np.arange(1, n_h + 1), n_s),
            column: values.T.ravel(),
        }
    )
