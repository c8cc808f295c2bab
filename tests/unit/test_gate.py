"""The quality gate: pooled over the out-of-sample windows, each blended with weights from older ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from backtests import scaled_backtest

from models.evaluation import RATIO_CAP, evaluate, out_of_sample_gate
from models.metrics import wape

Q = (0.1, 0.5, 0.9)
HORIZON = 14


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    dates = pd.date_range("2024-01-01", periods=200, freq="D")
    frames = [
        pd.DataFrame({"store_id": "1", "sku": f"s{i:02d}", "date": dates, "units": rng.poisson(20 + i, 200)})
        for i in range(15)
    ]
    return pd.concat(frames, ignore_index=True).astype({"units": float})


def _windows(sales: pd.DataFrame) -> list[pd.Timestamp]:
    end = sales["date"].max()
    return [end - pd.Timedelta(days=k * HORIZON) for k in (3, 2, 1)]


def _backtest(sales: pd.DataFrame, factors: dict[pd.Timestamp, float], name: str) -> pd.DataFrame:
    return scaled_backtest(sales, factors, name, HORIZON)


def test_the_gate_pools_later_windows_with_weights_fitted_before_each(sales: pd.DataFrame) -> None:
    w1, w2, w3 = _windows(sales)
    # a: exact until the newest window, then 30 % high; b: half the demand until then, exact in it
    a = _backtest(sales, {w1: 1.0, w2: 1.0, w3: 1.3}, "a")
    b = _backtest(sales, {w1: 0.5, w2: 0.5, w3: 1.0}, "b")
    naive = _backtest(sales, {w1: 5.0, w2: 1.2, w3: 1.2}, "naive")  # its earliest window is not gated
    gate = out_of_sample_gate(sales, "D", HORIZON, {"a": a, "b": b}, {"naive": naive}, [w1, w2, w3], Q)
    assert gate.windows == [str(w2.date()), str(w3.date())]
    assert gate.window == str(w3.date())
    assert gate.terms[0]["ensemble"] == pytest.approx(0.0, abs=1e-6)
    assert gate.terms[1]["ensemble"] == pytest.approx(0.3, abs=1e-6)  # out of sample: a's error
    units = [a.loc[a["window"] == w, "actual"].sum() for w in (w2, w3)]
    assert gate.ensemble == pytest.approx(0.3 * units[1] / sum(units), abs=1e-6)
    assert gate.baselines["naive"] == pytest.approx(0.2)
    # the newest window alone would fail this ensemble (0.3 against 0.2); pooled, it wins
    assert gate.ensemble < gate.baselines["naive"]
    newest = gate.per_window("naive")[1]
    assert newest == {"cutoff": str(w3.date()), "ensemble_value": 0.3, "best_baseline_value": 0.2}
    # no weight sees the window it is scored on: b, exact in the newest window where a triples the
    # demand, would take all the weight if that window were among the fitted ones
    a3 = _backtest(sales, {w1: 1.0, w2: 1.0, w3: 3.0}, "a")
    gate = out_of_sample_gate(sales, "D", HORIZON, {"a": a3, "b": b}, {"naive": naive}, [w1, w2, w3], Q)
    # a's 2.0, its median pulled under the blended p90 (quantiles are kept monotone); a leak scores 0
    assert gate.terms[1]["ensemble"] > 1.5


def test_one_window_gates_in_sample(sales: pd.DataFrame) -> None:
    w3 = _windows(sales)[-1]
    a = _backtest(sales, {w3: 1.1}, "a")
    naive = _backtest(sales, {w3: 1.2}, "naive")
    gate = out_of_sample_gate(sales, "D", HORIZON, {"a": a}, {"naive": naive}, [w3], Q)
    assert gate.windows == ["in-sample"]
    assert gate.ensemble == pytest.approx(0.1)
    assert gate.baselines == {"naive": pytest.approx(0.2)}


def test_evaluate_records_the_pooled_gate(sales: pd.DataFrame) -> None:
    w1, w2, w3 = windows = _windows(sales)
    a = _backtest(sales, {w1: 1.0, w2: 1.05, w3: 1.1}, "a")
    b = _backtest(sales, {w1: 0.7, w2: 0.8, w3: 0.9}, "b")
    result = evaluate(sales, "D", HORIZON, Q, {"a": a, "b": b}, max_wape_ratio=1.0)
    gate = result.metrics["gate"]
    assert gate["windows"] == [str(w2.date()), str(w3.date())]
    assert gate["window"] == str(w3.date())
    assert [t["cutoff"] for t in gate["per_window"]] == gate["windows"]
    # the best baseline is the one with the lowest pooled WAPE over the gated windows, scored here
    # from the backtest rows evaluate returns
    rows = result.backtest[result.backtest["window"].isin(windows[1:])]
    pooled = {
        name: wape(f["actual"].to_numpy(), f["p50"].to_numpy())
        for name, f in rows.groupby("model")
        if name in result.metrics["baselines"]
    }
    assert gate["best_baseline"] == min(pooled, key=lambda n: pooled[n])
    assert gate["best_baseline_value"] == pytest.approx(pooled[gate["best_baseline"]], abs=1e-5)
    assert gate["passed"] is (gate["wape_ratio"] <= 1.0)
    assert gate["passed"]  # a is within 10 % of the demand; a seasonal naive on Poisson noise is not


def test_an_exact_baseline_is_not_beaten_by_an_ensemble_with_errors(sales: pd.DataFrame) -> None:
    """A baseline with WAPE 0 (a constant series copied exactly) used to give ratio 0.0: a pass."""
    w1, w2, w3 = _windows(sales)
    a = _backtest(sales, {w1: 1.1, w2: 1.1, w3: 1.1}, "a")
    exact = _backtest(sales, {w1: 1.0, w2: 1.0, w3: 1.0}, "copy")
    result = evaluate(sales, "D", HORIZON, Q, {"a": a}, max_wape_ratio=1.0, extra_baselines={"copy": exact})
    gate = result.metrics["gate"]
    assert gate["best_baseline"] == "copy"
    assert gate["best_baseline_value"] == 0.0
    assert gate["wape_ratio"] == RATIO_CAP  # infinite, as strict JSON can carry it
    assert gate["passed"] is False


def test_windows_without_demand_gate_on_absolute_errors(sales: pd.DataFrame) -> None:
    """Nothing sold in the windows: every WAPE is 0 / 0, and the ratio came out 0.0 whatever the
    ensemble forecast. Exact zeros tie with an exact baseline; a forecast of demand loses."""
    none = sales.assign(units=0.0)
    w1, w2, w3 = _windows(none)
    naive = _backtest(none, {w1: 1.0, w2: 1.0, w3: 1.0}, "naive")  # zeros, exactly
    zeros = _backtest(none, {w1: 1.0, w2: 1.0, w3: 1.0}, "a")
    tie = evaluate(none, "D", HORIZON, Q, {"a": zeros}, max_wape_ratio=1.0, extra_baselines={"naive": naive})
    assert np.isnan(tie.metrics["gate"]["ensemble_value"])
    assert tie.metrics["gate"]["wape_ratio"] == 1.0
    assert tie.metrics["gate"]["passed"] is True
    wrong = zeros.assign(p50=3.0, p10=2.0, p90=4.0, mean=3.0)  # forecasts demand that never came
    lost = evaluate(none, "D", HORIZON, Q, {"a": wrong}, max_wape_ratio=1.0, extra_baselines={"naive": naive})
    assert lost.metrics["gate"]["passed"] is False
