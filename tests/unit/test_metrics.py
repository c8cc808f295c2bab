"""MASE's yardstick: seasonal differences when the history holds them, one-step ones when it does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.metrics import naive_scale


def _weekly(store: str, weeks: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-03", periods=weeks, freq="W-FRI")
    yearly = 100 + 40 * np.sin(2 * np.pi * np.arange(weeks) / 52)
    return pd.DataFrame(
        {"store_id": store, "sku": "a", "date": dates, "units": yearly + rng.normal(0, 5, weeks)}
    )


def test_two_seasons_use_the_seasonal_difference_and_a_shorter_history_the_one_step_one() -> None:
    long, short = _weekly("1", 130, 1), _weekly("2", 60, 2)
    scale = naive_scale(pd.concat([long, short], ignore_index=True), 52)

    seasonal = long["units"].diff(52).abs().mean()
    assert scale[("1", "a")] == pytest.approx(seasonal)
    assert scale[("2", "a")] == pytest.approx(short["units"].diff(1).abs().mean())
    assert scale[("2", "a")] != pytest.approx(short["units"].diff(52).abs().mean())


def test_a_flat_history_has_no_scale() -> None:
    flat = pd.DataFrame(
        {"store_id": "1", "sku": "a", "date": pd.date_range("2024-01-01", periods=30), "units": 4.0}
    )
    assert np.isnan(naive_scale(flat, 7)[("1", "a")])
