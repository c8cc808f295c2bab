"""MASE's yardstick (seasonal differences when the history holds them, one-step ones when it does not) and
which tail of an interval misses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.metrics import naive_scale, score


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


def test_the_tails_say_which_side_misses_and_a_zero_p10_cannot_be_undershot() -> None:
    """Poisson demand with a mean of 0.5 (most days zero): its true p10 is 0 and its true p90 is 1."""
    rng = np.random.default_rng(5)
    actual = rng.poisson(0.5, 20_000).astype(float)
    frame = pd.DataFrame({"actual": actual, "mean": 0.5, "p10": 0.0, "p50": 0.0, "p90": 1.0})
    out = score(frame, (0.1, 0.5, 0.9))
    assert out["below_lower"] == 0.0  # nothing sells fewer than zero units
    assert out["above_upper"] == pytest.approx(np.mean(actual > 1), abs=1e-12)
    assert 0.07 < out["above_upper"] < 0.12  # P(Y > 1) = 0.090 for Poisson(0.5)
    # the calibrated interval covers about 0.9, above the nominal 0.8 a continuous demand would give
    assert out["coverage"] == pytest.approx(1 - out["above_upper"])
    assert out["coverage"] > 0.85

    shifted = frame.assign(p10=1.0, p90=2.0)  # an interval one unit too high misses below, not above
    tails = score(shifted, (0.1, 0.5, 0.9))
    assert tails["below_lower"] > 0.5
    assert tails["above_upper"] < 0.02
    assert tails["coverage"] == pytest.approx(1 - tails["below_lower"] - tails["above_upper"])
