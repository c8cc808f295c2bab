"""Rolling-origin backtests: never a random split on time series.

Window w (1 = most recent) has its cutoff ``horizon + (w - 1) * step`` periods before the end of the data; the
model is fitted on data up to the cutoff and scored on the ``horizon`` periods after it. The step
is the horizon (windows side by side) when the history allows it. When it does not — Walmart's
103 weeks cannot hold three 39-week windows and still train on anything — the origins move closer
together (overlapping windows, still each scored only on periods after its own cutoff) so that
the earliest cutoff keeps a year and one period of history, or half of what there is when there is
less. The one period beyond the year gives every window at least one year-over-year pair per series,
which is what a weekly tenant's yearly-seasonality verdict (``models.seasonality``) is judged on: with
exactly a year there is nothing to compare, and the members fall back to copying last year blind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pandas as pd

from features.frequency import base, period, period_unit, year_length
from models.base import Forecaster
from ordernimbus.errors import OrderNimbusError


def cutoffs(
    last: pd.Timestamp, horizon: int, windows: int, freq: str, first: pd.Timestamp | None = None
) -> list[pd.Timestamp]:
    """Cutoff dates, oldest first; ``first`` (the earliest date of the data) lets the step shrink."""
    one = period(freq)
    step = window_step(_periods(first, last, one), horizon, windows, freq)
    return [last - one * (horizon + (w - 1) * step) for w in range(windows, 0, -1)]


def window_step(periods: int | None, horizon: int, windows: int, freq: str) -> int:
    """Periods between consecutive cutoffs: the horizon, or less when the history is short."""
    if periods is None or windows <= 1:
        return horizon
    trainable = periods - horizon  # history left before the newest cutoff
    year = year_length(freq)
    keep = min(year + 1, trainable) if trainable >= year else trainable // 2
    if trainable - (windows - 1) * horizon >= keep:
        return horizon
    return max(1, (trainable - keep) // (windows - 1))


# Periods the earliest backtest window trains on, at least: two weeks of a daily tenant, four weeks
# of a weekly one. Below that the windows start before the data or a day after it, and every
# training step failed with pandas' "Neither `start` nor `end` can be NaT". Two weeks, not one: the
# XGBoost member's first training example needs a week of lags and a week before it, and with 8-13
# days it failed inside xgboost ("base_score ... isnan"), after this check had advised that horizon.
MIN_TRAIN = {"D": 14, "W": 4}


class HistoryTooShortError(OrderNimbusError):
    title = "History too short"


def earliest_history(periods: int, horizon: int, windows: int, freq: str) -> int:
    """Periods of history before the earliest backtest cutoff (``cutoffs``' layout)."""
    return periods - horizon - (windows - 1) * window_step(periods, horizon, windows, freq)


def check_history(  # noqa: PLR0917 (the build's settings, passed through)
    first: pd.Timestamp, last: pd.Timestamp, horizon: int, windows: int, freq: str, what: str = "the tenant"
) -> None:
    """Refuse a build whose earliest backtest window would train on less than ``MIN_TRAIN``.

    Says what fits instead: the longest horizon this history can backtest, or how much more
    history the requested horizon needs.
    """
    periods = _periods(first, last, period(freq)) or 0
    floor = MIN_TRAIN[base(freq)]
    if earliest_history(periods, horizon, windows, freq) >= floor:
        return
    unit = period_unit(freq)
    fits = next(
        (h for h in range(horizon - 1, 0, -1) if earliest_history(periods, h, windows, freq) >= floor), None
    )
    # a history of horizon + 2 x floor + 1 periods always fits (the earliest cutoff keeps half of it)
    enough = horizon + 2 * floor + 1
    needed = next(
        (n for n in range(periods, enough) if earliest_history(n, horizon, windows, freq) >= floor), enough
    )
    advice = f"use --horizon {fits} or less, or" if fits else "no horizon fits:"
    raise HistoryTooShortError(
        f"{what} has {periods} {unit} of sales ({first.date()} to {last.date()}): backtesting a horizon of "
        f"{horizon} {unit} over {windows} windows needs at least {needed} {unit}, so that the earliest "
        f"window trains on {floor} {unit} or more; {advice} ingest more history"
    )


def _periods(first: pd.Timestamp | None, last: pd.Timestamp, period: pd.Timedelta) -> int | None:
    return None if first is None else int((last - first) / period) + 1


def actuals_after(sales: pd.DataFrame, cutoff: pd.Timestamp, horizon: int, freq: str) -> pd.DataFrame:
    """Observed units in the ``horizon`` periods after ``cutoff``, zero-filled for started series."""
    from features.engineering import horizon_dates

    dates = horizon_dates(cutoff, horizon, freq)
    started = sales.loc[sales["date"] <= cutoff, ["store_id", "sku"]].drop_duplicates()
    grid = started.merge(pd.DataFrame({"date": dates}), how="cross")
    window = sales.loc[sales["date"].isin(dates), ["store_id", "sku", "date", "units"]]
    out = grid.merge(window, on=["store_id", "sku", "date"], how="left").fillna({"units": 0.0})
    return out.rename(columns={"units": "actual", "date": "target_date"})


def history_until(sales: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The sales up to ``cutoff``, reaching it.

    A cutoff inside a stretch with no record in any series (a closure, or an outage nobody
    marked) would leave the history ending before it: every model then forecasts the periods after
    its last record, which share no date with the window's truth, and the window silently dropped
    out of the backtest. A zero row on the cutoff for each started series says what a missing
    period means everywhere else (no sales), so the forecasts start where the window is scored.
    """
    history = sales[sales["date"] <= cutoff]
    if history.empty or history["date"].max() >= cutoff:
        return history
    pad = history[["store_id", "sku"]].drop_duplicates().assign(date=cutoff, units=0.0)
    if "tenant_id" in history.columns:
        pad["tenant_id"] = history["tenant_id"].iloc[0]
    pad = pad.reindex(columns=history.columns).astype({"date": history["date"].dtype})
    return pd.concat([history, pad], ignore_index=True)


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
    says refits are cheap (``refit_in_backtest``; a model with ``roll``, ARIMA, keeps its
    coefficients and refilters its state instead), else kept as trained at the earliest cutoff.
    Either way no window ever sees data after its own cutoff.
    """
    frames = []
    model: Forecaster | None = None
    clock = time.perf_counter()
    for cutoff in cutoffs(sales["date"].max(), horizon, windows, freq, first=sales["date"].min()):
        history = history_until(sales, cutoff)
        if model is None:
            model = make_model().fit(history, freq)
        elif getattr(model, "refit_in_backtest", True):
            roll = getattr(model, "roll", None)  # a later origin with what was estimated so far
            model = roll(history, freq) if roll else model.fit(history, freq)
        pred = model.predict(history, horizon, quantiles)
        truth = actuals_after(sales, cutoff, horizon, freq)
        joined = truth.merge(pred, on=["store_id", "sku", "target_date"], how="inner")
        joined["window"] = cutoff
        joined["model"] = model.name
        frames.append(joined)
        if progress:  # each window's seconds (fit + predict) in the step log: where a slow build went
            now = time.perf_counter()
            progress(f"{model.name}: window {cutoff.date()} done in {now - clock:.1f} s")
            clock = now
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
    final fit; a global model continues training the backtest's model on everything when it can
    (``fit_after``: DeepAR's network, XGBoost's trees), else is trained afresh.
    """
    holder: list[Forecaster] = []

    def make() -> Forecaster:
        holder.append(make_model())
        return holder[-1]

    frame = backtest(make, sales, freq, horizon, windows, quantiles, progress)
    first = holder[0]
    started = time.perf_counter()
    final: Forecaster
    if getattr(first, "refit_in_backtest", True):
        final = first.fit(sales, freq)
    else:
        fresh = make_model()
        fit_after = getattr(fresh, "fit_after", None)  # a model that can continue the earlier one
        final = fit_after(first, sales, freq) if fit_after else fresh.fit(sales, freq)
    if progress:
        progress(f"{final.name}: final fit on all the data in {time.perf_counter() - started:.1f} s")
    return frame, final
