"""Forecasters: save/load round trips, quantile sanity, and the ensemble never worse than its members."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut

from models.backtest import MIN_TRAIN, HistoryTooShortError, backtest, check_history, cutoffs, window_step
from models.base import ModelError, load_model
from models.ensemble import Ensemble, blend, fit_weights
from models.metrics import qcol, wape
from models.naive import SeasonalNaive
from models.xgboost import GlobalXGBoost

Q = (0.1, 0.5, 0.9)


def small_xgb() -> GlobalXGBoost:
    return GlobalXGBoost(horizon=14, n_estimators=20, max_origins=10)


@pytest.mark.parametrize("factory", [SeasonalNaive, lambda: SeasonalNaive(yearly=True), small_xgb])
def test_round_trip_gives_identical_predictions(factory, tmp_path: Path, sales_cut: pd.DataFrame) -> None:
    model = factory().fit(sales_cut, "D")
    before = model.predict(sales_cut, 14, Q)
    model.save(tmp_path / "m")
    after = load_model(tmp_path / "m").predict(sales_cut, 14, Q)
    pd.testing.assert_frame_equal(before, after)
    values = before[[qcol(q) for q in Q]].to_numpy()
    assert (np.diff(values, axis=1) >= 0).all(), "quantiles cross"
    assert (values >= 0).all()
    assert (before["mean"] >= 0).all()
    assert len(before) == sales_cut.groupby(["store_id", "sku"]).ngroups * 14


def test_load_refuses_a_directory_without_our_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"class": "os:system"}')
    with pytest.raises(ModelError, match="refusing"):
        load_model(tmp_path)


def test_xgboost_beats_seasonal_naive_on_held_out_weeks() -> None:
    sales = store_item_cut(stores=2, items=5, since="2015-01-01")
    cut = pd.Timestamp("2017-09-30")
    history, future = (
        sales[sales["date"] <= cut],
        sales[(sales["date"] > cut) & (sales["date"] <= cut + pd.Timedelta(days=14))],
    )
    truth = future.rename(columns={"date": "target_date", "units": "actual"})
    scores = {}
    for model in (SeasonalNaive(), GlobalXGBoost(horizon=14, n_estimators=80, max_origins=30)):
        pred = (
            model.fit(history, "D")
            .predict(history, 14, Q)
            .merge(truth, on=["store_id", "sku", "target_date"])
        )
        scores[model.name] = wape(pred["actual"].to_numpy(), pred["p50"].to_numpy())
    assert scores["xgboost"] < scores["seasonal_naive"]


def test_ensemble_is_never_worse_than_its_best_member_on_its_backtest(
    tmp_path: Path, sales_cut: pd.DataFrame
) -> None:
    makers = {
        "seasonal_naive": SeasonalNaive,
        "seasonal_naive_year": lambda: SeasonalNaive(yearly=True),
        "xgboost": small_xgb,
    }
    bts = {n: backtest(m, sales_cut, "D", 14, 2, Q) for n, m in makers.items()}
    weights = fit_weights(bts, Q)
    assert abs(sum(weights.values()) - 1) < 1e-9
    blended = blend(bts, weights, Q)
    best = min(wape(b["actual"].to_numpy(), b["p50"].to_numpy()) for b in bts.values())
    assert wape(blended["actual"].to_numpy(), blended["p50"].to_numpy()) <= best + 1e-12
    ens = Ensemble({n: m().fit(sales_cut, "D") for n, m in makers.items()}, weights, 1.1)
    ens.freq = "D"
    ens.save(tmp_path / "ens")
    pd.testing.assert_frame_equal(
        ens.predict(sales_cut, 14, Q), load_model(tmp_path / "ens").predict(sales_cut, 14, Q)
    )


def test_backtest_windows_fit_a_short_weekly_history_and_never_pass_its_end() -> None:
    """Walmart's shape: 103 weeks cannot hold three 39-week windows side by side."""
    weeks = pd.date_range("2010-02-05", periods=103, freq="W-FRI")
    sales = pd.DataFrame({"store_id": "1", "sku": "1", "date": weeks, "units": np.arange(103.0) + 10})
    found = cutoffs(weeks[-1], 39, 3, "W-FRI", first=weeks[0])
    assert len(found) == 3
    assert found[-1] == weeks[-1] - pd.Timedelta(weeks=39)  # the newest window ends at the data's end
    assert (found[0] - weeks[0]).days // 7 + 1 >= 52  # the earliest cutoff keeps a year to train on
    assert found == sorted(found)
    frame = backtest(SeasonalNaive, sales, "W-FRI", 39, 3, Q)
    assert frame["window"].nunique() == 3
    assert frame["target_date"].max() <= weeks[-1]
    for window, rows in frame.groupby("window"):
        assert rows["target_date"].min() > window  # scored only after its own cutoff


def test_the_earliest_backtest_window_holds_a_year_over_year_pair() -> None:
    """A weekly tenant short of two years judges its yearly seasonality on pairs a year apart; the
    earliest cutoff keeps one week beyond the year so that no window is left without one."""
    weeks = pd.date_range("2023-01-01", periods=70, freq="W-SUN")
    found = cutoffs(weeks[-1], 8, 3, "W-SUN", first=weeks[0])
    held = [int((weeks <= c).sum()) for c in found]
    assert held[0] > 52
    assert held == sorted(held)
    assert found[-1] == weeks[-1] - pd.Timedelta(weeks=8)
    walmart = pd.date_range("2010-02-05", periods=104, freq="W-FRI")  # a year and a week already
    held = [int((walmart <= c).sum()) for c in cutoffs(walmart[-1], 39, 3, "W-FRI", first=walmart[0])]
    assert held == [53, 59, 65]
    assert window_step(52 + 8, 8, 3, "W-SUN") == 1  # only a year to train on: windows a week apart


@pytest.mark.parametrize("freq", ["D", "W-SUN"])
def test_a_history_too_short_for_its_backtest_is_refused_with_what_would_fit(freq: str) -> None:
    """Accepted layouts train their earliest window on MIN_TRAIN periods or more (counted on real
    cutoffs); a refusal names a history length and a horizon that do fit, checked the same way."""
    period = pd.Timedelta(weeks=1) if freq.startswith("W") else pd.Timedelta(days=1)
    floor = MIN_TRAIN[freq[0]]
    first = pd.Timestamp("2024-01-07")

    def earliest(periods: int, horizon: int, windows: int) -> int:
        dates = pd.date_range(first, periods=periods, freq=period)
        return int((dates <= cutoffs(dates[-1], horizon, windows, freq, first=first)[0]).sum())

    refused = 0
    for periods in range(1, 70, 3):
        for horizon in (1, 4, 8, 13, 28):
            for windows in (1, 3):
                last = first + period * (periods - 1)
                try:
                    check_history(first, last, horizon, windows, freq)
                except HistoryTooShortError as exc:
                    refused += 1
                    message = str(exc)
                    assert f"has {periods} " in message
                    needed = int(re.search(r"at least (\d+)", message).group(1))  # type: ignore[union-attr]
                    assert earliest(needed, horizon, windows) >= floor
                    advised = re.search(r"--horizon (\d+) or less", message)
                    if advised:
                        assert earliest(periods, int(advised.group(1)), windows) >= floor
                    else:
                        assert "no horizon fits" in message
                else:
                    assert earliest(periods, horizon, windows) >= floor
    assert refused > 10


def test_backtest_windows_sit_side_by_side_when_the_history_allows() -> None:
    last, first = pd.Timestamp("2017-10-02"), pd.Timestamp("2013-01-01")
    assert cutoffs(last, 90, 3, "D", first=first) == [last - pd.Timedelta(days=90 * w) for w in (3, 2, 1)]
    assert window_step(335, 32, 3, "D") == 32  # under a year of days: still side by side


def _weekly_with_seasonal_departments() -> pd.DataFrame:
    """Real Store Item weekly totals beside departments that sell a few units a week until their season
    (weeks 44-51) brings thousands: Walmart's Halloween and Christmas departments in miniature."""
    daily = store_item_cut(stores=2, items=6, since="2014-01-01")
    weekly = (
        daily.set_index("date").groupby(["store_id", "sku"])["units"].resample("W-FRI").sum().reset_index()
    )
    dates = pd.DatetimeIndex(np.sort(weekly["date"].unique()))
    in_season = dates.isocalendar().week.between(44, 51).to_numpy()
    rng = np.random.default_rng(3)
    seasonal = [
        pd.DataFrame(
            {
                "store_id": store,
                "sku": f"season{k}",
                "date": dates,
                "units": np.round(
                    np.where(in_season, 8000.0 * (1 + 0.2 * k), 0.0) * rng.uniform(0.7, 1.3, len(dates))
                    + rng.poisson(3, len(dates))
                ),
            }
        )
        for store in ("1", "2")
        for k in range(4)
    ]
    return pd.concat([weekly, *seasonal], ignore_index=True)


def test_weekly_trees_correct_last_years_season_and_never_leave_three_times_the_record(
    tmp_path: Path,
) -> None:
    sales = _weekly_with_seasonal_departments()
    cut = sales["date"].max() - pd.Timedelta(weeks=26)  # the forecast runs into the season
    history = sales[sales["date"] <= cut]
    record = history.groupby(["store_id", "sku"])["units"].max()
    model = GlobalXGBoost(horizon=26, n_estimators=60).fit(history, "W-FRI")
    assert (model.params["level"], model.params["anchor"]) == ("max", "year")
    pred = model.predict(history, 26, Q)
    assert (
        pred.groupby(["store_id", "sku"])["p90"].max()
        <= 3 * record.loc[pred.groupby(["store_id", "sku"]).size().index] + 1e-6
    ).all()
    # in season, the seasonal departments' medians follow last year's season instead of their
    # off-season level of a few units
    last_year = history.assign(target_date=history["date"] + pd.Timedelta(weeks=52))
    season = pred[pred["sku"].str.startswith("season")].merge(
        last_year[["store_id", "sku", "target_date", "units"]], on=["store_id", "sku", "target_date"]
    )
    peak = season[season["units"] > 1000]
    assert len(peak) >= 8 * 6
    ratio = peak["p50"] / peak["units"]
    assert 0.6 < ratio.median() < 1.6
    daily = GlobalXGBoost(horizon=14, n_estimators=20, max_origins=10).fit(store_item_cut(), "D")
    assert (daily.params["level"], daily.params["anchor"]) == ("recent", "none")
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(pred, load_model(tmp_path / "m").predict(history, 26, Q))


def test_weekly_trees_drop_last_years_anchor_where_the_tenant_shows_no_year(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    dates = pd.date_range("2022-01-07", periods=70, freq="W-FRI")
    steady = pd.concat(
        pd.DataFrame({"store_id": "1", "sku": f"p{j}", "date": dates, "units": rng.poisson(lam, 70)})
        for j, lam in enumerate(rng.uniform(20, 80, 12))
    ).astype({"units": float})
    model = GlobalXGBoost(horizon=8, n_estimators=30, max_origins=10).fit(steady, "W-FRI")
    assert model.yearly is not None
    assert model.yearly["seasonal"] is False
    assert (model.params["level"], model.params["anchor"]) == ("max", "none")
    pred = model.predict(steady, 8, Q)
    # the median stays near each product's level instead of following last year's draws
    level = steady.groupby("sku")["units"].mean()
    assert ((pred["p50"] - pred["sku"].map(level)).abs() / pred["sku"].map(level)).median() < 0.15
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.params["anchor"] == "none"
    pd.testing.assert_frame_equal(pred, loaded.predict(steady, 8, Q))
    # the same model refitted on a seasonal tenant anchors on last year again; an explicit anchor holds
    seasonal = _weekly_with_seasonal_departments()
    assert model.fit(seasonal, "W-FRI").params["anchor"] == "year"
    fixed = GlobalXGBoost(horizon=8, n_estimators=30, max_origins=10, anchor="year").fit(steady, "W-FRI")
    assert fixed.params["anchor"] == "year"


def test_seasonal_naive_handles_a_series_younger_than_its_lag_quietly() -> None:
    """A product launched within the last season has no seasonal difference yet: it copies the days it
    has, its own mean where a day is missing, with a zero-width interval; and numpy's all-NaN
    statistics must not warn once per such column."""
    old = store_item_cut(stores=1, items=2, since="2016-01-01")
    young = old[(old["sku"] == "1") & (old["date"] >= old["date"].max() - pd.Timedelta(days=3))]
    young = young.assign(sku="new")
    sales = pd.concat([old, young], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = SeasonalNaive(lag=7).fit(sales, "D").predict(sales, 14, Q)
    new = pred[pred["sku"] == "new"]
    seen = {*young["units"], young["units"].mean()}
    assert all(any(np.isclose(v, s) for s in seen) for v in new["p50"])
    assert new["p50"].nunique() > 1  # its observed days, not one mean
    assert (new["p10"] == new["p90"]).all()
    assert (pred.loc[pred["sku"] != "new", "p90"] > pred.loc[pred["sku"] != "new", "p10"]).any()
