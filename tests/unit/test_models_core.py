"""Forecasters: save/load round trips, quantile sanity, and the ensemble never worse than its members."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.backtest import backtest
from models.base import ModelError, load_model
from models.ensemble import Ensemble, blend, fit_weights
from models.metrics import qcol, wape
from models.naive import SeasonalNaive
from models.xgboost import GlobalXGBoost
from realcuts import store_item_cut

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
    assert (values >= 0).all() and (before["mean"] >= 0).all()
    assert len(before) == sales_cut.groupby(["store_id", "sku"]).ngroups * 14


def test_load_refuses_a_directory_without_our_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"class": "os:system"}')
    with pytest.raises(ModelError, match="refusing"):
        load_model(tmp_path)


def test_xgboost_beats_seasonal_naive_on_held_out_weeks() -> None:
    sales = store_item_cut(stores=2, items=5, since="2015-01-01")
    cut = pd.Timestamp("2017-09-30")
    history, future = sales[sales["date"] <= cut], sales[(sales["date"] > cut) & (sales["date"] <= cut + pd.Timedelta(days=14))]
    truth = future.rename(columns={"date": "target_date", "units": "actual"})
    scores = {}
    for model in (SeasonalNaive(), GlobalXGBoost(horizon=14, n_estimators=80, max_origins=30)):
        pred = model.fit(history, "D").predict(history, 14, Q).merge(truth, on=["store_id", "sku", "target_date"])
        scores[model.name] = wape(pred["actual"].to_numpy(), pred["p50"].to_numpy())
    assert scores["xgboost"] < scores["seasonal_naive"]


def test_ensemble_is_never_worse_than_its_best_member_on_its_backtest(tmp_path: Path, sales_cut: pd.DataFrame) -> None:
    makers = {"seasonal_naive": SeasonalNaive, "seasonal_naive_year": lambda: SeasonalNaive(yearly=True), "xgboost": small_xgb}
    bts = {n: backtest(m, sales_cut, "D", 14, 2, Q) for n, m in makers.items()}
    weights = fit_weights(bts, Q)
    assert abs(sum(weights.values()) - 1) < 1e-9
    blended = blend(bts, weights, Q)
    best = min(wape(b["actual"].to_numpy(), b["p50"].to_numpy()) for b in bts.values())
    assert wape(blended["actual"].to_numpy(), blended["p50"].to_numpy()) <= best + 1e-12
    ens = Ensemble({n: m().fit(sales_cut, "D") for n, m in makers.items()}, weights, 1.1)
    ens.freq = "D"
    ens.save(tmp_path / "ens")
    pd.testing.assert_frame_equal(ens.predict(sales_cut, 14, Q), load_model(tmp_path / "ens").predict(sales_cut, 14, Q))
