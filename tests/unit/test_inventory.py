"""Inventory recommendations: the documented formula, checked against a loop oracle and real data."""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from realcuts import store_item_cut

from inference.inventory import InventoryError, InventoryPolicy, infer_period_days, recommend
from models.naive import SeasonalNaive

FIRST = date(2025, 3, 3)


def forecast_frame(series: dict[tuple[str, str], list[tuple[float, float]]], step: int = 1) -> pd.DataFrame:
    """(p50, p90) per horizon day per series; p10 mirrors the spread below the median."""
    rows = []
    for (store, sku), values in series.items():
        for h, (p50, p90) in enumerate(values, start=1):
            rows.append(
                {
                    "store_id": store,
                    "sku": sku,
                    "target_date": FIRST + timedelta(days=step * (h - 1)),
                    "horizon_day": h,
                    "p10": max(0.0, 2 * p50 - p90),
                    "p50": p50,
                    "p90": p90,
                    "mean": p50,
                }
            )
    return pd.DataFrame(rows)


def oracle(
    values: list[tuple[float, float]], lead: int, review: int, level: float, period: int = 1
) -> dict[str, float]:
    """The module docstring's formula, written as plain loops over days."""
    days = [(p50 / period, (p90 - p50) ** 2 / period) for p50, p90 in values for _ in range(period)]
    mean50 = sum(d for d, _ in days) / len(days)
    mean_var = sum(v for _, v in days) / len(days)

    def over(n: int) -> tuple[float, float]:
        demand = sum(d for d, _ in days[:n]) + max(0, n - len(days)) * mean50
        var = sum(v for _, v in days[:n]) + max(0, n - len(days)) * mean_var
        return demand, var

    k = max(0.0, NormalDist().inv_cdf(level) / NormalDist().inv_cdf(0.9))
    d_l, v_l = over(lead)
    d_s, v_s = over(lead + review)
    rop = math.ceil(d_l + k * math.sqrt(v_l) - 1e-9)
    up_to = math.ceil(d_s + k * math.sqrt(v_s) - 1e-9)
    return {
        "lead_time_demand": d_l,
        "safety_stock": k * math.sqrt(v_l),
        "reorder_point": rop,
        "order_up_to": up_to,
    }


def test_one_day_lead_time_at_90_percent_is_the_p90_and_at_50_the_median() -> None:
    frame = forecast_frame({("s1", "a"): [(10.0, 14.0), (20.0, 30.0)]})
    at90 = recommend(frame, InventoryPolicy(lead_time_days=1, service_level=0.9, review_days=1)).iloc[0]
    assert at90["lead_time_demand"] == 10.0
    assert at90["safety_stock"] == pytest.approx(4.0)
    assert at90["reorder_point"] == 14.0
    at50 = recommend(frame, InventoryPolicy(lead_time_days=2, service_level=0.5, review_days=1)).iloc[0]
    assert at50["safety_stock"] == 0.0
    assert at50["reorder_point"] == 30.0


def test_matches_the_loop_oracle_on_irregular_series() -> None:
    rng = np.random.default_rng(11)
    series = {}
    for i in range(25):
        level = rng.uniform(0.2, 60)
        series[(f"s{i % 4}", f"sku-{i}")] = [
            (float(p50), float(p50 + rng.uniform(0, 0.8) * p50 + rng.uniform(0, 2)))
            for p50 in level * rng.uniform(0.3, 1.7, size=28)
        ]
    frame = forecast_frame(series).sample(frac=1.0, random_state=3)  # order must not matter
    for lead, review, level in [(1, 1, 0.95), (7, 7, 0.95), (10, 14, 0.99), (30, 7, 0.8)]:
        got = recommend(frame, InventoryPolicy(lead, level, review)).set_index(["store_id", "sku"])
        assert len(got) == 25
        for key, values in series.items():
            want = oracle(values, lead, review, level)
            row = got.loc[key]
            assert row["lead_time_demand"] == pytest.approx(want["lead_time_demand"])
            assert row["safety_stock"] == pytest.approx(want["safety_stock"])
            assert row["reorder_point"] == want["reorder_point"]
            assert row["order_quantity"] == want["order_up_to"] - want["reorder_point"]
            assert not row["stockout_risk"]
            assert np.isnan(row["on_hand"])


def test_weekly_periods_are_spread_over_their_days() -> None:
    weeks = [(70.0, 98.0), (140.0, 168.0)]
    frame = forecast_frame({("s", "w"): weeks}, step=7)
    assert infer_period_days(frame) == 7
    policy = InventoryPolicy(lead_time_days=3, service_level=0.95, review_days=7)
    row = recommend(frame, policy).iloc[0]
    want = oracle(weeks, 3, 7, 0.95, period=7)
    assert row["lead_time_demand"] == pytest.approx(30.0)  # 3/7 of the first week
    assert row["reorder_point"] == want["reorder_point"]
    assert row["order_quantity"] == want["order_up_to"] - want["reorder_point"]


def test_lead_time_beyond_the_horizon_is_extended_and_reported() -> None:
    frame = forecast_frame({("s", "x"): [(10.0, 12.0)] * 7})
    out = recommend(frame, InventoryPolicy(lead_time_days=10, service_level=0.9, review_days=7))
    assert out.iloc[0]["lead_time_demand"] == pytest.approx(100.0)
    assert out.attrs["extrapolated_days"] == 10
    assert recommend(frame, InventoryPolicy(3, 0.9, 4)).attrs["extrapolated_days"] == 0


def test_stock_on_hand_decides_risk_and_quantity() -> None:
    frame = forecast_frame({("s", "low"): [(10.0, 15.0)] * 14, ("s", "high"): [(10.0, 15.0)] * 14,
                            ("s", "unknown"): [(10.0, 15.0)] * 14})  # fmt: skip
    policy = InventoryPolicy(lead_time_days=7, service_level=0.95, review_days=7)
    out = recommend(frame, policy, on_hand={("s", "low"): 20.5, ("s", "high"): 500.0}).set_index("sku")
    want = oracle([(10.0, 15.0)] * 14, 7, 7, 0.95)
    assert (out["reorder_point"] == want["reorder_point"]).all()
    assert out.loc["low", "stockout_risk"]
    assert out.loc["low", "order_quantity"] == math.ceil(want["order_up_to"] - 20.5)
    assert out.loc["low", "on_hand"] == 20.5
    assert not out.loc["high", "stockout_risk"]
    assert out.loc["high", "order_quantity"] == 0.0
    assert not out.loc["unknown", "stockout_risk"]
    assert out.loc["unknown", "order_quantity"] == want["order_up_to"] - want["reorder_point"]


def test_higher_service_and_longer_lead_time_never_lower_the_reorder_point() -> None:
    frame = forecast_frame({("s", "a"): [(5.0 + d % 7, 9.0 + d % 7) for d in range(28)]})
    rops = [
        recommend(frame, InventoryPolicy(7, level, 7)).iloc[0]["reorder_point"]
        for level in (0.5, 0.8, 0.95, 0.99)
    ]
    assert rops == sorted(rops)
    assert rops[0] < rops[-1]
    leads = [
        recommend(frame, InventoryPolicy(lead, 0.95, 7)).iloc[0]["reorder_point"] for lead in (1, 7, 14, 28)
    ]
    assert leads == sorted(leads)
    assert leads[0] < leads[-1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lead_time_days": 0}, "lead_time_days"),
        ({"lead_time_days": 2.5}, "whole number"),
        ({"service_level": 0.3}, "service_level"),
        ({"service_level": 1.0}, "service_level"),
        ({"review_days": 0}, "review_days"),
    ],
)
def test_bad_policies_are_named(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InventoryError, match=match):
        InventoryPolicy(**kwargs)  # type: ignore[arg-type]


def test_incomplete_or_crossed_forecasts_are_refused() -> None:
    frame = forecast_frame({("s", "a"): [(1.0, 2.0)] * 5, ("s", "b"): [(1.0, 2.0)] * 5})
    with pytest.raises(InventoryError, match=r"\('s', 'b'\) does not hold every horizon day"):
        recommend(frame.drop(index=7), InventoryPolicy())
    crossed = frame.assign(p90=frame["p50"] - 1)
    with pytest.raises(InventoryError, match="p50 <= p90"):
        recommend(crossed, InventoryPolicy())
    with pytest.raises(InventoryError, match="lack column"):
        recommend(frame.drop(columns="p90"), InventoryPolicy())
    uneven = frame.copy()
    uneven.loc[uneven["horizon_day"] == 5, "target_date"] = FIRST + timedelta(days=9)
    with pytest.raises(InventoryError, match="evenly spaced"):
        recommend(uneven, InventoryPolicy())


def test_reorder_points_cover_real_lead_time_demand_about_as_often_as_promised() -> None:
    """Real Store Item Demand series, seasonal-naive quantiles, 30 weekly origins in 2017.

    The reorder point at 90 % should cover the next week's real demand in roughly nine cycles of
    ten; the median-only point (50 %) in about half. Loose bounds: the quantiles come from a
    naive model, yet the ordering and the rough levels must hold.
    """
    sales = store_item_cut(stores=2, items=10, since="2016-01-01")
    model = SeasonalNaive().fit(sales, "D")
    covered = {0.5: [], 0.9: []}
    for origin in pd.date_range("2017-03-05", periods=30, freq="7D"):
        history = sales[sales["date"] <= origin]
        forecast = model.predict(history, 14, (0.1, 0.5, 0.9))
        actual = sales[(sales["date"] > origin) & (sales["date"] <= origin + pd.Timedelta(days=7))]
        demand = actual.groupby(["store_id", "sku"])["units"].sum()
        for level, hits in covered.items():
            rec = recommend(forecast, InventoryPolicy(7, level, 7)).set_index(["store_id", "sku"])
            hits.extend((demand <= rec["reorder_point"].reindex(demand.index)).tolist())
    rate50, rate90 = (float(np.mean(covered[q])) for q in (0.5, 0.9))
    assert len(covered[0.9]) == 30 * 20
    assert 0.3 <= rate50 <= 0.7
    assert 0.8 <= rate90 <= 0.99
    assert rate90 > rate50 + 0.2
