"""ARIMA, AutoETS and DeepAR behind the Forecaster protocol; the per-cluster ensemble; SHAP drivers.

All on small real cuts of Store Item Demand (and a weekly aggregate of it), so the assertions are
about real behaviour: identical predictions after a save/load round trip, ordered non-negative
quantiles, fallbacks recorded for series the model cannot fit, and an ensemble that is never worse
than its best member on the backtest it was fitted on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut
from tinymodels import tiny_deepar

from models.backtest import backtest_model
from models.base import ModelError, load_model
from models.deepar import DeepARForecaster
from models.ensemble import Ensemble, Weighting, blend_rows
from models.evaluation import evaluate
from models.explain import describe, explain_xgboost
from models.metrics import qcol, wape
from models.naive import SeasonalNaive
from models.seasonality import yearly_signal
from models.statistical import AutoARIMAForecaster, AutoETSForecaster, quantile_levels
from models.xgboost import GlobalXGBoost
from pipelines.steps.train import details

Q = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return store_item_cut(stores=2, items=3, since="2016-06-01")


def _check_quantiles(frame: pd.DataFrame) -> None:
    values = frame[[qcol(q) for q in Q]].to_numpy()
    assert np.isfinite(values).all()
    assert (np.diff(values, axis=1) >= -1e-9).all(), "quantiles cross"
    assert (values >= 0).all()
    assert (frame["mean"] >= 0).all()


@pytest.mark.parametrize(
    "factory",
    [lambda: AutoARIMAForecaster(n_jobs=1), lambda: AutoETSForecaster(n_jobs=1), tiny_deepar],
    ids=["arima", "autoets", "deepar"],
)
def test_round_trip_gives_identical_predictions(factory, daily: pd.DataFrame, tmp_path: Path) -> None:
    model = factory().fit(daily, "D")
    before = model.predict(daily, 14, Q)
    model.save(tmp_path / "m")
    after = load_model(tmp_path / "m").predict(daily, 14, Q)
    pd.testing.assert_frame_equal(before, after)
    _check_quantiles(before)
    assert len(before) == daily.groupby(["store_id", "sku"]).ngroups * 14
    assert before["target_date"].min() == daily["date"].max() + pd.Timedelta(days=1)


def test_deepar_too_young_to_train_falls_back_to_the_naive_and_ships_it(
    daily: pd.DataFrame, tmp_path: Path
) -> None:
    """60 days of a new tenant, horizon 28: the earliest backtest cutoff holds 16 days, shorter than
    any training window. The build used to fail there with gluonts' early-stopping error."""
    young = daily[daily["date"] > daily["date"].max() - pd.Timedelta(days=60)]
    bt, final = backtest_model(lambda: tiny_deepar(horizon=28), young, "D", 28, 3, Q)
    naive = SeasonalNaive()
    naive_bt, _ = backtest_model(lambda: naive, young, "D", 28, 3, Q)
    columns = ["store_id", "sku", "target_date", "window", "p10", "p50", "p90"]
    pd.testing.assert_frame_equal(bt[columns], naive_bt[columns])  # every window: the seasonal naive
    assert isinstance(final, DeepARForecaster)
    # the shipped member is the one the backtest judged, although 60 days could host a window
    assert final.naive is not None
    assert final.predictor is None
    recorded = details(final)
    assert recorded["fallback_count"] == young.groupby(["store_id", "sku"]).ngroups
    assert "history too short for DeepAR" in recorded["fallbacks"]["1|1"]
    assert "16 periods" in recorded["fallbacks"]["1|1"]
    assert recorded["trained_series"] == 0
    before = final.predict(young, 28, Q)
    final.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(again.predict(young, 28, Q), before)
    assert again.fallbacks == final.fallbacks
    _check_quantiles(before)
    # a history that can host windows trains the network and records no fallback
    trained = tiny_deepar(horizon=28).fit(young, "D")
    assert trained.predictor is not None
    assert trained.fallbacks == {}


def test_arima_records_fallbacks_for_short_and_constant_series(daily: pd.DataFrame) -> None:
    short = daily[(daily["store_id"] == "1") & (daily["sku"] == "1")].tail(10).assign(sku="short")
    flat = daily[(daily["store_id"] == "1") & (daily["sku"] == "2")].assign(sku="flat", units=0.0)
    sales = pd.concat([daily, short, flat], ignore_index=True)
    model = AutoARIMAForecaster(n_jobs=1).fit(sales, "D")
    assert set(model.fallbacks) == {"1|short", "1|flat"}
    assert "too short" in model.fallbacks["1|short"]
    assert "constant" in model.fallbacks["1|flat"]
    pred = model.predict(sales, 7, Q)
    naive = SeasonalNaive().fit(sales, "D").predict(sales, 7, Q)
    got = pred[pred["sku"] == "short"].reset_index(drop=True)
    want = naive[naive["sku"] == "short"].reset_index(drop=True)
    np.testing.assert_allclose(got["p50"], want["p50"])
    assert (pred.loc[pred["sku"] == "flat", [qcol(q) for q in Q]] == 0).all().all()


def test_arima_searches_orders_once_and_refits_coefficients(daily: pd.DataFrame) -> None:
    model = AutoARIMAForecaster(n_jobs=1)
    early = daily[daily["date"] <= daily["date"].max() - pd.Timedelta(days=60)]
    model.fit(early, "D")
    orders = json.dumps(model.specs, sort_keys=True)
    model.fit(daily, "D")
    assert json.dumps(model.specs, sort_keys=True) == orders  # no second search
    # ...but the forecasts follow the newer history (coefficients are re-estimated on it)
    a = model.predict(early, 7, Q)["p50"].to_numpy()
    b = model.predict(daily, 7, Q)["p50"].to_numpy()
    assert not np.allclose(a, b)
    level = daily.groupby(["store_id", "sku"])["units"].mean().mean()
    assert 0.5 * level < b.mean() < 1.5 * level  # real forecasts, not a degenerate filter


@pytest.mark.parametrize(
    "factory",
    [lambda: AutoARIMAForecaster(n_jobs=1), lambda: AutoETSForecaster(n_jobs=1)],
    ids=["arima", "autoets"],
)
def test_forecasting_the_searched_history_reuses_the_searchs_fit_to_the_last_bit(
    factory, tmp_path: Path
) -> None:
    """The backtest's first window forecasts the history the search just fitted: no second fit."""
    history = store_item_cut(stores=1, items=3, since="2015-01-01")  # over two years: MSTL for ARIMA
    history = history[history["date"] <= "2017-03-31"]
    model = factory().fit(history, "D")
    assert set(model._fitted) == set(model.specs) == {"1|1", "1|2", "1|3"}
    reused = model.predict(history, 30, Q)
    model.save(tmp_path / "m")
    refitted = load_model(tmp_path / "m").predict(history, 30, Q)  # a loaded model holds no fits
    pd.testing.assert_frame_equal(reused, refitted)
    # a different history is refitted, never answered from the search's fit
    shorter = history[history["date"] <= "2017-02-28"]
    assert not np.allclose(model.predict(shorter, 30, Q)["p50"], reused["p50"])
    model.fit(shorter, "D")  # a later fit that searches nothing lets go of the fits
    assert model._fitted == {}


def test_arima_rolls_to_a_later_origin_with_its_coefficients_and_refits_only_when_fitted() -> None:
    """A later backtest origin keeps the search's coefficients and refilters the state on the newer
    history; the final ``fit`` lets go of them, so the production model re-estimates as before."""
    history = store_item_cut(stores=1, items=3, since="2015-01-01")
    early = history[history["date"] <= "2017-01-31"]
    later = history[history["date"] <= "2017-03-31"]
    model = AutoARIMAForecaster(n_jobs=1).fit(early, "D")
    searched = model.predict(early, 30, Q)
    rolled = model.roll(later, "D").predict(later, 30, Q)
    assert set(model._rolled) == set(model.specs) == {"1|1", "1|2", "1|3"}
    refitted = AutoARIMAForecaster(n_jobs=1)
    refitted.specs, refitted.fallbacks = model.specs, model.fallbacks
    refitted = refitted.fit(later, "D")  # the same orders, coefficients re-estimated on ``later``
    fresh = refitted.predict(later, 30, Q)
    # the newer data moves the forecast, and the kept coefficients are not the re-estimated ones
    assert not np.allclose(rolled["p50"], searched["p50"])
    assert not np.allclose(rolled["p50"], fresh["p50"])
    # ...but both describe the same series: the same level, intervals floored the same way
    assert abs(rolled["p50"].mean() / fresh["p50"].mean() - 1) < 0.05
    assert (rolled["p10"] <= rolled["p50"]).all()
    assert (rolled["p50"] <= rolled["p90"]).all()
    model.fit(later, "D")  # the final fit: no kept coefficients, a refit like any loaded model
    assert model._rolled == {}
    pd.testing.assert_frame_equal(model.predict(later, 30, Q), fresh)


def test_autoets_refits_at_a_later_origin(tmp_path: Path) -> None:
    """ETS's forward lost accuracy on the dev windows, so its roll is a plain refit."""
    history = store_item_cut(stores=1, items=2, since="2016-01-01")
    early, later = history[history["date"] <= "2017-01-31"], history[history["date"] <= "2017-03-31"]
    model = AutoETSForecaster(n_jobs=1).fit(early, "D")
    model.save(tmp_path / "m")
    rolled = model.roll(later, "D").predict(later, 30, Q)
    assert model._rolled == {}
    refitted = load_model(tmp_path / "m").fit(later, "D").predict(later, 30, Q)
    pd.testing.assert_frame_equal(rolled, refitted)


def test_two_years_of_days_take_the_year_out_with_mstl_and_it_pays() -> None:
    """A development window (spring 2017, before the evaluation window): the yearly ramp matters."""
    sales = store_item_cut(stores=1, items=4, since="2015-01-01")
    cutoff = pd.Timestamp("2017-03-31")
    history = sales[sales["date"] <= cutoff]
    truth = sales[(sales["date"] > cutoff) & (sales["date"] <= cutoff + pd.Timedelta(days=60))]
    mstl = AutoARIMAForecaster(n_jobs=1).fit(history, "D")
    assert {tuple(spec[4]) for spec in mstl.specs.values()} == {(7, 364)}
    plain = AutoARIMAForecaster(n_jobs=1, fit_window=364).fit(history, "D")
    assert {tuple(spec[4]) for spec in plain.specs.values()} == {()}

    def score(model: AutoARIMAForecaster) -> float:
        pred = model.predict(history, 60, Q)
        _check_quantiles(pred)
        joined = truth.merge(
            pred, left_on=["store_id", "sku", "date"], right_on=["store_id", "sku", "target_date"]
        )
        assert len(joined) == len(truth)
        return wape(joined["units"].to_numpy(), joined["p50"].to_numpy())

    assert score(mstl) < 0.9 * score(plain)
    # MSTL's own intervals treat the yearly component as known and covered about half of such
    # windows; floored by the yearly naive's spread they cover near the nominal 80 %.
    pred = mstl.predict(history, 60, Q).merge(
        truth, left_on=["store_id", "sku", "target_date"], right_on=["store_id", "sku", "date"]
    )
    assert 0.7 <= pred["units"].between(pred["p10"], pred["p90"]).mean() <= 0.95


def test_exactly_two_years_of_weeks_get_the_seasonal_model_no_surer_than_the_yearly_naive(
    tmp_path: Path,
) -> None:
    daily = store_item_cut(stores=1, items=3, since="2013-01-05")
    weekly = (
        daily.set_index("date").groupby(["store_id", "sku"])["units"].resample("W-FRI").sum().reset_index()
    )
    two_years = weekly[weekly["date"] <= weekly["date"].min() + pd.Timedelta(weeks=103)]
    assert two_years.groupby(["store_id", "sku"]).size().eq(104).all()
    model = AutoARIMAForecaster(n_jobs=1).fit(two_years, "W-FRI")
    assert not model.fallbacks  # two years: MSTL's yearly season, not last year's naive
    assert {tuple(spec[4]) for spec in model.specs.values()} == {(52,)}
    pred = model.predict(two_years, 39, Q)
    _check_quantiles(pred)
    naive = SeasonalNaive(yearly=True).fit(two_years, "W-FRI").predict(two_years, 39, Q)
    both = pred.merge(naive, on=["store_id", "sku", "target_date"], suffixes=("", "_naive"))
    assert len(both) == 3 * 39
    assert not np.allclose(both["p50"], both["p50_naive"])  # both years shape the season
    tol = 1e-6
    assert (both["p90"] - both["mean"] >= both["p90_naive"] - both["p50_naive"] - tol).all()
    assert (both["mean"] - both["p10"] >= both["p50_naive"] - both["p10_naive"] - tol).all()
    # a week short of two years keeps the fallback, recorded per series
    short = two_years[two_years["date"] > two_years["date"].min()]
    assert len(AutoARIMAForecaster(n_jobs=1).fit(short, "W-FRI").fallbacks) == 3
    # saved and loaded, it predicts the same; a model saved before the floor existed keeps its intervals
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(load_model(tmp_path / "m").predict(two_years, 39, Q), pred)
    state_file = tmp_path / "m" / "arima.json"
    state = json.loads(state_file.read_text())
    del state["floor_intervals"]
    state_file.write_text(json.dumps(state))
    older = load_model(tmp_path / "m").predict(two_years, 39, Q)
    assert (older["p90"] - older["p10"] <= pred["p90"] - pred["p10"] + tol).all()
    assert (older["p90"] - older["p10"] < pred["p90"] - pred["p10"] - tol).any()


def test_weekly_data_uses_the_yearly_season() -> None:
    daily = store_item_cut(stores=1, items=2, since="2013-01-01")
    weekly = (
        daily.set_index("date").groupby(["store_id", "sku"])["units"].resample("W-FRI").sum().reset_index()
    )
    model = AutoARIMAForecaster(n_jobs=1).fit(weekly, "W-FRI")
    assert model.season == 52
    assert not model.fallbacks
    pred = model.predict(weekly, 13, Q)
    assert (pred["target_date"].dt.dayofweek == 4).all()
    _check_quantiles(pred)
    ets = AutoETSForecaster(n_jobs=1).fit(weekly, "W-FRI")  # ETS cannot hold 52 seasons: non-seasonal forms
    # ...so a year and a quarter of weeks is a real ETS fit, not the seasonal-naive fallback
    recent = weekly[weekly["date"] > weekly["date"].max() - pd.Timedelta(weeks=65)]
    assert not AutoETSForecaster(n_jobs=1).fit(recent, "W-FRI").fallbacks
    assert set(AutoARIMAForecaster(n_jobs=1).fit(recent, "W-FRI").fallbacks) == set(ets.specs)
    assert all(spec[0][2] == "N" for spec in ets.specs.values())


def _steady_weeks(series: int, weeks: int, seed: int = 3) -> pd.DataFrame:
    """Steady weekly demand with no year in it: each product's Poisson level, week after week."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-01-07", periods=weeks, freq="W-FRI")
    return pd.concat(
        pd.DataFrame({"store_id": "1", "sku": f"p{j}", "date": dates, "units": rng.poisson(lam, weeks)})
        for j, lam in enumerate(rng.uniform(20, 80, series))
    ).astype({"units": float})


def test_yearly_signal_tells_a_repeating_year_from_steady_demand_trends_and_random_walks() -> None:
    rng = np.random.default_rng(0)
    weeks = np.arange(80)
    season = [50 + 20 * np.sin(2 * np.pi * weeks / 52 + k) + rng.normal(0, 5, 80) for k in range(10)]
    steady = [rng.poisson(40, 80).astype(float) for _ in range(10)]
    walks = [100 + np.cumsum(rng.normal(0, 3, 80)) for _ in range(10)]
    trends = [20 + 0.5 * weeks + rng.normal(0, 3, 80) for _ in range(10)]
    assert yearly_signal(season, 52)["seasonal"] is True
    for flat in (steady, walks, trends):
        got = yearly_signal(flat, 52)
        assert got["seasonal"] is False
        assert got["pairs"] == 10 * 28
    assert yearly_signal(walks, 52)["correlation"] < -0.2  # last year's week is the wrong level
    # too few pairs to tell (one series, 28 pairs; or no series holding a year): no verdict
    assert yearly_signal(season[:1], 52)["seasonal"] is None
    assert yearly_signal([y[:52] for y in season], 52) == {"correlation": None, "pairs": 0, "seasonal": None}


def test_short_weekly_series_get_a_non_seasonal_arima_unless_the_tenant_repeats_its_year(
    tmp_path: Path,
) -> None:
    steady = _steady_weeks(series=6, weeks=70)
    model = AutoARIMAForecaster(n_jobs=1).fit(steady, "W-FRI")
    assert model.yearly is not None
    assert model.yearly["seasonal"] is False
    assert not model.fallbacks  # fitted, not the yearly naive
    assert all(spec[5] == "short" for spec in model.specs.values())
    pred = model.predict(steady, 8, Q)
    _check_quantiles(pred)
    naive = SeasonalNaive(yearly=True).fit(steady, "W-FRI").predict(steady, 8, Q)
    # steady demand: the forecast stays near each product's level instead of copying last year's draws
    level = steady.groupby("sku")["units"].mean()
    spread_model = (pred["p50"] - pred["sku"].map(level)).abs().mean()
    spread_naive = (naive["p50"] - naive["sku"].map(level)).abs().mean()
    assert spread_model < 0.5 * spread_naive
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(load_model(tmp_path / "m").predict(steady, 8, Q), pred)
    assert load_model(tmp_path / "m").yearly == model.yearly

    # a tenant whose weeks repeat their year keeps the yearly naive below two years, as before
    daily = store_item_cut(stores=2, items=3, since="2015-01-02")
    weekly = (
        daily.set_index("date").groupby(["store_id", "sku"])["units"].resample("W-FRI").sum().reset_index()
    )
    seasonal = weekly[weekly["date"] <= weekly["date"].min() + pd.Timedelta(weeks=69)]
    kept = AutoARIMAForecaster(n_jobs=1).fit(seasonal, "W-FRI")
    assert kept.yearly is not None
    assert kept.yearly["seasonal"] is True
    assert len(kept.fallbacks) == 6
    assert not kept.specs
    assert all("yearly naive" in reason for reason in kept.fallbacks.values())


def test_a_weekly_series_without_a_year_is_fitted_and_searched_again_once_it_has_one() -> None:
    daily = store_item_cut(stores=2, items=3, since="2015-01-02")
    weekly = (
        daily.set_index("date").groupby(["store_id", "sku"])["units"].resample("W-FRI").sum().reset_index()
    )
    first = weekly["date"].min()
    young = weekly[weekly["date"] <= first + pd.Timedelta(weeks=39)]  # 40 weeks: no year to copy
    model = AutoARIMAForecaster(n_jobs=1).fit(young, "W-FRI")
    assert not model.fallbacks
    assert all(spec[5] == "short" for spec in model.specs.values())
    _check_quantiles(model.predict(young, 13, Q))
    # a later origin with 70 weeks of a seasonal tenant: the short fits are dropped for the yearly naive
    older = weekly[weekly["date"] <= first + pd.Timedelta(weeks=69)]
    model.roll(older, "W-FRI")
    assert not model.specs
    assert len(model.fallbacks) == 6
    pred = model.predict(older, 13, Q)
    naive = SeasonalNaive(yearly=True).fit(older, "W-FRI").predict(older, 13, Q)
    np.testing.assert_allclose(pred["p50"], naive["p50"])


def _with_returns(sales: pd.DataFrame, share: float, seed: int = 5) -> pd.DataFrame:
    """Integer units with ``share`` of the rows netted below zero (a day's returns beat its sales)."""
    out = sales.copy()
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(out), size=round(share * len(out)), replace=False)
    out.loc[out.index[rows], "units"] = -rng.integers(1, 40, size=len(rows)).astype(float)
    return out


def test_deepar_reads_integer_units_with_a_few_returns_as_counts_and_learns_demand(
    daily: pd.DataFrame,
) -> None:
    """A tenant whose days now and then net below zero still sells counts: the negative binomial on
    units clipped at zero, not a Student-t whose location sits on the typical (near-empty) day."""
    returns = _with_returns(daily, 0.02)
    model = tiny_deepar()
    model._describe(returns, "D")
    assert model.distribution == "negative_binomial"
    entries, _ = model._entries(returns, 0)
    targets = np.concatenate([e["target"] for e in entries])
    assert targets.min() == 0.0
    assert targets.sum() == returns["units"].clip(lower=0).sum()
    forecast = model._train(returns, "D", start=None).predict(returns, 14, Q)
    _check_quantiles(forecast)
    recorded = details(model)["returns_clipped"]  # details.json, for the model card
    assert recorded == {"rows": pytest.approx(0.02, abs=1e-3), "distribution": "negative_binomial"}


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        (lambda d: _with_returns(d, 0.10), "student_t"),  # net negative too often to be counts
        (lambda d: d.assign(units=d["units"] * 1.37), "student_t"),  # currency, not units
        (lambda d: d, "negative_binomial"),
    ],
    ids=["many_returns", "currency", "counts"],
)
def test_deepar_keeps_student_t_for_currency_and_for_frequent_negatives(
    units, expected: str, daily: pd.DataFrame
) -> None:
    model = tiny_deepar()
    history = units(daily)
    model._describe(history, "D")
    assert model.distribution == expected
    entries, _ = model._entries(history, 0)
    targets = np.concatenate([e["target"] for e in entries])
    assert (targets.min() < 0) == (history["units"].min() < 0 and expected == "student_t")


def _intermittent_kilograms(daily: pd.DataFrame, seed: int = 9) -> pd.DataFrame:
    """Sales by weight (0.37 kg a unit) on a third of the days, exported sparse: no row for a day
    without a sale, a few days netting below zero."""
    rng = np.random.default_rng(seed)
    sold = _with_returns(daily[rng.random(len(daily)) < 1 / 3], 0.02, seed)
    return sold.assign(units=sold["units"] * 0.37)


def test_deepar_learns_intermittent_demand_that_is_not_counts_with_a_quantile_network(
    daily: pd.DataFrame, tmp_path: Path
) -> None:
    """Kilograms sold on a third of the days: not counts, so no negative binomial, and a Student-t
    would centre on the typical, empty day. The implicit quantile network learns the demand (the
    weights clipped at zero), forecasts monotone non-negative quantiles and reloads to the same
    forecast."""
    from models.deepar import idle_share

    kilos = _intermittent_kilograms(daily)
    assert not np.allclose(kilos["units"], kilos["units"].round())
    assert idle_share(kilos) == pytest.approx(2 / 3, abs=0.03)  # missing days count as idle
    assert idle_share(daily) < 0.01
    model = tiny_deepar().fit(kilos, "D")
    assert model.distribution == "quantile_network"
    entries, _ = model._entries(kilos, 0)
    targets = np.concatenate([e["target"] for e in entries])
    assert targets.min() == 0.0
    assert targets.sum() == pytest.approx(kilos["units"].clip(lower=0).sum(), rel=1e-5)
    forecast = model.predict(kilos, 14, Q)
    _check_quantiles(forecast)
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(load_model(tmp_path / "m").predict(kilos, 14, Q), forecast)
    recorded = details(model)["returns_clipped"]
    assert recorded == {"rows": pytest.approx(0.02, abs=2e-3), "distribution": "quantile_network"}

    before = tiny_deepar()
    before.intermittent_share = None  # the rule before: Student-t for anything not counts
    before._describe(kilos, "D")
    assert before.distribution == "student_t"


def test_deepar_trains_on_a_history_too_short_to_hold_out_a_horizon() -> None:
    """52 weeks for a 39-week horizon (a Walmart backtest's first cutoff): no validation window fits."""
    daily = store_item_cut(stores=1, items=3, since="2016-01-01")
    weekly = (
        daily.set_index("date").groupby(["store_id", "sku"])["units"].resample("W-FRI").sum().reset_index()
    )
    short = weekly[weekly["date"] < weekly["date"].min() + pd.Timedelta(weeks=52)]
    model = tiny_deepar(horizon=39).fit(short, "W-FRI")
    assert model.trained_series == 3
    pred = model.predict(short, 39, Q)
    assert len(pred) == 3 * 39
    _check_quantiles(pred)


def test_deepar_training_leaves_no_checkpoints_behind(
    daily: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every fit wrote a Lightning checkpoint folder to the temp dir and left it there."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    earlier = tiny_deepar().fit(daily[daily["date"] <= daily["date"].max() - pd.Timedelta(days=30)], "D")
    warm = tiny_deepar().fit_after(earlier, daily, "D")
    assert warm.warm_started
    assert list(scratch.iterdir()) == []
    _check_quantiles(warm.predict(daily, 14, Q))  # the best checkpoint was loaded before the folder went


def test_deepars_final_fit_continues_the_backtest_network_and_round_trips(tmp_path: Path) -> None:
    import torch

    sales = store_item_cut(stores=1, items=3, since="2016-06-01")
    cutoff = sales["date"].max() - pd.Timedelta(days=60)
    earlier = tiny_deepar().fit(sales[sales["date"] <= cutoff], "D")
    # Mark the earlier network: shift one weight matrix by 3. A few small training steps cannot
    # undo that, so the mark shows whether the final fit started from it or from scratch.
    name, weight = next(iter(earlier.predictor.network.named_parameters()))
    with torch.no_grad():
        weight += 3.0
    marked = weight.detach().clone()
    warm = tiny_deepar().fit_after(earlier, sales, "D")
    assert warm.warm_started
    assert not earlier.warm_started
    after = dict(warm.predictor.network.named_parameters())[name].detach()
    assert not torch.equal(after, marked)  # it trained...
    assert abs(float((after - marked).mean())) < 0.5  # ...from the earlier network
    scratch = dict(tiny_deepar().fit(sales, "D").predictor.network.named_parameters())[name].detach()
    assert float((marked - scratch).mean()) > 2.5
    assert torch.equal(dict(earlier.predictor.network.named_parameters())[name].detach(), marked)
    pred = warm.predict(sales, 14, Q)
    _check_quantiles(pred)
    warm.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.warm_started
    pd.testing.assert_frame_equal(again.predict(sales, 14, Q), pred)
    # a SKU the earlier network has no embedding for: trained from scratch
    grown = pd.concat([sales, store_item_cut(stores=1, items=4, since="2016-06-01").query("sku == '4'")])
    assert not tiny_deepar().fit_after(earlier, grown, "D").warm_started


@pytest.mark.parametrize(
    "case",
    [
        (1366, "D", 112, 90, True, 112 + 364),  # Store Item at its earliest backtest cutoff
        (640, "D", 112, 90, True, 112 + 28),  # two years of days: year-lag windows would fit a month
        (120, "D", 64, 32, False, 64),  # a young tenant: a full context, the lags padded
        (60, "D", 64, 32, False, 0),  # too young for a full context: gluonts' padding
        (65, "W-FRI", 78, 39, True, 0),  # Walmart's final fit: 104 weeks less the validation
        (300, "W-FRI", 78, 39, True, 78 + 52),
    ],
)
def test_deepar_training_windows_start_where_their_lags_are_observed(
    case: tuple[int, str, int, int, bool, int],
) -> None:
    """(training length, frequency, context, horizon) -> is the year lagged, where windows may start.

    The year is lagged when the forecasts see it (a year of history), even where no training window
    can observe it; windows start past the deepest lag they can observe in most series.
    """
    from models.deepar import training_layout

    length, freq, context, horizon, year_lag, min_past = case

    lags, past = training_layout(np.full(10, length), np.full(10, length + horizon), freq, context, horizon)
    year = 364 if freq == "D" else 52
    assert (year in lags) is year_lag
    assert past == min_past
    assert past + horizon <= length or past == 0  # every series the rule counts hosts a window
    # the layout follows most series: one long series among young ones does not set it
    mixed = np.array([length, 10, 10])
    lags_mixed, past_mixed = training_layout(mixed, mixed + horizon, freq, context, horizon)
    assert year not in lags_mixed
    assert past_mixed == 0
    # asked not to lag a year no training window observes (the deepar_lags_weekly lab's variant)
    lean, _ = training_layout(
        np.full(10, length), np.full(10, length + horizon), freq, context, horizon, unobserved_year=False
    )
    assert (year in lean) is (year_lag and past == context + year)


def test_a_series_too_young_for_the_layout_still_trains_and_old_ones_start_past_their_lags() -> None:
    """Old series: windows past ``min_past``; a young SKU: windows from its first period; none shorter
    than the horizon it must predict."""
    from models.deepar import young_series_sampler

    sampler = young_series_sampler(min_past=112 + 364, horizon=90)
    np.random.seed(3)
    old = np.concatenate([sampler(np.zeros(1366)) for _ in range(400)])
    young = np.concatenate([sampler(np.zeros(200)) for _ in range(400)])  # a 200-day-old product
    too_short = np.concatenate([sampler(np.zeros(80)) for _ in range(400)])
    assert len(old) > 300
    assert old.min() >= 112 + 364
    assert old.max() <= 1366 - 90
    assert len(young) > 20
    assert young.min() >= 0
    assert young.max() <= 200 - 90
    assert young.min() < 112 + 364  # the layout's start would have left it no window at all
    assert len(too_short) == 0


def test_deepar_records_its_lags_and_a_final_fit_with_other_lags_trains_from_scratch(tmp_path: Path) -> None:
    sales = store_item_cut(stores=1, items=3, since="2015-01-01")  # three years of days
    earlier = tiny_deepar().fit(sales[sales["date"] <= "2015-10-31"], "D")  # ten months: no year lag
    assert 364 not in earlier.lags
    assert earlier.min_past == 28 + 28
    final = tiny_deepar().fit_after(earlier, sales, "D")
    assert 364 in final.lags
    assert final.min_past == 28 + 364
    assert not final.warm_started  # the networks' inputs differ
    pred = final.predict(sales, 14, Q)
    _check_quantiles(pred)
    final.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert (again.lags, again.min_past) == (final.lags, final.min_past)
    pd.testing.assert_frame_equal(again.predict(sales, 14, Q), pred)


def test_xgboosts_final_fit_keeps_the_backtest_trees_and_adds_rounds(tmp_path: Path) -> None:
    sales = store_item_cut(stores=2, items=3, since="2016-01-01")
    cutoff = sales["date"].max() - pd.Timedelta(days=60)

    def model(**kw: int) -> GlobalXGBoost:  # the configured trees, whatever the cut's size
        return GlobalXGBoost(horizon=14, n_estimators=20, max_origins=10, n_jobs=1, capacity="full", **kw)

    earlier = model().fit(sales[sales["date"] <= cutoff], "D")
    earlier_pred = earlier.predict(sales, 14, Q)
    warm = model(warm_rounds=6).fit_after(earlier, sales, "D")
    assert warm.warm_started
    assert not earlier.warm_started
    trees = warm.boosters["quantiles"].get_dump()
    assert warm.boosters["quantiles"].num_boosted_rounds() == 26
    assert trees[: len(earlier.boosters["quantiles"].get_dump())] == earlier.boosters["quantiles"].get_dump()
    assert earlier.boosters["quantiles"].num_boosted_rounds() == 20  # the earlier model is untouched
    pd.testing.assert_frame_equal(earlier.predict(sales, 14, Q), earlier_pred)
    pred = warm.predict(sales, 14, Q)
    _check_quantiles(pred)
    assert not np.allclose(pred["p50"], earlier_pred["p50"])  # the new rounds learnt something
    warm.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.warm_started
    pd.testing.assert_frame_equal(again.predict(sales, 14, Q), pred)
    # other quantiles cannot continue those trees: trained from scratch, the full rounds
    other = GlobalXGBoost(
        horizon=14, n_estimators=20, max_origins=10, n_jobs=1, capacity="full", quantiles=(0.2, 0.5, 0.8)
    )
    other.fit_after(earlier, sales, "D")
    assert not other.warm_started
    assert other.boosters["quantiles"].num_boosted_rounds() == 20


def _depth(model: GlobalXGBoost) -> int:
    """The deepest node of the quantile trees (the text dump indents a node by its depth)."""
    dump = model.boosters["quantiles"].get_dump()
    return max(line.count("\t") for tree in dump for line in tree.splitlines())


def test_xgboost_grows_smaller_trees_for_a_small_tenant_and_keeps_them(tmp_path: Path) -> None:
    """A few thousand training rows get depth 3 and 40 % of the rounds; an explicit capacity wins,
    a loaded model keeps what it was trained with, and a warm start continues the small trees."""
    sales = store_item_cut(stores=2, items=3, since="2016-01-01")
    small = GlobalXGBoost(horizon=14, n_estimators=20, max_origins=10, n_jobs=1).fit(sales, "D")
    assert small.params["capacity"] == "small"
    assert small.boosters["quantiles"].num_boosted_rounds() == 8
    assert details(small)["trees"] == {"capacity": "small", "max_depth": 3, "rounds": 8}  # details.json
    assert _depth(small) == 3  # leaves sit at most three levels below the root
    full = GlobalXGBoost(horizon=14, n_estimators=20, max_origins=10, n_jobs=1, capacity="full")
    full.fit(sales, "D")
    assert full.boosters["quantiles"].num_boosted_rounds() == 20
    assert _depth(full) > 3
    small.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.params["capacity"] == "small"
    pd.testing.assert_frame_equal(again.predict(sales, 14, Q), small.predict(sales, 14, Q))
    cutoff = sales["date"].max() - pd.Timedelta(days=60)
    earlier = GlobalXGBoost(horizon=14, n_estimators=20, max_origins=10, n_jobs=1).fit(
        sales[sales["date"] <= cutoff], "D"
    )
    warm = GlobalXGBoost(horizon=14, n_estimators=20, max_origins=10, n_jobs=1).fit_after(earlier, sales, "D")
    assert warm.warm_started
    assert warm.boosters["quantiles"].num_boosted_rounds() == 8 + 8 // 3
    with pytest.raises(ValueError, match="capacity must be"):
        GlobalXGBoost(capacity="medium")


def test_quantile_levels_map_to_two_sided_intervals() -> None:
    assert quantile_levels((0.1, 0.5, 0.9)) == [80]
    assert quantile_levels((0.05, 0.25, 0.5, 0.75)) == [50, 90]


def test_ensemble_is_never_worse_than_its_best_member_and_round_trips(
    daily: pd.DataFrame, tmp_path: Path
) -> None:
    makers = {
        "arima": lambda: AutoARIMAForecaster(n_jobs=1),
        "xgboost": lambda: GlobalXGBoost(horizon=14, n_estimators=20, max_origins=10),
        "seasonal_naive": SeasonalNaive,
    }
    runs = {n: backtest_model(m, daily, "D", 14, 3, Q) for n, m in makers.items()}
    backtests = {n: bt for n, (bt, _) in runs.items()}
    result = evaluate(daily, "D", 14, Q, backtests, 1.0)
    blended = result.backtest[result.backtest["model"] == "ensemble"]
    best = min(wape(b["actual"].to_numpy(), b["p50"].to_numpy()) for b in backtests.values())
    # the weights (before interval scaling, which leaves p50 alone) were fitted on these windows
    assert wape(blended["actual"].to_numpy(), blended["p50"].to_numpy()) <= best + 1e-9
    assert result.metrics["backtest_windows"] == 3
    for weights in result.weighting.clusters.values():
        assert abs(sum(weights.values()) - 1) < 1e-6
        assert min(weights.values()) >= 0
    assert 0.5 <= result.metrics["ensemble"]["coverage"] <= 1.0
    ens = Ensemble({n: m for n, (_, m) in runs.items()}, result.weighting, result.interval_scale)
    ens.freq = "D"
    ens.save(tmp_path / "ens")
    before = ens.predict(daily, 14, Q)
    pd.testing.assert_frame_equal(before, load_model(tmp_path / "ens").predict(daily, 14, Q))
    _check_quantiles(before)
    # packaged as the evaluate step does it: from the members' saved directories, copied unread
    for name, (_, model) in runs.items():
        model.save(tmp_path / "steps" / name)
    dirs = {n: tmp_path / "steps" / n for n in runs}
    packaged = Ensemble(dict(dirs), result.weighting, result.interval_scale)
    packaged.freq = "D"
    packaged.save(tmp_path / "packaged")
    assert all(isinstance(m, Path) for m in packaged.members.values())  # nothing was loaded to save
    for name in runs:
        saved = tmp_path / "packaged" / "members" / name / "manifest.json"
        assert saved.read_text() == (dirs[name] / "manifest.json").read_text()
    pd.testing.assert_frame_equal(before, load_model(tmp_path / "packaged").predict(daily, 14, Q))
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ModelError, match="not a model directory"):
        Ensemble({"arima": tmp_path / "not-a-model"}, result.weighting).save(tmp_path / "refused")


def test_series_with_short_history_get_equal_weights(daily: pd.DataFrame) -> None:
    weighting = Weighting(["a", "b"], {"pooled": {"a": 1.0, "b": 0.0}}, [], 28, short_history=60)
    newcomer = daily[(daily["store_id"] == "1") & (daily["sku"] == "1")].tail(20).assign(sku="new")
    table = weighting.series_weights(pd.concat([daily, newcomer]))
    assert table.loc[("1", "new"), "cluster"] == "short"
    assert table.loc[("1", "new"), ["a", "b"]].tolist() == [0.5, 0.5]
    assert table.loc[("1", "1"), ["a", "b"]].tolist() == [1.0, 0.0]


def test_blend_rows_uses_each_rows_own_weights() -> None:
    base = pd.DataFrame(
        {"store_id": ["s", "s"], "sku": ["a", "b"], "target_date": pd.to_datetime(["2024-01-01"] * 2)}
    )
    one = base.assign(mean=[10.0, 10.0], p10=[8.0, 8.0], p50=[10.0, 10.0], p90=[12.0, 12.0])
    two = base.assign(mean=[20.0, 20.0], p10=[18.0, 18.0], p50=[20.0, 20.0], p90=[22.0, 22.0])
    out = blend_rows({"one": one, "two": two}, np.array([[1.0, 0.0], [0.25, 0.75]]), ["one", "two"], Q, base)
    assert out["p50"].tolist() == [10.0, 17.5]
    assert out["p90"].tolist() == [12.0, 19.5]


def test_shap_drivers_name_real_features(daily: pd.DataFrame) -> None:
    model = GlobalXGBoost(horizon=7, n_estimators=15, max_origins=8).fit(daily, "D")
    explained = explain_xgboost(model, daily)
    assert explained["global"]
    assert all(e["feature"] in model.columns for e in explained["global"])
    importances = [e["importance"] for e in explained["global"]]
    assert importances == sorted(importances, reverse=True)
    assert importances[0] > 0
    assert set(explained["per_sku"]) == {
        f"{s}|{k}" for s, k in daily[["store_id", "sku"]].drop_duplicates().values
    }
    assert describe("tlag_364") == "sales 364 periods before the target period"
    assert describe("t_is_holiday") == "holiday (target period)"


def test_xgboost_trains_on_a_history_shorter_than_its_origin_stride() -> None:
    """The earliest backtest window of a long horizon (330 days of a 366-day tenant) holds 18 days:
    40 origins spread over a year and the horizon stand 17 days apart, none had both a past and a
    future, and xgboost failed on an empty training set (a horizon the CLI had advised)."""
    sales = store_item_cut(stores=1, items=3, since="2017-01-01")
    short = sales[sales["date"] < "2017-01-19"]  # 18 days
    model = GlobalXGBoost(horizon=330, quantiles=Q, n_estimators=10).fit(short, "D")
    pred = model.predict(short, 330, Q)
    assert len(pred) == 3 * 330
    assert pred[[qcol(q) for q in Q]].notna().all().all()
