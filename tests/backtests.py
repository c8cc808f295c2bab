"""Constructed backtest frames for the evaluation tests: the truth, and a median off by a known factor."""

from __future__ import annotations

import pandas as pd


def scaled_backtest(
    sales: pd.DataFrame, factors: dict[pd.Timestamp, float], name: str, horizon: int
) -> pd.DataFrame:
    """Every series' actuals in the ``horizon`` days after each cutoff, with p50 = actual x that
    cutoff's factor, p10 / p90 at 0.8 / 1.2 of it: the rows a member's training step would write."""
    frames = []
    for cutoff, factor in factors.items():
        after = sales[(sales["date"] > cutoff) & (sales["date"] <= cutoff + pd.Timedelta(days=horizon))]
        p50 = after["units"].to_numpy() * factor
        frames.append(
            pd.DataFrame(
                {
                    "store_id": after["store_id"].to_numpy(),
                    "sku": after["sku"].to_numpy(),
                    "target_date": after["date"].to_numpy(),
                    "window": cutoff,
                    "horizon_day": (after["date"] - cutoff).dt.days.to_numpy(),
                    "actual": after["units"].to_numpy(),
                    "mean": p50,
                    "p10": 0.8 * p50,
                    "p50": p50,
                    "p90": 1.2 * p50,
                    "model": name,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
