"""Rolling-origin backtests: never a random split on time series.

Window w (1 = most recent) has its cutoff ``w * horizon`` periods before the end of the data; the
model is fitted on data up to the cutoff and scored on the ``horizon`` periods after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from features.frequency import base
from models.base import Forecaster


def cutoffs(last: pd.Timestamp, horizon: int, windows: int, freq: str) -> list[pd.Timestamp]:
    """Cutoff dates, oldest first."""
    step = pd.Timedelta(days=horizon * (7 if base(freq) == "W" else 1))
    return [last - step * w for w in range(windows, 0, -1)]


def actuals_after(sales: pd.DataFrame, cutoff: pd.Timestamp, horizon: int, freq: str) -> pd.DataFrame:
    """Observed units in the ``horizon`` periods after ``cutoff``, zero-filled for started series."""
    from features.engineering import horizon_dates

    dates = horizon_dates(cutoff, horizon, freq)
    started = sales.loc[sales["date"] <= cutoff, ["store_id", "sku"]].drop_duplicates()
    grid = started.merge(pd.DataFrame({"date": dates}), how="cross")
    window = sales.loc[sales["date"].isin(dates), ["store_id", "sku", "date", "units"]]
    out = grid.merge(window, on=["store_id", "sku", "date"], how="left").fillna({"units": 0.0})
    return out.rename(columns={"units": "actual", "date": "target_date"})


def backtest(  # noqa: PLR0917 (the pipeline's train step and tests call it positionally)
    make_model: Callable[[], Forecaster],
    sales: pd.DataFrame,
    freq: str,
    horizon: int,
    windows: int,
    quantiles: Sequence[float],
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Predictions per window joined with actuals: the evaluate step's input.

    The model made for the earliest cutoff is reused: refitted on each later history when its class
    says refits are cheap (``refit_in_backtest``), else kept as trained at the earliest cutoff.
    Either way no window ever sees data after its own cutoff.
    """
    frames = []
    model: Forecaster | None = None
    for cutoff in cutoffs(sales["date"].max(), horizon, windows, freq):
        history = sales[sales["date"] <= cutoff]
        if model is None:
            model = make_model().fit(history, freq)
        elif getattr(model, "refit_in_backtest", True):
            model = model.fit(history, freq)
        pred = model.predict(history, horizon, quantiles)
        truth = actuals_after(sales, cutoff, horizon, freq)
        joined = truth.merge(pred, on=["store_id", "sku", "target_date"], how="inner")
        joined["window"] = cutoff
        joined["model"] = model.name
        frames.append(joined)
        if progress:
            progress(f"{model.name}: window {cutoff.date()} done")
    return pd.concat(frames, ignore_index=True)


def backtest_model(  # noqa: PLR0917 (same signature as backtest)
    make_model: Callable[[], Forecaster],
    sales: pd.DataFrame,
    freq: str,
    horizon: int,
    windows: int,
    quantiles: Sequence[float],
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, Forecaster]:
    """Backtest, then the model trained on all of ``sales``.

    A model with cheap refits carries what it learnt in the backtest (e.g. ARIMA orders) into the
    final fit; a global model is trained afresh on everything.
    """
    holder: list[Forecaster] = []

    def make() -> Forecaster:
        holder.append(make_model())
        return holder[-1]

    frame = backtest(make, sales, freq, horizon, windows, quantiles, progress)
    first = holder[0]
    final = (
        first.fit(sales, freq) if getattr(first, "refit_in_backtest", True) else make_model().fit(sales, freq)
    )
    return frame, final
