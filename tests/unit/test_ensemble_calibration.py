"""The evaluate step's blend on backtests: late-starting series, and the window that calibrates intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.evaluation import evaluate

Q = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004  # standard normal 0.9 quantile
HORIZON = 14


def _sales(series: int, days: int, late: int) -> pd.DataFrame:
    """Daily sales of ``series`` series; the last ``late`` of them start 20 days before the end."""
    rng = np.random.default_rng(3)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    frames = []
    for i in range(series):
        start = days - 20 if i >= series - late else 0
        frames.append(
            pd.DataFrame(
                {
                    "store_id": "1",
                    "sku": f"s{i:02d}",
                    "date": dates[start:],
                    "units": rng.poisson(20, days - start),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).astype({"units": float})


def _member(sales: pd.DataFrame, cutoffs: dict[pd.Timestamp, float], seed: int) -> pd.DataFrame:
    """A backtest whose p10/p90 are N(20, 5) quantiles; actuals drawn with each window's spread."""
    rng = np.random.default_rng(seed)
    rows = []
    for cutoff, spread in cutoffs.items():
        started = sales.loc[sales["date"] <= cutoff, ["store_id", "sku"]]
        for store, sku in started.drop_duplicates().itertuples(index=False):
            for h in range(1, HORIZON + 1):
                rows.append(
                    {
                        "store_id": store,
                        "sku": sku,
                        "target_date": cutoff + pd.Timedelta(days=h),
                        "window": cutoff,
                        "horizon_day": h,
                        "actual": max(0.0, 20 + spread * rng.standard_normal()),
                        "mean": 20.0,
                        "p10": 20 - Z90 * 5,
                        "p50": 20.0,
                        "p90": 20 + Z90 * 5,
                    }
                )
    return pd.DataFrame(rows)


def test_late_series_blend_with_pooled_weights_and_the_newest_window_sets_the_interval_scale() -> None:
    sales = _sales(series=40, days=200, late=4)
    end = sales["date"].max()
    older, newest = end - pd.Timedelta(days=2 * HORIZON), end - pd.Timedelta(days=HORIZON)
    # the older window's model was over-confident (actuals spread 4x its intervals), the newest one's
    # intervals are right: the scale must follow the newest, not widen every interval
    windows = {older: 20.0, newest: 5.0}
    members = {"a": _member(sales, windows, 1), "b": _member(sales, windows, 2)}
    assert len(members["a"][members["a"]["window"] == newest]) > len(
        members["a"][members["a"]["window"] == older]
    )

    result = evaluate(sales, "D", HORIZON, Q, members, max_wape_ratio=10.0)

    blend = result.backtest[result.backtest["model"] == "ensemble"]
    assert len(blend) == len(members["a"])
    assert not blend[["p10", "p50", "p90"]].isna().any().any()  # late starters are weighted too
    assert np.isfinite(result.metrics["ensemble"]["wape"])
    for side in ("lower", "upper"):
        assert 0.8 <= result.interval_scale[side] <= 1.25, result.interval_scale
    newest_rows = blend[blend["window"] == newest]
    covered = (
        (newest_rows["actual"] >= newest_rows["p10"]) & (newest_rows["actual"] <= newest_rows["p90"])
    ).mean()
    assert 0.74 <= covered <= 0.86
