"""The development-window measurements behind this session's model choices (never an evaluation window).

    .venv/bin/python benchmarks/dev_windows.py [--only xgboost,stl,walmart_d1,xgboost_fit_once]
        -> benchmarks/results/dev_windows.json
    .venv/bin/python benchmarks/dev_windows.py --only calibration --runs DIR   (DIR: accuracy.py --keep-runs)

- ``xgboost``: Store Item Demand, 400 series, trained to 2016-10-02, 90 days scored: the default
  budget (100 rounds, depth 6, 250,000 rows) against the old one (200, 7, 800,000), and the yearly
  naive. (The old origin placement, the last four months only, is gone from the code since commit
  60430d7; its 0.166 was measured with the code before it.) About 12 minutes on 2 cores.
- ``stl``: seconds per MSTL([7, 364]) decomposition of two years of days, without and with LOESS
  jumps, and how far the yearly component moves.
- ``xgboost_fit_once``: Store Item Demand, 400 series, the three 90-day backtest windows of the
  evaluation build (cutoffs 2017-01-05 / 04-05 / 07-04): WAPE per window with XGBoost trained once at
  the earliest cutoff against refitted at every cutoff. About 4 minutes.
- ``calibration``: on each kept build's own backtests (never an evaluation window), the ensemble's
  interval scale fitted on the older windows, p10-p90 coverage on the newest: every older window
  pooled, the newest older window alone, no scale; and each window's unscaled coverage.
- ``ensemble``: on each kept build's own backtests, the ensemble fitted as the evaluate step fits it
  (weights, then the interval scale on the newest of its windows) but on the older windows only, and
  scored on the newest window beside every member and baseline: the out-of-sample check of "better
  than each member". Variants: every quantile on the median's weights, and each quantile its own;
  the interval scale fitted for coverage or pinball loss, checked one window back or not; and the
  window guard (``models.ensemble.WINDOW_GUARD``: a blend that lost to the best member in any
  backtest window is not chosen) off and on.
- ``headroom``: on each kept build's newest backtest window, each member's WAPE beside the best convex
  blend of their medians chosen in hindsight on that same window (a bound no fitted ensemble beats
  there), and for count data the WAPE of a forecaster that knew each period's Poisson mean.
- ``tail_weights`` (``--runs``): each kept build's backtest windows held out one at a time, the ensemble
  fitted on the others with each quantile's own weights or the median's for all, beside XGBoost.
- ``intermittent_partners`` (``--runs``): on each kept daily build's backtest windows, Croston-type
  methods, TSB, ADIDA, IMAPA, a window average and XGBoost's mean, alone and blended with XGBoost's median
  in hindsight.
- ``horizons`` (``--runs``): each member's WAPE per backtest window and horizon bucket (a week, two,
  four, the rest; weeks for weekly data), and the member that wins each: where weights per horizon
  as well as per cluster could pay.
- ``xgboost_scaling`` (``--sets``): each set trained to its evaluation build's newest backtest cutoff,
  scored on the next horizon: XGBoost scaled by the recent or the larger of the recent and the
  yearly level, learning the scaled target or a correction to the yearly naive; and the yearly naive.
  About 6 minutes for the three sets.
- ``walmart_d1``: Walmart stores 1-2, 64 weeks of history, the next 39 weeks (before the evaluation
  window): AutoARIMA(52) free, with seasonal differencing forced (D = 1), and the 52-week naive.
- ``arima_two_years``: Store Item Demand summed to weeks, four windows whose history is exactly two
  years (Walmart's shape at its evaluation cutoff), 39 weeks scored: the yearly naive against the
  ARIMA member (MSTL with the 52-week season), with MSTL's own intervals and with them floored by the
  yearly naive's spread; and the same on the daily build's newest backtest window. About 6 minutes.
- ``deepar_warm``: Store Item Demand, 400 series, DeepAR for the newest backtest cutoff trained from
  scratch (12 epochs) against continued from the network trained 90 days earlier (at most 6 more),
  scored on the 90 days after it; training seconds of each. About 5 minutes.
- ``xgboost_warm``: Store Item Demand, 400 series, the newest and second-newest backtest cutoffs:
  XGBoost trained from scratch against continuing, for 25, 34 or 50 rounds, a model trained two
  horizons earlier (as the build's final fit continues the earliest cutoff's); scored on the horizon
  after each cutoff, with training seconds. About 5 minutes.
- ``autoets_window``: Store Item Demand, 400 series, the newest and second-newest backtest cutoffs:
  AutoETS fitted on the last 364, 182 or 120 days (search seconds and scores). About 5 minutes.
- ``deepar_cache``: Store Item Demand, 400 series, DeepAR trained 3 epochs at the earliest backtest
  cutoff with and without gluonts' cache of transformed data: training seconds, largest forecast
  difference. About 2 minutes.
- ``arima_roll``: Store Item Demand, 400 series, the evaluation build's three backtest cutoffs: orders
  searched at the earliest; each later window forecast with the search's coefficients rolled forward
  (state refiltered) and with them re-estimated, scored and timed. About 4 minutes.
- ``deepar_lags``: Store Item Demand, 400 series, the two dev windows: DeepAR trained from scratch at
  each cutoff with its training windows starting where their lags are observed (four years of
  history) against windows starting anywhere over padded zeros (two years, as before): scores, the
  bias of the median and the mean, training seconds. About 10 minutes.
- ``deepar_lags_weekly``: Store Item summed to weeks, the four two-year windows of
  ``arima_two_years`` (where no training window can observe the year): DeepAR with the year lag, as
  it always had, and without. About 8 minutes.
- ``deepar_epochs``: Store Item Demand, 400 series, the two dev windows: XGBoost, DeepAR at 12 epochs
  (the build's) and at 24, each from scratch; the 90/10 blend of XGBoost and DeepAR and the best
  blend of their medians in hindsight. About 8 minutes.
- ``deepar_isa``: DeepAR (2 epochs, 20 series) trained in fresh processes with torch's CPU kernels as
  detected, pinned to AVX2 or to the portable default, and with MKL's ``MKL_CBWR=COMPATIBLE``: whether
  the forecasts' bits depend on the instruction set (Store Item and Walmart). About 2 minutes.
- ``deepar_samples`` (``--runs``): the kept Store Item build's DeepAR forecasting 90 days with 200
  sample paths and with 100: predict seconds and what the sampling noise moves (in-sample window).
- ``yearly_signal``: the year-over-year signal (``models.statistical.yearly_signal``) that gives weekly
  series short of two years the yearly naive or a non-seasonal AutoARIMA, on Walmart, Store Item
  summed to weeks, steady Poisson products, random walks and trends; and both choices' WAPE on
  64 weeks of Walmart stores 1-2 and of the steady products. About 2 minutes.
- ``steady_weekly``: a generated steady weekly tenant (30 products, 70 weeks, written as CSV for a
  CLI build) at its three backtest cutoffs: the year-over-year verdict, the ARIMA member, XGBoost
  anchored on last year's week and anchored by the verdict, AutoETS, the yearly naive. About a minute.
- ``xgboost_capacity`` (``--full``): XGBoost's configured trees against the small-tenant trees on
  tenants cut from the three sets (5 to 400 series) and generated steady ones, each on its three
  backtest windows; the rows that decide between them. About 4 minutes, 14 with ``--full``.
- ``small_tenant_builds``: small tenants (Walmart store 1, Online Retail outside the UK, the steady
  weekly tenant, and four generated shapes) ingested and built through the CLI; each build's gate and
  backtest windows. About three minutes.
- ``walmart_dhr``: the same series and weeks: dynamic harmonic regression (AutoARIMA errors on K yearly
  Fourier pairs, K = 3, 6, 10, 15, and K chosen by AICc) against the 52-week naive. About 8 minutes.
- ``one_off_rule`` (``--runs``): a candidate rule for one-off orders (``_one_offs_cleaned``) on each kept
  build's newest backtest window: XGBoost trained on the history as it is and cleaned, scored on the
  real sales; how many values it replaces. About two minutes.
- ``delisted_products``: three of six steady products delisted four months before the end, built and
  forecast through the CLI: their forecast against the selling products'. About a minute.
- ``one_off_order``: a steady product's one-off bulk order of 1,500 units five days before the end,
  built and forecast through the CLI, against the same tenant without it: the ensemble's and each
  member's next two weeks. About two minutes.
- ``turning_rule`` (``--runs``): the turning cluster's seasonal rule against the first one on each
  kept build's newest backtest window, and how many series each calls turning. Under a minute.
- ``deepar_returns``: Online Retail's two newest backtest windows: DeepAR with the Student-t its returns
  used to choose against the negative binomial on units clipped at zero. About 3 minutes.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))  # after ROOT: benchmarks/features.py must not shadow the package
RESULTS = ROOT / "benchmarks" / "results" / "dev_windows.json"
# a set's name, a cutoff, the history to it, the actuals after it, MASE's scale, horizon, frequency
DevWindow = tuple[str, pd.Timestamp, pd.DataFrame, pd.DataFrame, pd.Series, int, str]
LIMITS = {"approximation": True, "max_p": 2, "max_q": 2, "max_P": 1, "max_Q": 1, "nmodels": 20}


def _scored(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    quantiles: tuple[float, ...],
    scale: pd.Series,
    keep: tuple[str, ...] = ("wape", "mase", "pinball", "coverage"),
) -> dict[str, Any]:
    """A forecast scored against the actuals after its cutoff (a series it missed forecasts zero)."""
    from models.metrics import score

    joined = truth.merge(pred, on=["store_id", "sku", "target_date"], how="left").fillna(0.0)
    result = score(joined, quantiles, scale)
    return {k: round(float(result[k]), 4) for k in keep}


def _timed_scored(  # noqa: PLR0917 (a lab's frames and settings)
    make: Callable[[], Any],
    history: pd.DataFrame,
    truth: pd.DataFrame,
    scale: pd.Series,
    freq: str,
    horizon: int,
    keep: tuple[str, ...] = ("wape", "mase", "pinball", "coverage"),
) -> dict[str, Any]:
    """A model made, fitted on ``history``, scored on ``truth`` (p10/p50/p90), with its seconds."""
    started = time.perf_counter()
    pred = make().fit(history, freq).predict(history, horizon, (0.1, 0.5, 0.9))
    return {
        **_scored(pred, truth, (0.1, 0.5, 0.9), scale, keep=keep),
        "seconds": round(time.perf_counter() - started, 1),
    }


def xgboost() -> dict[str, Any]:
    from accuracy import store_item

    from features.frequency import season_length
    from models.backtest import actuals_after
    from models.metrics import naive_scale
    from models.naive import SeasonalNaive
    from models.xgboost import GlobalXGBoost

    sales, _, _, freq = store_item()
    until, horizon = pd.Timestamp("2016-10-02"), 90
    history = sales[sales["date"] <= until]
    truth = actuals_after(sales, until, horizon, freq)
    scale = naive_scale(history, season_length(freq))
    old_budget = {"n_estimators": 200, "learning_rate": 0.08, "max_depth": 7, "max_rows": 800_000}
    variants: dict[str, Callable[[], Any]] = {
        "seasonal_naive_year": lambda: SeasonalNaive(yearly=True),
        "xgboost_default": lambda: GlobalXGBoost(horizon=horizon),
        "xgboost_old_budget": lambda: GlobalXGBoost(horizon=horizon, **old_budget),
    }
    out: dict[str, Any] = {}
    for label, make in variants.items():
        out[label] = _timed_scored(make, history, truth, scale, freq, horizon, keep=("wape",))
        print(label, out[label], flush=True)
    return out


def stl() -> dict[str, Any]:
    from statsforecast.mstl import mstl

    raw = pd.read_parquet(ROOT.parent / "shared" / "data" / "store_item_demand_dev_stores_1_8.parquet")
    raw["date"] = pd.to_datetime(raw["date"])
    raw = raw[(raw["date"] <= "2017-01-05") & (raw["store_id"] == 1) & (raw["item_id"] <= 10)]
    series = [g.sort_values("date")["units"].to_numpy(float)[-742:] for _, g in raw.groupby("item_id")]
    timings, components = {}, {}
    for label, kwargs in (("plain", {}), ("jumps_10", {"trend_jump": 10, "low_pass_jump": 10})):
        started = time.perf_counter()
        components[label] = [mstl(y, [7, 364], stl_kwargs=kwargs)["seasonal364"].to_numpy() for y in series]
        timings[label] = round((time.perf_counter() - started) / len(series), 3)
    moved = max(
        float(np.abs(a - b).max()) for a, b in zip(components["plain"], components["jumps_10"], strict=True)
    )
    out = {"seconds_per_series": timings, "max_yearly_component_change": round(moved, 3)}
    print(out, flush=True)
    return out


def walmart_d1() -> dict[str, Any]:
    from statsforecast.models import AutoARIMA

    raw = pd.read_parquet(ROOT.parent / "shared" / "data" / "walmart_weekly_dev_stores_1_22_not_3.parquet")
    errors = {"free": 0.0, "D1": 0.0, "seasonal_naive_52": 0.0}
    total = 0.0
    for _key, group in raw[raw["store_id"].isin([1, 2])].groupby(["store_id", "dept_id"]):
        y = group.sort_values("date")["weekly_sales"].to_numpy(float)
        if len(y) < 143:
            continue
        train, test = y[:64], y[64:103]
        errors["free"] += np.abs(
            test - AutoARIMA(season_length=52, **LIMITS).fit(train).predict(39)["mean"]
        ).sum()
        errors["D1"] += np.abs(
            test - AutoARIMA(season_length=52, D=1, **LIMITS).fit(train).predict(39)["mean"]
        ).sum()
        errors["seasonal_naive_52"] += np.abs(test - train[-52:][:39]).sum()
        total += np.abs(test).sum()
    out = {name: round(err / total, 4) for name, err in errors.items()}
    print("WAPE", out, flush=True)
    return out


def walmart_dhr() -> dict[str, Any]:
    from statsforecast.models import AutoARIMA

    raw = pd.read_parquet(ROOT.parent / "shared" / "data" / "walmart_weekly_dev_stores_1_22_not_3.parquet")
    period, train_weeks, horizon, ks = 365.25 / 7, 64, 39, (3, 6, 10, 15)
    t = np.arange(train_weeks + horizon, dtype=float)

    def fourier(k: int) -> np.ndarray:
        angles = [2 * np.pi * j * t / period for j in range(1, k + 1)]
        return np.column_stack([f(a) for a in angles for f in (np.sin, np.cos)])

    errors = {**{f"K{k}": 0.0 for k in ks}, "K_by_aicc": 0.0, "seasonal_naive_52": 0.0}
    total, started, series = 0.0, time.perf_counter(), 0
    for _key, group in raw[raw["store_id"].isin([1, 2])].groupby(["store_id", "dept_id"]):
        y = group.sort_values("date")["weekly_sales"].to_numpy(float)
        if len(y) < 143:
            continue
        train, test = y[:train_weeks], y[train_weeks : train_weeks + horizon]
        best = (np.inf, 0.0)
        for k in ks:
            X = fourier(k)
            model = AutoARIMA(season_length=1, **LIMITS).fit(train, X[:train_weeks])
            err = float(np.abs(test - model.predict(horizon, X[train_weeks:])["mean"]).sum())
            errors[f"K{k}"] += err
            best = min(best, (float(model.model_["aicc"]), err))
        errors["K_by_aicc"] += best[1]
        errors["seasonal_naive_52"] += float(np.abs(test - train[-52:][:horizon]).sum())
        total += float(np.abs(test).sum())
        series += 1
    out: dict[str, Any] = {name: round(err / total, 4) for name, err in errors.items()}
    out["seconds_per_fit"] = round((time.perf_counter() - started) / (series * len(ks)), 2)
    print("WAPE", out, flush=True)
    return out


def yearly_signal_lab() -> dict[str, Any]:
    """The year-over-year signal that picks the yearly naive or a non-seasonal ARIMA for weekly
    series short of two years, on the sets and shapes it must tell apart, and what each choice scores.

    ``signal``: ``models.statistical.yearly_signal`` on the first N weeks of Walmart (all series),
    of Store Item Demand summed to weeks, of ``steady_weekly_tenant`` (72 weeks of 30 products),
    of random walks and of linear trends. ``wape``: the first 64 weeks of each of Walmart stores 1-2
    and of the steady products, the next 39 (Walmart, before its evaluation window) or 8 weeks
    (steady) scored: the 52-week naive against a non-seasonal AutoARIMA (the search's limits).
    """
    from accuracy import store_item, walmart
    from statsforecast.models import AutoARIMA

    from models.seasonality import series_values, yearly_signal

    rng = np.random.default_rng(0)
    steady = series_values(steady_weekly_tenant(weeks=72), "W-SUN")
    walks = [100 + np.cumsum(rng.normal(0, 3, 80)) for _ in range(50)]
    trends = [50 + 0.5 * np.arange(80) + rng.normal(0, 3, 80) for _ in range(50)]
    weekly_sales = walmart()[0]
    daily = store_item()[0]
    store_weeks = (
        daily.set_index("date").groupby(["store_id", "sku"])["units"].resample("W-FRI").sum().reset_index()
    )
    walmart_series, store_series = series_values(weekly_sales, "W-FRI"), series_values(store_weeks, "W-FRI")
    signal: dict[str, Any] = {}
    for n in (53, 59, 65, 70, 90):
        signal[f"walmart_{n}_weeks"] = yearly_signal([y[:n] for y in walmart_series], 52)
    for n in (56, 60, 70, 90):
        signal[f"store_item_weekly_{n}_weeks"] = yearly_signal([y[:n] for y in store_series], 52)
    signal["steady_poisson_70_weeks"] = yearly_signal([y[:70] for y in steady], 52)
    signal["random_walks_80_weeks"] = yearly_signal(walks, 52)
    signal["trends_80_weeks"] = yearly_signal(trends, 52)
    print(signal, flush=True)

    def scores(series: list[np.ndarray], train: int, horizon: int) -> dict[str, float]:
        errors = {"yearly_naive": 0.0, "non_seasonal_arima": 0.0}
        total = 0.0
        for y in series:
            if len(y) < train + horizon:
                continue
            history, test = y[:train], y[train : train + horizon]
            errors["yearly_naive"] += float(np.abs(test - history[-52:][:horizon]).sum())
            fitted = AutoARIMA(season_length=1, **LIMITS).fit(history)
            errors["non_seasonal_arima"] += float(np.abs(test - fitted.predict(horizon)["mean"]).sum())
            total += float(np.abs(test).sum())
        return {name: round(err / total, 4) for name, err in errors.items()}

    stores_1_2 = series_values(weekly_sales[weekly_sales["store_id"].isin(["1", "2"])], "W-FRI")
    wape = {
        "walmart_stores_1_2_64_weeks": scores(stores_1_2, 64, 39),
        "steady_poisson_64_weeks": scores(steady, 64, 8),
    }
    print(wape, flush=True)
    return {"signal": signal, "wape": wape}


def steady_weekly_tenant(weeks: int = 70, products: int = 30, seed: int = 7) -> pd.DataFrame:
    """Steady weekly demand with no year in it: each product's daily Poisson level with a weekday
    pattern, summed to weeks (W-SUN). The shape that lost its gate to AutoETS with the yearly naive."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(end="2024-06-30", periods=weeks * 7, freq="D")
    frames = []
    for j in range(products):
        weekday = 1 + 0.3 * np.sin(2 * np.pi * np.arange(len(days)) / 7 + j)
        units = rng.poisson(5.0 * rng.uniform(0.3, 3) * weekday).astype(float)
        frames.append(
            pd.DataFrame({"store_id": f"S{j % 3}", "sku": f"SKU-{j:03d}", "date": days, "units": units})
        )
    daily = pd.concat(frames, ignore_index=True)
    weekly = daily.groupby(["store_id", "sku", pd.Grouper(key="date", freq="W-SUN")])["units"].sum()
    return weekly.reset_index()


def steady_weekly() -> dict[str, Any]:
    """The members on a steady weekly tenant at its backtest cutoffs, against AutoETS and the naive.

    ``steady_weekly_tenant()``, 70 weeks (also written as CSV, path printed, for ``ordernimbus
    ingest`` and a CLI build), horizon 8, the three backtest cutoffs the pipeline uses (54, 58 and 62
    weeks): the year-over-year verdict at each, the ARIMA member, XGBoost anchored on last year's week
    and with the anchor chosen by that verdict, AutoETS and the yearly naive. About a minute.
    """
    import tempfile

    from features.frequency import season_length
    from models.backtest import actuals_after, cutoffs
    from models.metrics import naive_scale
    from models.naive import SeasonalNaive
    from models.seasonality import series_values, yearly_signal
    from models.statistical import AutoARIMAForecaster, AutoETSForecaster
    from models.xgboost import GlobalXGBoost

    sales, freq, horizon, quantiles = steady_weekly_tenant(), "W-SUN", 8, (0.1, 0.5, 0.9)
    path = Path(tempfile.mkdtemp()) / "steady_weekly.csv"
    sales.to_csv(path, index=False)
    print("tenant written to", path, flush=True)
    out: dict[str, Any] = {}
    for cutoff in cutoffs(sales["date"].max(), horizon, 3, freq, first=sales["date"].min()):
        history = sales[sales["date"] <= cutoff]
        truth = actuals_after(sales, cutoff, horizon, freq)
        scale = naive_scale(history, season_length(freq))
        row: dict[str, Any] = {"weeks": int(history["date"].nunique())}
        row["yearly_signal"] = yearly_signal(series_values(history, freq), 52)
        models: dict[str, Callable[[], Any]] = {
            "arima": AutoARIMAForecaster,
            "xgboost_anchor_year": lambda: GlobalXGBoost(horizon=horizon, anchor="year"),
            "xgboost_anchor_by_signal": lambda: GlobalXGBoost(horizon=horizon),
            "autoets": AutoETSForecaster,
            "seasonal_naive_year": lambda: SeasonalNaive(yearly=True),
        }
        for label, make in models.items():
            pred = make().fit(history, freq).predict(history, horizon, quantiles)
            row[label] = _scored(pred, truth, quantiles, scale)
        print(cutoff.date(), row, flush=True)
        out[str(cutoff.date())] = row
    return out


def _capacity_cases(full: bool) -> list[tuple[str, pd.DataFrame, int, str]]:
    """Tenants of every size cut from the three sets before their evaluation windows, and generated
    steady ones: (name, sales, horizon, freq)."""
    import tempfile

    from accuracy import online_retail, store_item, walmart

    cases = [
        (f"steady_{products}x{weeks}w_seed{seed}", steady_weekly_tenant(weeks, products, seed), 8, "W-SUN")
        for seed, products, weeks in ((7, 30, 70), (11, 30, 80), (23, 60, 66))
    ]
    sid, until, horizon, freq = store_item()
    sid = sid[sid["date"] <= until]
    item = sid["sku"].astype(int)
    cases += [
        ("store_item_5", sid[(sid["store_id"] == "1") & item.between(1, 5)], 28, freq),
        ("store_item_20", sid[sid["store_id"].isin(["1", "2"]) & item.between(10, 19)], 28, freq),
        ("store_item_40", sid[(sid["store_id"] == "1") & item.between(1, 40)], 28, freq),
    ]
    if full:
        cases.append(("store_item_full", sid, horizon, freq))
    wal, until, horizon, freq = walmart()
    wal = wal[wal["date"] <= until]
    cases += [
        ("walmart_store_1", wal[wal["store_id"] == "1"], horizon, freq),
        ("walmart_store_2_13w", wal[wal["store_id"] == "2"], 13, freq),
        ("walmart_stores_1_2", wal[wal["store_id"].isin(["1", "2"])], horizon, freq),
        ("walmart_stores_1_2_4_5", wal[wal["store_id"].isin(["1", "2", "4", "5"])], horizon, freq),
    ]
    if full:
        cases.append(("walmart_full", wal, horizon, freq))
    ret, until, horizon, freq = online_retail(Path(tempfile.mkdtemp()))
    ret = ret[ret["date"] <= until]
    uk = ret[ret["store_id"] == "United Kingdom"]
    cases += [
        ("online_retail_outside_uk", ret[ret["store_id"] != "United Kingdom"], 28, freq),
        ("online_retail_uk_150", uk[uk["sku"].isin(sorted(uk["sku"].unique())[:150])], 28, freq),
    ]
    if full:
        cases.append(("online_retail_full", ret, horizon, freq))
    return cases


def xgboost_capacity(full: bool) -> dict[str, Any]:
    """XGBoost with the configured trees (depth 6, 100 rounds) against the small-tenant trees (depth
    3, 40 rounds) on tenants of every size, each scored on its three backtest windows (the pipeline's
    cutoffs, all before the set's evaluation window); the training rows at the earliest cutoff decide
    which one ``capacity=None`` picks. About 4 minutes; ``--full`` adds the three whole sets (10 more).
    """
    from features.engineering import build_features
    from features.frequency import season_length
    from models.backtest import actuals_after, cutoffs
    from models.metrics import naive_scale
    from models.xgboost import SMALL_ROWS, GlobalXGBoost

    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {"small_rows": SMALL_ROWS}
    for name, sales, horizon, freq in _capacity_cases(full):
        scores: dict[str, list[dict[str, Any]]] = {"full": [], "small": []}
        rows = 0
        for cutoff in cutoffs(sales["date"].max(), horizon, 3, freq, first=sales["date"].min()):
            history = sales[sales["date"] <= cutoff]
            truth = actuals_after(sales, cutoff, horizon, freq)
            scale = naive_scale(history, season_length(freq))
            for capacity, found in scores.items():
                model = GlobalXGBoost(horizon=horizon, capacity=capacity).fit(history, freq)
                found.append(_scored(model.predict(history, horizon, quantiles), truth, quantiles, scale))
                if not rows:
                    rows = len(model._examples(build_features(history, model.spec), model.spec, True)[0])
        row: dict[str, Any] = {
            "series": int(sales.groupby(["store_id", "sku"]).ngroups),
            "rows_at_earliest_cutoff": rows,
            "picked": "small" if rows < SMALL_ROWS else "full",
        }
        for capacity, found in scores.items():
            row[capacity] = {k: round(float(np.mean([f[k] for f in found])), 4) for k in ("wape", "pinball")}
            row[capacity]["wape_per_window"] = [f["wape"] for f in found]
        print(name, row, flush=True)
        out[name] = row
    return out


def _edge_tenants() -> dict[str, tuple[pd.DataFrame, int]]:
    """Generated shapes none of the three sets has: (sales, horizon) by tenant name."""
    rng = np.random.default_rng(3)
    weeks = pd.date_range("2022-01-03", periods=90, freq="W-MON")  # weeks ending on Mondays
    season = 1 + 0.4 * np.sin(2 * np.pi * np.arange(90) / 52)
    monday = [
        pd.DataFrame(
            {
                "store_id": f"S{j % 2}",
                "sku": f"P{j}",
                "date": weeks,
                "units": rng.poisson(rng.uniform(20, 200) * np.roll(season, j) * (1 + 0.004 * np.arange(90))),
            }
        )
        for j in range(12)
    ]
    days = pd.date_range("2023-01-01", periods=500, freq="D")
    open_days = days[days.dayofweek != 6]  # closed on Sundays: no rows at all
    closed = [
        pd.DataFrame(
            {
                "store_id": "A",
                "sku": f"K{j}",
                "date": open_days,
                "units": rng.poisson(rng.uniform(1, 30) * (1 + 0.5 * (open_days.dayofweek == 5))),
            }
        )
        for j in range(15)
    ]
    single = pd.DataFrame(
        {"store_id": "only", "sku": "one", "date": days[:400], "units": rng.poisson(12, 400)}
    )
    recent = pd.date_range("2023-06-01", periods=300, freq="D")
    sparse = [  # half the days sell nothing, the rest Poisson(0.3); five products launched 20 days ago
        pd.DataFrame(
            {
                "store_id": "B",
                "sku": f"I{j}",
                "date": recent,
                "units": rng.poisson(0.3, 300) * (rng.random(300) < 0.5),
            }
        ).iloc[280 if j < 5 else 0 :]
        for j in range(40)
    ]
    return {
        "weekly-mondays": (pd.concat(monday, ignore_index=True), 13),
        "closed-sundays": (pd.concat(closed, ignore_index=True), 28),
        "single-series": (single, 28),
        "intermittent-launches": (pd.concat(sparse, ignore_index=True), 14),
    }


def small_tenant_builds() -> dict[str, Any]:
    """Small tenants built through the CLI, as a user would (``ordernimbus ingest``, then ``ordernimbus
    pipeline run build``): Walmart's store 1 (77 departments, weekly, before its evaluation window,
    horizon 13), Online Retail outside the UK (24 series, daily, horizon 28), the generated steady
    weekly tenant (30 products, horizon 8) and four generated shapes (``_edge_tenants``: weeks ending on
    Mondays, a shop closed on Sundays, a single series, sparse demand with new launches). The gate line
    and each backtest window's WAPE and pinball loss, from the build's ``evaluation.json`` (the gate
    pools every out-of-sample window since session 15; its ``per_window`` holds each term). About
    three minutes; run it at two commits to compare (the steps import the checkout they run in).
    """
    import subprocess
    import tempfile

    from accuracy import online_retail, walmart

    work = Path(tempfile.mkdtemp())
    wal, until, _, _ = walmart()
    ret, ret_until, _, _ = online_retail(work)
    columns = ["store_id", "sku", "date", "units"]
    tenants = {
        "walmart-store-1": (wal[(wal["date"] <= until) & (wal["store_id"] == "1")][columns], 13),
        "retail-outside-uk": (
            ret[(ret["date"] <= ret_until) & (ret["store_id"] != "United Kingdom")][columns],
            28,
        ),
        "steady-weekly": (steady_weekly_tenant()[columns], 8),
        **_edge_tenants(),
    }
    env = {**os.environ, "ORDERNIMBUS_HOME": str(work / "home")}
    cli = [sys.executable, "-c", "from ordernimbus.cli import main; main()"]
    out: dict[str, Any] = {}
    for tenant, (sales, horizon) in tenants.items():
        path = work / f"{tenant}.csv"
        sales.to_csv(path, index=False)
        for args in (
            ["ingest", str(path), "--tenant", tenant],
            ["pipeline", "run", "build", "--tenant", tenant, "--horizon", str(horizon)],
        ):
            subprocess.run([*cli, *args], env=env, cwd=ROOT, check=True, capture_output=True)
        found = sorted((work / "home" / "runs" / tenant).glob("*/Evaluate/**/evaluation.json"))
        evaluation = json.loads(found[-1].read_text())
        row: dict[str, Any] = {"gate": evaluation["gate"], "weights": evaluation.get("weights")}
        row["windows"] = {
            w["cutoff"]: {
                name: [scores["wape"], scores["pinball"]]
                for name, scores in {"ensemble": w["ensemble"], **w["members"], **w["baselines"]}.items()
            }
            for w in evaluation["windows"]
        }
        print(tenant, json.dumps(row), flush=True)
        out[tenant] = row
    return out


def christmas_tenant(seed: int = 21) -> pd.DataFrame:
    """24 steady products (10 a day, a weekly and a yearly swing) and 6 that sell only from the 1st
    to the 24th of December (20 + 4i a day, a stray unit a month otherwise), three years to the end
    of November, exported sparse: no row for a day without sales."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2021-11-01", "2024-11-30", freq="D")
    december = (dates.month == 12) & (dates.day <= 24)
    week = 1 + 0.25 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
    year = 1 + 0.2 * np.sin(2 * np.pi * dates.dayofyear.to_numpy() / 365)
    rows = [
        pd.DataFrame(
            {"store_id": "S1", "sku": f"ITEM{i:02d}", "date": dates, "units": rng.poisson(10 * week * year)}
        )
        for i in range(24)
    ]
    rows += [
        pd.DataFrame(
            {
                "store_id": "S1",
                "sku": f"XMAS{i}",
                "date": dates,
                "units": rng.poisson(np.where(december, 20.0 + 4 * i, 0.02)),
            }
        )
        for i in range(6)
    ]
    sales = pd.concat(rows, ignore_index=True)
    return sales[sales["units"] > 0].reset_index(drop=True)


def _cli_forecast(sales: pd.DataFrame, tenant: str, horizon: int, work: Path) -> pd.DataFrame:
    """A tenant as a user runs it: ingest a CSV, build, approve (with --override when the gate
    refuses), forecast and export; the exported forecast. The home stays in ``work / 'home'``."""
    import subprocess

    path = work / f"{tenant}.csv"
    sales.assign(date=sales["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    env = {**os.environ, "ORDERNIMBUS_HOME": str(work / "home")}
    cli = [sys.executable, "-c", "from ordernimbus.cli import main; main()"]
    named = ["--tenant", tenant]
    for args in (["ingest", str(path)], ["pipeline", "run", "build", "--horizon", str(horizon)]):
        subprocess.run([*cli, *args, *named], env=env, cwd=ROOT, check=True, capture_output=True)
    approve = [*cli, "registry", "approve", *named, "--version", "1"]
    if subprocess.run(approve, check=False, env=env, cwd=ROOT, capture_output=True).returncode != 0:
        subprocess.run(
            [*approve, "--override", "--reason", "lab"], env=env, cwd=ROOT, check=True, capture_output=True
        )
    export = work / f"{tenant}-forecast.csv"
    for args in (
        ["pipeline", "run", "forecast", "--horizon", str(horizon)],
        ["forecast", "export", "--out", str(export)],
    ):
        subprocess.run([*cli, *args, *named], env=env, cwd=ROOT, check=True, capture_output=True)
    return pd.read_csv(export)


def _one_offs_cleaned(sales: pd.DataFrame, freq: str, ratio: float) -> tuple[pd.DataFrame, int]:
    """A candidate one-off rule, for the lab only: a value more than ``ratio`` times its series' record
    so far and ten times its typical level (the same period of the season over its last eight
    seasons, or its selling periods' median over as long), after eight seasons of history and not
    echoed a year before (a period either side at a third of it or more), is replaced by that
    same-season mean. Causal: each value is judged by what came before it. (sales, values replaced)."""
    from features.frequency import pandas_alias, season_length, year_length

    season, year = season_length(freq), year_length(freq)
    wide = sales.pivot_table(index="date", columns=["store_id", "sku"], values="units", aggfunc="sum")
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq=pandas_alias(freq)))
    started = wide.notna().cumsum() > 0
    v = wide.fillna(0.0).where(started)
    same = sum(v.shift(season * k) for k in range(1, 9)) / 8
    selling = v.where(v > 0).rolling(8 * season, min_periods=1).median().shift(1)
    typical = np.maximum(same.fillna(0.0), selling.fillna(0.0))
    echo = pd.concat([v.shift(year + d) for d in (-1, 0, 1)]).groupby(level=0).max()
    flag = (
        (v > ratio * v.cummax().shift(1))
        & (v > 10 * typical)
        & (started.cumsum() > 8 * season)
        & ~(echo >= v / 3)
    )
    fill = same.where(same.notna(), typical)
    long = fill.where(flag).stack(level=[0, 1], future_stack=True).dropna().rename("fill").reset_index()
    long = long.rename(columns={"level_0": "date"})
    out = sales.merge(long, on=["date", "store_id", "sku"], how="left")
    replaced = int(out["fill"].notna().sum())
    out["units"] = out["fill"].where(out["fill"].notna(), out["units"])
    return out.drop(columns="fill"), replaced


def one_off_rule(runs: Path) -> dict[str, Any]:
    """The candidate one-off rule (``_one_offs_cleaned``) on each kept build's newest backtest window:
    XGBoost trained as the build trains it (100 rounds) on the history to that cutoff as it is and
    cleaned, scored on the window's real sales (never cleaned). How many values the rule replaces at
    ratios 3 and 10. Never an evaluation window. About two minutes a set with values to replace.
    """
    from models.backtest import actuals_after, history_until
    from models.metrics import score
    from pipelines.steps.train import make_model

    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {}
    for name, sales, meta, members in _kept_builds(runs):
        freq = meta["frequency"]
        horizon, _windows, newest, _older, _target = _split_newest(members)
        history = history_until(sales, newest)
        truth = actuals_after(sales, newest, horizon, freq)
        row: dict[str, Any] = {"newest_window": str(pd.Timestamp(newest).date())}
        for ratio in (3.0, 10.0):
            cleaned, replaced = _one_offs_cleaned(history, freq, ratio)
            row[f"replaced_at_ratio_{ratio:g}"] = replaced
            if replaced == 0:
                continue
            for label, frame in (("as_it_is", history), (f"cleaned_at_ratio_{ratio:g}", cleaned)):
                if label in row:
                    continue
                pred = (
                    make_model("xgboost", horizon, quantiles, 100)
                    .fit(frame, freq)
                    .predict(frame, horizon, quantiles)
                )
                joined = truth.merge(pred, on=["store_id", "sku", "target_date"], how="left").fillna(0.0)
                scores = score(joined, quantiles)
                row[label] = {k: round(float(scores[k]), 4) for k in ("wape", "pinball", "coverage")}
        out[name] = row
        print(name, json.dumps(row), flush=True)
    return out


def _steady_products(level: float, seed: int, stores: int = 1, products: int = 6) -> pd.DataFrame:
    """Steady Poisson products, 400 days to 2026-11-20, half as busy again at weekends; product
    ``K<j>`` in store ``S<j % stores>``."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end="2026-11-20", periods=400, freq="D")
    weekend = 1 + 0.5 * (dates.dayofweek.to_numpy() >= 5)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "store_id": f"S{j % stores}",
                    "sku": f"K{j}",
                    "date": dates,
                    "units": rng.poisson(level * weekend),
                }
            )
            for j in range(products)
        ],
        ignore_index=True,
    )


def _around_the_order(forecast: pd.DataFrame, day: pd.Timestamp) -> dict[str, float]:
    """Product K0's mean p50 on the order's weekday and on the other days, and its p90 on the others."""
    k0 = forecast[forecast["sku"] == "K0"]
    same = (pd.to_datetime(k0["target_date"]).dt.dayofweek == day.dayofweek).to_numpy()
    return {
        "p50_on_the_orders_weekday": round(float(k0.loc[same, "p50"].mean()), 1),
        "p50_other_days": round(float(k0.loc[~same, "p50"].mean()), 1),
        "p90_other_days": round(float(k0.loc[~same, "p90"].mean()), 1),
    }


def delisted_products() -> dict[str, Any]:
    """Six steady products (8 a day, 12 at weekends, 400 days), three of them delisted 120 days before
    the end (no row since): built and forecast through the CLI (``_cli_forecast``); the delisted and
    the selling products' mean daily p10 / p50 / p90 / mean over the next two weeks. A product gone
    for four months and selling all last year was turning (``models.ensemble.turning_rows``) and
    took equal weights. About a minute.
    """
    import tempfile

    sales = _steady_products(8.0, seed=1, stores=2)
    gone = sales["sku"].isin(["K0", "K1", "K2"]) & (
        sales["date"] > sales["date"].max() - pd.Timedelta(days=120)
    )
    forecast = _cli_forecast(sales[~gone], "delisted", 14, Path(tempfile.mkdtemp()))
    delisted = forecast["sku"].isin(["K0", "K1", "K2"])
    cols = ["p10", "p50", "p90", "mean"]
    out = {
        "delisted": {c: round(float(forecast.loc[delisted, c].mean()), 3) for c in cols},
        "selling": {c: round(float(forecast.loc[~delisted, c].mean()), 3) for c in cols},
    }
    print(json.dumps(out), flush=True)
    return out


def one_off_order() -> dict[str, Any]:
    """A one-off bulk order, five days before the end, in one of six steady products (10 a day, 15 at
    weekends, 400 days): what the forecast of the next two weeks makes of it, against the same tenant
    without the order. Built through the CLI as a user would (``_cli_forecast``); the registered
    version's members then forecast from the same history, each on its own. About two minutes.
    """
    import tempfile

    from models.base import load_model

    sales = _steady_products(10.0, seed=2).astype({"units": float})
    day = sorted(sales["date"].unique())[-5]
    order = (sales["sku"] == "K0") & (sales["date"] == day)
    out: dict[str, Any] = {
        "order_day": str(pd.Timestamp(day).date()),
        "units_without_order": float(sales.loc[order, "units"].iloc[0]),
    }
    for label, frame in (
        ("without_order", sales),
        ("with_order", sales.assign(units=sales["units"].mask(order, 1500.0))),
    ):
        work = Path(tempfile.mkdtemp())
        forecast = _cli_forecast(frame, "bulk", 14, work)
        row: dict[str, Any] = {"ensemble": _around_the_order(forecast, pd.Timestamp(day))}
        model = next((work / "home").glob("runs/bulk/*/Evaluate/processing/output/model"))
        for member in sorted(p.name for p in (model / "members").iterdir()):
            pred = load_model(model / "members" / member).predict(frame, 14, (0.1, 0.5, 0.9))
            row[member] = _around_the_order(pred, pd.Timestamp(day))
        out[label] = row
    print(json.dumps(out, indent=1), flush=True)
    return out


def seasonal_products() -> dict[str, Any]:
    """The Christmas tenant (``christmas_tenant``) built and forecast through the CLI as a user
    would: ingest, build at horizon 28, approve (with --override when the gate refuses: its steady
    products are Poisson noise, where no member beats exponential smoothing), forecast December.
    Per Christmas product, the forecast's p50 over the four weeks against the expected 480-960;
    for the steady products, the mean p50 and mean against the true expected sales. About two
    minutes; run it at two commits to compare (the steps import the checkout they run in).
    """
    import tempfile

    forecast = _cli_forecast(christmas_tenant(), "christmas", 28, Path(tempfile.mkdtemp()))
    totals = forecast.groupby("sku")[["p10", "p50", "p90", "mean"]].sum().round(1)
    ahead = pd.to_datetime(sorted(forecast["target_date"].unique()))
    steady_truth = float(
        np.sum(
            10
            * (1 + 0.25 * np.sin(2 * np.pi * ahead.dayofweek.to_numpy() / 7))
            * (1 + 0.2 * np.sin(2 * np.pi * ahead.dayofyear.to_numpy() / 365))
        )
    )
    steady = totals[totals.index.str.startswith("ITEM")]
    out = {
        "christmas_p50": {
            sku: float(totals.loc[sku, "p50"]) for sku in totals.index if sku.startswith("XMAS")
        },
        "christmas_expected": {f"XMAS{i}": (20.0 + 4 * i) * 24 for i in range(6)},
        "steady_p50": round(float(steady["p50"].mean()), 1),
        "steady_mean": round(float(steady["mean"].mean()), 1),
        "steady_expected": round(steady_truth, 1),
    }
    print(json.dumps(out), flush=True)
    return out


def _young_tenants() -> dict[str, tuple[pd.DataFrame, int]]:
    """New or odd tenants a first-time user brings: (sales, horizon) by tenant name."""
    rng = np.random.default_rng(5)

    def daily(days: int, series: int, start: str = "2024-01-01") -> pd.DataFrame:
        dates = pd.date_range(start, periods=days, freq="D")
        weekend = 1 + 0.3 * (dates.dayofweek >= 5)
        return pd.concat(
            [
                pd.DataFrame(
                    {
                        "store_id": f"S{j % 2}",
                        "sku": f"K{j}",
                        "date": dates,
                        "units": rng.poisson(12 * weekend),
                    }
                )
                for j in range(series)
            ],
            ignore_index=True,
        )

    def weekly(weeks: int, series: int) -> pd.DataFrame:
        dates = pd.date_range("2024-01-07", periods=weeks, freq="W-SUN")
        return pd.concat(
            [
                pd.DataFrame(
                    {"store_id": "A", "sku": f"W{j}", "date": dates, "units": rng.poisson(50, weeks)}
                )
                for j in range(series)
            ],
            ignore_index=True,
        )

    returns = daily(200, 6)
    flip = returns.sample(frac=0.05, random_state=1).index
    returns.loc[flip, "units"] = -returns.loc[flip, "units"]
    closed = daily(200, 6)
    closed.loc[closed["date"] > "2024-06-20", "units"] = 0  # the shop shut ten days ago
    outage = daily(300, 6)
    outage = outage[(outage["date"] < "2024-04-01") | (outage["date"] > "2024-07-15")]  # no rows at all
    return {
        "sixty-days": (daily(60, 6), 28),
        "twenty-weeks": (weekly(20, 5), 8),
        "thirty-days": (daily(30, 4), 28),
        "ten-weeks": (weekly(10, 4), 8),
        "returns": (returns, 28),
        "closed-tail": (closed, 28),
        "outage-gap": (outage, 28),
        "outage-marked": (outage, 28),  # the same, its lost months marked (``_MARKED``)
    }


# Tenants whose lost stretch the lab marks as an outage before building (``ordernimbus outage add``).
_MARKED = {"outage-marked": ("2024-04-01", "2024-07-15")}


def young_tenants() -> dict[str, Any]:
    """New and odd tenants through the CLI (``_young_tenants``): sixty days or twenty weeks of
    history (DeepAR too young to train at the earliest backtest cutoff), thirty days or ten weeks
    (too short for the horizon's backtest: refused), returns as negative units, a shop that shut
    ten days before the end, and a three-month outage with no rows, left as it is and marked as an
    outage (``ordernimbus outage add``). Each build's exit code, the
    error line or the gate line, and DeepAR's fallback count. About four minutes."""
    import subprocess
    import tempfile

    work = Path(tempfile.mkdtemp())
    env = {**os.environ, "ORDERNIMBUS_HOME": str(work / "home")}
    cli = [sys.executable, "-c", "from ordernimbus.cli import main; main()"]
    out: dict[str, Any] = {}
    for tenant, (sales, horizon) in _young_tenants().items():
        path = work / f"{tenant}.csv"
        sales.assign(date=sales["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
        subprocess.run(
            [*cli, "ingest", str(path), "--tenant", tenant],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        if tenant in _MARKED:
            mark = [*cli, "outage", "add", *_MARKED[tenant], "--tenant", tenant]
            subprocess.run(mark, env=env, cwd=ROOT, check=True, capture_output=True)
        build = [*cli, "pipeline", "run", "build", "--tenant", tenant, "--horizon", str(horizon)]
        done = subprocess.run(build, check=False, env=env, cwd=ROOT, capture_output=True, text=True)
        row: dict[str, Any] = {"horizon": horizon, "exit": done.returncode}
        found = sorted((work / "home" / "runs" / tenant).glob("*/Evaluate/**/evaluation.json"))
        if found:
            evaluation = json.loads(found[-1].read_text())
            row["gate"] = {
                k: evaluation["gate"][k]
                for k in ("passed", "best_baseline", "ensemble_value", "best_baseline_value", "wape_ratio")
            }
            row["deepar_fallbacks"] = evaluation["details"]["deepar"].get("fallback_count", 0)
        else:
            said = " ".join(done.stderr.split())
            row["error"] = said.partition("error: ")[2] or said[-300:]  # a failed run: its last words
        print(tenant, json.dumps(row), flush=True)
        out[tenant] = row
    return out


def _weekly_two_years(daily: pd.DataFrame) -> list[tuple[pd.DataFrame, pd.Timestamp]]:
    """Store Item Demand summed to weeks (W-FRI), 400 series: four windows whose history is exactly
    two years (104 weeks), the shape of Walmart's file at its evaluation cutoff; (sales from the
    window's first week on, cutoff) each, 39 weeks after the cutoff to score."""
    weekly = (
        daily[daily["date"] >= "2013-01-05"]
        .set_index("date")
        .groupby(["store_id", "sku"])["units"]
        .resample("W-FRI")
        .sum()
        .reset_index()
    )
    weeks = sorted(weekly["date"].unique())
    return [
        (weekly[weekly["date"] >= weeks[start]], pd.Timestamp(weeks[start + 103]))
        for start in (0, 26, 52, 78)
    ]


def arima_two_years() -> dict[str, Any]:
    """MSTL-ARIMA on exactly two years of weeks, and its intervals with and without the naive floor."""
    from accuracy import store_item

    from models.backtest import actuals_after
    from models.metrics import naive_scale
    from models.naive import SeasonalNaive
    from models.statistical import AutoARIMAForecaster

    quantiles = (0.1, 0.5, 0.9)

    def unfloored() -> AutoARIMAForecaster:
        model = AutoARIMAForecaster()
        model.floor_intervals = False  # as a model saved before the floor existed
        return model

    def measure(
        sales: pd.DataFrame, cutoff: pd.Timestamp, horizon: int, freq: str, lag: int
    ) -> dict[str, Any]:
        history = sales[sales["date"] <= cutoff]
        truth = actuals_after(sales, cutoff, horizon, freq)
        scale = naive_scale(history, lag)
        rows: dict[str, Any] = {}
        makers: dict[str, Callable[[], Any]] = {
            "seasonal_naive_year": lambda: SeasonalNaive(yearly=True),
            "arima_unfloored_intervals": unfloored,
            "arima": AutoARIMAForecaster,
        }
        for label, make in makers.items():
            model = make().fit(history, freq)
            pred = model.predict(history, horizon, quantiles)
            rows[label] = _scored(pred, truth, quantiles, scale, keep=("wape", "pinball", "coverage"))
            rows[label]["fallbacks"] = len(getattr(model, "fallbacks", {}))
        return rows

    daily, until, _, _ = store_item()
    out: dict[str, Any] = {}
    for window, cutoff in _weekly_two_years(daily):
        out[f"weekly_two_years_to_{cutoff.date()}"] = measure(window, cutoff, 39, "W-FRI", 52)
        print(cutoff.date(), out[f"weekly_two_years_to_{cutoff.date()}"], flush=True)
    # The daily build's newest backtest window (90 days after 2017-07-04), 400 series.
    dev = until - pd.Timedelta(days=90)
    out[f"daily_to_{dev.date()}"] = measure(daily[daily["date"] <= until], dev, 90, "D", 7)
    print(dev.date(), out[f"daily_to_{dev.date()}"], flush=True)
    return out


def deepar_warm() -> dict[str, Any]:
    """DeepAR's final fit from scratch against continued from the earlier cutoff's network."""
    from accuracy import store_item

    from features.frequency import season_length
    from models.backtest import actuals_after
    from models.deepar import DeepARForecaster
    from models.metrics import naive_scale

    sales, until, horizon, freq = store_item()
    newest = until - pd.Timedelta(days=horizon)  # the evaluation build's newest backtest cutoff
    earlier = newest - pd.Timedelta(days=horizon)
    history = sales[sales["date"] <= newest]
    truth = actuals_after(sales[sales["date"] <= until], newest, horizon, freq)
    scale = naive_scale(history, season_length(freq))
    quantiles = (0.1, 0.5, 0.9)
    first = DeepARForecaster(horizon=horizon).fit(sales[sales["date"] <= earlier], freq)
    out: dict[str, Any] = {"cutoff": str(newest.date()), "earlier_cutoff": str(earlier.date())}
    for label in ("from_scratch", "continued"):
        started = time.perf_counter()
        model = DeepARForecaster(horizon=horizon)
        model = model.fit(history, freq) if label == "from_scratch" else model.fit_after(first, history, freq)
        seconds = time.perf_counter() - started
        out[label] = _scored(model.predict(history, horizon, quantiles), truth, quantiles, scale)
        out[label]["train_seconds"] = round(seconds, 1)
        out[label]["warm_started"] = model.warm_started
        print(label, out[label], flush=True)
    return out


def _store_item_dev_windows() -> tuple[
    pd.DataFrame, int, str, list[tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame, pd.Series]]
]:
    """Store Item Demand's sales, horizon, frequency and two dev windows (the evaluation build's newest
    and second-newest backtest cutoffs): (cutoff, history, actuals after it, MASE scale) each."""
    from accuracy import store_item

    from features.frequency import season_length
    from models.backtest import actuals_after
    from models.metrics import naive_scale

    sales, until, horizon, freq = store_item()
    windows = []
    for back in (1, 2):
        cutoff = until - pd.Timedelta(days=back * horizon)
        history = sales[sales["date"] <= cutoff]
        truth = actuals_after(sales[sales["date"] <= until], cutoff, horizon, freq)
        windows.append((cutoff, history, truth, naive_scale(history, season_length(freq))))
    return sales, horizon, freq, windows


def xgboost_warm() -> dict[str, Any]:
    """XGBoost's final fit from scratch against continuing the earliest backtest cutoff's trees.

    As in the build: the first model is trained two horizons before the cutoff it is continued at
    (the earliest backtest cutoff is two horizons before the final fit's data ends). Two dev windows
    of Store Item Demand, each scored on the horizon after its cutoff, both before the evaluation
    window.
    """
    from models.xgboost import GlobalXGBoost

    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {}
    sales, horizon, freq, windows = _store_item_dev_windows()
    for cutoff, history, truth, scale in windows:
        first = GlobalXGBoost(horizon=horizon).fit(
            sales[sales["date"] <= cutoff - 2 * pd.Timedelta(days=horizon)], freq
        )
        row: dict[str, Any] = {}
        for label, rounds in (
            ("from_scratch", 0),
            ("continued_25", 25),
            ("continued_34", 34),
            ("continued_50", 50),
        ):
            started = time.perf_counter()
            model = GlobalXGBoost(horizon=horizon, warm_rounds=rounds)
            model = model.fit(history, freq) if rounds == 0 else model.fit_after(first, history, freq)
            seconds = time.perf_counter() - started
            row[label] = _scored(model.predict(history, horizon, quantiles), truth, quantiles, scale)
            row[label]["train_seconds"] = round(seconds, 1)
            row[label]["warm_started"] = model.warm_started
            print(cutoff.date(), label, row[label], flush=True)
        out[str(cutoff.date())] = row
    return out


def autoets_window() -> dict[str, Any]:
    """Would a shorter AutoETS fit window buy the Store Item build time back? What it costs the baseline."""
    from models.statistical import AutoETSForecaster

    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {}
    _sales, horizon, freq, windows = _store_item_dev_windows()
    for cutoff, history, truth, scale in windows:
        rows: dict[str, Any] = {}
        for window in (364, 182, 120):
            started = time.perf_counter()
            model = AutoETSForecaster(fit_window=window).fit(history, freq)
            searched = time.perf_counter() - started
            rows[f"days_{window}"] = {
                **_scored(model.predict(history, horizon, quantiles), truth, quantiles, scale),
                "search_seconds": round(searched, 1),
            }
            print(cutoff.date(), window, rows[f"days_{window}"], flush=True)
        out[str(cutoff.date())] = rows
    return out


def arima_roll() -> dict[str, Any]:
    """ARIMA's later backtest windows: the search's coefficients rolled forward against a refit.

    Store Item Demand, 400 series, the evaluation build's three backtest cutoffs: the orders are
    searched at the earliest, as in the build; each later window is forecast once with the
    coefficients kept and the state refiltered (``roll``) and once re-estimated (``fit``), scored on
    the 90 days after its cutoff (all before the evaluation window), with seconds of each.
    """
    from accuracy import store_item

    from features.frequency import season_length
    from models.backtest import actuals_after, cutoffs
    from models.metrics import naive_scale
    from models.statistical import AutoARIMAForecaster

    quantiles = (0.1, 0.5, 0.9)
    sales, until, horizon, freq = store_item()
    sales = sales[sales["date"] <= until]
    first, *later = cutoffs(until, horizon, 3, freq, first=sales["date"].min())
    model = AutoARIMAForecaster()
    started = time.perf_counter()
    model.fit(sales[sales["date"] <= first], freq)
    out: dict[str, Any] = {"search_seconds": round(time.perf_counter() - started, 1)}
    for cutoff in later:
        history = sales[sales["date"] <= cutoff]
        truth = actuals_after(sales, cutoff, horizon, freq)
        scale = naive_scale(history, season_length(freq))
        refit = AutoARIMAForecaster()  # the same orders, coefficients re-estimated on ``history``
        refit.specs, refit.fallbacks = dict(model.specs), dict(model.fallbacks)
        row: dict[str, Any] = {}
        for label, step in (("roll", model.roll), ("refit", refit.fit)):
            started = time.perf_counter()
            pred = step(history, freq).predict(history, horizon, quantiles)
            seconds = time.perf_counter() - started
            row[label] = {**_scored(pred, truth, quantiles, scale), "seconds": round(seconds, 1)}
            print(cutoff.date(), label, row[label], flush=True)
        out[str(cutoff.date())] = row
    return out


def deepar_cache() -> dict[str, Any]:
    """DeepAR with gluonts' transformed-data cache against without: seconds, and that nothing else moves.

    Store Item Demand, 400 series, trained for 3 epochs at the evaluation build's earliest backtest
    cutoff, then the next 90 days forecast: training seconds of each and the largest difference
    between their forecasts (the cache holds only the deterministic transformations, so it is 0).
    """
    from accuracy import store_item

    from models.backtest import cutoffs
    from models.deepar import DeepARForecaster

    sales, until, horizon, freq = store_item()
    sales = sales[sales["date"] <= until]
    first = cutoffs(until, horizon, 3, freq, first=sales["date"].min())[0]
    history = sales[sales["date"] <= first]
    out: dict[str, Any] = {}
    forecasts = []
    few = history.merge(history[["store_id", "sku"]].drop_duplicates().head(5))
    DeepARForecaster(horizon=horizon, max_epochs=1).fit(few, freq)  # imports and first-call costs
    for cache in (False, True):
        model = DeepARForecaster(horizon=horizon, max_epochs=3)
        model.cache_data = cache
        started = time.perf_counter()
        model.fit(history, freq)
        out[f"cache_{str(cache).lower()}_train_seconds"] = round(time.perf_counter() - started, 1)
        forecasts.append(model.predict(history, horizon, (0.1, 0.5, 0.9)))
        print(cache, out, flush=True)
    columns = ["mean", "p10", "p50", "p90"]
    out["max_forecast_difference"] = float((forecasts[0][columns] - forecasts[1][columns]).abs().max().max())
    return out


def deepar_lags(weekly: bool = False) -> dict[str, Any]:
    """DeepAR's training windows starting where their lags are observed, against anywhere (as before).

    Store Item Demand, 400 series, the two dev windows; each trained from scratch at its cutoff (12
    epochs) and scored on the 90 days after it, with the bias of its median and mean. Before: two
    years of history, the year lag, windows sampled from the first day on with the missing past
    padded by zeros. Now: four years of history and ``training_layout``'s lags and window starts.
    ``deepar_lags_weekly``: Store Item summed to weeks, four windows of exactly two years (Walmart's
    shape at its evaluation cutoff, where no training window can observe the year): DeepAR with the
    year lag (as it always had) and without.
    """
    from accuracy import store_item

    from models.backtest import actuals_after
    from models.deepar import DeepARForecaster
    from models.metrics import naive_scale

    quantiles = (0.1, 0.5, 0.9)

    def measure(
        history: pd.DataFrame, truth: pd.DataFrame, scale: pd.Series, horizon: int, freq: str
    ) -> dict[str, Any]:
        row: dict[str, Any] = {}
        labels = ("padded_windows_two_years", "observed_lags")
        if freq != "D":  # the year cannot be observed in training here: with it (as always) or not
            labels = ("year_lag", "no_year_lag")
        for label in labels:
            padded = label == "padded_windows_two_years"  # the code before: two years, padded windows
            model = DeepARForecaster(horizon=horizon, **({"history_periods": 730} if padded else {}))
            model.lag_windows = not padded
            model.unobserved_year = label != "no_year_lag"
            started = time.perf_counter()
            model.fit(history, freq)
            seconds = time.perf_counter() - started
            pred = model.predict(history, horizon, quantiles)
            joined = truth.merge(pred, on=["store_id", "sku", "target_date"])
            sold = joined["actual"].sum()
            row[label] = {
                **_scored(pred, truth, quantiles, scale),
                "bias_p50": round(float(joined["p50"].sum() / sold - 1), 4),
                "bias_mean": round(float(joined["mean"].sum() / sold - 1), 4),
                "lags": model.lags,
                "min_past": model.min_past,
                "train_seconds": round(seconds, 1),
            }
            print(history["date"].max().date(), freq, label, row[label], flush=True)
        return row

    out: dict[str, Any] = {}
    if not weekly:
        _sales, horizon, freq, windows = _store_item_dev_windows()
        for cutoff, history, truth, scale in windows:
            out[str(cutoff.date())] = measure(history, truth, scale, horizon, freq)
    else:
        daily, _until, _, _ = store_item()
        for sales, cutoff in _weekly_two_years(daily):
            history = sales[sales["date"] <= cutoff]
            truth = actuals_after(sales, cutoff, 39, "W-FRI")
            out[f"weekly_two_years_to_{cutoff.date()}"] = measure(
                history, truth, naive_scale(history, 52), 39, "W-FRI"
            )
    return out


def deepar_epochs() -> dict[str, Any]:
    """DeepAR trained 12 epochs (the build's) and 24, beside XGBoost, and what blending them could gain.

    Store Item Demand, 400 series, the two dev windows, each model trained from scratch at its
    cutoff. Beside each single model: the 90/10 blend of XGBoost's and DeepAR's quantiles, and the
    best blend of their medians chosen in hindsight on the window itself (a bound, not a forecast).
    Each model's median bias per calendar month says where a longer-trained DeepAR goes wrong.
    """
    from models.deepar import DeepARForecaster
    from models.xgboost import GlobalXGBoost

    quantiles = (0.1, 0.5, 0.9)
    keys = ["store_id", "sku", "target_date"]
    out: dict[str, Any] = {}
    _sales, horizon, freq, windows = _store_item_dev_windows()
    for cutoff, history, truth, scale in windows:
        row: dict[str, Any] = {}
        preds: dict[str, pd.DataFrame] = {}
        models: dict[str, Callable[[], Any]] = {
            "xgboost": lambda: GlobalXGBoost(horizon=horizon, quantiles=quantiles),
            "deepar_12_epochs": lambda: DeepARForecaster(horizon=horizon, max_epochs=12),
            "deepar_24_epochs": lambda: DeepARForecaster(horizon=horizon, max_epochs=24),
        }
        for label, make in models.items():
            started = time.perf_counter()
            model = make().fit(history, freq)
            seconds = time.perf_counter() - started
            preds[label] = model.predict(history, horizon, quantiles)
            row[label] = _scored(preds[label], truth, quantiles, scale)
            row[label]["train_seconds"] = round(seconds, 1)
            joined = truth.merge(preds[label], on=keys)
            by_month = joined.groupby(joined["target_date"].dt.strftime("%Y-%m"))[["p50", "actual"]].sum()
            row[label]["bias_p50_by_month"] = (by_month["p50"] / by_month["actual"] - 1).round(3).to_dict()
            print(cutoff.date(), label, row[label], flush=True)
        xgb = preds["xgboost"].set_index(keys).sort_index()
        for label in ("deepar_12_epochs", "deepar_24_epochs"):
            deep = preds[label].set_index(keys).reindex(xgb.index)
            blend = (0.9 * xgb + 0.1 * deep).reset_index()
            row[f"blend_90_10_{label}"] = _scored(blend, truth, quantiles, scale)
            actual = truth.set_index(keys)["actual"].reindex(xgb.index).fillna(0.0).to_numpy()
            medians = np.column_stack([xgb["p50"].to_numpy(), deep["p50"].to_numpy()])
            errors = {
                round(w, 2): float(np.abs(actual - medians @ [1 - w, w]).sum() / actual.sum())
                for w in np.arange(0, 1.0001, 0.05)
            }
            best = min(errors, key=lambda w: errors[w])
            row[f"hindsight_median_blend_{label}"] = {"deepar_weight": best, "wape": round(errors[best], 4)}
            print(cutoff.date(), label, row[f"blend_90_10_{label}"], row[f"hindsight_median_blend_{label}"])
        out[str(cutoff.date())] = row
    return out


_ISA_PROBE = """
import hashlib, sys, time, warnings
warnings.simplefilter("ignore")
sys.path[:0] = [{root!r}, {bench!r}]
import pandas as pd, torch
from accuracy import {data}
from models.deepar import DeepARForecaster
sales, until, _horizon, freq = {data}()
keys = sales[["store_id", "sku"]].drop_duplicates().head(20)
history = sales.merge(keys)
history = history[history["date"] <= until]
started = time.perf_counter()
model = DeepARForecaster(horizon=28, max_epochs=2).fit(history, freq)
seconds = time.perf_counter() - started
pred = model.predict(history, 28, (0.1, 0.5, 0.9))[["p10", "p50", "p90"]].to_numpy()
print(torch.backends.cpu.get_cpu_capability(), hashlib.md5(pred.tobytes()).hexdigest(),
      float(pred[:, 1].sum()), round(seconds, 1))
"""


def deepar_isa() -> dict[str, Any]:
    """Do DeepAR's forecasts depend on the CPU's instruction set? A lead on its cross-machine drift.

    The same code and seed gave Walmart's DeepAR WAPE 0.170 on one session's machine and 0.163 on
    another's. Here DeepAR is trained (2 epochs, the first 20 series, a 28-period horizon) in fresh
    processes under torch's kernel dispatch as detected, pinned to AVX2 or to the portable default,
    and with MKL's conditional numerical reproducibility (``MKL_CBWR``): a digest of the quantiles
    shows whether the bits move. Store Item (negative binomial) and Walmart (Student-t).
    """
    import os
    import subprocess

    settings = {
        "detected": {},
        "aten_avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
        "aten_default": {"ATEN_CPU_CAPABILITY": "default"},
        "aten_avx2_mkl_compatible": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE"},
    }
    out: dict[str, Any] = {}
    for data in ("store_item", "walmart"):
        code = _ISA_PROBE.format(root=str(ROOT), bench=str(ROOT / "benchmarks"), data=data)
        for label, extra in settings.items():
            env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
            done = subprocess.run(
                [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True, check=True
            )
            capability, digest, p50_sum, seconds = done.stdout.split()[-4:]
            row = {
                "capability": capability,
                "digest": digest,
                "p50_sum": float(p50_sum),
                "train_seconds": float(seconds),
            }
            out[f"{data}_{label}"] = row
            print(data, label, row, flush=True)
    return out


def deepar_samples(runs: Path) -> dict[str, Any]:
    """Seconds and sampling noise of DeepAR's forecast with 200 sample paths and 100 (ours, gluonts').

    The kept Store Item build's shipped network forecasts the 90 days after the newest backtest
    cutoff. That window lies inside its training data, so the scores show what fewer paths change,
    not the model's accuracy.
    """
    from accuracy import store_item

    from features.frequency import season_length
    from models.backtest import actuals_after
    from models.base import load_model
    from models.metrics import naive_scale

    sales, until, horizon, freq = store_item()
    cutoff = until - pd.Timedelta(days=horizon)
    history = sales[sales["date"] <= cutoff]
    truth = actuals_after(sales[sales["date"] <= until], cutoff, horizon, freq)
    scale = naive_scale(history, season_length(freq))
    quantiles = (0.1, 0.5, 0.9)
    [path] = list(runs.glob("home-store_item/runs/*/*/Train-deepar/model"))
    model = load_model(path)
    out: dict[str, Any] = {"cutoff": str(cutoff.date())}
    for paths in (200, 100):
        model.predictor.prediction_net.model.num_parallel_samples = paths
        started = time.perf_counter()
        pred = model.predict(history, horizon, quantiles)
        out[f"paths_{paths}"] = {
            **_scored(pred, truth, quantiles, scale),
            "predict_seconds": round(time.perf_counter() - started, 1),
        }
        print(paths, out[f"paths_{paths}"], flush=True)
    return out


def deepar_returns() -> dict[str, Any]:
    """DeepAR on Online Retail, whose integer units net below zero on 1.4 % of rows (returns): the
    Student-t every negative row used to choose, against the negative binomial on units clipped at
    zero (``DeepARForecaster.return_share``). The two newest backtest windows of the evaluation build;
    beside each, the median's and the mean's share of the units sold."""
    import tempfile

    from accuracy import online_retail

    from models.deepar import DeepARForecaster

    class _StudentT(DeepARForecaster):
        return_share = 0.0

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sales, until, horizon, freq = online_retail(Path(tmp))
    out["negative_rows"] = round(float((sales["units"] < 0).mean()), 4)
    variants = (("student_t", _StudentT), ("negative_binomial", DeepARForecaster))
    return {**out, **_deepar_windows(sales, until, horizon, freq, variants, sold_as="units")}


def _deepar_windows(  # noqa: PLR0917 (a lab's data and settings)
    sales: pd.DataFrame,
    until: pd.Timestamp,
    horizon: int,
    freq: str,
    variants: Sequence[tuple[str, Callable[..., Any]]],
    keep: tuple[str, ...] = ("wape", "mase", "pinball", "coverage"),
    sold_as: str = "units",
) -> dict[str, Any]:
    """Each DeepAR variant fitted and scored on the two newest backtest windows before ``until``,
    beside the shares of what sold its median and its mean forecast."""
    from models.backtest import actuals_after, history_until
    from models.metrics import naive_scale

    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {}
    for back in (1, 2):
        cutoff = until - pd.Timedelta(days=horizon * back)
        history = history_until(sales, cutoff)
        truth = actuals_after(sales[sales["date"] <= until], cutoff, horizon, freq)
        scale = naive_scale(history, 7)
        rows: dict[str, Any] = {}
        for label, make in variants:
            started = time.perf_counter()
            model = make(horizon=horizon).fit(history, freq)
            pred = model.predict(history, horizon, quantiles)
            seconds = round(time.perf_counter() - started, 1)
            joined = truth.merge(pred, on=["store_id", "sku", "target_date"], how="left").fillna(0.0)
            sold = float(joined["actual"].sum())
            rows[label] = {
                **_scored(pred, truth, quantiles, scale, keep),
                "distribution": model.distribution,
                f"median_share_of_{sold_as}": round(float(joined["p50"].sum()) / sold, 3),
                f"mean_share_of_{sold_as}": round(float(joined["mean"].sum()) / sold, 3),
                "seconds": seconds,
            }
            print(cutoff.date(), label, rows[label], flush=True)
        out[str(cutoff.date())] = rows
    return out


def deepar_intermittent() -> dict[str, Any]:
    """DeepAR on intermittent demand that is not counts: Online Retail's units as kilograms.

    Each product weighs a fixed 0.05-2.5 kg (drawn once, seed 0), so its daily sales are as
    intermittent as the units but no longer integers, and the negative binomial is out. Student-t,
    the rule before (``DeepARForecaster.intermittent_share`` None), against the implicit quantile
    network, its outputs kept above zero by a softplus or, as shipped, free and the samples clipped at
    zero (``quantile_domain``); the two newest backtest windows of the evaluation build, and beside
    each the median's and the mean's share of the kilograms sold. The tenants' own idle shares say
    which sets the rule reaches (none of the three: Online Retail is counts, Store Item and Walmart are
    not intermittent).
    """
    import tempfile

    from accuracy import online_retail, store_item, walmart

    from models.deepar import DeepARForecaster, idle_share

    class _StudentT(DeepARForecaster):
        intermittent_share = None

    class _Softplus(DeepARForecaster):
        quantile_domain = "positive"

    out: dict[str, Any] = {"idle_share": {}}
    with tempfile.TemporaryDirectory() as tmp:
        sales, until, horizon, freq = online_retail(Path(tmp))
    for name, (sales_of, until_of, _h, _f) in (
        ("online_retail", (sales, until, horizon, freq)),
        ("store_item", store_item()),
        ("walmart", walmart()),
    ):
        out["idle_share"][name] = round(idle_share(sales_of[sales_of["date"] <= until_of]), 3)
    skus = np.sort(sales["sku"].unique())
    kilograms = dict(zip(skus, np.random.default_rng(0).uniform(0.05, 2.5, len(skus)).round(3), strict=True))
    sales = sales.assign(units=sales["units"] * sales["sku"].map(kilograms))
    print(out, flush=True)
    variants = (
        ("student_t", _StudentT),
        ("quantile_network_softplus", _Softplus),
        ("quantile_network", DeepARForecaster),
    )
    keep = ("wape", "mase", "pinball", "coverage", "below_lower", "above_upper")
    return {**out, **_deepar_windows(sales, until, horizon, freq, variants, keep, sold_as="sales")}


def xgboost_fit_once() -> dict[str, Any]:
    from accuracy import store_item

    from models.backtest import backtest
    from models.metrics import wape
    from models.xgboost import GlobalXGBoost

    class Refitted(GlobalXGBoost):
        refit_in_backtest = True

    sales, until, horizon, freq = store_item()
    sales = sales[sales["date"] <= until]
    out: dict[str, Any] = {}
    for label, cls in {"fit_once": GlobalXGBoost, "refitted": Refitted}.items():
        started = time.perf_counter()
        frame = backtest(lambda c=cls: c(horizon=horizon), sales, freq, horizon, 3, (0.1, 0.5, 0.9))
        per_window = {
            str(w.date()): round(float(wape(g["actual"].to_numpy(), g["p50"].to_numpy())), 4)
            for w, g in frame.groupby("window")
        }
        out[label] = {"wape_by_window": per_window, "seconds": round(time.perf_counter() - started, 1)}
        print(label, out[label], flush=True)
    return out


def _newest_dev_windows(sets: str) -> Iterator[DevWindow]:
    """Per set: each set's newest backtest cutoff before its evaluation window, the history to it, the
    actuals after it, MASE's scale, the horizon and the frequency (the evaluation build's last window)."""
    import tempfile

    from accuracy import online_retail, store_item, walmart

    from features.frequency import season_length
    from models.backtest import actuals_after
    from models.metrics import naive_scale

    with tempfile.TemporaryDirectory() as tmp:
        loaders = {
            "store_item": store_item,
            "walmart": walmart,
            "online_retail": lambda: online_retail(Path(tmp)),
        }
        for name in sets.split(","):
            sales, until, horizon, freq = loaders[name]()
            step = pd.Timedelta(weeks=horizon) if freq.startswith("W") else pd.Timedelta(days=horizon)
            dev = until - step
            history = sales[sales["date"] <= dev]
            truth = actuals_after(sales[sales["date"] <= until], dev, horizon, freq)
            yield name, dev, history, truth, naive_scale(history, season_length(freq)), horizon, freq


def xgboost_scaling(sets: str) -> dict[str, Any]:
    from models.naive import SeasonalNaive
    from models.xgboost import GlobalXGBoost

    variants: dict[str, dict[str, str]] = {
        "recent_level": {"level": "recent", "anchor": "none"},  # daily's default
        "recent_level_year_anchor": {"level": "recent", "anchor": "year"},
        "max_level": {"level": "max", "anchor": "none"},
        "max_level_year_anchor": {"level": "max", "anchor": "year"},  # weekly's default
    }
    out: dict[str, Any] = {}
    for name, dev, history, truth, scale, horizon, freq in _newest_dev_windows(sets):
        makers: dict[str, Callable[[], Any]] = {"seasonal_naive_year": lambda: SeasonalNaive(yearly=True)}
        for label, kwargs in variants.items():
            makers[f"xgboost_{label}"] = lambda kw=kwargs, h=horizon: GlobalXGBoost(horizon=h, **kw)
        rows: dict[str, Any] = {"cutoff": str(dev.date())}
        for label, make in makers.items():
            rows[label] = _timed_scored(make, history, truth, scale, freq, horizon)
            print(name, label, rows[label], flush=True)
        out[name] = rows
    return out


def xgboost_mean_scale(sets: str) -> dict[str, Any]:
    """XGBoost on each set's newest backtest window before its evaluation window, as session 19
    changed it: before (no scale floor, unweighted mean booster), with the mean booster's series
    weights, and with the one-unit scale floor too (the default). Quantile scores and the mean
    column's RMSE and bias."""
    from accuracy import mean_scores

    from models.xgboost import GlobalXGBoost

    variants = {
        "before": {"min_scale": 0.0, "mean_weights": "none"},
        "mean_weights": {"min_scale": 0.0, "mean_weights": "series"},
        "mean_weights_and_floor": {},
    }
    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {}
    for name, dev, history, truth, scale, horizon, freq in _newest_dev_windows(sets):
        rows: dict[str, Any] = {"cutoff": str(dev.date())}
        for label, kwargs in variants.items():
            model = GlobalXGBoost(horizon=horizon, **kwargs).fit(history, freq)
            pred = model.predict(history, horizon, quantiles)
            joined = truth.merge(pred, on=["store_id", "sku", "target_date"], how="left").fillna(0.0)
            means = {k: round(v, 4) for k, v in mean_scores(joined).items()}
            rows[label] = {**_scored(pred, truth, quantiles, scale), **means}
            print(name, label, rows[label], flush=True)
        out[name] = rows
    return out


def arima_pooled_year(sets: str) -> dict[str, Any]:
    """The ARIMA member on each set's newest backtest window before its evaluation window (and on
    Store Item's autumns of 2015 and 2016), with each series' own MSTL year (before) and over the
    tenant's pooled season (``models.pooled_year``), beside XGBoost and the 50/50 blend of each
    ARIMA's quantiles with XGBoost's: whether the ARIMA errs where XGBoost does."""
    from models.statistical import AutoARIMAForecaster
    from models.xgboost import GlobalXGBoost

    quantiles = (0.1, 0.5, 0.9)
    keys = ["store_id", "sku", "target_date"]
    cols = ["p10", "p50", "p90"]
    out: dict[str, Any] = {}
    windows = list(_newest_dev_windows(sets))
    if "store_item" in sets.split(","):
        windows += list(_store_item_autumns())
    for name, dev, history, truth, scale, horizon, freq in windows:
        rows: dict[str, Any] = {"cutoff": str(dev.date())}
        preds: dict[str, pd.DataFrame] = {}
        makers: dict[str, Callable[[], Any]] = {
            "arima_own_year": lambda: AutoARIMAForecaster(pooled_year=False),
            "arima_pooled_year": lambda: AutoARIMAForecaster(pooled_year=True),
            "xgboost": lambda h=horizon: GlobalXGBoost(horizon=h),
        }
        for label, make in makers.items():
            started = time.perf_counter()
            model = make().fit(history, freq)
            preds[label] = model.predict(history, horizon, quantiles)
            rows[label] = {
                **_scored(preds[label], truth, quantiles, scale),
                "seconds": round(time.perf_counter() - started, 1),
            }
            if label == "arima_pooled_year":
                pooled = [s for s in model.specs.values() if len(s) > 5 and s[5] == "pooled"]
                rows[label]["pooled_series"] = len(pooled)
            print(name, label, rows[label], flush=True)
        for label in ("arima_own_year", "arima_pooled_year"):
            both = preds["xgboost"][[*keys, *cols]].merge(
                preds[label][[*keys, *cols]], on=keys, suffixes=("", "_a")
            )
            blend = both[keys].assign(**{c: 0.5 * both[c] + 0.5 * both[f"{c}_a"] for c in cols})
            rows[f"half_xgboost_half_{label}"] = _scored(blend, truth, quantiles, scale)
            print(name, "blend", label, rows[f"half_xgboost_half_{label}"], flush=True)
        out[name if name not in out else f"{name}_{dev.date()}"] = rows
    return out


def _store_item_autumns() -> Iterator[DevWindow]:
    """Store Item's 90 days after 2 October 2015 and 2016: the evaluation window's season, in years
    before it (the newest dev window is July to October)."""
    from accuracy import store_item

    from models.backtest import actuals_after
    from models.metrics import naive_scale

    sales, _until, horizon, freq = store_item()
    for cutoff in ("2015-10-02", "2016-10-02"):
        dev = pd.Timestamp(cutoff)
        history = sales[sales["date"] <= dev]
        truth = actuals_after(sales[sales["date"] <= dev + pd.Timedelta(days=horizon)], dev, horizon, freq)
        yield "store_item", dev, history, truth, naive_scale(history, 7), horizon, freq


def arima_young_series() -> dict[str, Any]:
    """Products launched within the last two years in an old daily tenant: Store Item's newest backtest
    window and its autumn of 2016, every other series cut to start 60-700 days before the cutoff
    (seeded). The young series scored alone: the ARIMA member with each series' own seasons (a weekly
    SARIMA on its last year: too young for MSTL's year) against the tenant's pooled season (their week
    over the tenant's, the tenant's year), and XGBoost, which sees the calendar."""
    from models.statistical import AutoARIMAForecaster
    from models.xgboost import GlobalXGBoost

    windows = [w for w in _newest_dev_windows("store_item")] + list(_store_item_autumns())[1:]
    out: dict[str, Any] = {}
    for _name, dev, history, truth, scale, horizon, freq in windows:
        rng = np.random.default_rng(3)
        keys = history[["store_id", "sku"]].drop_duplicates().sort_values(["store_id", "sku"])
        young = keys.iloc[::2].assign(
            launch=dev - pd.to_timedelta(rng.integers(60, 701, len(keys.iloc[::2])), "D")
        )
        cut = history.merge(young, on=["store_id", "sku"], how="left")
        cut = cut[cut["launch"].isna() | (cut["date"] >= cut["launch"])].drop(columns="launch")
        judged = truth.merge(young[["store_id", "sku"]], on=["store_id", "sku"])
        rows: dict[str, Any] = {"young_series": len(young)}
        makers: dict[str, Callable[[], Any]] = {
            "arima_own_seasons": lambda: AutoARIMAForecaster(pooled_year=False),
            "arima_pooled_season": lambda: AutoARIMAForecaster(pooled_year=True),
            "xgboost": lambda h=horizon: GlobalXGBoost(horizon=h),
        }
        for label, make in makers.items():
            rows[label] = _timed_scored(make, cut, judged, scale, freq, horizon)
            print(dev.date(), label, rows[label], flush=True)
        out[str(dev.date())] = rows
    return out


def _season_lab(
    makers: Callable[[int], dict[str, Callable[[], Any]]], blends: dict[str, tuple[str, ...]]
) -> dict[str, Any]:
    """Members on Store Item's newest backtest window and its autumns of 2015 and 2016, scored alone
    and as equal-weight blends of their quantiles (the pooled season's labs)."""
    quantiles = (0.1, 0.5, 0.9)
    keys = ["store_id", "sku", "target_date"]
    cols = ["p10", "p50", "p90"]
    out: dict[str, Any] = {}
    for _name, dev, history, truth, scale, horizon, freq in [
        *_newest_dev_windows("store_item"),
        *_store_item_autumns(),
    ]:
        rows: dict[str, Any] = {}
        preds: dict[str, pd.DataFrame] = {}
        for label, make in makers(horizon).items():
            started = time.perf_counter()
            preds[label] = make().fit(history, freq).predict(history, horizon, quantiles)
            rows[label] = {
                **_scored(preds[label], truth, quantiles, scale),
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(dev.date(), label, rows[label], flush=True)
        for label, members in blends.items():
            frames = [preds[m].set_index(keys)[cols] for m in members]
            blend = (sum(frames[1:], frames[0]) / len(frames)).reset_index()
            rows[label] = _scored(blend, truth, quantiles, scale)
            print(dev.date(), label, rows[label], flush=True)
        out[str(dev.date())] = rows
    return out


def deepar_pooled_season() -> dict[str, Any]:
    """DeepAR without and with the tenant's pooled season as a covariate
    (``DeepARForecaster.pooled_season``), beside the pooled ARIMA and XGBoost; blends: the ARIMA and
    XGBoost half and half, and all three in thirds with either DeepAR (whether a DeepAR that sees the
    year adds to the blend)."""
    from models.deepar import DeepARForecaster
    from models.statistical import AutoARIMAForecaster
    from models.xgboost import GlobalXGBoost

    class _NoSeason(DeepARForecaster):
        pooled_season = False

    return _season_lab(
        lambda h: {
            "deepar_before": lambda: _NoSeason(horizon=h),
            "deepar_pooled_season": lambda: DeepARForecaster(horizon=h),
            "arima": AutoARIMAForecaster,
            "xgboost": lambda: GlobalXGBoost(horizon=h),
        },
        {
            "half_arima_half_xgboost": ("arima", "xgboost"),
            "thirds_with_deepar_before": ("arima", "xgboost", "deepar_before"),
            "thirds_with_deepar_pooled_season": ("arima", "xgboost", "deepar_pooled_season"),
        },
    )


def xgboost_pooled_season() -> dict[str, Any]:
    """XGBoost without and with the pooled season's ratio as a feature
    (``GlobalXGBoost(pooled_season=...)``), each beside its half-and-half blend with the pooled ARIMA
    (whether the two still err apart)."""
    from models.statistical import AutoARIMAForecaster
    from models.xgboost import GlobalXGBoost

    return _season_lab(
        lambda h: {
            "xgboost_before": lambda: GlobalXGBoost(horizon=h),
            "xgboost_pooled_season": lambda: GlobalXGBoost(horizon=h, pooled_season=True),
            "arima": AutoARIMAForecaster,
        },
        {
            "half_arima_half_xgboost_before": ("arima", "xgboost_before"),
            "half_arima_half_xgboost_pooled_season": ("arima", "xgboost_pooled_season"),
        },
    )


def calibration(runs: Path) -> dict[str, Any]:
    from models.ensemble import apply_interval_scale, fit_interval_scale
    from models.evaluation import fit_ensemble
    from models.metrics import score

    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {}
    for name, sales, meta, members in _kept_builds(runs):
        first = next(iter(members.values()))
        horizon = int(first["horizon_day"].max())
        windows = sorted(pd.to_datetime(first["window"].unique()))
        newest, previous = windows[-1], windows[-2]
        older = {n: f[pd.to_datetime(f["window"]) < newest] for n, f in members.items()}
        _, fitted_on = fit_ensemble(
            sales[sales["date"] < newest], meta["frequency"], horizon, quantiles, older
        )
        _, blended = fit_ensemble(sales, meta["frequency"], horizon, quantiles, members)
        target = blended[pd.to_datetime(blended["window"]) == newest]
        scales = {
            "pooled_older_windows": fit_interval_scale(fitted_on, quantiles),
            "newest_older_window": fit_interval_scale(
                fitted_on[pd.to_datetime(fitted_on["window"]) == previous], quantiles
            ),
            "none": 1.0,
        }
        out[name] = {
            "coverage_on_newest_window": {
                label: round(
                    float(
                        score(apply_interval_scale(target.copy(), quantiles, scale), quantiles)["coverage"]
                    ),
                    3,
                )
                for label, scale in scales.items()
            },
            "unscaled_coverage_by_window": {
                str(w.date()): round(
                    float(score(blended[pd.to_datetime(blended["window"]) == w], quantiles)["coverage"]), 3
                )
                for w in windows
            },
        }
        print(name, out[name], flush=True)
    return out


def _kept_builds(runs: Path) -> list[tuple[str, pd.DataFrame, dict[str, Any], dict[str, pd.DataFrame]]]:
    """(set name, sales, metadata, member backtests) of each build kept by accuracy.py --keep-runs."""
    from pipelines.steps._io import read_sales

    out = []
    for inputs in sorted(runs.glob("home-*/runs/*/*/Evaluate/processing/input")):
        sales, meta = read_sales(inputs / "sales")
        members = {
            p.name.removeprefix("backtest-"): pd.read_parquet(p / "backtest.parquet")
            for p in inputs.glob("backtest-*")
        }
        for frame in members.values():
            frame["window"] = pd.to_datetime(frame["window"])
        out.append((inputs.parents[5].name.removeprefix("home-"), sales, meta, members))
    return out


def _split_newest(
    members: dict[str, pd.DataFrame],
) -> tuple[int, list[Any], Any, dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """A kept build's horizon, backtest windows (oldest first) and newest window, and each member's
    backtest before it and on it: the out-of-sample split of the labs that score the newest window."""
    first = next(iter(members.values()))
    windows = sorted(first["window"].unique())
    newest = windows[-1]
    older = {n: f[f["window"] < newest] for n, f in members.items()}
    return (
        int(first["horizon_day"].max()),
        windows,
        newest,
        older,
        {n: f[f["window"] == newest] for n, f in members.items()},
    )


def blend_autoets(runs: Path) -> dict[str, Any]:
    """Would AutoETS earn a place in the blend? Every kept build re-evaluated both ways.

    ``runs`` is searched for builds (``accuracy.py --keep-runs``, or the ORDERNIMBUS_HOME of
    ``small_tenant_builds`` / ``young_tenants`` run with TMPDIR pointing there). For each, the
    evaluate step's own ``evaluate`` runs on the saved backtests with the three members, then with
    AutoETS a fourth candidate (it stays a baseline): the gate's pooled out-of-sample WAPE (every
    window blended with weights fitted on the older ones), its ratio to the best baseline, the
    in-sample weights, and the newest window's out-of-sample pinball loss.
    """
    from features.outages import from_records
    from models.ensemble import blend_rows
    from models.evaluation import evaluate, fit_ensemble
    from models.metrics import score
    from pipelines.steps._io import read_sales

    out: dict[str, Any] = {}
    for inputs in sorted(runs.glob("**/runs/*/*/Evaluate/processing/input")):
        autoets = inputs / "baseline-autoets" / "backtest.parquet"
        if not autoets.exists():
            continue
        tenant = inputs.parents[3].name
        sales, meta = read_sales(inputs / "sales")
        members = {
            p.name.removeprefix("backtest-"): pd.read_parquet(p / "backtest.parquet")
            for p in sorted(inputs.glob("backtest-*"))
            if p.name != "backtest-autoets"  # builds since AutoETS joined the members have it twice
        }
        ets = pd.read_parquet(autoets)
        horizon = int(ets["horizon_day"].max())  # the build's horizon: every window scores all of it
        quantiles = (0.1, 0.5, 0.9)
        outages = from_records(meta.get("outages", []))
        row: dict[str, Any] = {}
        for label, candidates in (("three", members), ("with_autoets", {**members, "autoets": ets})):
            result = evaluate(
                sales, meta["frequency"], horizon, quantiles, candidates, 1.0, {"autoets": ets}, outages
            )
            gate = result.metrics["gate"]
            windows = sorted(pd.to_datetime(ets["window"].unique()))
            older = {n: f[pd.to_datetime(f["window"]) < windows[-1]] for n, f in candidates.items()}
            newest = {n: f[pd.to_datetime(f["window"]) == windows[-1]] for n, f in candidates.items()}
            pinball = None
            if len(windows) > 1:
                weighting, _ = fit_ensemble(
                    sales[sales["date"] < windows[-1]], meta["frequency"], horizon, quantiles, older
                )
                first = next(iter(newest.values()))
                rows = weighting.column_rows(
                    first, sales[sales["date"] <= windows[-1]], quantiles, judge_length=False
                )
                blended = blend_rows(newest, rows, weighting.members, quantiles, first)
                pinball = round(float(score(blended, quantiles)["pinball"]), 4)
            row[label] = {
                "gate_wape": gate["ensemble_value"],
                "best_baseline": gate["best_baseline"],
                "ratio": gate["wape_ratio"],
                "passed": gate["passed"],
                "weights": result.weights,
                "newest_window_pinball": pinball,
            }
        print(tenant, json.dumps(row), flush=True)
        out[tenant] = row
    return out


def tail_weights(runs: Path) -> dict[str, Any]:
    """Per-quantile weights against the median's weights for every quantile, leave one window out.

    For each kept build and each of its backtest windows: the weights and the interval scale fitted as
    the evaluate step fits them, on the other windows only, and scored on the held-out one, beside
    XGBoost alone. More folds than ``ensemble``'s one newest window: whether the tails' own weights
    pay out of sample, unchecked and as shipped (each quantile's own weights kept only where they
    paid one window back within the fold's windows, ``models.evaluation.check_tails``). Never an
    evaluation window.
    """
    from features.frequency import season_length
    from models.ensemble import apply_interval_scale, blend_rows, choose_interval_scale
    from models.evaluation import fit_ensemble
    from models.metrics import naive_scale, score

    quantiles = (0.1, 0.5, 0.9)
    kept = ("wape", "pinball", "coverage")
    out: dict[str, Any] = {}
    for name, sales, meta, members in _kept_builds(runs):
        freq = meta["frequency"]
        first = next(iter(members.values()))
        horizon = int(first["horizon_day"].max())
        windows = sorted(first["window"].unique())
        scale_of = naive_scale(sales[sales["date"] <= windows[0]], season_length(freq))
        rows: dict[str, Any] = {}
        for held in windows:
            train = {n: f[f["window"] != held] for n, f in members.items()}
            target = {n: f[f["window"] == held] for n, f in members.items()}
            # the newest window held out: the fit sees no sales after its cutoff; an older one held
            # out is inside the later windows' histories anyway
            known = sales[sales["date"] < held] if held == windows[-1] else sales
            fold: dict[str, Any] = {}
            for label, tails, check in (
                ("per_quantile", True, False),
                ("per_quantile_checked", True, True),  # as shipped: checked one window back
                ("median_weights", False, False),
            ):
                weighting, fitted = fit_ensemble(
                    known, freq, horizon, quantiles, train, tail_weights=tails, tail_check=check
                )
                interval, _ = choose_interval_scale(fitted, quantiles)
                base = target[weighting.members[0]]
                cols = weighting.column_rows(base, sales[sales["date"] <= held], quantiles)
                blend = blend_rows(target, cols, weighting.members, quantiles, base)
                result = score(apply_interval_scale(blend, quantiles, interval), quantiles, scale_of)
                fold[label] = {k: round(float(result[k]), 4) for k in kept}
            result = score(target["xgboost"], quantiles, scale_of)
            fold["xgboost"] = {k: round(float(result[k]), 4) for k in kept}
            rows[str(pd.Timestamp(held).date())] = fold
            print(name, pd.Timestamp(held).date(), json.dumps(fold), flush=True)
        out[name] = rows
    return out


def intermittent_partners(runs: Path) -> dict[str, Any]:
    """Would an intermittent-demand method, or XGBoost's own mean, partner XGBoost's median?

    For each kept daily build and each of its backtest windows: statsforecast's CrostonSBA, TSB,
    IMAPA, ADIDA and a 28-day window average fitted on the history to the window's cutoff (each series
    from its first sale), their WAPE alone, and the hindsight-best blend of each with XGBoost's median
    (a bound no fitted weighting beats on that window).
    """
    from statsforecast import StatsForecast
    from statsforecast.models import ADIDA, IMAPA, TSB, CrostonSBA, WindowAverage

    keys = ["store_id", "sku", "target_date"]
    methods = ("CrostonSBA", "TSB", "IMAPA", "ADIDA", "WindowAverage")
    out: dict[str, Any] = {}
    for name, sales, meta, members in _kept_builds(runs):
        if meta["frequency"] != "D":
            continue
        xgb = members["xgboost"]
        horizon = int(xgb["horizon_day"].max())
        rows: dict[str, Any] = {}
        for cutoff in sorted(xgb["window"].unique()):
            history = sales[sales["date"] <= cutoff]
            wide = history.pivot_table(
                index="date", columns=["store_id", "sku"], values="units", aggfunc="sum"
            )
            wide = wide.reindex(pd.date_range(history["date"].min(), cutoff, freq="D")).fillna(0.0)
            long = []
            for (store, sku), column in wide.items():
                units = column[column.ne(0).idxmax() :]  # each series from its first sale
                long.append(pd.DataFrame({"unique_id": f"{store}\x1f{sku}", "ds": units.index, "y": units}))
            models = [CrostonSBA(), TSB(alpha_d=0.2, alpha_p=0.2), IMAPA(), ADIDA(), WindowAverage(28)]
            fitted = StatsForecast(models=models, freq="D", n_jobs=2).forecast(df=pd.concat(long), h=horizon)
            fitted = fitted.reset_index() if "unique_id" not in fitted.columns else fitted
            fitted[["store_id", "sku"]] = fitted["unique_id"].str.split("\x1f", n=1, expand=True)
            window = xgb[xgb["window"] == cutoff][[*keys, "actual", "p50", "mean"]]
            window = window.astype({"store_id": str, "sku": str})
            joined = window.merge(
                fitted.rename(columns={"ds": "target_date"}).drop(columns="unique_id"), on=keys, how="left"
            ).fillna(0.0)
            actual = joined["actual"].to_numpy(float)

            def wape_of(forecast: np.ndarray, y: np.ndarray = actual) -> float:
                return round(float(np.abs(y - forecast).sum() / np.abs(y).sum()), 4)

            median = joined["p50"].to_numpy(float)
            row: dict[str, Any] = {"xgboost": wape_of(median)}
            for method in (*methods, "mean"):
                other = joined[method].to_numpy(float)
                share, best = min(
                    ((a, wape_of(a * median + (1 - a) * other)) for a in np.arange(0, 1.0001, 0.05)),
                    key=lambda t: t[1],
                )
                label = "xgboost_mean" if method == "mean" else method
                row[label] = {"alone": wape_of(other), "best_blend": best, "xgboost_share": round(share, 2)}
            rows[str(pd.Timestamp(cutoff).date())] = row
            print(name, pd.Timestamp(cutoff).date(), json.dumps(row), flush=True)
        out[name] = rows
    return out


def headroom(runs: Path) -> dict[str, Any]:
    """How much any blend could gain: the hindsight-best weights on the newest backtest window.

    The weights are chosen on the very window they are scored on, so no ensemble fitted on older
    windows can beat them there. For count data, also the WAPE a forecaster would score if demand
    were Poisson around the best member's mean: the noise no model removes.
    """
    import itertools

    from scipy import stats

    out: dict[str, Any] = {}
    for name, _sales, _meta, members in _kept_builds(runs):
        newest = max(f["window"].max() for f in members.values())
        names = sorted(members)
        keys = ["store_id", "sku", "target_date"]
        joined = None
        for n in names:
            f = members[n][members[n]["window"] == newest][[*keys, "actual", "p50", "mean"]]
            f = f.rename(columns={"p50": n, "mean": f"{n}_mean"})
            joined = f if joined is None else joined.merge(f.drop(columns="actual"), on=keys)
        assert joined is not None
        y = joined["actual"].to_numpy(float)
        p50 = joined[names].to_numpy(float)
        total = np.abs(y).sum()
        single = {n: round(float(np.abs(y - p50[:, i]).sum() / total), 4) for i, n in enumerate(names)}
        best: tuple[float, tuple[float, ...]] = (np.inf, ())
        grid = np.round(np.arange(0, 1.0001, 0.05), 2)
        for w in itertools.product(grid, repeat=len(names) - 1):
            if sum(w) > 1:
                continue
            weights = (*w, round(1 - sum(w), 2))
            err = float(np.abs(y - p50 @ np.array(weights)).sum() / total)
            best = min(best, (err, weights))
        row: dict[str, Any] = {
            "newest_window": str(pd.Timestamp(newest).date()),
            "members": single,
            "hindsight_blend": {"wape": round(best[0], 4), "weights": dict(zip(names, best[1], strict=True))},
        }
        counts = bool((y >= 0).all() and np.allclose(y, np.round(y)))
        if counts:
            leader = min(single, key=lambda n: single[n])
            mu = np.clip(joined[f"{leader}_mean"].to_numpy(float), 1e-3, None)
            support = np.arange(0, int(stats.poisson.ppf(0.99999, mu.max())) + 1)
            expected = np.zeros(len(mu))
            chunk = max(1, 20_000_000 // len(support))  # expected |Y - median| under Poisson(mu)
            for lo in range(0, len(mu), chunk):
                m = mu[lo : lo + chunk, None]
                pmf = stats.poisson.pmf(support[None, :], m)
                median = stats.poisson.median(m)
                expected[lo : lo + chunk] = (pmf * np.abs(support[None, :] - median)).sum(axis=1)
            row["poisson_floor_wape"] = round(float(expected.sum() / mu.sum()), 4)
            row["poisson_floor_around"] = leader
        out[name] = row
        print(name, row, flush=True)
    return out


def horizons(runs: Path) -> dict[str, Any]:
    """Each member's WAPE per backtest window and horizon bucket: where weights per horizon could pay.

    The ensemble's weights are per cluster of series, the same for every step ahead. A member that
    wins the long horizons in every window (or the short ones) would call for weights per bucket too.
    """
    out: dict[str, Any] = {}
    for name, _sales, meta, members in _kept_builds(runs):
        horizon = int(next(iter(members.values()))["horizon_day"].max())
        season = 7 if meta["frequency"] == "D" else 4
        edges = sorted(e for e in {0, season, 2 * season, 4 * season, horizon} if e <= horizon)
        table: dict[str, Any] = {}
        for member, frame in members.items():
            bucket = pd.cut(frame["horizon_day"], edges).astype(str)
            error = (frame["actual"] - frame["p50"]).abs().groupby([frame["window"], bucket]).sum()
            volume = frame["actual"].abs().groupby([frame["window"], bucket]).sum()
            wapes = (error / volume).round(3)
            table[member] = {f"{pd.Timestamp(w).date()} h{b}": float(v) for (w, b), v in wapes.items()}
        winners = {}
        for key in next(iter(table.values())):
            winners[key] = min(table, key=lambda m: table[m][key])
        out[name] = {"wape": table, "best_member": winners, "out_of_sample": _bucket_weights(members, edges)}
        print(name, json.dumps(winners, indent=1), out[name]["out_of_sample"], flush=True)
    return out


def _bucket_weights(members: dict[str, pd.DataFrame], edges: list[int]) -> dict[str, Any]:
    """One set of weights for all series against one per horizon bucket, each window scored out of sample.

    Weights (per quantile, window guard as shipped) are fitted on the windows before each later
    window and scored on it; no clusters, so only the horizon split differs.
    """
    from models.ensemble import KEY, _pinball_sum, _quantile_matrix, best_weights

    quantiles = (0.1, 0.5, 0.9)
    joined, names = _quantile_matrix(members, quantiles)
    first = next(iter(members.values()))[[*KEY, "window", "horizon_day"]]
    joined = joined.merge(first, on=[*KEY, "window"])
    joined["bucket"] = pd.cut(joined["horizon_day"], edges).astype(str)
    buckets = sorted(joined["bucket"].unique())
    out: dict[str, Any] = {}
    for window in sorted(joined["window"].unique())[1:]:
        train, test = joined[joined["window"] < window], joined[joined["window"] == window]
        actual = test["actual"].to_numpy(dtype=float)
        row: dict[str, Any] = {}
        for label, split in (("one_set", False), ("per_bucket", True)):
            groups = [(train[train["bucket"] == b], test[test["bucket"] == b]) for b in buckets]
            loss = dict.fromkeys(quantiles, 0.0)
            for fit_rows, score_rows in groups if split else [(train, test)]:
                for q in quantiles:
                    cols = [f"{n}|{q}" for n in names]
                    weights = best_weights(
                        fit_rows[cols].to_numpy(dtype=float),
                        fit_rows["actual"].to_numpy(dtype=float),
                        q,
                        fit_rows["window"].to_numpy(dtype="datetime64[ns]"),
                    )
                    blended = score_rows[cols].to_numpy(dtype=float) @ weights
                    loss[q] += _pinball_sum(score_rows["actual"].to_numpy(dtype=float), blended, q)
            row[label] = {
                "wape": round(2 * loss[0.5] / float(np.abs(actual).sum()), 4),
                "pinball": round(sum(loss.values()) / len(quantiles) / len(actual), 4),
            }
        out[str(pd.Timestamp(window).date())] = row
    return out


def ensemble(runs: Path) -> dict[str, Any]:
    import models.ensemble
    from features.frequency import season_length
    from models.ensemble import (
        apply_interval_scale,
        blend_rows,
        choose_interval_scale,
        fit_interval_scale,
        series_profile,
    )
    from models.evaluation import baseline_backtests, fit_ensemble, weighting_params
    from models.metrics import naive_scale, score

    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {}
    for name, sales, meta, members in _kept_builds(runs):
        freq = meta["frequency"]
        horizon, windows, newest, older, target = _split_newest(members)
        known = sales[sales["date"] < newest]
        mase = naive_scale(sales[sales["date"] <= windows[0]], season_length(freq))

        def scored(frame: pd.DataFrame, scale: pd.Series = mase) -> dict[str, Any]:
            kept = ("wape", "pinball", "coverage", "mase")
            return {k: round(float(v), 4) for k, v in score(frame, quantiles, scale).items() if k in kept}

        rows: dict[str, Any] = {}
        shipped_guard = models.ensemble.WINDOW_GUARD
        for label, tails, step, objective, guard in (
            ("median_weights", False, 0.1, "coverage", False),
            ("quantile_weights", True, 0.1, "coverage", False),
            ("quantile_weights_grid_0.05", True, 0.05, "coverage", False),
            ("quantile_weights_pinball_scale", True, 0.1, "pinball", False),
            ("quantile_weights_checked_coverage_scale", True, 0.1, "checked_coverage", False),
            ("quantile_weights_checked_pinball_scale", True, 0.1, "checked_pinball", False),
            ("quantile_weights_checked_coverage_scale_window_guard", True, 0.1, "checked_coverage", True),
            ("tail_check_as_shipped", True, 0.1, "checked_coverage", True),
        ):
            models.ensemble.GRID_STEP = step
            models.ensemble.WINDOW_GUARD = guard
            weighting, fitted = fit_ensemble(
                known,
                freq,
                horizon,
                quantiles,
                older,
                tail_weights=tails,
                tail_check=label == "tail_check_as_shipped",
            )
            if objective.startswith("checked_"):
                scale, _ = choose_interval_scale(fitted, quantiles, objective.removeprefix("checked_"))
            else:
                scale = fit_interval_scale(fitted[fitted["window"] == windows[-2]], quantiles, objective)
            base = target[weighting.members[0]]
            # as the model that ships would weight them at the newest cutoff: clusters from each
            # series' latest history, equal weights for series too young to judge
            cols = weighting.column_rows(base, sales[sales["date"] <= newest], quantiles)
            blend = blend_rows(target, cols, weighting.members, quantiles, base)
            rows[f"ensemble_{label}"] = scored(apply_interval_scale(blend, quantiles, scale))
            rows[f"ensemble_{label}"]["weights"] = weighting.average()
            if label == "quantile_weights_checked_coverage_scale":  # what shipped: two rules it replaced
                history = sales[sales["date"] <= newest]
                old_rule = copy.copy(weighting)
                old_rule.short_history = weighting_params(freq, horizon)[1]  # a horizon plus two seasons
                cols = old_rule.column_rows(base, history, quantiles)
                blend = blend_rows(target, cols, weighting.members, quantiles, base)
                rows["ensemble_shipped_but_short_by_horizon_plus_two_seasons"] = scored(
                    apply_interval_scale(blend, quantiles, scale)
                )
                short = weighting.short_history
                by_periods = series_profile(history, weighting.level_window)["length"] < short
                by_rows = history.groupby(["store_id", "sku"]).size() < short
                rows["series_short_by_row_count"] = int(by_rows.sum())
                rows["series_short_by_periods_since_first_sale"] = int(by_periods.sum())
        models.ensemble.GRID_STEP = 0.1
        models.ensemble.WINDOW_GUARD = shipped_guard
        for n, f in target.items():
            rows[n] = scored(f)
        for n, f in baseline_backtests(sales, freq, horizon, [newest], quantiles).items():
            rows[n] = scored(f)
        out[name] = {"newest_window": str(pd.Timestamp(newest).date()), "scores": rows}
        print(name, json.dumps(out[name], indent=1), flush=True)
    return out


def _turning_series(frame: pd.DataFrame, sales: pd.DataFrame, level_window: int, seasonal: bool) -> int:
    from models.ensemble import turning_rows

    turned = turning_rows(frame, sales, level_window, seasonal=seasonal)
    return int(frame.loc[turned, ["store_id", "sku"]].drop_duplicates().shape[0])


def turning_rule(runs: Path) -> dict[str, Any]:
    """The turning cluster with the seasonal rule (last year turned too) against the first rule (last
    year's dates against the recent level alone), on each kept build's newest backtest window.

    Everything else as the evaluate step ships it (window guard, tail check, checked interval scale),
    fitted on the older windows; the series each rule calls turning at the newest cutoff and at the
    build's end (what the shipped forecast sees). ``runs``: ``accuracy.py --keep-runs``, or any
    ORDERNIMBUS_HOME linked in as ``home-<name>``.
    """
    import models.ensemble
    from models.ensemble import apply_interval_scale, blend_rows, choose_interval_scale, horizon_frame
    from models.evaluation import fit_ensemble, weighting_params
    from models.metrics import score

    quantiles = (0.1, 0.5, 0.9)
    out: dict[str, Any] = {}
    for name, sales, meta, members in _kept_builds(runs):
        freq = meta["frequency"]
        horizon, _windows, newest, older, target = _split_newest(members)
        level_window, _ = weighting_params(freq, horizon)
        base = target[sorted(target)[0]]
        row: dict[str, Any] = {"newest_window": str(pd.Timestamp(newest).date())}
        for label, seasonal in (("first_rule", False), ("seasonal_rule", True)):
            models.ensemble.SEASONAL_TURNS = seasonal
            weighting, fitted = fit_ensemble(sales[sales["date"] < newest], freq, horizon, quantiles, older)
            scale, _ = choose_interval_scale(fitted, quantiles)
            cols = weighting.column_rows(base, sales[sales["date"] <= newest], quantiles)
            blend = apply_interval_scale(
                blend_rows(target, cols, weighting.members, quantiles, base), quantiles, scale
            )
            scores = score(blend, quantiles)
            row[label] = {
                **{k: round(float(scores[k]), 4) for k in ("wape", "pinball", "coverage")},
                "turn_learned": weighting.turn_learned,
                "turning_series_newest_window": _turning_series(base, sales, level_window, seasonal),
                "turning_series_at_the_end": _turning_series(
                    horizon_frame(sales, horizon), sales, level_window, seasonal
                ),
            }
        models.ensemble.SEASONAL_TURNS = True
        out[name] = row
        print(name, json.dumps(row, indent=1), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="xgboost,stl,walmart_d1")
    parser.add_argument(
        "--sets",
        default="store_item,walmart,online_retail",
        help="for xgboost_scaling, xgboost_mean_scale, arima_pooled_year",
    )
    parser.add_argument("--full", action="store_true", help="for xgboost_capacity: the whole sets too")
    parser.add_argument("--runs", type=Path, help="for calibration: the folder of accuracy.py --keep-runs")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name in args.only.split(","):
        sections: dict[str, Callable[[], Any]] = {
            "xgboost": xgboost,
            "stl": stl,
            "walmart_d1": walmart_d1,
            "walmart_dhr": walmart_dhr,
            "yearly_signal": yearly_signal_lab,
            "steady_weekly": steady_weekly,
            "xgboost_capacity": lambda: xgboost_capacity(args.full),
            "small_tenant_builds": small_tenant_builds,
            "seasonal_products": seasonal_products,
            "one_off_order": one_off_order,
            "delisted_products": delisted_products,
            "young_tenants": young_tenants,
            "xgboost_scaling": lambda: xgboost_scaling(args.sets),
            "xgboost_mean_scale": lambda: xgboost_mean_scale(args.sets),
            "arima_pooled_year": lambda: arima_pooled_year(args.sets),
            "arima_young_series": arima_young_series,
            "deepar_pooled_season": deepar_pooled_season,
            "deepar_returns": deepar_returns,
            "deepar_intermittent": deepar_intermittent,
            "xgboost_pooled_season": xgboost_pooled_season,
            "xgboost_fit_once": xgboost_fit_once,
            "arima_two_years": arima_two_years,
            "deepar_warm": deepar_warm,
            "xgboost_warm": xgboost_warm,
            "autoets_window": autoets_window,
            "arima_roll": arima_roll,
            "deepar_cache": deepar_cache,
            "deepar_lags": deepar_lags,
            "deepar_lags_weekly": lambda: deepar_lags(weekly=True),
            "deepar_epochs": deepar_epochs,
            "deepar_isa": deepar_isa,
            "deepar_samples": lambda: deepar_samples(args.runs),
            "calibration": lambda: calibration(args.runs),
            "ensemble": lambda: ensemble(args.runs),
            "turning_rule": lambda: turning_rule(args.runs),
            "one_off_rule": lambda: one_off_rule(args.runs),
            "headroom": lambda: headroom(args.runs),
            "tail_weights": lambda: tail_weights(args.runs),
            "intermittent_partners": lambda: intermittent_partners(args.runs),
            "blend_autoets": lambda: blend_autoets(args.runs),
            "horizons": lambda: horizons(args.runs),
        }
        section = sections[name]()
        # read again just before writing: another lab may have finished a section meanwhile
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results[name] = section
        RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
