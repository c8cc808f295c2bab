"""Scoring forecasts against arrived actuals: levels, metrics, per-day sums and the trailing WAPE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut

from monitoring import accuracy as acc
from monitoring.windows import dense_panel, first_sales

QUANTILES = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def actuals() -> pd.DataFrame:
    sales = store_item_cut(stores=2, items=2, since="2017-09-01")
    return dense_panel(sales, first_sales(sales), pd.Timestamp("2017-10-01"), pd.Timestamp("2017-10-14"), "D")


def _forecasts(actuals: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Forecasts off by a known factor, as the store returns them (dates as datetime.date)."""
    p50 = actuals["units"] * factor
    return pd.DataFrame(
        {
            "store_id": actuals["store_id"],
            "sku": actuals["sku"],
            "target_date": actuals["date"].dt.date,
            "horizon_day": (actuals["date"] - pd.Timestamp("2017-09-30")).dt.days,
            "p10": p50 * 0.9,
            "p50": p50,
            "p90": p50 * 1.2,
            "mean": p50,
        }
    )


def test_rows_per_level_with_the_platforms_metrics(actuals: pd.DataFrame) -> None:
    scored = acc.score(_forecasts(actuals, 1.1), actuals, "set-1", 4)
    rows = acc.accuracy_rows(scored, QUANTILES)
    assert [(r.level, r.store_id, r.sku) for r in rows] == [
        ("total", "", ""), ("store", "1", ""), ("store", "2", ""),
        ("sku", "1", "1"), ("sku", "1", "2"), ("sku", "2", "1"), ("sku", "2", "2"),
    ]  # fmt: skip
    total = rows[0]
    assert (total.n, total.forecast_set_id, total.model_version) == (4 * 14, "set-1", 4)
    assert str(total.start_date) == "2017-10-01"
    assert str(total.end_date) == "2017-10-14"
    assert total.wape == pytest.approx(0.1)  # every forecast 10 % high
    assert total.bias == pytest.approx(0.1)
    y = actuals["units"].to_numpy()
    expected_cover = np.mean((y >= 0.99 * y) & (y <= 1.32 * y))
    assert total.coverage == pytest.approx(expected_cover)
    pinball = np.mean([np.mean(np.maximum(q * (y - f), (q - 1) * (y - f))) for q, f in
                       ((0.1, 0.99 * y), (0.5, 1.1 * y), (0.9, 1.32 * y))])  # fmt: skip
    assert total.pinball == pytest.approx(pinball)
    assert all(r.n == 14 for r in rows if r.level == "sku")


def test_days_without_a_forecast_or_without_sales_are_handled(actuals: pd.DataFrame) -> None:
    forecasts = _forecasts(actuals, 1.0)
    partial = forecasts[forecasts["target_date"].astype(str) <= "2017-10-07"]
    scored = acc.score(partial, actuals, "s", 1)
    assert sorted(scored.frame["target_date"].dt.day.unique()) == list(range(1, 8))
    zero = actuals.assign(units=0.0)
    rows = acc.accuracy_rows(acc.score(forecasts, zero, "s", 1), QUANTILES)
    assert rows[0].wape is None
    assert rows[0].bias is None
    assert acc.accuracy_rows(acc.score(forecasts.iloc[:0], actuals, "s", 1), QUANTILES) == []


def test_trailing_wape_from_per_day_sums_of_several_checks(actuals: pd.DataFrame) -> None:
    first_week = actuals[actuals["date"] <= "2017-10-07"]
    second_week = actuals[actuals["date"] > "2017-10-07"]
    good = acc.daily_sums(acc.score(_forecasts(first_week, 1.1), first_week, "s", 1))
    bad = acc.daily_sums(acc.score(_forecasts(second_week, 1.5), second_week, "s", 1))
    assert sorted(good) == [f"2017-10-0{d}" for d in range(1, 8)]
    merged = acc.merge_daily([good, bad])
    trailing = acc.trailing_wape(merged, window_days=7)
    assert trailing["2017-10-07"] == pytest.approx(0.1)
    assert trailing["2017-10-14"] == pytest.approx(0.5)
    day8 = actuals[actuals["date"] == "2017-10-08"]["units"].sum()
    week1 = actuals[(actuals["date"] >= "2017-10-02") & (actuals["date"] <= "2017-10-07")]["units"].sum()
    assert trailing["2017-10-08"] == pytest.approx((0.5 * day8 + 0.1 * week1) / (day8 + week1))
    # a later check's sums for a day replace an earlier check's (late corrections win)
    corrected = acc.merge_daily([good, {"2017-10-07": {"abs_error": 0.0, "actual": 10.0, "n": 4}}])
    assert corrected["2017-10-07"]["abs_error"] == 0.0


def test_evidently_regression_quality_of_the_median(actuals: pd.DataFrame) -> None:
    values, snapshot = acc.evidently_quality(acc.score(_forecasts(actuals, 1.1), actuals, "s", 1))
    y = actuals["units"].to_numpy()
    assert values["MAE"] == pytest.approx(np.mean(0.1 * y))
    assert values["RMSE"] == pytest.approx(np.sqrt(np.mean((0.1 * y) ** 2)))
    assert snapshot is not None
