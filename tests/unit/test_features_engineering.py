"""Feature engineering: point-in-time correctness and agreement with a SQL oracle."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
from realcuts import store_item_cut

from features.engineering import FeatureSpec, build_features


def test_no_feature_looks_at_its_own_date_or_later() -> None:
    sales = store_item_cut(stores=1, items=2)
    spec = FeatureSpec.for_freq("D")
    cutoff = pd.Timestamp("2017-06-01")
    before = build_features(sales, spec)
    perturbed = sales.copy()
    later = perturbed["date"] >= cutoff
    perturbed.loc[later, "units"] = perturbed.loc[later, "units"] * 7 + 100
    after = build_features(perturbed, spec)
    cols = [c for c in spec.target_features if c in before]
    mask = before["date"] <= cutoff  # features dated on the cutoff may only use the day before
    pd.testing.assert_frame_equal(before.loc[mask, cols], after.loc[mask, cols])
    # and the perturbation is visible the day after, so the test can fail
    assert not before.loc[before["date"] == cutoff + pd.Timedelta(days=1), "lag_1"].equals(
        after.loc[after["date"] == cutoff + pd.Timedelta(days=1), "lag_1"]
    )


def test_lags_and_rolling_means_match_sql_window_functions() -> None:
    sales = store_item_cut(stores=2, items=2, since="2017-01-01")
    feats = build_features(sales, FeatureSpec.for_freq("D"))
    con = duckdb.connect()  # its own connection: the module-level default is shared across tests
    con.register("sales", sales)
    oracle = con.sql("""
        select store_id, sku, date,
               lag(units, 7) over w as lag_7,
               avg(units) over (
                   partition by store_id, sku order by date
                   rows between 7 preceding and 1 preceding
               ) as roll_mean_7
        from sales window w as (partition by store_id, sku order by date)
    """).df()
    merged = feats.merge(oracle, on=["store_id", "sku", "date"], suffixes=("", "_sql"))
    assert len(merged) == len(sales)
    np.testing.assert_allclose(merged["lag_7"], merged["lag_7_sql"], equal_nan=True)
    np.testing.assert_allclose(merged["roll_mean_7"], merged["roll_mean_7_sql"], rtol=1e-5, equal_nan=True)


def test_future_rows_and_missing_days() -> None:
    sales = store_item_cut(stores=1, items=1, since="2017-11-01")
    sales = sales[sales["date"] != pd.Timestamp("2017-11-15")]  # a day without a sale row
    feats = build_features(sales, FeatureSpec.for_freq("D"), horizon=5)
    assert feats["date"].max() == pd.Timestamp("2018-01-05")
    assert feats.loc[feats["date"] == pd.Timestamp("2017-11-15"), "units"].item() == 0.0
    assert feats.loc[feats["date"] > pd.Timestamp("2017-12-31"), "units"].isna().all()
