"""The ARIMA member's pooled year: the tenant's week and year estimated once from all its series.

Generated tenants with a known shape check the estimate and the shrinkage; a real cut of Store Item
Demand (a development window, never the evaluation one) checks that it pays and round-trips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut
from tinymodels import tiny_deepar

from models import pooled_year
from models.base import load_model
from models.deepar import DeepARForecaster
from models.metrics import wape
from models.pooled_year import MIN_SERIES, Pool, PooledYearMSTL, ahead, cover, pooled_factor
from models.statistical import POOLED, AutoARIMAForecaster
from models.xgboost import GlobalXGBoost

Q = (0.1, 0.5, 0.9)
STL = {"trend_jump": 10, "low_pass_jump": 10}
DAYS = 3 * 364
DATES = pd.date_range("2021-01-04", periods=DAYS, freq="D")


def shape(dates: pd.DatetimeIndex, peak_day: int = 340, december: float = 1.0) -> np.ndarray:
    """A retail week (weekends up) times a calendar year peaking on ``peak_day``, December times
    ``december`` (a season that starts on a date, not on a weekday)."""
    week = 1 + 0.25 * np.isin(dates.dayofweek, (5, 6))
    year = 1 + 0.4 * np.cos(2 * np.pi * (dates.dayofyear - peak_day) / 365.25)
    return np.asarray(week * year * np.where(dates.month == 12, december, 1.0))


def tenant(
    series: int, seed: int = 5, own_year: dict[int, int] | None = None, december: float = 1.0
) -> list[np.ndarray]:
    """Poisson products of different sizes on the shared shape; ``own_year`` gives some their own peak."""
    rng = np.random.default_rng(seed)
    out = []
    for j in range(series):
        peak = (own_year or {}).get(j, 340)
        out.append(rng.poisson(rng.uniform(8, 40) * shape(DATES, peak, december)).astype(float))
    return out


def frame(series: list[np.ndarray]) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame({"store_id": "1", "sku": f"P{j:02d}", "date": DATES, "units": y})
            for j, y in enumerate(series)
        ],
        ignore_index=True,
    )


def test_the_pooled_factor_recovers_the_tenants_week_and_year_and_needs_enough_series() -> None:
    series = tenant(24)
    pool = pooled_factor(series, DATES[-1], STL)
    assert pool is not None
    assert len(pool.past) == DAYS
    truth = shape(DATES)
    truth = truth / pd.Series(truth).rolling(364, center=True, min_periods=1).mean().to_numpy()
    middle = slice(182, DAYS - 182)  # STL's ends are extrapolated
    assert np.corrcoef(pool.past[middle], truth[middle])[0, 1] > 0.97
    assert np.median(np.abs(pool.past[middle] / truth[middle] - 1)) < 0.03
    assert pooled_factor(series[: MIN_SERIES - 1], DATES[-1], STL) is None
    young = [y[-500:] for y in series]  # under two years: nothing to pool
    assert pooled_factor(young, DATES[-1], STL) is None


def test_a_season_that_starts_on_a_date_is_forecast_from_that_date() -> None:
    """December sells 60 % more. The year is kept by calendar date, so next December's step falls on
    1 December, not on the day 364 days after last year's (which was 2 December, a year later 30
    November: the step would drift a day each year)."""
    pool = pooled_factor(tenant(16, december=1.6), DATES[-1], STL)
    assert pool is not None
    future = pd.date_range(DATES[-1] + pd.Timedelta(days=1), periods=400, freq="D")
    factor = pd.Series(ahead(pool, 400), index=future)
    weekly = factor.rolling(7, center=True).mean()  # the week's own ups and downs averaged out
    december = future[(future.month == 12) & (future.day <= 31)]
    first = december[0]
    assert weekly[first + pd.Timedelta(days=3)] > 1.4 * weekly[first - pd.Timedelta(days=4)]
    assert factor[first] > 1.3 * factor[first - pd.Timedelta(days=7)]  # same weekday, a week before
    assert factor[first - pd.Timedelta(days=1)] < 1.15 * factor[first - pd.Timedelta(days=8)]


def test_cover_and_ahead_repeat_the_factors_year_beyond_its_span() -> None:
    past = np.arange(10.0)
    np.testing.assert_array_equal(cover(past, 4, 3), [7, 8, 9])
    np.testing.assert_array_equal(cover(past, 4, 12)[:2], [2, 3])  # before the span: same phase
    pool = Pool(past=past, future=np.arange(400.0))
    np.testing.assert_array_equal(ahead(pool, 402)[398:], [398, 399, 36, 37])


def test_a_series_keeps_its_own_year_and_drops_the_noise_of_the_shared_one() -> None:
    """Shrinkage: a product on the shop's year keeps next to nothing of its own estimate (noise); one
    peaking in summer while the shop peaks at Christmas keeps nearly all of its own."""
    from statsforecast.models import ARIMA

    series = tenant(16, own_year={0: 160})
    pool = pooled_factor(series, DATES[-1], STL)
    assert pool is not None

    def kept(y: np.ndarray) -> list[float]:
        model = PooledYearMSTL([7, 364], ARIMA(order=(0, 1, 1)), STL, pool).fit(y[-742:])
        return model.kept

    summer = kept(series[0])
    shared = [kept(y) for y in series[1:6]]
    assert summer[1] > 0.8
    assert all(k[1] < 0.3 for k in shared), shared
    assert all(k[0] < 0.3 for k in shared), shared  # the week is the shop's too


@pytest.fixture(scope="module")
def store_item() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two stores x five items (10 series), two years and a quarter to a spring cutoff; 60 days after."""
    sales = store_item_cut(stores=2, items=5, since="2015-01-01")
    cutoff = pd.Timestamp("2017-03-31")
    history = sales[sales["date"] <= cutoff]
    truth = sales[(sales["date"] > cutoff) & (sales["date"] <= cutoff + pd.Timedelta(days=60))]
    return history, truth


def _scored(pred: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, float]:
    joined = truth.merge(
        pred, left_on=["store_id", "sku", "date"], right_on=["store_id", "sku", "target_date"]
    )
    assert len(joined) == len(truth)
    assert (joined["p10"] <= joined["p50"]).all()
    assert (joined["p50"] <= joined["p90"]).all()
    assert (joined["p10"] >= 0).all()
    covered = joined["units"].between(joined["p10"], joined["p90"]).mean()
    return wape(joined["units"].to_numpy(), joined["p50"].to_numpy()), float(covered)


def test_the_pooled_year_beats_each_series_own_year_on_store_item(
    store_item: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    history, truth = store_item
    pooled = AutoARIMAForecaster(n_jobs=1).fit(history, "D")
    own = AutoARIMAForecaster(n_jobs=1, pooled_year=False).fit(history, "D")
    assert {spec[5] for spec in pooled.specs.values()} == {POOLED}
    assert all(len(spec) == 5 for spec in own.specs.values())
    pooled_wape, pooled_cover = _scored(pooled.predict(history, 60, Q), truth)
    own_wape, _ = _scored(own.predict(history, 60, Q), truth)
    assert pooled_wape < 0.95 * own_wape
    assert 0.7 <= pooled_cover <= 0.95


def test_a_pooled_arima_round_trips_and_an_older_saved_model_keeps_its_own_year(
    store_item: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    history, _ = store_item
    model = AutoARIMAForecaster(n_jobs=1).fit(history, "D")
    before = model.predict(history, 30, Q)
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(load_model(tmp_path / "m").predict(history, 30, Q), before)
    # A version saved before the pooled year has no flag and no pooled specs: it forecasts as approved.
    own = AutoARIMAForecaster(n_jobs=1, pooled_year=False).fit(history, "D")
    own.save(tmp_path / "old")
    state_file = tmp_path / "old" / "arima.json"
    state = json.loads(state_file.read_text())
    del state["pooled_year"]
    state_file.write_text(json.dumps(state))
    pd.testing.assert_frame_equal(
        load_model(tmp_path / "old").predict(history, 30, Q), own.predict(history, 30, Q)
    )


def test_a_pooled_arima_rolls_to_a_later_origin_on_that_origins_pooled_year(
    store_item: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    history, truth = store_item
    early = history[history["date"] <= "2017-01-31"]
    model = AutoARIMAForecaster(n_jobs=1).fit(early, "D")
    rolled = model.roll(history, "D").predict(history, 60, Q)
    assert set(model._rolled) == set(model.specs)
    fresh = AutoARIMAForecaster(n_jobs=1)
    fresh.specs, fresh.fallbacks = dict(model.specs), dict(model.fallbacks)
    refitted = fresh.fit(history, "D").predict(history, 60, Q)
    assert abs(rolled["p50"].mean() / refitted["p50"].mean() - 1) < 0.05
    rolled_wape, _ = _scored(rolled, truth)
    refitted_wape, _ = _scored(refitted, truth)
    assert rolled_wape < 1.1 * refitted_wape


def test_weekly_tenants_and_small_tenants_keep_each_series_own_year() -> None:
    weekly = frame(tenant(10)).assign(
        date=lambda f: f["date"].dt.to_period("W-SUN").dt.end_time.dt.normalize()
    )
    weekly = weekly.groupby(["store_id", "sku", "date"], as_index=False)["units"].sum()
    model = AutoARIMAForecaster(n_jobs=1).fit(weekly, "W-SUN")
    assert model._pool is None
    assert all(len(spec) == 5 for spec in model.specs.values())
    few = AutoARIMAForecaster(n_jobs=1).fit(frame(tenant(MIN_SERIES - 1)), "D")
    assert few._pool is None
    assert all(len(spec) == 5 for spec in few.specs.values())


def test_a_shop_closed_on_christmas_day_is_forecast_closed_on_christmas_day() -> None:
    """Christmas falls on another weekday each year. Each series' own 364-day year put the closure on
    23-24 December (about 11 units against 20); the tenant's calendar year puts it on the 25th."""
    dates = pd.date_range("2021-01-01", "2023-12-01", freq="D")
    rng = np.random.default_rng(1)
    frames = []
    for j in range(10):
        y = rng.poisson(20, len(dates)).astype(float)
        y[(dates.month == 12) & (dates.day == 25)] = 0
        frames.append(pd.DataFrame({"store_id": "1", "sku": f"S{j}", "date": dates, "units": y}))
    history = pd.concat(frames, ignore_index=True)
    pred = AutoARIMAForecaster(n_jobs=1).fit(history, "D").predict(history, 30, Q)
    daily = pred.groupby("target_date")["p50"].mean()
    assert daily[pd.Timestamp("2023-12-25")] < 0.2 * daily[pd.Timestamp("2023-12-26")]
    assert daily[pd.Timestamp("2023-12-24")] > 0.8 * daily[pd.Timestamp("2023-12-26")]


def test_the_training_details_count_the_pooled_series(store_item: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from pipelines.steps.train import details

    history, _ = store_item
    pooled = details(AutoARIMAForecaster(n_jobs=1).fit(history, "D"))
    assert pooled["pooled_season"] == {"series": 10, "of": 10}
    own = details(AutoARIMAForecaster(n_jobs=1, pooled_year=False).fit(history, "D"))
    assert own["pooled_season"] == {"series": 0, "of": 10}


def test_a_product_launched_this_summer_gets_the_shops_year() -> None:
    """Too young for a year of its own (five months), it used to get a weekly SARIMA on its few months;
    over the tenant's season it is forecast into the shop's December peak like the old products."""
    series = tenant(12, seed=9)
    sales = frame(series)
    cutoff, launch = pd.Timestamp("2023-10-31"), pd.Timestamp("2023-06-01")
    young = (sales["sku"] == "P00") & (sales["date"] < launch)
    history = sales[~young & (sales["date"] <= cutoff)]
    truth = sales[(sales["sku"] == "P00") & (sales["date"] > cutoff) & (sales["date"] <= "2023-12-15")]

    def young_wape(pooled: bool) -> float:
        model = AutoARIMAForecaster(n_jobs=1, pooled_year=pooled).fit(history, "D")
        assert "1|P00" not in model.fallbacks
        pred = model.predict(history, len(truth), Q)
        pred = pred[pred["sku"] == "P00"]
        np.testing.assert_array_equal(pred["target_date"].to_numpy(), truth["date"].to_numpy())
        assert (pred["p10"] <= pred["p50"]).all()
        assert (pred["p50"] <= pred["p90"]).all()
        return wape(truth["units"].to_numpy(), pred["p50"].to_numpy())

    pooled, own = young_wape(True), young_wape(False)
    assert pooled < 0.8 * own, (pooled, own)


def test_intervals_follow_how_the_tenants_noise_grows_with_its_season() -> None:
    """Counts spread with the square root of their level, noise in proportion with the level itself:
    measured from the series, the pool scales an interval's width by the factor to that power."""
    counts = pooled_factor(tenant(16), DATES[-1], STL)
    assert counts is not None
    assert 0.35 < counts.spread < 0.65, counts.spread
    rng = np.random.default_rng(4)
    proportional = [rng.uniform(50, 400) * shape(DATES) * rng.lognormal(0, 0.2, DAYS) for _ in range(16)]
    money = pooled_factor(proportional, DATES[-1], STL)
    assert money is not None
    assert money.spread > 0.8, money.spread
    flat = pooled_factor([rng.poisson(30, DAYS).astype(float) for _ in range(16)], DATES[-1], STL)
    assert flat is not None
    assert flat.spread == 1.0  # no season to scale by: the factor itself, as before


def test_a_large_tenants_season_comes_from_a_spread_sample_of_its_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past ``MAX_SERIES`` the shape is pooled from an even spread of the series: the same shape."""
    series = tenant(40)
    whole = pooled_factor(series, DATES[-1], STL)
    monkeypatch.setattr(pooled_year, "MAX_SERIES", 20)
    sampled = pooled_factor(series, DATES[-1], STL)
    assert whole is not None
    assert sampled is not None
    assert not np.array_equal(whole.past, sampled.past)
    assert np.median(np.abs(sampled.past / whole.past - 1)) < 0.03


def test_deepar_sees_the_tenants_season_ahead_as_a_covariate() -> None:
    """A shop whose December doubles: DeepAR's covariate is the log of the pooled factor, over the
    history and on into the horizon, where the December step lands on its calendar dates."""
    history = frame(tenant(12, december=2.0))
    history = history[history["date"] <= "2023-11-20"]
    model = DeepARForecaster(horizon=28)
    described = model._describe(history, "D")
    assert model.covariates[-1] == "season"
    # training reuses the season _describe computed: the same entries as computing it again
    reused, _ = model._entries(history, 0, described)
    again, _ = model._entries(history, 0)
    assert described is not None
    assert len(reused) == len(again) > 0
    for a, b in zip(reused, again, strict=True):
        np.testing.assert_array_equal(a["feat_dynamic_real"], b["feat_dynamic_real"])
    entries, wide = model._entries(history, 28)
    row = entries[0]["feat_dynamic_real"][-1]
    assert len(row) == len(wide) + 28
    future = pd.date_range("2023-11-21", periods=28, freq="D")
    ahead_ = np.exp(row[-28:])
    assert ahead_[future.month == 12].mean() > 1.6 * ahead_[future.month == 11].mean()
    assert np.allclose([e["feat_dynamic_real"][-1][-28:] for e in entries], row[-28:])

    few = frame(tenant(MIN_SERIES - 1))
    weekly = history.assign(date=history["date"].dt.to_period("W-SUN").dt.end_time.dt.normalize())
    weekly = weekly.groupby(["store_id", "sku", "date"], as_index=False)["units"].sum()
    for thin, freq in ((few, "D"), (weekly, "W-SUN")):
        other = DeepARForecaster(horizon=8)
        assert other._describe(thin, freq) is None
        assert "season" not in other.covariates


def test_a_deepar_on_the_season_round_trips_and_an_older_one_forecasts_without_it(tmp_path: Path) -> None:
    history = frame(tenant(10))
    model = tiny_deepar(horizon=28).fit(history, "D")
    assert "season" in model.covariates
    before = model.predict(history, 28, Q)
    model.save(tmp_path / "new")
    pd.testing.assert_frame_equal(before, load_model(tmp_path / "new").predict(history, 28, Q))

    class Older(DeepARForecaster):  # a version saved before the covariate
        pooled_season = False

    older = Older(**tiny_deepar(horizon=28).params, horizon=28).fit(history, "D")
    assert "season" not in older.covariates
    older.save(tmp_path / "old")
    pd.testing.assert_frame_equal(
        older.predict(history, 28, Q), load_model(tmp_path / "old").predict(history, 28, Q)
    )


def test_xgboost_can_read_the_season_ahead_as_its_ratio_to_the_recent_level() -> None:
    """Asked for it, XGBoost's ``t_season`` is the factor on the target date over its mean across
    the level's window: a December that doubles reads about 2 from a late-November origin."""
    history = frame(tenant(12, december=2.0))
    history = history[history["date"] <= "2023-11-20"]
    model = GlobalXGBoost(horizon=28, pooled_season=True, n_estimators=100).fit(history, "D")
    assert "t_season" in model.columns
    season = model._pooled_season(history, "D")
    assert season is not None
    origin = np.full(28, np.datetime64("2023-11-21"))
    target = pd.date_range("2023-11-21", periods=28, freq="D").to_numpy()
    ratio = season.ratio(origin, target)
    december = pd.DatetimeIndex(target).month == 12
    assert 1.6 < ratio[december].mean() / ratio[~december].mean() < 2.4
    rows, _meta = model.forecast_rows(history, 28)  # what predict and the SHAP drivers read
    assert rows["t_season"].notna().all()
    pred = model.predict(history, 28, Q)
    assert pred.loc[pred["target_date"].dt.month == 12, "p50"].mean() > 1.3 * (
        pred.loc[pred["target_date"].dt.month == 11, "p50"].mean()
    )
    assert "t_season" not in GlobalXGBoost(horizon=28, n_estimators=10).fit(history, "D").columns


def _christmas_tenant(steady: int = 8, christmas: int = 6) -> pd.DataFrame:
    """Steady products on the shop's week and a mild year, and products that sell only from the 1st
    to the 24th of December (a stray unit a month otherwise), to the end of November."""
    rng = np.random.default_rng(21)
    dates = pd.date_range("2021-11-01", "2024-11-30", freq="D")
    december = (dates.month == 12) & (dates.day <= 24)
    level = (
        10
        * (1 + 0.25 * np.isin(dates.dayofweek, (5, 6)))
        * (1 + 0.2 * np.sin(2 * np.pi * dates.dayofyear / 365))
    )
    units = [rng.poisson(level) for _ in range(steady)]
    units += [rng.poisson(np.where(december, 20.0 + 4 * i, 0.02)) for i in range(christmas)]
    names = [f"ITEM{i}" for i in range(steady)] + [f"XMAS{i}" for i in range(christmas)]
    return pd.concat(
        [
            pd.DataFrame({"store_id": "1", "sku": n, "date": dates, "units": u})
            for n, u in zip(names, units, strict=True)
        ],
        ignore_index=True,
    ).astype({"units": float})


def test_a_series_that_does_not_share_the_shops_year_is_not_fitted_on_it() -> None:
    """Products on the shop's year follow its factor, slow movers included (their noisy months are
    within their noise); a summer product beside a Christmas shop does not, nor a steady product
    beside Christmas products, whose December lifts the shop's factor severalfold."""
    series = tenant(16, own_year={0: 160})
    pool = pooled_factor(series, DATES[-1], STL)
    assert pool is not None
    assert not pooled_year.follows(series[0], pool)
    assert all(pooled_year.follows(y, pool) for y in series[1:])
    rng = np.random.default_rng(3)
    slow = [rng.poisson(0.3 * shape(DATES)).astype(float) for _ in range(20)]
    assert all(pooled_year.follows(y, pool) for y in slow)
    assert pooled_year.follows(series[1][-300:], pool)  # under a year: no year of its own to judge

    wide = _christmas_tenant().pivot(index="date", columns="sku", values="units")
    shop = pooled_factor([wide[c].to_numpy() for c in wide], wide.index[-1], STL)
    assert shop is not None
    assert shop.future[:24].mean() > 3  # the shop's December, lifted by six products of fourteen
    assert not any(pooled_year.follows(wide[c].to_numpy(), shop) for c in wide if c.startswith("ITEM"))


def test_steady_products_beside_christmas_products_are_forecast_at_their_own_december() -> None:
    """Fitted on the shop's factor, the steady products' ARIMA forecast their December at three times
    their sales (the Christmas products' peak, which their own shrunk year could not undo)."""
    sales = _christmas_tenant()
    model = AutoARIMAForecaster(n_jobs=1).fit(sales, "D")
    steady = [k for k in model.specs if "ITEM" in k]
    assert steady
    assert not any(model.specs[k][-1] == POOLED for k in steady)
    pred = model.predict(sales, 24, Q)
    december = pred[pred["sku"].str.startswith("ITEM")].groupby("sku")["p50"].sum()
    dates = pd.date_range("2024-12-01", periods=24, freq="D")
    expected = float(
        np.sum(
            10
            * (1 + 0.25 * np.isin(dates.dayofweek, (5, 6)))
            * (1 + 0.2 * np.sin(2 * np.pi * dates.dayofyear / 365))
        )
    )
    assert ((december - expected).abs() < 0.2 * expected).all(), (december.to_dict(), expected)
