"""The last word every model has on a forecast (``models.base.clean_quantiles``), decided per series.

Found by a hunt with odd tenants: one return anywhere lifted the zero floor off every product of the
tenant (a product declining to zero was forecast at -4 a day), and AutoETS' multiplicative-error
forms put intervals of +-4e12 on Walmart departments selling ten thousand a week.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut

from models.base import clean_quantiles, load_model
from models.metrics import qcol
from models.naive import SeasonalNaive
from models.statistical import AutoARIMAForecaster, AutoETSForecaster
from models.xgboost import GlobalXGBoost

Q = (0.1, 0.5, 0.9)


def _tenant() -> pd.DataFrame:
    """Real Store Item series, one product declining to nothing, and one series of returns only."""
    sales = store_item_cut(stores=1, items=3, since="2017-01-01")
    dates = pd.date_range("2017-01-01", sales["date"].max(), freq="D")
    rng = np.random.default_rng(11)
    fading = np.clip(np.linspace(30, -2, len(dates)) + rng.normal(0, 2, len(dates)), 0, None).round()
    returns = -rng.poisson(4, len(dates)).astype(float)
    extra = pd.DataFrame(
        {
            "store_id": "1",
            "sku": np.repeat(["FADING", "RETURNS"], len(dates)),
            "date": np.tile(dates, 2),
            "units": np.concatenate([fading, returns]),
        }
    )
    return pd.concat([sales, extra], ignore_index=True)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: AutoETSForecaster(n_jobs=1),
        lambda: AutoARIMAForecaster(n_jobs=1),
        SeasonalNaive,
        lambda: GlobalXGBoost(horizon=28, quantiles=Q, n_estimators=20),
    ],
    ids=["autoets", "arima", "naive", "xgboost"],
)
def test_a_return_elsewhere_leaves_every_other_series_floored_at_zero(factory) -> None:
    sales = _tenant()
    pred = factory().fit(sales, "D").predict(sales, 28, Q)
    values = pred[[*(qcol(q) for q in Q), "mean"]]
    sold = pred["sku"] != "RETURNS"
    assert (values[sold.to_numpy()] >= 0).all().all(), (
        "a series that never went below zero was forecast below it"
    )
    returns = values[~sold.to_numpy()]
    assert (returns.to_numpy() <= 0).mean() > 0.9  # a series of returns keeps its sign, it is not floored
    assert (returns.to_numpy() < 0).any()


def test_every_value_stays_within_three_records_and_tiny_values_are_zero() -> None:
    history = pd.DataFrame(
        {
            "store_id": ["A"] * 3 + ["B"] * 3,
            "sku": ["x"] * 3 + ["y"] * 3,
            "date": list(pd.date_range("2024-01-01", periods=3)) * 2,
            "units": [100.0, 0.0, 250.0, -20.0, 5.0, 10.0],
        }
    )
    frame = pd.DataFrame(
        {
            "store_id": ["A", "A", "B", "B"],
            "sku": ["x", "x", "y", "y"],
            "mean": [1e12, 6.2e-256, -1e9, 12.0],
            "p10": [-4.5e12, 0.0, -1e9, 40.0],  # crossed with p50 on the last row
            "p50": [900.0, 3e-12, -300.0, 11.0],
            "p90": [4.5e12, 2.0, 1e9, 15.0],
        }
    )
    out = clean_quantiles(frame, Q, history)
    assert out[["p10", "p50", "p90"]].to_numpy().tolist() == [
        [0.0, 750.0, 750.0],  # A never sold below zero: floored; 3 x its record of 250 caps it
        [0.0, 0.0, 2.0],
        [-60.0, -60.0, 60.0],  # B had a return of 20: 3 x 20 either way
        [11.0, 15.0, 40.0],
    ]
    # Each mean also stays where its own quantiles allow (_mean_range): A's p50 and p90 of 750 under a
    # ceiling of 750 leave room for 375-675; a p90 of 2 above a floor of 0 means at least 0.2.
    assert out["mean"].tolist() == pytest.approx([675.0, 0.2, -48.0, 12.0])


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.poisson(3.0, 200_000),
        lambda rng: rng.negative_binomial(0.4, 0.05, 200_000),  # overdispersed: mean above its p50
        lambda rng: np.where(rng.random(200_000) < 0.85, 0, rng.poisson(40, 200_000)),  # mean above p90
        lambda rng: -rng.poisson(6.0, 200_000),  # returns only
    ],
    ids=["poisson", "negbin", "mostly-zero", "returns"],
)
def test_a_true_distributions_mean_is_left_alone(draw) -> None:
    """A mean that some distribution with the forecast's quantiles has is never moved, however skewed
    (a product that sells nothing on 85 % of days has its mean above its p90)."""
    sample = draw(np.random.default_rng(3)).astype(float)
    history = pd.DataFrame(
        {
            "store_id": "A",
            "sku": "x",
            "date": pd.Timestamp("2024-01-01"),
            "units": [sample.min(), sample.max()],
        }
    )
    frame = pd.DataFrame(
        {"store_id": ["A"], "sku": ["x"], "mean": [sample.mean()]}
        | {qcol(q): [np.quantile(sample, q, method="inverted_cdf")] for q in Q}
    )
    out = clean_quantiles(frame.copy(), Q, history)
    assert out["mean"].iloc[0] == pytest.approx(sample.mean(), rel=1e-12)


def test_a_blended_mean_left_behind_by_its_quantiles_is_brought_back() -> None:
    """The hunt's blended forecast: members' medians of 3 a day, a mean of 0 from a member that
    expected nothing. Half the days sell at least 3, so the mean is at least 0.4 x p10 + 0.4 x p50 +
    0.1 x p90."""
    history = pd.DataFrame(
        {
            "store_id": "A",
            "sku": "x",
            "date": pd.date_range("2024-01-01", periods=4),
            "units": [0.0, 2.0, 5.0, 9.0],
        }
    )
    frame = pd.DataFrame(
        {"store_id": ["A"], "sku": ["x"], "mean": [0.0], "p10": [0.0], "p50": [3.2], "p90": [7.0]}
    )
    out = clean_quantiles(frame, Q, history)
    assert out["mean"].iloc[0] == pytest.approx(0.4 * 3.2 + 0.1 * 7.0)
    assert out[["p10", "p50", "p90"]].to_numpy().tolist() == [[0.0, 3.2, 7.0]]


def test_a_series_without_history_is_forecast_zero() -> None:
    history = pd.DataFrame(
        {"store_id": ["A"], "sku": ["x"], "date": [pd.Timestamp("2024-01-01")], "units": [3.0]}
    )
    frame = pd.DataFrame(
        {"store_id": ["Z"], "sku": ["new"], "mean": [5.0], "p10": [1.0], "p50": [5.0], "p90": [9.0]}
    )
    out = clean_quantiles(frame, Q, history)
    assert out[["mean", "p10", "p50", "p90"]].to_numpy().tolist() == [[0.0, 0.0, 0.0, 0.0]]


def test_xgboosts_mean_for_a_steady_product_is_not_dragged_to_zero_by_series_of_returns() -> None:
    """Series of returns used to be scaled by 1.0: their raw units swamped the squared-error booster,
    and a steady product beside them got a mean of 0 against a median of 21 (the hunt's tenant, cut
    at 2024-08-01). Scaled by their size, the mean is back to about half the median: better, not
    right (a mixed series of sales and big returns still pulls it; see the issue note)."""
    rng = np.random.default_rng(7)
    dates = pd.date_range("2023-06-01", "2024-08-01", freq="D")
    week = 1 + 0.3 * np.sin(2 * np.pi * dates.dayofweek / 7)
    mixed = rng.poisson(20 * week).astype(float)
    back = rng.random(len(dates)) < 0.3
    mixed[back] = -rng.poisson(60, back.sum())
    series = {
        "RETURNS": mixed,
        "MOSTNEG": -rng.poisson(15 * week) + rng.poisson(2, len(dates)),
        "ALLNEG": -rng.poisson(5 * week) - 1,
        "NORMAL": rng.poisson(25 * week),
    }
    sales = pd.concat(
        [
            pd.DataFrame({"store_id": "S1", "sku": k, "date": dates, "units": v.astype(float)})
            for k, v in series.items()
        ],
        ignore_index=True,
    )
    pred = GlobalXGBoost(horizon=28, quantiles=Q).fit(sales, "D").predict(sales, 28, Q).set_index("sku")
    normal = pred.loc["NORMAL"]
    assert normal["mean"].mean() > 0.4 * normal["p50"].mean()
    assert normal["p50"].mean() == pytest.approx(series["NORMAL"][-90:].mean(), rel=0.15)
    allneg = pred.loc["ALLNEG"]
    assert allneg["mean"].mean() == pytest.approx(series["ALLNEG"][-90:].mean(), rel=0.3)


def _weekday_year(dates: pd.DatetimeIndex) -> np.ndarray:
    """A steady product's expected daily sales: 10 a day, a weekly and a yearly swing."""
    week = 1 + 0.25 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
    return 10 * week * (1 + 0.2 * np.sin(2 * np.pi * dates.dayofyear.to_numpy() / 365))


@pytest.fixture(scope="module")
def christmas() -> tuple[pd.DataFrame, pd.DataFrame]:
    """24 steady products and 6 that sell only from the 1st to the 24th of December (20 + 4i a day,
    almost nothing otherwise), three years to the end of November, and XGBoost's December forecast."""
    rng = np.random.default_rng(21)
    dates = pd.date_range("2021-11-01", "2024-11-30", freq="D")
    december = (dates.month == 12) & (dates.day <= 24)
    steady = [rng.poisson(_weekday_year(dates)) for _ in range(24)]
    seasonal = [rng.poisson(np.where(december, 20.0 + 4 * i, 0.02)) for i in range(6)]
    sales = pd.concat(
        [
            pd.DataFrame(
                {"store_id": "S1", "sku": f"{kind}{i:02d}", "date": dates, "units": units.astype(float)}
            )
            for kind, group in (("ITEM", steady), ("XMAS", seasonal))
            for i, units in enumerate(group)
        ],
        ignore_index=True,
    )
    return sales, GlobalXGBoost(horizon=28, quantiles=Q).fit(sales, "D").predict(sales, 28, Q)


def test_xgboosts_mean_for_steady_products_is_not_pulled_by_seasonal_spikes(
    christmas: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Six Christmas products, scaled by their off-season level, have December targets many times
    their scale; squared error let them steer the shared trees, and the steady products' mean came
    out above their median and their true mean: here 297 against 265 units in four weeks, and 338
    against 263 in the CLI build of the same kind of tenant (264 without the Christmas products).
    Each series now weighs at most as much as a typical one in that booster."""
    _, pred = christmas
    items = pred[pred["sku"].str.startswith("ITEM")].groupby("sku")[["mean", "p50"]].sum()
    true_mean = float(_weekday_year(pd.date_range("2024-12-01", periods=28, freq="D")).sum())
    assert items["mean"].mean() == pytest.approx(true_mean, rel=0.06)
    assert items["mean"].mean() == pytest.approx(items["p50"].mean(), rel=0.06)


def test_xgboost_forecasts_a_christmas_product_from_its_december_not_from_its_dust(
    christmas: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Out of season a Christmas product sells a stray unit a month, and a scale of 0.04 a day made
    each December sale a target of hundreds: every December day was forecast at the bound, three
    times the record (150 a day, 4,200 in four weeks, for a product that sold 683). A scale is at
    least one unit a period."""
    sales, pred = christmas
    xmas = pred[pred["sku"].str.startswith("XMAS")]
    expected = {f"XMAS{i:02d}": (20.0 + 4 * i) * 24 for i in range(6)}  # 1-24 December
    got = xmas.groupby("sku")["p50"].sum()
    for sku, want in expected.items():
        assert 0.5 * want <= got[sku] <= 1.5 * want, (sku, got[sku], want)
    record = sales.groupby("sku")["units"].max()
    assert (xmas["p90"].to_numpy() < 3 * record.reindex(xmas["sku"]).to_numpy()).all()


def test_a_version_saved_before_the_scale_floor_forecasts_as_it_was_trained(
    christmas: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """The floor is saved with the model: an approved version trained without it keeps its scaling."""
    sales, _ = christmas
    unfloored = GlobalXGBoost(horizon=28, quantiles=Q, n_estimators=20, min_scale=0.0).fit(sales, "D")
    unfloored.save(tmp_path / "old")
    state = json.loads((tmp_path / "old" / "xgboost.json").read_text())
    del state["params"]["min_scale"]  # as written before the floor existed
    (tmp_path / "old" / "xgboost.json").write_text(json.dumps(state))
    expected = unfloored.predict(sales, 28, Q)
    pd.testing.assert_frame_equal(load_model(tmp_path / "old").predict(sales, 28, Q), expected)
    floored = GlobalXGBoost(horizon=28, quantiles=Q, n_estimators=20).fit(sales, "D").predict(sales, 28, Q)
    xmas = expected["sku"].str.startswith("XMAS").to_numpy()
    assert expected.loc[xmas, "p50"].sum() > 2 * floored.loc[xmas, "p50"].sum()  # the dust scale's December
