"""Training step for one ensemble member: rolling-origin backtest, then a fit on all the data.

The backtest predictions go to the output data dir (the evaluate step blends them); the model
trained on the full history goes to the model dir (SageMaker tars it as model.tar.gz).
"""

from __future__ import annotations

import json
import time

from models.backtest import backtest
from models.base import Forecaster
from ordernimbus.errors import OrderNimbusError
from pipelines.contract import StepContext
from pipelines.steps._io import quantiles_arg, read_sales, run_step


def make_model(name: str, horizon: int, quantiles: tuple[float, ...], rounds: int = 200) -> Forecaster:
    """Model factory by name: the one place a member name becomes a class."""
    if name == "seasonal_naive":
        from models.naive import SeasonalNaive

        return SeasonalNaive()
    if name == "seasonal_naive_year":
        from models.naive import SeasonalNaive

        return SeasonalNaive(yearly=True)
    if name == "xgboost":
        from models.xgboost import GlobalXGBoost

        return GlobalXGBoost(horizon=horizon, quantiles=quantiles, n_estimators=rounds)
    raise OrderNimbusError(f"unknown model {name!r}; expected one of: seasonal_naive, seasonal_naive_year, xgboost")


def main(ctx: StepContext) -> None:
    name = ctx.param("model")
    horizon = int(ctx.param("horizon", "28"))
    quantiles = quantiles_arg(ctx.param("quantiles", "0.1,0.5,0.9"))
    windows = int(ctx.param("backtest_windows", "2"))
    rounds = int(ctx.param("boosting_rounds", "200"))
    sales, meta = read_sales(ctx.channel("sales"))
    freq = meta["frequency"]
    started = time.perf_counter()
    bt = backtest(lambda: make_model(name, horizon, quantiles, rounds), sales, freq, horizon, windows, quantiles,
                  progress=print)
    bt.to_parquet(ctx.output_data_dir / "backtest.parquet", index=False)
    backtest_s = time.perf_counter() - started
    model = make_model(name, horizon, quantiles, rounds).fit(sales, freq)
    model.save(ctx.model_dir)
    timing = {"backtest_seconds": round(backtest_s, 2), "fit_seconds": round(time.perf_counter() - started - backtest_s, 2)}
    (ctx.output_data_dir / "timing.json").write_text(json.dumps(timing))
    print(f"{name}: backtest {timing['backtest_seconds']} s, final fit {timing['fit_seconds']} s")


if __name__ == "__main__":
    run_step(main)
