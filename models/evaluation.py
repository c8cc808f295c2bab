"""Evaluate members and baselines on the same backtest windows, fit the ensemble, apply the gate.

Pure: frames in, a metrics dict (the registry's ``metrics``) and the fitted blend out. The step
entrypoint only reads files and writes ``evaluation.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.frequency import season_length, year_length
from models.backtest import actuals_after
from models.ensemble import apply_interval_scale, blend, fit_interval_scale, fit_weights
from models.metrics import naive_scale, score
from models.naive import SeasonalNaive


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    weights: dict[str, float]
    interval_scale: float
    backtest: pd.DataFrame  # every model's backtest rows, the ensemble's included


def baseline_backtests(
    sales: pd.DataFrame, freq: str, horizon: int, windows: Sequence[pd.Timestamp], quantiles: Sequence[float]
) -> dict[str, pd.DataFrame]:
    """Seasonal naive at the weekly (or yearly for weekly data) season and, where history allows, the year."""
    lags = {"seasonal_naive": season_length(freq)}
    if year_length(freq) != season_length(freq) and horizon <= year_length(freq):
        lags["seasonal_naive_year"] = year_length(freq)
    out: dict[str, pd.DataFrame] = {}
    for name, lag in lags.items():
        frames = []
        for cutoff in windows:
            history = sales[sales["date"] <= cutoff]
            pred = SeasonalNaive(lag=lag).fit(history, freq).predict(history, horizon, quantiles)
            truth = actuals_after(sales, cutoff, horizon, freq)
            frames.append(truth.merge(pred, on=["store_id", "sku", "target_date"]).assign(window=cutoff, model=name))
        out[name] = pd.concat(frames, ignore_index=True)
    return out


def evaluate(
    sales: pd.DataFrame,
    freq: str,
    horizon: int,
    quantiles: Sequence[float],
    member_backtests: Mapping[str, pd.DataFrame],
    max_wape_ratio: float,
) -> Evaluation:
    windows = sorted(pd.to_datetime(next(iter(member_backtests.values()))["window"].unique()))
    baselines = baseline_backtests(sales, freq, horizon, windows, quantiles)
    weights = fit_weights(member_backtests, quantiles)
    blended = blend(member_backtests, weights, quantiles)
    scale_factor = fit_interval_scale(blended, quantiles)
    blended = apply_interval_scale(blended, quantiles, scale_factor).assign(model="ensemble")
    mase_scale = naive_scale(sales[sales["date"] <= windows[0]], season_length(freq))

    def table(frames: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
        return {n: _rounded(score(f, quantiles, mase_scale)) for n, f in frames.items()}

    ensemble = _rounded(score(blended, quantiles, mase_scale))
    base_table = table(baselines)
    gate_ensemble, gate_baselines, gate_window = _holdout(member_backtests, baselines, windows, quantiles, blended)
    best_name = min(gate_baselines, key=lambda n: gate_baselines[n])
    best_value = gate_baselines[best_name]
    ratio = gate_ensemble / best_value if best_value > 0 else 0.0
    per_window = [
        {"cutoff": str(w.date()),
         "ensemble": _rounded(score(blended[blended["window"] == w], quantiles)),
         "members": {n: _rounded(score(f[f["window"] == w], quantiles)) for n, f in member_backtests.items()},
         "baselines": {n: _rounded(score(f[f["window"] == w], quantiles)) for n, f in baselines.items()}}
        for w in windows
    ]
    metrics: dict[str, Any] = {
        "frequency": freq, "horizon": horizon, "season_length": season_length(freq),
        "quantiles": list(quantiles),
        "ensemble": ensemble, "members": table(member_backtests), "baselines": base_table,
        "gate": {"passed": bool(ratio <= max_wape_ratio), "metric": "wape", "max_ratio": max_wape_ratio,
                 "window": gate_window, "best_baseline": best_name, "best_baseline_value": round(best_value, 5),
                 "ensemble_value": round(gate_ensemble, 5), "wape_ratio": round(float(ratio), 4)},
        "windows": per_window, "weights": weights, "interval_scale": scale_factor,
        "data": {"start": str(sales["date"].min().date()), "end": str(sales["date"].max().date()),
                 "series": int(sales.groupby(["store_id", "sku"]).ngroups), "rows": len(sales)},
    }
    everything = pd.concat([*member_backtests.values(), *baselines.values(), blended], ignore_index=True)
    return Evaluation(metrics, weights, scale_factor, everything)


def _holdout(
    members: Mapping[str, pd.DataFrame],
    baselines: Mapping[str, pd.DataFrame],
    windows: Sequence[pd.Timestamp],
    quantiles: Sequence[float],
    blended: pd.DataFrame,
) -> tuple[float, dict[str, float], str]:
    """Gate WAPEs on the newest window with weights fitted on the older ones (out of sample).

    With a single window there is nothing older to fit on; the in-sample blend is used and the
    report says so through ``gate.window == "in-sample"``.
    """
    last = windows[-1]
    base = {n: score(f[f["window"] == last], quantiles)["wape"] for n, f in baselines.items()}
    if len(windows) < 2:
        return score(blended[blended["window"] == last], quantiles)["wape"], base, "in-sample"
    older = {n: f[f["window"] < last] for n, f in members.items()}
    newest = {n: f[f["window"] == last] for n, f in members.items()}
    weights = fit_weights(older, quantiles)
    return score(blend(newest, weights, quantiles), quantiles)["wape"], base, str(last.date())


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 5) for k, v in values.items()}
