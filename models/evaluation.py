"""Evaluate members and baselines on the same backtest windows, fit the ensemble, apply the gate.

Pure: frames in, a metrics dict (the registry's ``metrics``) and the fitted blend out. The step
entrypoint only reads files and writes ``evaluation.json``.

Members are blended; baselines (seasonal naive at the season and at the year, AutoETS) are scored
beside them. AutoETS is both: a member the blend may lean on where nothing beats exponential
smoothing, and a baseline the ensemble must match. The gate compares the ensemble with the best
baseline out of sample: every backtest window but the earliest is blended with weights fitted on the
windows before it, and the WAPEs are pooled over those windows (absolute errors over actual units).
One 8-week window decided ties by noise: a change that left a tenant's three-window mean alone
flipped its gate (README).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.frequency import season_length, year_length
from features.outages import Outage, covered
from models.backtest import actuals_after, history_until
from models.ensemble import Weighting, apply_interval_scale, blend_rows, choose_interval_scale
from models.metrics import naive_scale, pinball, qcol, score
from models.naive import SeasonalNaive
from ordernimbus.errors import OrderNimbusError

SERIES = ["store_id", "sku"]


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    weighting: Weighting
    interval_scale: dict[str, float]
    backtest: pd.DataFrame  # every model's backtest rows, the ensemble's included

    @property
    def weights(self) -> dict[str, float]:
        return self.weighting.average()


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
            history = history_until(sales, cutoff)
            pred = SeasonalNaive(lag=lag).fit(history, freq).predict(history, horizon, quantiles)
            truth = actuals_after(sales, cutoff, horizon, freq)
            frames.append(
                truth.merge(pred, on=["store_id", "sku", "target_date"]).assign(window=cutoff, model=name)
            )
        out[name] = pd.concat(frames, ignore_index=True)
    return out


def _known(frame: pd.DataFrame, outages: Sequence[Outage]) -> pd.DataFrame:
    """``frame`` without the rows whose target period falls inside an outage."""
    return frame[~covered(frame, outages)] if outages else frame


def weighting_params(freq: str, horizon: int) -> tuple[int, int]:
    """(level window, short-history threshold) in periods of ``freq``."""
    season = season_length(freq)
    level_window = 4 * season if season < 52 else 13
    return level_window, horizon + 2 * min(season, 26)


def fit_ensemble(  # noqa: PLR0917 (frames and settings the evaluate step passes through)
    sales: pd.DataFrame,
    freq: str,
    horizon: int,
    quantiles: Sequence[float],
    members: Mapping[str, pd.DataFrame],
    tail_weights: bool = True,
    tail_check: bool = True,
) -> tuple[Weighting, pd.DataFrame]:
    """Weights per cluster and the blended backtest (before interval calibration).

    ``tail_weights`` learns the other quantiles' own weights (``Weighting.fit``); without it every
    quantile takes the median's weights (``benchmarks/dev_windows.py --only ensemble`` compares).
    ``tail_check`` keeps a quantile's own weights only where they paid one window back
    (``check_tails``).
    """
    weighting = _fit_weighting(sales, freq, horizon, quantiles if tail_weights else (0.5,), members)
    if tail_weights and tail_check:
        weighting.drop_tails(check_tails(sales, freq, horizon, quantiles, members))
    first = next(iter(members.values()))
    base = first[["store_id", "sku", "target_date", "window", "actual", "horizon_day"]].copy()
    rows = weighting.backtest_rows(base, sales, quantiles)
    blended = blend_rows(members, rows, weighting.members, quantiles, base)
    return weighting, blended


def _fit_weighting(
    sales: pd.DataFrame,
    freq: str,
    horizon: int,
    quantiles: Sequence[float],
    members: Mapping[str, pd.DataFrame],
) -> Weighting:
    level_window, short = weighting_params(freq, horizon)
    cutoff = pd.to_datetime(next(iter(members.values()))["window"]).min()
    # A series is too young to judge when it is younger than the histories the backtest judged the
    # members on: a tenant whose data spans 64 weeks learnt its weights on 52- to 64-week histories,
    # and a 64-week series is no stranger to them. The horizon-plus-a-year rule alone put every
    # series of such a weekly tenant in the short cluster: WAPE 0.130 and pinball loss 1,071 against
    # 0.107 and 614 on Walmart's newest backtest window (``benchmarks/dev_windows.py --only
    # ensemble``, ``ensemble_shipped_but_short_by_horizon_plus_two_seasons``).
    short = min(short, int(sales.loc[sales["date"] <= cutoff, "date"].nunique()))
    return Weighting.fit(members, sales, level_window, short, quantiles=quantiles)


def check_tails(
    sales: pd.DataFrame,
    freq: str,
    horizon: int,
    quantiles: Sequence[float],
    members: Mapping[str, pd.DataFrame],
) -> dict[float, dict[str, Any]]:
    """Per tail quantile: did its own weights beat the median's weights one window back?

    The weights are fitted as the evaluate step fits them, on every backtest window but the newest
    and on the sales before it; the newest window is blended twice, each quantile with its own
    weights and with the median's, and each quantile's pinball loss compared. The interval scale
    passes the same test (``choose_interval_scale``). Where a quantile's own weights lose, the
    quantile ships with the median's. The window guard cannot see this: on Online Retail,
    DeepAR's p90 won each of the three backtest windows it was fitted on and lost the newest one
    when fitted on the older two. With fewer than two windows there is nothing to check: {}.
    """
    windows = sorted(pd.to_datetime(next(iter(members.values()))["window"]).unique())
    tails = [float(q) for q in quantiles if float(q) != 0.5]
    if len(windows) < 2 or not tails:
        return {}
    newest = windows[-1]
    older = {n: f[pd.to_datetime(f["window"]) < newest] for n, f in members.items()}
    target = {n: f[pd.to_datetime(f["window"]) == newest] for n, f in members.items()}
    trial = _fit_weighting(sales[sales["date"] < newest], freq, horizon, quantiles, older)
    base = next(iter(target.values()))
    rows = trial.column_rows(base, sales[sales["date"] <= newest], quantiles, judge_length=False)
    own = blend_rows(target, rows, trial.members, quantiles, base)
    median = blend_rows(target, dict.fromkeys(rows, rows[qcol(0.5)]), trial.members, quantiles, base)
    actual = base["actual"].to_numpy(dtype=float)
    out: dict[float, dict[str, Any]] = {}
    for q in tails:
        figures = {
            label: round(pinball(actual, frame[qcol(q)].to_numpy(dtype=float), q), 6)
            for label, frame in (("own_weights", own), ("median_weights", median))
        }
        out[q] = {
            **figures,
            "window": str(pd.Timestamp(newest).date()),
            "kept": figures["own_weights"] <= figures["median_weights"],
        }
    return out


def evaluate(  # noqa: PLR0917 (frames and settings the evaluate step passes through)
    sales: pd.DataFrame,
    freq: str,
    horizon: int,
    quantiles: Sequence[float],
    member_backtests: Mapping[str, pd.DataFrame],
    max_wape_ratio: float,
    extra_baselines: Mapping[str, pd.DataFrame] | None = None,
    outages: Sequence[Outage] = (),
) -> Evaluation:
    """Blend, calibrate and score the members against the baselines on their backtest windows.

    Periods inside an outage (``features.outages``) have no known truth: they are left out of every
    model's rows before anything is fitted or scored.
    """
    member_backtests = {n: _known(f, outages) for n, f in member_backtests.items()}
    windows = sorted(pd.to_datetime(next(iter(member_backtests.values()))["window"].unique()))
    if not windows:
        raise OrderNimbusError(
            "every backtest period falls inside a marked outage: there is nothing to score the models on; "
            "remove the outage (ordernimbus outage remove) or use a shorter --horizon"
        )
    baselines = {
        n: _known(f, outages)
        for n, f in {
            **baseline_backtests(sales, freq, horizon, windows, quantiles),
            **(extra_baselines or {}),
        }.items()
    }
    weighting, blended = fit_ensemble(sales, freq, horizon, quantiles, member_backtests)
    scale_factor, scale_check = choose_interval_scale(blended, quantiles)
    blended = apply_interval_scale(blended, quantiles, scale_factor).assign(model="ensemble")
    mase_scale = naive_scale(sales[sales["date"] <= windows[0]], season_length(freq))
    rmsse = _rmsse_setup(sales[sales["date"] <= windows[0]], horizon)

    def scored(frame: pd.DataFrame) -> dict[str, float]:
        out = score(frame, quantiles, mase_scale)
        out["rmsse_weighted"] = _weighted_rmsse(frame, *rmsse)
        return _rounded(out)

    ensemble = scored(blended)
    gate = out_of_sample_gate(sales, freq, horizon, member_backtests, baselines, windows, quantiles)
    best_name = gate.best_baseline()
    best_value = gate.baselines[best_name]
    ratio = gate.ratio(best_name)
    per_window = [
        {
            "cutoff": str(w.date()),
            "ensemble": _rounded(score(blended[blended["window"] == w], quantiles)),
            "members": {
                n: _rounded(score(f[f["window"] == w], quantiles)) for n, f in member_backtests.items()
            },
            "baselines": {n: _rounded(score(f[f["window"] == w], quantiles)) for n, f in baselines.items()},
        }
        for w in windows
    ]
    metrics: dict[str, Any] = {
        "frequency": freq,
        "horizon": horizon,
        "season_length": season_length(freq),
        "quantiles": list(quantiles),
        "backtest_windows": len(windows),
        "ensemble": ensemble,
        "members": {n: scored(f) for n, f in member_backtests.items()},
        "baselines": {n: scored(f) for n, f in baselines.items()},
        "gate": {
            "passed": bool(ratio <= max_wape_ratio),
            "metric": "wape",
            "max_ratio": max_wape_ratio,
            "window": gate.window,
            "windows": gate.windows,
            "best_baseline": best_name,
            "best_baseline_value": round(best_value, 5),
            "ensemble_value": round(gate.ensemble, 5),
            "wape_ratio": round(float(ratio), 4),
            "per_window": gate.per_window(best_name),
        },
        "windows": per_window,
        "weights": weighting.average(),
        "weighting": weighting.summary(),
        "interval_scale": scale_factor,
        "interval_scale_check": scale_check,
        "per_store": _per_group(blended, ["store_id"], quantiles),
        "data": {
            "start": str(sales["date"].min().date()),
            "end": str(sales["date"].max().date()),
            "series": int(sales.groupby(SERIES).ngroups),
            "rows": len(sales),
            # lost periods filled for training and left out of every score above (features.outages)
            "outages": [o.to_json() for o in outages],
        },
    }
    everything = pd.concat([*member_backtests.values(), *baselines.values(), blended], ignore_index=True)
    return Evaluation(metrics, weighting, scale_factor, everything)


def per_series_scores(backtest: pd.DataFrame, quantiles: Sequence[float]) -> pd.DataFrame:
    """Metrics per series and model: the model card's and the API's per-SKU table."""
    rows = []
    for (model, store, sku), frame in backtest.groupby(["model", "store_id", "sku"], sort=True):
        rows.append({"model": model, "store_id": store, "sku": sku, **_rounded(score(frame, quantiles))})
    return pd.DataFrame(rows)


def _per_group(frame: pd.DataFrame, by: list[str], quantiles: Sequence[float]) -> dict[str, dict[str, float]]:
    return {
        str(k[0] if isinstance(k, tuple) else k): _rounded(score(g, quantiles))
        for k, g in frame.groupby(by, sort=True)
    }


def _rmsse_setup(history: pd.DataFrame, horizon: int) -> tuple[pd.Series, pd.Series]:
    """M5-style: per-series scale (mean squared one-step difference) and revenue weights.

    Revenue is units x unit price over the last ``horizon`` periods when prices are known, else
    units; series whose history is flat (scale 0) are left out, as in M5.
    """
    ordered = history.sort_values([*SERIES, "date"])
    diffs = ordered.groupby(SERIES, sort=False)["units"].diff()
    scale = (diffs**2).groupby([ordered["store_id"], ordered["sku"]]).mean()
    recent = ordered.groupby(SERIES, sort=False).tail(horizon)
    value = recent["units"] * (recent["unit_price"].fillna(1.0) if "unit_price" in recent else 1.0)
    revenue = value.groupby([recent["store_id"], recent["sku"]]).sum().clip(lower=0)
    return scale.replace(0, np.nan), revenue


def _weighted_rmsse(frame: pd.DataFrame, scale: pd.Series, revenue: pd.Series) -> float:
    err = (frame["actual"] - frame["p50"]) ** 2
    mse = err.groupby([frame["store_id"], frame["sku"]]).mean()
    rmsse = (mse / scale.reindex(mse.index)).pow(0.5)
    weights = revenue.reindex(mse.index).where(rmsse.notna(), 0.0).fillna(0.0)
    total = weights.sum()
    return float((rmsse.fillna(0.0) * weights).sum() / total) if total > 0 else float("nan")


# The ratio of an ensemble with errors to an exact baseline: infinite, but JSON has no infinity and
# SageMaker's condition step reads ``gate.wape_ratio`` from evaluation.json as strict JSON.
RATIO_CAP = 1e6


@dataclass(frozen=True)
class GateFigures:
    """The gate's pooled WAPEs and the per-window terms they pool."""

    ensemble: float
    baselines: dict[str, float]
    windows: list[str]  # the cutoffs pooled, oldest first
    terms: list[dict[str, float]]  # per pooled window: "ensemble" and every baseline's WAPE
    # pooled absolute error of the median, "ensemble" and every baseline: what decides when the
    # windows hold no demand (WAPE is 0 / 0) or a baseline is exact (the ratio's denominator is 0)
    errors: dict[str, float]

    def best_baseline(self) -> str:
        """The baseline with the lowest pooled WAPE; by absolute error where WAPE is undefined."""
        return min(self.baselines, key=lambda n: (_or_inf(self.baselines[n]), self.errors[n]))

    def ratio(self, baseline: str) -> float:
        """Ensemble over ``baseline``: the WAPE ratio, or the ratio of the absolute errors (the same
        thing on the same rows) where the WAPEs cannot give one.

        Before, a baseline with WAPE 0 (a constant series, copied exactly) or none at all (a tenant
        that sold nothing in the windows) gave a ratio of 0.0, and any ensemble passed beside it.
        Now both exact is a tie (1.0), and an ensemble with errors beside an exact baseline fails,
        with ``RATIO_CAP`` in place of an infinite ratio.
        """
        ens, base = self.ensemble, self.baselines[baseline]
        if np.isfinite(ens) and np.isfinite(base) and base > 0:
            return float(ens / base)
        ens_err, base_err = self.errors["ensemble"], self.errors[baseline]
        if base_err > 0:
            return float(ens_err / base_err)
        return 1.0 if ens_err == 0 else RATIO_CAP

    @property
    def window(self) -> str:
        """The newest window pooled, or "in-sample" when there was no older window to fit on."""
        return self.windows[-1]

    def per_window(self, baseline: str) -> list[dict[str, Any]]:
        return [
            {
                "cutoff": cutoff,
                "ensemble_value": round(term["ensemble"], 5),
                "best_baseline_value": round(term[baseline], 5),
            }
            for cutoff, term in zip(self.windows, self.terms, strict=True)
        ]


def out_of_sample_gate(  # noqa: PLR0917
    sales: pd.DataFrame,
    freq: str,
    horizon: int,
    members: Mapping[str, pd.DataFrame],
    baselines: Mapping[str, pd.DataFrame],
    windows: Sequence[pd.Timestamp],
    quantiles: Sequence[float],
) -> GateFigures:
    """Pooled WAPEs over every window that has an older one to fit the weights on.

    Window k is blended with weights fitted on windows 1..k-1 and the history before it, so no
    weight saw the actuals it is scored on; WAPE is pooled as total absolute error over total units,
    which weighs each window by its demand. With a single window there is nothing older to fit on;
    the in-sample blend is used and ``window`` says "in-sample".
    """
    if len(windows) < 2:
        _, blended = fit_ensemble(sales, freq, horizon, quantiles, members)
        scored = {"ensemble": blended, **baselines}
        term = {n: score(f, quantiles)["wape"] for n, f in scored.items()}
        errors = {n: _abs_error(f) for n, f in scored.items()}
        return GateFigures(term["ensemble"], _without(term, "ensemble"), ["in-sample"], [term], errors)
    level_window, _ = weighting_params(freq, horizon)
    ensembles, terms = [], []
    for cutoff in windows[1:]:
        older = {n: f[f["window"] < cutoff] for n, f in members.items()}
        newest = {n: f[f["window"] == cutoff] for n, f in members.items()}
        weighting = Weighting.fit(older, sales[sales["date"] < cutoff], level_window, 0, quantiles=quantiles)
        first = next(iter(newest.values()))
        rows = weighting.column_rows(first, sales[sales["date"] <= cutoff], quantiles, judge_length=False)
        ensembles.append(blend_rows(newest, rows, weighting.members, quantiles, first))
        term = {"ensemble": score(ensembles[-1], quantiles)["wape"]}
        term |= {n: score(f[f["window"] == cutoff], quantiles)["wape"] for n, f in baselines.items()}
        terms.append(term)
    later = windows[1:]
    gated = {n: f[f["window"].isin(later)] for n, f in baselines.items()}
    gated["ensemble"] = pd.concat(ensembles, ignore_index=True)
    pooled = {n: score(f, quantiles)["wape"] for n, f in gated.items()}
    errors = {n: _abs_error(f) for n, f in gated.items()}
    ensemble = pooled.pop("ensemble")
    return GateFigures(ensemble, pooled, [str(w.date()) for w in later], terms, errors)


def _abs_error(frame: pd.DataFrame) -> float:
    return float(np.abs(frame["actual"].to_numpy(dtype=float) - frame["p50"].to_numpy(dtype=float)).sum())


def _or_inf(value: float) -> float:
    return float(value) if np.isfinite(value) else float("inf")


def _without(values: Mapping[str, float], key: str) -> dict[str, float]:
    return {k: v for k, v in values.items() if k != key}


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 5) for k, v in values.items()}
