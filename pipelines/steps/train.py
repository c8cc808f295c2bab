"""Training step for one forecaster: rolling-origin backtest, then the model trained on all the data.

The backtest predictions go to the output data dir (the evaluate step blends or scores them) with
``timing.json`` and ``details.json`` (per-series fallbacks, training sample); the model trained on the
full history goes to the model dir (SageMaker tars it as model.tar.gz).
"""

from __future__ import annotations

import json
import time
from typing import Any

from models.backtest import backtest_model, check_history
from models.base import Forecaster
from ordernimbus.errors import OrderNimbusError
from pipelines.contract import StepContext
from pipelines.steps._io import quantiles_arg, read_sales, run_step

MODELS = ("arima", "xgboost", "deepar", "autoets", "seasonal_naive", "seasonal_naive_year")


def make_model(
    name: str, horizon: int, quantiles: tuple[float, ...], rounds: int = 200, epochs: int = 12
) -> Forecaster:
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
    if name == "arima":
        from models.statistical import AutoARIMAForecaster

        return AutoARIMAForecaster()
    if name == "autoets":
        from models.statistical import AutoETSForecaster

        return AutoETSForecaster()
    if name == "deepar":
        from models.deepar import DeepARForecaster

        return DeepARForecaster(horizon=horizon, max_epochs=epochs)
    raise OrderNimbusError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")


def details(model: Forecaster) -> dict[str, Any]:
    """What a reviewer needs beyond the scores: fallbacks per series, the training sample."""
    out: dict[str, Any] = {"model": model.name}
    fallbacks = getattr(model, "fallbacks", None)
    if fallbacks is not None:
        out["fallbacks"] = fallbacks
        out["fallback_count"] = len(fallbacks)
    if hasattr(model, "trained_series"):
        out["trained_series"] = model.trained_series
    yearly = getattr(model, "yearly", None)
    if yearly is not None:  # why a weekly tenant's short series got the yearly naive, or not
        out["yearly_signal"] = yearly
    trees = getattr(model, "trees", None)
    if trees is not None:  # XGBoost: the configured trees, or the small tenant's
        out["trees"] = trees
    pooled = getattr(model, "pooled_series", None)
    if pooled is not None:  # ARIMA: series forecast on the tenant's pooled week and year
        out["pooled_season"] = {"series": pooled(), "of": len(getattr(model, "specs", {}))}
    if "season" in (getattr(model, "covariates", None) or []):  # DeepAR: the pooled season as a covariate
        out["pooled_season"] = {"covariate": True}
    clipped = getattr(model, "clipped_rows", 0.0)
    if clipped:  # DeepAR learnt demand on units whose net-negative (returns) days were clipped to zero
        out["returns_clipped"] = {
            "rows": round(float(clipped), 4),
            "distribution": getattr(model, "distribution", None),
        }
    return out


def main(ctx: StepContext) -> None:
    name = ctx.param("model")
    horizon = int(ctx.param("horizon", "28"))
    quantiles = quantiles_arg(ctx.param("quantiles", "0.1,0.5,0.9"))
    windows = int(ctx.param("backtest_windows", "3"))
    rounds = int(ctx.param("boosting_rounds", "200"))
    epochs = int(ctx.param("deepar_epochs", "12"))
    sales, meta = read_sales(ctx.channel("sales"))
    freq = meta["frequency"]
    check_history(
        sales["date"].min(),
        sales["date"].max(),
        horizon,
        windows,
        freq,
        f"tenant {ctx.param('tenant')!r}",
    )
    started = time.perf_counter()
    bt, model = backtest_model(
        lambda: make_model(name, horizon, quantiles, rounds, epochs),
        sales,
        freq,
        horizon,
        windows,
        quantiles,
        progress=print,
    )
    bt.to_parquet(ctx.output_data_dir / "backtest.parquet", index=False)
    model.save(ctx.model_dir)
    if name == "xgboost":  # the registry's model card and the API show these drivers
        from models.explain import explain_xgboost

        (ctx.model_dir / "explain.json").write_text(json.dumps(explain_xgboost(model, sales)))
    timing = {"seconds": round(time.perf_counter() - started, 2), "windows": windows}
    (ctx.output_data_dir / "timing.json").write_text(json.dumps(timing))
    (ctx.output_data_dir / "details.json").write_text(json.dumps(details(model)))
    print(f"{name}: {windows} backtest windows and the final fit in {timing['seconds']} s")


if __name__ == "__main__":
    run_step(main)
